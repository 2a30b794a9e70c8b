#!/usr/bin/env python3
"""Resident memory of the server (issue 10), one or more builds side by side, rounds alternated.

For each build and round: one instance (scripts/clusterlib.py's Cluster: a private redis-server, JSON users,
AUTH_TYPE=session_redis_auth, the default Argon2id cost, so that a login costs what it costs in production) on
127.0.0.1; then, reading /proc/PID/status and /proc/PID/smaps_rollup of the server:
  ready   VmRSS once it answers /readyz;
  logins  VmRSS after --logins sequential logins of one user (each one Argon2id hash, 19 MiB of working memory
          by default), and the median time of a login;
  load    VmRSS after wrk -t1 -c64 -d<--duration>s on GET /users/me with the last cookie, its req/s, the
          server's peak (VmHWM), threads, and how much of VmRSS is anonymous memory (the rest is mapped files:
          the binary and the shared libraries, as far as they were touched).
Prints the median of the rounds per build. Loopback only; Python 3 standard library, plus wrk.

  python3 -B scripts/bench-memory.py --binary NAME=PATH [--binary NAME=PATH ...] [--rounds 3] [--logins 8] [--duration 5] [--json FILE]

--json FILE also writes the medians (KiB, ms, req/s) per build as JSON (scripts/bench reads them).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True
from clusterlib import REPO, Cluster, resolve_binary  # noqa: E402
from scaling import PASSWORD, Api  # noqa: E402

EMAIL = "memory@bench.test"


def status_kib(pid: int, field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))


def anonymous_kib(pid: int) -> int:
    return int(re.search(r"Anonymous:\s+(\d+)", Path(f"/proc/{pid}/smaps_rollup").read_text()).group(1))


def measure(name: str, binary: Path, args) -> dict:
    data_dir = REPO / "data" / f"bench-memory-{name}"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    cluster = Cluster(binary, data_dir, instances=1, user_store="json", env={"LOG_LEVEL": "warning"}, quiet=True).start()
    try:
        pid = cluster.apps[0].pid
        ready = status_kib(pid, "VmRSS")
        cluster.create_user(EMAIL, PASSWORD)  # hashed by the CLI process, not the server
        api = Api(cluster.instance_url(0))
        took = []
        for _ in range(args.logins):
            started = time.monotonic()
            cookie = api.login(EMAIL)
            took.append(time.monotonic() - started)
        after_logins = status_kib(pid, "VmRSS")
        out = subprocess.run(
            ["wrk", "-t1", "-c64", f"-d{args.duration}s", "-H", f"Cookie: _my_session_id={cookie}", cluster.instance_url(0) + "/api/v1/users/me"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        if "Non-2xx" in out:
            raise SystemExit(f"{name}: wrk saw non-2xx answers:\n{out}")
        return {
            "ready": ready,
            "logins": after_logins,
            "login_ms": statistics.median(took) * 1000,
            "load": status_kib(pid, "VmRSS"),
            "peak": status_kib(pid, "VmHWM"),
            "anon": anonymous_kib(pid),
            "threads": int(re.search(r"Threads:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1)),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        }
    finally:
        cluster.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", action="append", default=[], help="NAME=PATH of a build to measure (repeatable; default: the release build)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--logins", type=int, default=8, help="sequential logins before the load (default 8)")
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk on /users/me (default 5)")
    parser.add_argument("--json", type=Path, help="also write the medians per build to this file as JSON")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    builds = []
    for spec in args.binary or ["release="]:
        name, _, path = spec.partition("=")
        builds.append((name, resolve_binary(path or None)))
    results: dict[str, list[dict]] = {name: [] for name, _ in builds}
    for round_ in range(args.rounds):
        for name, binary in builds:
            result = measure(name, binary, args)
            results[name].append(result)
            print(f"round {round_ + 1} {name}: " + ", ".join(f"{key} {value:,.1f}" for key, value in result.items()), flush=True)
    mib = lambda kib: f"{kib / 1024:.1f}"  # noqa: E731
    print(f"\nmedian of {args.rounds} rounds; MiB; login: median of {args.logins} sequential logins (default Argon2id); load: wrk -t1 -c64 -d{args.duration}s on /users/me\n")
    print("| build | RSS ready | RSS after logins | login ms | RSS after load | of which anonymous | peak (VmHWM) | threads | /users/me req/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    medians = {}
    for name, binary in builds:
        m = medians[name] = {key: statistics.median(r[key] for r in results[name]) for key in results[name][0]}
        print(
            f"| {name} | {mib(m['ready'])} | {mib(m['logins'])} | {m['login_ms']:.0f} | {mib(m['load'])} | {mib(m['anon'])} | {mib(m['peak'])} | "
            f"{m['threads']:.0f} | {m['rps']:,.0f} |"
        )
    for name, binary in builds:
        print(f"  {name}: {binary}")
    if args.json:
        args.json.write_text(json.dumps(medians, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
