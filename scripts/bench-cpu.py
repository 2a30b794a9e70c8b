#!/usr/bin/env python3
"""CPU per request that compares across machines, and start-up time (issue 10).

  1. CPU per request: the release server (AUTH_TYPE=session_redis_auth, JSON users, a private redis-server)
     logs in once, answers W warm-up requests, then N more on one keep-alive connection, one at a time; the
     server's user+system CPU time over those N (/proc/PID/stat, every thread: NIO, the cooperative pool, the
     Redis client; Redis itself not) divided by N. Done for GET /api/v1/users/me with the cookie and for GET
     /api/v1/status. (Instructions from callgrind were the plan: this machine has no hardware counters for
     `perf stat`, and valgrind 3.19 stops with an internal SIGSEGV on the server's threads even on a copy
     without DWARF 5 debug info, so CPU time it is.)
  2. Start-up: from the fork of `session-api serve` to its first 200 on /api/v1/status (polled with a fresh
     connection every millisecond), median of 5 starts, and the RSS at that moment.

  scripts/bench-cpu.py [--binary PATH] [--requests 20000] [--warmup 1000]
"""
import argparse
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True
from clusterlib import build_release_binary  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EMAIL, PASSWORD = "bench@x.test", "benchpass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_of(port: int, path: str, timeout: float = 1) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def wait_for(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if status_of(port, "/healthz", timeout=5) == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("bench-cpu: the server did not come up")


def stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=120)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_request(binary: Path, env: dict, path: str, warmup: int, requests: int) -> float:
    """Server CPU microseconds per GET of `path`, after one login and `warmup` unmeasured requests."""
    port = free_port()
    server = subprocess.Popen([str(binary), "serve"], env=dict(env, API_PORT=str(port)), stdout=subprocess.DEVNULL)
    try:
        wait_for(port, 30)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = urllib.parse.urlencode({"email": EMAIL, "password": PASSWORD})
        conn.request("POST", "/api/v1/auth_session/login", body=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            sys.exit(f"bench-cpu: login answered {response.status}")
        cookie = response.headers["Set-Cookie"].split(";")[0]
        for i in range(warmup + requests):
            if i == warmup:
                before = cpu_seconds(server.pid)
            conn.request("GET", path, headers={"Cookie": cookie})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                sys.exit(f"bench-cpu: GET {path} answered {response.status}")
        used = cpu_seconds(server.pid) - before
        conn.close()
        return used / requests * 1e6
    finally:
        stop(server)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", type=Path)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--warmup", type=int, default=1000)
    args = ap.parse_args()
    for tool in ("redis-server", "redis-cli"):
        if not shutil.which(tool):
            sys.exit(f"bench-cpu: {tool} is missing (apt-get install redis-server redis-tools)")
    binary = args.binary
    if binary is None:
        binary = build_release_binary()
    work = Path(tempfile.mkdtemp(prefix="bench-cpu."))
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", str(work),
                              "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(redis_port), "ping"], capture_output=True, text=True).stdout.strip() != "PONG":
            if time.monotonic() > deadline:
                sys.exit("bench-cpu: redis-server did not start")
            time.sleep(0.05)
        data = work / "data"
        data.mkdir()
        env = dict(os.environ, DATA_DIR=str(data), API_HOST="127.0.0.1", LOG_LEVEL="warning", AUTH_TYPE="session_redis_auth",
                   REDIS_URL=f"redis://127.0.0.1:{redis_port}", PASSWORD_ARGON2_MEMORY_KIB="64", PASSWORD_ARGON2_ITERATIONS="1")

        def fresh_users() -> None:
            # The original's format; the first login replaces the SHA-256 with Argon2id, so each run gets a new copy.
            uid = "3c84c31b-67cf-49c3-b32c-e9de28f7a8eb"
            (data / ".db_User.json").write_text(json.dumps({uid: {
                "id": uid, "email": EMAIL, "_password": hashlib.sha256(PASSWORD.encode()).hexdigest(), "first_name": "Bench",
                "last_name": "Marker", "created_at": "2026-11-25T02:11:05", "updated_at": "2026-11-25T02:11:05"}}))

        print(f"== {binary}; {args.warmup} warm-up requests, then {args.requests} measured, one connection")
        results = {}
        for label, path in (("users_me", "/api/v1/users/me"), ("status", "/api/v1/status")):
            fresh_users()
            results[label] = cpu_per_request(binary, env, path, args.warmup, args.requests)
            print(f"GET {path}: {results[label]:.1f} us of server CPU per request")

        starts, rss = [], []
        for _ in range(5):
            fresh_users()
            port = free_port()
            started = time.perf_counter()
            server = subprocess.Popen([str(binary), "serve"], env=dict(env, API_PORT=str(port)), stdout=subprocess.DEVNULL)
            try:
                while True:
                    try:
                        if status_of(port, "/api/v1/status") == 200:
                            break
                    except OSError:
                        pass
                    if time.perf_counter() - started > 30:
                        sys.exit("bench-cpu: no 200 within 30 s of start")
                    time.sleep(0.001)
                starts.append((time.perf_counter() - started) * 1000)
                rss.append(int(next(l.split()[1] for l in Path(f"/proc/{server.pid}/status").read_text().splitlines()
                                    if l.startswith("VmRSS:"))) / 1024)
            finally:
                stop(server)
        print(f"start to first 200: {', '.join(f'{s:.0f}' for s in starts)} ms; RSS then {statistics.median(rss):.1f} MiB")
        print(f"RESULT users_me_cpu_us={results['users_me']:.1f} status_cpu_us={results['status']:.1f} "
              f"start_to_first_200_ms={statistics.median(starts):.0f} (median of 5)")
    finally:
        stop(redis)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
