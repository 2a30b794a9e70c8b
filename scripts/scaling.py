#!/usr/bin/env python3
"""The measurements of docs/scaling.md: what one authenticated request and one session cost Redis, and the
throughput of `/users/me` against one Redis and against a Redis Cluster of 3 primaries.

    python3 -B scripts/scaling.py cost [--binary B]         # MEMORY USAGE, INFO commandstats, INFO cpu per request
    python3 -B scripts/scaling.py throughput [--binary B]   # wrk on /users/me: 1 redis-server vs 3 primaries
    python3 -B scripts/scaling.py wait [--binary B] [--hash default]   # login latency through Sentinel, without and with WAIT

Everything runs on 127.0.0.1 through clusterlib's Cluster (one session-api instance, which the requests
reach directly, not through nginx), in ./data/scaling-* (emptied first). Python 3 standard library, plus wrk
for `throughput`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True
from clusterlib import LOOPBACK, REPO, Cluster, info_fields, resolve_binary  # noqa: E402

PREFIX = "session-api:"
PASSWORD = "scaling-password"


class Api:
    """Keep-alive HTTP/1.1 to one instance."""

    def __init__(self, url: str):
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=10)

    def request(self, method: str, path: str, cookie: str | None = None, body: bytes | None = None, content_type: str | None = None):
        headers = {"Cookie": f"_my_session_id={cookie}"} if cookie else {}
        if content_type:
            headers["Content-Type"] = content_type
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read(), response.getheader("Set-Cookie") or ""

    def login(self, email: str, cookie: str | None = None) -> str:
        status, data, set_cookie = self.request(
            "POST", "/api/v1/auth_session/login", cookie=cookie, body=urlencode({"email": email, "password": PASSWORD}).encode(), content_type="application/x-www-form-urlencoded"
        )
        if status != 200:
            raise RuntimeError(f"login {email}: {status} {data[:200]!r}")
        return re.search(r"_my_session_id=([0-9a-f-]{36})", set_cookie).group(1)

    def create_user(self, admin_cookie: str, email: str) -> str:
        body = json.dumps({"email": email, "password": PASSWORD}).encode()
        status, data, _ = self.request("POST", "/api/v1/users", cookie=admin_cookie, body=body, content_type="application/json")
        if status != 201:
            raise RuntimeError(f"create {email}: {status} {data[:200]!r}")
        return json.loads(data)["id"]


# Cheap password hashing (as scripts/chaos): the measurements are about Redis, not Argon2id. `wait --hash default`
# keeps the defaults (19 MiB, 2 passes), to show WAIT against the login a deployment really has.
CHEAP_HASH = {"PASSWORD_ARGON2_MEMORY_KIB": "64", "PASSWORD_ARGON2_ITERATIONS": "1"}


def start(binary: Path, name: str, redis_mode: str, env: dict[str, str], cheap_hash: bool = True) -> Cluster:
    data_dir = REPO / "data" / f"scaling-{name}"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    base = {"LOG_LEVEL": "warning", "SESSION_DURATION": "86400"} | (CHEAP_HASH if cheap_hash else {})
    base.update(env)
    return Cluster(binary, data_dir, instances=1, user_store="redis", env=base, redis_mode=redis_mode, quiet=True).start()


def seed(cluster: Cluster, users: int) -> tuple[Api, str, list[tuple[str, str]]]:
    """An admin (by the CLI) and `users` users (over HTTP); returns the API, the admin's cookie and (email, id) pairs."""
    cluster.create_user("admin@scaling.test", PASSWORD)
    api = Api(cluster.instance_url(0))
    admin = api.login("admin@scaling.test")
    created = []
    for i in range(users):
        email = f"user{i}@scaling.test"
        created.append((email, api.create_user(admin, email)))
    return api, admin, created


def command_stats(cluster: Cluster) -> dict[str, tuple[int, float]]:
    """command -> (calls, usec) summed over every primary."""
    stats: dict[str, list] = {}
    for port in cluster.data_primaries():
        for line in cluster.node_command(port, "INFO", "commandstats").decode().splitlines():
            match = re.match(r"cmdstat_(\S+):calls=(\d+),usec=(\d+)", line)
            if match:
                entry = stats.setdefault(match.group(1), [0, 0.0])
                entry[0] += int(match.group(2))
                entry[1] += int(match.group(3))
    return {name: (calls, usec) for name, (calls, usec) in stats.items()}


def cpu_seconds(cluster: Cluster) -> float:
    """used_cpu_sys + used_cpu_user of every primary."""
    total = 0.0
    for port in cluster.data_primaries():
        fields = info_fields(cluster.node_command(port, "INFO", "cpu"))
        total += float(fields["used_cpu_sys"]) + float(fields["used_cpu_user"])
    return total


def reset_stats(cluster: Cluster) -> None:
    for port in cluster.data_primaries():
        cluster.node_command(port, "CONFIG", "RESETSTAT")


class Monitor:
    """`MONITOR` on every primary while some requests run: which commands the app sends (MONITOR shows those run
    inside a script as `[0 lua]`, so the two are told apart, which INFO commandstats cannot do)."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.lines: dict[int, list[str]] = {}
        self.sockets = []
        self.threads = []
        for port in cluster.data_primaries():
            conn = socket.create_connection((LOOPBACK, port), timeout=30)
            conn.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
            reader = conn.makefile("rb")
            if reader.readline().strip() != b"+OK":
                raise RuntimeError(f"MONITOR refused on {port}")
            self.lines[port] = []
            thread = threading.Thread(target=self._read, args=(reader, self.lines[port]), daemon=True)
            thread.start()
            self.sockets.append((conn, reader))
            self.threads.append(thread)

    @staticmethod
    def _read(reader, lines: list[str]) -> None:
        for raw in reader:
            lines.append(raw.decode(errors="replace"))
            if "scaling-monitor-end" in lines[-1]:
                return

    def stop(self) -> tuple[dict[str, int], dict[str, int]]:
        """(commands the app sent, commands run inside scripts), by lower-case name; the monitor's own marker left out."""
        for port in self.lines:
            self.cluster.node_command(port, "ECHO", "scaling-monitor-end")
        for thread in self.threads:
            thread.join(timeout=30)
        for conn, reader in self.sockets:
            reader.close()
            conn.close()
        sent: dict[str, int] = {}
        inside: dict[str, int] = {}
        for lines in self.lines.values():
            for line in lines:
                match = re.match(r'\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"', line)
                if not match or "scaling-monitor-end" in line:
                    continue
                table = inside if match.group(1) == "lua" else sent
                name = match.group(2).lower()
                table[name] = table.get(name, 0) + 1
        return sent, inside


SCRIPT_CALLS = {"evalsha", "eval", "evalsha_ro", "eval_ro", "fcall"}


def per_request(cluster: Cluster, label: str, requests: int, run, probe: int = 200) -> None:
    """Prints the Redis commands and CPU per request: `run(n)` makes n requests.

    First `probe` requests under MONITOR (the commands sent, and those the scripts run), then `requests` without
    it: CONFIG RESETSTAT, INFO commandstats (the time in the commands sent: a script's time includes what it runs)
    and INFO cpu (Redis's CPU with networking and everything else)."""
    probe = min(probe, requests)
    monitor = Monitor(cluster)
    try:
        run(probe)
    finally:
        sent, inside = monitor.stop()
    reset_stats(cluster)
    cpu_before = cpu_seconds(cluster)
    started = time.monotonic()
    run(requests)
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(cluster) - cpu_before
    stats = command_stats(cluster)
    usec = 0.0
    for name, count in sent.items():
        calls, total = stats.get(name, (0, 0.0))
        if calls == 0:
            continue
        if name in SCRIPT_CALLS:
            usec += total
        else:
            # A name scripts run too (DEL, ...): only the share the app sent, at the average time per call.
            usec += min(calls, count / probe * requests) * total / calls
    per = lambda table: ", ".join(f"{name} {count / probe:.2f}" for name, count in sorted(table.items()))  # noqa: E731
    print(
        f"{label}: {requests} requests in {elapsed:.1f} s; per request: {sum(sent.values()) / probe:.2f} Redis commands sent "
        f"({sum(inside.values()) / probe:.2f} more run inside scripts), {usec / requests:.1f} us in them (INFO commandstats), "
        f"{cpu / requests * 1e6:.0f} us of Redis CPU (INFO cpu: with networking, at this rate)\n"
        f"    sent (MONITOR, {probe} requests): {per(sent)}\n    run inside the scripts: {per(inside) or 'none'}",
        flush=True,
    )


def cost(args) -> None:
    binary = resolve_binary(args.binary)
    cluster = start(binary, "cost", "single", {})
    try:
        api, _, users = seed(cluster, 100)
        email, uid = users[0]
        cookie = api.login(email)
        query = cluster.redis_query

        def memory(key: str) -> int:
            return query("MEMORY", "USAGE", key, "SAMPLES", "0")

        from hashlib import sha256

        def session_key(c: str) -> str:
            return f"{PREFIX}session:{sha256(c.encode()).hexdigest()}"

        print("== memory (MEMORY USAGE key SAMPLES 0; INFO memory used_memory)")
        print(f"session hash {session_key(cookie)[:40]}...: {memory(session_key(cookie))} bytes "
              f"(fields: {len(query('HGETALL', session_key(cookie))) // 2}, TTL {query('TTL', session_key(cookie))} s)")  # fmt: skip
        index = f"{PREFIX}user-sessions:{{{uid}}}"
        one = memory(index)
        for _ in range(99):
            cookie = api.login(email)
        hundred = memory(index)
        print(f"session index {index}: {one} bytes with 1 entry, {hundred} bytes with 100 ({query('OBJECT', 'ENCODING', index).decode()}): "
              f"{(hundred - one) / 99:.1f} bytes per entry")  # fmt: skip
        print(f"user hash: {memory(f'{PREFIX}user:{{{uid}}}')} bytes; email claim: {memory(f'{PREFIX}user-email:{email}')} bytes; "
              f"users set of {query('SCARD', PREFIX + 'users')}: {memory(PREFIX + 'users')} bytes")  # fmt: skip
        # The whole cost of a session (hash, TTL entry, index entry, dictionary slots): used_memory before and after.
        before = int(info_fields(query("INFO", "memory"))["used_memory"])
        sessions = 0
        for email, _ in users[1:]:
            for _ in range(50):
                api.login(email)
                sessions += 1
        after = int(info_fields(query("INFO", "memory"))["used_memory"])
        print(f"{sessions} more sessions (99 users x 50): used_memory +{after - before} bytes, {(after - before) / sessions:.0f} bytes per session "
              f"(hash + expiry + index entry)")  # fmt: skip

        print("\n== Redis work per request (CONFIG RESETSTAT, then INFO commandstats and INFO cpu)")
        cookies = [api.login(email) for email, _ in users[:50]]

        def me(n: int) -> None:
            for i in range(n):
                status, _, _ = api.request("GET", "/api/v1/users/me", cookie=cookies[i % len(cookies)])
                assert status == 200, status

        per_request(cluster, "GET /users/me (USER_STORE=redis)", args.requests, me)
        logins = max(args.requests // 10, 100)

        def login(n: int) -> None:
            for i in range(n):
                api.login(users[i % len(users)][0])

        per_request(cluster, "POST login, no cookie", logins, login, probe=50)
        carried = {email: api.login(email) for email, _ in users}

        def login_replacing(n: int) -> None:
            for i in range(n):
                email = users[i % len(users)][0]
                carried[email] = api.login(email, cookie=carried[email])

        per_request(cluster, "POST login carrying the previous cookie", logins, login_replacing, probe=50)
    finally:
        cluster.stop()


def wrk_run(url: str, cookies: list[str], seconds: int, connections: int) -> tuple[float, str]:
    script = REPO / "data" / "scaling-wrk.lua"
    script.write_text(
        "cookies = {" + ",".join(f'"{c}"' for c in cookies) + "}\n"
        "counter = 0\n"
        "request = function()\n"
        "  counter = counter + 1\n"
        '  return wrk.format("GET", "/api/v1/users/me", {["Cookie"] = "_my_session_id=" .. cookies[(counter % #cookies) + 1]})\n'
        "end\n"
    )
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} non-2xx answers:\n{out}")
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    return rate, p99


def throughput(args) -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    binary = resolve_binary(args.binary)
    results: dict[str, list[tuple[float, str, float]]] = {"single": [], "cluster": []}
    for mode in ["single", "cluster"]:
        cluster = start(binary, f"throughput-{mode}", mode, {})
        try:
            api, _, users = seed(cluster, 100)
            cookies = [api.login(email) for email, _ in users]
            url = cluster.instance_url(0)
            wrk_run(url, cookies, 2, args.connections)  # warm-up
            for _ in range(args.rounds):
                cpu_before = cpu_seconds(cluster)
                rate, p99 = wrk_run(url, cookies, args.seconds, args.connections)
                cpu = (cpu_seconds(cluster) - cpu_before) / args.seconds
                results[mode].append((rate, p99, cpu))
                print(f"{mode:>7}: {rate:9.0f} req/s, p99 {p99}, Redis CPU {cpu * 100:.0f}% of one core (all primaries), {cpu / rate * 1e6:.1f} us per request", flush=True)
        finally:
            cluster.stop()
    single = statistics.median(r for r, _, _ in results["single"])
    three = statistics.median(r for r, _, _ in results["cluster"])
    print(f"\nmedian of {args.rounds} rounds (wrk -t1 -c{args.connections} -d{args.seconds}s, 100 sessions in turn): 1 redis-server {single:.0f} req/s, "
          f"3 primaries {three:.0f} req/s, ratio {three / single:.2f}")  # fmt: skip


def wait_cost(args) -> None:
    """Login latency through Sentinel (a master and one replica), without and with REDIS_WAIT_REPLICAS=1, two
    rounds each, alternating (a fresh set of servers for each round)."""
    binary = resolve_binary(args.binary)
    medians: dict[bool, list[float]] = {False: [], True: []}
    hashing = "Argon2id defaults (19 MiB, 2 passes)" if args.hash == "default" else "cheap Argon2id (64 KiB, 1 pass)"
    for wait in [False, True, False, True]:
        env = {"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "100"} if wait else {}
        cluster = start(binary, "wait", "sentinel", env, cheap_hash=args.hash == "cheap")
        try:
            api, _, users = seed(cluster, 20)
            for email, _ in users:
                api.login(email)  # the scripts are loaded
            reset_stats(cluster)
            times = []
            for i in range(args.logins):
                started = time.perf_counter()
                api.login(users[i % len(users)][0])
                times.append(time.perf_counter() - started)
            times.sort()
            waits = command_stats(cluster).get("wait", (0, 0))
            medians[wait].append(statistics.median(times))
            print(
                f"{'with' if wait else 'without'} WAIT: {args.logins} logins one after another, {hashing}: median "
                f"{statistics.median(times) * 1000:.2f} ms, p99 {times[int(len(times) * 0.99)] * 1000:.2f} ms; "
                f"WAIT calls {waits[0]} ({waits[1] / max(waits[0], 1):.0f} us of master CPU each)",
                flush=True,
            )
        finally:
            cluster.stop()
    without, with_wait = statistics.mean(medians[False]), statistics.mean(medians[True])
    print(
        f"\nmean of the medians ({hashing}): without WAIT {without * 1000:.2f} ms, with WAIT 1 {with_wait * 1000:.2f} ms: "
        f"{(with_wait - without) * 1000:+.2f} ms ({(with_wait / without - 1) * 100:+.0f}%) per login"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/scaling.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("cost", help="memory per session and Redis work per request")
    c.add_argument("--binary", help="session-api to run (default: the release build)")
    c.add_argument("--requests", type=int, default=2000, help="GET /users/me requests to measure (default 2000; logins: a tenth, at least 100)")
    t = sub.add_parser("throughput", help="wrk on /users/me: 1 redis-server vs a Redis Cluster of 3 primaries")
    t.add_argument("--binary", help="session-api to run (default: the release build)")
    t.add_argument("--rounds", type=int, default=3)
    t.add_argument("--seconds", type=int, default=10)
    t.add_argument("--connections", type=int, default=64)
    w = sub.add_parser("wait", help="login latency through Sentinel without and with REDIS_WAIT_REPLICAS=1 (two rounds each)")
    w.add_argument("--binary", help="session-api to run (default: the release build)")
    w.add_argument("--logins", type=int, default=500)
    w.add_argument("--hash", choices=["cheap", "default"], default="cheap", help="Argon2id as in chaos (cheap, default) or the server's defaults")
    args = parser.parse_args(argv)
    {"cost": cost, "throughput": throughput, "wait": wait_cost}[args.what](args)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main(sys.argv[1:]))
