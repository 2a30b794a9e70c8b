#ifndef CHIREDIS_SHIM_H
#define CHIREDIS_SHIM_H
// libhiredis 0.14 (Debian libhiredis-dev): only the command formatter and the reply reader are used;
// SwiftNIO owns the sockets.
#include <hiredis/hiredis.h>
#endif
