#!/usr/bin/env python3
"""How cost grows with the number of users, in each user store (issue 10).

For each store (json: DATA_DIR/.db_User.json; redis: hashes in a private redis-server) and each size N
(default 1000, 10000, 100000), a fresh release server (AUTH_TYPE=session_redis_auth, cheap Argon2id
m=64 KiB t=1 so that the store, not the hash, is measured) is loaded with N users and timed from outside:

  list     GET /api/v1/users (the original's unpaginated answer): median of 5, and the body size
  page     GET /api/v1/users?limit=100 (first page): median of 5
  stats    GET /api/v1/stats: median of 21
  create   POST /api/v1/users (one new user; with json, a rewrite of the whole file): median of 21
  login    POST /api/v1/auth_session/login of one of the N users: median of 21
  me       GET /api/v1/users/me with that session: median of 21

json users are written straight into the file (the original's format, hex SHA-256 passwords, as the peers'
bench makes them); redis users are made through POST /api/v1/users by 16 concurrent clients (so the key layout
is the server's own). Redis memory: MEMORY USAGE of one session hash, of the user's session index and of
one user hash, and INFO commandstats around 1000 GET /users/me (Redis calls and usec per request).
Every process is started on a free loopback port and stopped by PID; all data is in a temp dir.

  scripts/bench-scale.py [--binary PATH] [--sizes 1000,10000,100000] [--stores json,redis] [--json FILE]

--json FILE also writes the rows as JSON (scripts/bench reads them).
"""
import argparse
import concurrent.futures
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
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True
from clusterlib import build_release_binary  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "scale-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        self.conn.request(method, path, body=body, headers=headers or {})
        response = self.conn.getresponse()
        data = response.read()
        return response.status, response.headers, data

    def timed(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None, expect: int = 200):
        start = time.perf_counter()
        status, response_headers, data = self.request(method, path, body, headers)
        elapsed = (time.perf_counter() - start) * 1000
        if status != expect:
            sys.exit(f"bench-scale: {method} {path} answered {status} (expected {expect}): {data[:200]!r}")
        return elapsed, response_headers, data


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples)


def redis_cli(port: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *args], check=True, capture_output=True, text=True).stdout.strip()


def commandstats(port: int) -> dict[str, tuple[int, int]]:
    stats = {}
    for line in redis_cli(port, "INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_"):
            name, fields = line[len("cmdstat_"):].split(":", 1)
            values = dict(field.split("=") for field in fields.split(","))
            stats[name] = (int(values["calls"]), int(values["usec"]))
    return stats


def write_json_users(path: Path, n: int) -> str:
    """The original's .db_User.json with n users; returns the email of one of them."""
    users = {}
    for i in range(n):
        uid = str(uuid.UUID(int=i + 1, version=4))
        users[uid] = {"id": uid, "email": f"user{i}@x.test", "_password": hashlib.sha256(PASSWORD.encode()).hexdigest(),
                      "first_name": f"First{i}", "last_name": None if i % 3 == 0 else f"Last{i}",
                      "created_at": "2026-11-25T02:11:05", "updated_at": "2026-11-25T02:11:05"}
    path.write_text(json.dumps(users))
    return f"user{n // 2}@x.test"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", type=Path)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--stores", default="json,redis")
    ap.add_argument("--json", type=Path, help="also write the rows to this file as JSON")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    binary = args.binary
    if binary is None:
        binary = build_release_binary()
    work = Path(tempfile.mkdtemp(prefix="bench-scale."))
    children: list[subprocess.Popen] = []

    def stop(child: subprocess.Popen) -> None:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        children.remove(child)

    def wait_until(what: str, check, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except (OSError, subprocess.CalledProcessError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        sys.exit(f"bench-scale: {what} did not come up")

    rows = []
    try:
        print(f"== {binary}; {os.cpu_count()} cores; Argon2id m=64 KiB t=1 (the store is measured, not the hash)")
        for store in args.stores.split(","):
            for n in sizes:
                run = work / f"{store}-{n}"
                (run / "data").mkdir(parents=True)
                redis_port = free_port()
                redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", str(run),
                                          "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
                children.append(redis)
                wait_until("redis-server", lambda: redis_cli(redis_port, "ping") == "PONG")
                email = f"user{n // 2}@x.test"
                if store == "json":
                    email = write_json_users(run / "data" / ".db_User.json", n)
                port = free_port()
                env = dict(os.environ, DATA_DIR=str(run / "data"), API_HOST="127.0.0.1", API_PORT=str(port),
                           LOG_LEVEL="warning", USER_STORE=store, REDIS_URL=f"redis://127.0.0.1:{redis_port}",
                           PASSWORD_ARGON2_MEMORY_KIB="64", PASSWORD_ARGON2_ITERATIONS="1",
                           LOGIN_FAILURES_PER_ACCOUNT="0", LOGIN_FAILURES_PER_ADDRESS="0")
                if store == "redis":
                    # Fill through the API without authentication (AUTH_TYPE=none, loopback), then serve as usual.
                    filler = subprocess.Popen([str(binary), "serve"], env=dict(env, AUTH_TYPE="none"), stdout=subprocess.DEVNULL)
                    children.append(filler)
                    wait_until("session-api (filling)", lambda: Client(port).request("GET", "/healthz")[0] == 200)

                    def create_range(start: int, stop_: int) -> None:
                        client = Client(port)
                        for i in range(start, stop_):
                            body = json.dumps({"email": f"user{i}@x.test", "password": PASSWORD, "first_name": f"First{i}",
                                               "last_name": None if i % 3 == 0 else f"Last{i}"}).encode()
                            client.timed("POST", "/api/v1/users", body, {"Content-Type": "application/json"}, expect=201)

                    started = time.perf_counter()
                    chunk = (n + 15) // 16
                    with concurrent.futures.ThreadPoolExecutor(16) as pool:
                        list(pool.map(lambda k: create_range(k * chunk, min(n, (k + 1) * chunk)), range(16)))
                    print(f"   redis: {n} users made over HTTP in {time.perf_counter() - started:.1f} s")
                    stop(filler)
                server = subprocess.Popen([str(binary), "serve"], env=dict(env, AUTH_TYPE="session_redis_auth"),
                                          stdout=subprocess.DEVNULL)
                children.append(server)
                wait_until("session-api", lambda: Client(port).request("GET", "/healthz")[0] == 200, timeout=120)
                client = Client(port)
                form = {"Content-Type": "application/x-www-form-urlencoded"}
                login_body = urllib.parse.urlencode({"email": email, "password": PASSWORD}).encode()
                _, headers, _ = client.timed("POST", "/api/v1/auth_session/login", login_body, form)
                cookie = {"Cookie": headers["Set-Cookie"].split(";")[0]}
                row = {"store": store, "n": n}
                samples = [client.timed("GET", "/api/v1/users", headers=cookie) for _ in range(5)]
                row["list_ms"] = median_ms([s[0] for s in samples])
                row["list_mib"] = len(samples[0][2]) / 2**20
                count = len(json.loads(samples[0][2]))
                if count != n:
                    sys.exit(f"bench-scale: GET /users listed {count} users, expected {n}")
                status, _, _ = client.request("GET", "/api/v1/users?limit=100", headers=cookie)
                row["page_ms"] = (median_ms([client.timed("GET", "/api/v1/users?limit=100", headers=cookie)[0] for _ in range(5)])
                                  if status == 200 else float("nan"))
                row["stats_ms"] = median_ms([client.timed("GET", "/api/v1/stats", headers=cookie)[0] for _ in range(21)])
                creates = []
                for i in range(21):
                    body = json.dumps({"email": f"new{i}@x.test", "password": PASSWORD}).encode()
                    creates.append(client.timed("POST", "/api/v1/users", body, {**cookie, "Content-Type": "application/json"},
                                                expect=201)[0])
                row["create_ms"] = median_ms(creates)
                logins = []
                for _ in range(21):
                    elapsed, headers, _ = client.timed("POST", "/api/v1/auth_session/login", login_body, form)
                    logins.append(elapsed)
                cookie = {"Cookie": headers["Set-Cookie"].split(";")[0]}
                row["login_ms"] = median_ms(logins)
                row["me_ms"] = median_ms([client.timed("GET", "/api/v1/users/me", headers=cookie)[0] for _ in range(21)])
                # Redis: memory of one session and (redis store) one user; commands per authenticated request.
                before = commandstats(redis_port)
                for _ in range(1000):
                    client.timed("GET", "/api/v1/users/me", headers=cookie)
                after = commandstats(redis_port)
                calls = sum(after[k][0] - before.get(k, (0, 0))[0] for k in after) - 1  # minus this INFO
                usec = sum(after[k][1] - before.get(k, (0, 0))[1] for k in after)
                row["redis_calls_per_req"] = calls / 1000
                row["redis_usec_per_req"] = usec / 1000
                session_keys = [k for k in redis_cli(redis_port, "--scan", "--pattern", "*session:*").splitlines()]
                index_keys = redis_cli(redis_port, "--scan", "--pattern", "*user-sessions:*").splitlines()
                row["session_bytes"] = int(redis_cli(redis_port, "MEMORY", "USAGE", session_keys[0])) if session_keys else 0
                row["index_bytes"] = int(redis_cli(redis_port, "MEMORY", "USAGE", index_keys[0])) if index_keys else 0
                row["index_entries"] = int(redis_cli(redis_port, "ZCARD", index_keys[0])) if index_keys else 0
                row["user_bytes"] = 0
                if store == "redis":
                    user_id = redis_cli(redis_port, "HGET", session_keys[0], "user_id") if session_keys else ""
                    user_key = next((k for k in redis_cli(redis_port, "--scan", "--pattern", f"*user:*{user_id}*").splitlines()), "")
                    row["user_bytes"] = int(redis_cli(redis_port, "MEMORY", "USAGE", user_key)) if user_key else 0
                row["rss_mib"] = int(next(l.split()[1] for l in Path(f"/proc/{server.pid}/status").read_text().splitlines()
                                          if l.startswith("VmHWM:"))) / 1024
                rows.append(row)
                print(f"   {store} {n}: " + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                                                    if k not in ("store", "n")))
                stop(server)
                stop(redis)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        print()
        print("| store | users | GET /users | body | GET /users?limit=100 | /stats | create | login | /users/me | peak RSS |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['store']} | {r['n']:,} | {r['list_ms']:.1f} ms | {r['list_mib']:.2f} MiB | {r['page_ms']:.1f} ms | "
                  f"{r['stats_ms']:.2f} ms | {r['create_ms']:.1f} ms | {r['login_ms']:.1f} ms | {r['me_ms']:.2f} ms | "
                  f"{r['rss_mib']:.1f} MiB |")
        print()
        print("| store | users | Redis calls / `/users/me` | Redis usec / `/users/me` | session hash | its index entry set | user hash |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['store']} | {r['n']:,} | {r['redis_calls_per_req']:.2f} | {r['redis_usec_per_req']:.2f} | "
                  f"{r['session_bytes']} B | {r['index_bytes']} B ({r['index_entries']} entries) | "
                  f"{r['user_bytes'] or '-'} B |")
    finally:
        for child in reversed(list(children)):
            stop(child)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
