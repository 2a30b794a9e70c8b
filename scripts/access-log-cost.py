#!/usr/bin/env python3
"""What the access log costs on GET /api/v1/users/me: the same release binary with LOG_LEVEL=warning (no access
line), LOG_LEVEL=info (text) and LOG_LEVEL=info LOG_FORMAT=json, in alternating rounds of wrk -t1 -c64, against one
private redis-server, the log written to a file outside DATA_DIR. Besides req/s (which swings with whatever else the machine runs) it
prints the server's CPU time per request (utime + stime from /proc, over the measured run), which load elsewhere
disturbs far less. With --baseline BINARY (e.g. main's release build), that binary at LOG_LEVEL=info joins the
rounds too: a server without this access log, at the default level.

usage: scripts/access-log-cost.py [--binary .build/release/session-api] [--baseline OTHER] [--rounds 5] [--duration 5]
"""
import argparse, hashlib, json, os, re, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

CONFIGS = {
    "warning (off)": {"LOG_LEVEL": "warning"},
    "info (text)": {"LOG_LEVEL": "info"},
    "info (json)": {"LOG_LEVEL": "info", "LOG_FORMAT": "json"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"access-log-cost: {what} not ready after {timeout} s")


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(args, name: str, env_extra: dict, redis_port: int, work: str) -> dict:
    binary = env_extra.pop("_binary", args.binary)
    port = free_port()
    env = dict(os.environ, AUTH_TYPE="session_redis_auth", REDIS_URL=f"redis://127.0.0.1:{redis_port}", DATA_DIR=work,
               API_HOST="127.0.0.1", API_PORT=str(port), **env_extra)
    # Not in DATA_DIR: the JSON store watches that directory, and every line written there would wake its watch.
    log = open(os.path.join(args.log_dir, "server.log"), "w")
    server = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: urllib.request.urlopen(f"{base}/healthz").status == 200, 30, "server")
        login = urllib.request.urlopen(urllib.request.Request(f"{base}/api/v1/auth_session/login",
                                                              data=b"email=bench%40x.test&password=benchpass"))
        cookie = re.search(r"_my_session_id=([^;]+)", login.headers["Set-Cookie"]).group(1)
        wrk = ["wrk", "-t1", "-c64", "-H", f"Cookie: _my_session_id={cookie}", f"{base}/api/v1/users/me"]
        subprocess.run(wrk + ["-d2s"], capture_output=True, check=True)
        before = cpu_seconds(server.pid)
        out = subprocess.run(wrk + [f"-d{args.duration}s"], capture_output=True, text=True, check=True).stdout
        cpu = cpu_seconds(server.pid) - before
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        if "Non-2xx" in out:
            sys.exit(f"access-log-cost: {name}: non-2xx answers\n{out}")
        return {"rps": rps, "cpu_us": cpu / requests * 1e6}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
        log.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/session-api")
    ap.add_argument("--baseline", help="another build (main's), run at LOG_LEVEL=info alongside")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="access-log-cost-")
    args.log_dir = tempfile.mkdtemp(prefix="access-log-cost-log-")
    password = hashlib.sha256(b"benchpass").hexdigest()
    user = {"id": "3c84c31b-67cf-49c3-b32c-e9de28f7a8eb", "email": "bench@x.test", "_password": password, "first_name": "Bench",
            "last_name": None, "created_at": "2026-11-25T02:11:05", "updated_at": "2026-11-25T02:11:05"}
    json.dump({user["id"]: user}, open(os.path.join(work, ".db_User.json"), "w"))
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                              "--dir", work], stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: socket.create_connection(("127.0.0.1", redis_port), 1).close() is None, 10, "redis-server")
        configs = dict(CONFIGS)
        if args.baseline:
            configs["baseline (info)"] = {"LOG_LEVEL": "info", "_binary": args.baseline}
        results = {name: [] for name in configs}
        for round_no in range(1, args.rounds + 1):
            for name, extra in configs.items():
                r = run(args, name, dict(extra), redis_port, work)
                results[name].append(r)
                print(f"round {round_no} {name:>14}: {r['rps']:>9,.0f} req/s  {r['cpu_us']:6.1f} µs CPU/request", flush=True)
        base = statistics.median(r["cpu_us"] for r in results["warning (off)"])
        print(f"\nGET /api/v1/users/me, wrk -t1 -c64 -d{args.duration}s, {args.rounds} alternating rounds; median (best) req/s, median CPU per request")
        for name, rs in results.items():
            cpu = statistics.median(r["cpu_us"] for r in rs)
            print(f"  {name:>14}: {statistics.median(r['rps'] for r in rs):>9,.0f} ({max(r['rps'] for r in rs):,.0f}) req/s"
                  f"  {cpu:6.1f} µs CPU/request  ({cpu - base:+.1f} µs, {100 * (cpu - base) / base:+.0f}%)")
    finally:
        redis.send_signal(signal.SIGTERM)
        redis.wait(timeout=20)


if __name__ == "__main__":
    main()
