#!/usr/bin/env python3
"""Instructions per request (issue 10): a figure that does not depend on the machine's speed or load.

Runs the server under `valgrind --tool=callgrind` (valgrind 3.19 cannot read the DWARF of Swift 6.3's builds,
so the binary runs from a copy without its debug sections: `objcopy --strip-debug`; the symbols stay), on a
private redis-server (free 127.0.0.1 port, temp dir), AUTH_TYPE=session_redis_auth, one user in .db_User.json.
For each path and NEAR_CACHE setting: one login, 200 warm-up requests (they fill the near-cache), then
`callgrind_control -z`, --requests sequential requests on one keep-alive connection, `callgrind_control -d`:
the dump's total (every thread of the server: event loops, Swift's pool, Dispatch) divided by the requests.
callgrind counts instructions, not time, so the figures repeat (within 0.5% here) whatever else runs.

  python3 -B scripts/bench-instructions.py [--binary B] [--requests 2000] [--json FILE]

--json FILE also writes the figures as JSON (scripts/bench reads them); --keep DIR keeps each case's callgrind
dump there, for `callgrind_annotate` (symbols resolve against the stripped copy, kept beside them).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True
from clusterlib import free_port, resolve_binary, wait_until  # noqa: E402

EMAIL, PASSWORD = "bench@x.test", "benchpass"
CASES = [("/api/v1/status", "true"), ("/api/v1/users/me", "true"), ("/api/v1/users/me", "false")]


def write_users(path: Path) -> None:
    uid = "3c84c31b-67cf-49c3-b32c-e9de28f7a8eb"
    user = {"id": uid, "email": EMAIL, "_password": hashlib.sha256(PASSWORD.encode()).hexdigest(), "first_name": "Bench", "last_name": "Marker",
            "created_at": "2026-11-25T02:11:05", "updated_at": "2026-11-25T02:11:05"}  # fmt: skip
    path.write_text(json.dumps({uid: user}))


def answers(port: int) -> bool:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/api/v1/status")
        return c.getresponse().status == 200
    except OSError:
        return False


def measure(pid: int, work: Path, port: int, path: str, requests: int) -> tuple[int, Path]:
    """The instructions of `requests` GETs of `path`, and the dump they were read from."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = urllib.parse.urlencode({"email": EMAIL, "password": PASSWORD})
    c.request("POST", "/api/v1/auth_session/login", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = c.getresponse()
    response.read()
    cookie = re.search(r"_my_session_id=([^;]+)", response.getheader("Set-Cookie") or "")
    if response.status != 200 or not cookie:
        raise SystemExit(f"login answered {response.status}")
    headers = {"Cookie": f"_my_session_id={cookie.group(1)}"}

    def run(n: int) -> None:
        for _ in range(n):
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise SystemExit(f"{path} answered {r.status}")

    run(200)
    subprocess.run(["callgrind_control", "-z", str(pid)], cwd=work, check=True, capture_output=True)
    run(requests)
    before = set(work.glob(f"callgrind.out.{pid}*"))
    subprocess.run(["callgrind_control", "-d", str(pid)], cwd=work, check=True, capture_output=True)
    wait_until(lambda: set(work.glob(f"callgrind.out.{pid}*")) - before, 30, "callgrind's dump")
    dump = max(set(work.glob(f"callgrind.out.{pid}*")) - before, key=os.path.getmtime)
    wait_until(lambda: re.search(r"^(?:summary|totals): \d+", dump.read_text(), re.M), 30, "the dump's totals")
    return int(re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.M).group(1)), dump


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", help="the session-api to measure (default: the release build, built when needed)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--json", type=Path, help="also write the figures to this file as JSON")
    parser.add_argument("--keep", type=Path, help="keep the callgrind dumps (and the binary they name) in this directory")
    args = parser.parse_args(argv)
    figures = []
    for tool in ("valgrind", "callgrind_control", "objcopy", "redis-server"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing (apt-get install valgrind binutils redis-server)")
    binary = resolve_binary(args.binary)
    work = Path(tempfile.mkdtemp(prefix="bench-instructions."))
    children: list[subprocess.Popen] = []
    try:
        stripped = work / "session-api"
        subprocess.run(["objcopy", "--strip-debug", str(binary), str(stripped)], check=True)
        redis_port = free_port()
        children.append(subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", str(work), "--save", "", "--appendonly", "no"],
                                         stdout=subprocess.DEVNULL))  # fmt: skip
        write_users(work / ".db_User.json")
        print(f"bench-instructions: {binary}, {args.requests} sequential requests per case; callgrind totals of every thread", flush=True)
        for path, near_cache in CASES:
            port = free_port()
            env = dict(os.environ, AUTH_TYPE="session_redis_auth", NEAR_CACHE=near_cache, LOG_LEVEL="warning", API_HOST="127.0.0.1", API_PORT=str(port),
                       REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")  # fmt: skip
            server = subprocess.Popen(["valgrind", "--tool=callgrind", str(stripped), "serve"], cwd=work, env=env,
                                      stdout=subprocess.DEVNULL, stderr=open(work / f"valgrind-{port}.log", "w"))  # fmt: skip
            children.append(server)
            wait_until(lambda: answers(port), 120, "the server under valgrind")
            total, dump = measure(server.pid, work, port, path, args.requests)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(dump, args.keep / f"callgrind.{path.rsplit('/', 1)[-1]}.near-cache-{near_cache}.out")
            print(f"GET {path:<18} NEAR_CACHE={near_cache:<5}  {total:>13,} instructions / {args.requests} = {total / args.requests:>9,.0f} per request", flush=True)
            figures.append({"path": path, "near_cache": near_cache == "true", "requests": args.requests, "instructions": total})
            server.terminate()
            server.wait(60)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
        if args.keep:
            shutil.copy(stripped, args.keep / "session-api")
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
                child.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
