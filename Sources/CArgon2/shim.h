#ifndef CARGON2_SHIM_H
#define CARGON2_SHIM_H
// libargon2 (Debian libargon2-dev), the reference implementation: Argon2id hashing to and verifying of
// PHC strings ($argon2id$v=19$m=...,t=...,p=...$salt$hash). Passwords are passed with their length.
#include <argon2.h>
#endif
