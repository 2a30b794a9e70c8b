#!/usr/bin/env python3
"""What the near-cache (issue 14) buys and costs, in one run. Four parts:

  1. speed: ../shared/peers/bench.py with three peers, rounds alternated: go, session-api (NEAR_CACHE=true, the
     default of session_redis_auth) and session-api with NEAR_CACHE=false; JSON users, one cookie, wrk -t1 -c64 on
     /status and /users/me, peak RSS (VmHWM). Each session-api start gets a fresh copy of the users file (a login
     upgrades the peers' SHA-256 password hash in place, which the Go peer could not read back).
  2. Redis work: GET /users/me with 100 sessions in turn (wrk -t1 -c64 -dDs, after a 2 s warm-up) against one
     instance on a private redis-server; CONFIG RESETSTAT before, INFO commandstats and INFO cpu after. INFO
     commandstats counts the commands run inside scripts as well as those sent: a touch script is 1 EVALSHA + its
     HMGET/PTTL/EXPIRE. Per 1,000 requests, for USER_STORE json and redis, NEAR_CACHE on and off.
  3. Idle-timeout writes: the same with SESSION_IDLE_TIMEOUT=300 and =10 (short enough for the 80% rule to slide
     the TTLs within the run): EXPIRE calls per 1,000 requests, with --before (a build from before issue 14,
     whose touch script slid the TTL on every request) beside this build with the cache off and on.
  4. Memory: N sessions (--entries; with USER_STORE=redis, one user each), each read once through /users/me; the
     server's VmRSS growth over those reads with NEAR_CACHE on, less that with it off, divided by N.

Everything runs on 127.0.0.1 (scripts/clusterlib.py's Cluster: redis-server, one session-api, nginx unused);
data in ./data/bench-cache-*, emptied first. wrk, Redis and the server share the machine's cores: comparative
figures, not capacity. Python 3 standard library, plus wrk.

  python3 -B scripts/bench-cache.py [--binary B] [--before B] [--rounds 3] [--duration 8] [--only speed,redis,idle,memory] [--json FILE]

--json FILE also writes part 2's figures as JSON (scripts/bench reads them).
"""

from __future__ import annotations

import argparse
import concurrent.futures
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
from clusterlib import REPO, Cluster, info_fields, resolve_binary  # noqa: E402
from scaling import CHEAP_HASH, Api, command_stats, cpu_seconds, reset_stats, seed  # noqa: E402

PEERS_BENCH = REPO.parent / "shared" / "peers" / "bench.py"
PARTS = ("speed", "redis", "idle", "memory")
RESULTS: dict[str, dict] = {}  # what --json writes


# --- 1. speed beside the Go peer ---------------------------------------------------------------------


def session_api_peer(name: str, binary: Path, near_cache: bool) -> str:
    """A bench.py NAME=COMMAND peer: runs in bench.py's scratch dir with REDIS_URL set; `{port}` is filled in."""
    return (
        f"{name}=rm -rf {name} && mkdir {name} && cp .db_User.json {name}/ && cd {name} && "
        f"AUTH_TYPE=session_redis_auth NEAR_CACHE={'true' if near_cache else 'false'} LOG_LEVEL=warning "
        f"API_HOST=127.0.0.1 API_PORT={{port}} exec {binary} serve"
    )


def speed(args, binary: Path) -> None:
    print(f"\n== 1. speed: {PEERS_BENCH.relative_to(REPO.parent)} --rounds {args.rounds} --duration {args.duration}, peers go, session-api, session-api-no-cache", flush=True)
    command = [
        sys.executable, "-B", str(PEERS_BENCH), "--rounds", str(args.rounds), "--duration", str(args.duration),
        "--peer", "go", "--peer", session_api_peer("session-api", binary, True), "--peer", session_api_peer("session-api-no-cache", binary, False),
    ]  # fmt: skip
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    print(out, flush=True)
    raw = re.search(r"raw results: (\S+)", out)
    if not raw:
        raise SystemExit("bench.py printed no results path")
    results = json.loads(Path(raw.group(1)).read_text())
    median = {}
    for peer in ("go", "session-api", "session-api-no-cache"):
        rows = [r for r in results if r["peer"] == peer]
        median[peer] = {key: statistics.median(r["me"][key] for r in rows) for key in ("rps", "p99_ms")} | {
            "status": statistics.median(r["status"]["rps"] for r in rows),
            "rss": statistics.median(r["rss_all_mib"] for r in rows),
        }
    go = median["go"]
    for peer in ("session-api", "session-api-no-cache"):
        m = median[peer]
        print(
            f"{peer}: /users/me {m['rps']:,.0f} req/s = {m['rps'] / go['rps']:.2f}x go ({go['rps']:,.0f}); p99 {m['p99_ms']:.2f} ms (go {go['p99_ms']:.2f}); "
            f"/users/me / /status {m['rps'] / m['status']:.2f}; peak RSS {m['rss']:.1f} MiB (go {go['rss']:.1f})",
            flush=True,
        )


# --- 2, 3. Redis work per 1,000 requests --------------------------------------------------------------


def start(binary: Path, name: str, user_store: str, env: dict[str, str]) -> Cluster:
    data_dir = REPO / "data" / f"bench-cache-{name}"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    base = {"LOG_LEVEL": "warning", "SESSION_DURATION": "86400"} | CHEAP_HASH | env
    return Cluster(binary, data_dir, instances=1, user_store=user_store, env=base, quiet=True, metrics=True).start()


def wrk(url: str, cookies: list[str], seconds: int, connections: int, script: Path) -> dict:
    """wrk on GET /users/me, the cookies in turn; requests, req/s, p99. Any non-2xx answer is an error."""
    script.write_text(
        "cookies = {" + ",".join(f'"{c}"' for c in cookies) + "}\ncounter = 0\n"
        "request = function()\n  counter = counter + 1\n"
        '  return wrk.format("GET", "/api/v1/users/me", {["Cookie"] = "_my_session_id=" .. cookies[(counter % #cookies) + 1]})\nend\n'
    )
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise SystemExit(f"wrk saw {bad.group(1)} non-2xx answers:\n{out}")
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p99": re.search(r"99%\s+(\S+)", out).group(1),
    }


def redis_work(binary: Path, name: str, user_store: str, env: dict[str, str], args) -> dict:
    """One instance, 100 users with a session each; wrk on /users/me; Redis commands and CPU per request."""
    cluster = start(binary, name, user_store, env)
    try:
        api, _, users = seed(cluster, 100)
        cookies = [api.login(email) for email, _ in users]
        script = cluster.data_dir / "wrk.lua"
        url = cluster.instance_url(0)
        wrk(url, cookies, 2, args.connections, script)  # warm-up: fills the cache where there is one
        reset_stats(cluster)
        cpu_before = cpu_seconds(cluster)
        run = wrk(url, cookies, args.duration, args.connections, script)
        cpu = cpu_seconds(cluster) - cpu_before
        stats = command_stats(cluster)
    finally:
        cluster.stop()
    per = 1000 / run["requests"]
    return run | {
        "calls": sum(calls for calls, _ in stats.values()) * per,
        "by_name": {command: calls * per for command, (calls, _) in sorted(stats.items(), key=lambda item: -item[1][0])},
        "expire": stats.get("expire", (0, 0))[0] * per,
        "cpu_us": cpu / run["requests"] * 1e6,
    }


def print_work(label: str, result: dict) -> None:
    names = ", ".join(f"{command} {calls:.1f}" for command, calls in result["by_name"].items() if calls >= 0.05) or "none"
    print(
        f"{label:<46} {result['rps']:>9,.0f} req/s  p99 {result['p99']:>7}  {result['calls']:>8.1f} commands  {result['expire']:>7.1f} EXPIRE  "
        f"{result['cpu_us']:>5.1f} us Redis CPU/request   [{names}]",
        flush=True,
    )


def work(args, binary: Path) -> None:
    print(f"\n== 2. Redis work per 1,000 GET /users/me (100 sessions in turn, wrk -t1 -c{args.connections} -d{args.duration}s; INFO commandstats, scripts' inner commands included)", flush=True)
    for user_store in ("json", "redis"):
        for cache in ("true", "false"):
            result = redis_work(binary, f"work-{user_store}-{cache}", user_store, {"NEAR_CACHE": cache}, args)
            print_work(f"USER_STORE={user_store} NEAR_CACHE={cache}", result)
            RESULTS.setdefault("redis", {})[f"{user_store} near_cache={cache}"] = result


def idle(args, binary: Path) -> None:
    print(f"\n== 3. idle-timeout writes per 1,000 GET /users/me (USER_STORE=json, same load; EXPIRE = a TTL slid)", flush=True)
    for timeout in ("300", "10"):
        variants = [("before (" + args.before.name + ")", args.before, {})] if args.before else []
        variants += [("this build, NEAR_CACHE=false", binary, {"NEAR_CACHE": "false"}), ("this build, NEAR_CACHE=true", binary, {"NEAR_CACHE": "true"})]
        for label, path, env in variants:
            result = redis_work(path, f"idle-{timeout}", "json", env | {"SESSION_IDLE_TIMEOUT": timeout}, args)
            print_work(f"SESSION_IDLE_TIMEOUT={timeout}: {label}", result)


# --- 4. memory per entry ------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    return int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))


def memory_growth(binary: Path, user_store: str, near_cache: str, entries: int) -> tuple[int, int]:
    """(VmRSS growth in bytes over one /users/me for each of `entries` sessions, entries cached at the end)."""
    cluster = start(binary, f"memory-{user_store}-{near_cache}", user_store, {"NEAR_CACHE": near_cache, "NEAR_CACHE_ENTRIES": str(entries), "SESSION_MAX_PER_USER": str(entries + 1000)})
    try:
        if user_store == "redis":
            api, _, users = seed(cluster, entries)
            emails = [email for email, _ in users]
        else:  # one user with `entries` sessions (SESSION_MAX_PER_USER above): a JSON-file create costs O(users)
            api, _, users = seed(cluster, 1)
            emails = [users[0][0]] * entries
        url = cluster.instance_url(0)

        def login_all(chunk: list[str]) -> list[str]:
            own = Api(url)
            return [own.login(email) for email in chunk]

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            cookies = [c for part in pool.map(login_all, [emails[i::4] for i in range(4)]) for c in part]
        for cookie in cookies[:200]:  # the first reads allocate what any read needs (buffers, pool): not the cache
            api.request("GET", "/api/v1/users/me", cookie=cookie)
        pid = cluster.apps[0].pid
        before = rss_kib(pid)
        for cookie in cookies:
            status, _, _ = api.request("GET", "/api/v1/users/me", cookie=cookie)
            if status != 200:
                raise SystemExit(f"/users/me answered {status}")
        grown = (rss_kib(pid) - before) * 1024
        metrics = cluster.metrics_text(0) or ""
        held = sum(int(float(v)) for v in re.findall(r'session_api_near_cache_entries\{cache="\w+"\} (\S+)', metrics))
        return grown, held
    finally:
        cluster.stop()


def memory(args, binary: Path) -> None:
    print(f"\n== 4. memory: VmRSS growth over one /users/me for each of {args.entries} sessions (NEAR_CACHE_ENTRIES={args.entries})", flush=True)
    for user_store in ("json", "redis"):
        on, held = memory_growth(binary, user_store, "true", args.entries)
        off, _ = memory_growth(binary, user_store, "false", args.entries)
        what = "a session entry" if user_store == "json" else "a session entry and a user entry"
        print(
            f"USER_STORE={user_store}: VmRSS +{on / 2**20:.2f} MiB with the cache ({held} entries held), +{off / 2**20:.2f} MiB without: "
            f"{(on - off) / args.entries:.0f} bytes per session ({what})",
            flush=True,
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", help="the session-api to measure (default: the release build, built when needed)")
    parser.add_argument("--before", type=Path, help="a session-api from before issue 14 for the idle-timeout writes (say, a release build of 91db992)")
    parser.add_argument("--rounds", type=int, default=3, help="bench.py rounds (default 3)")
    parser.add_argument("--duration", type=int, default=8, help="seconds of each wrk run (default 8)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections in parts 2 and 3 (default 64)")
    parser.add_argument("--entries", type=int, default=10000, help="sessions in part 4 (default 10000)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"parts to run, comma-separated (default {','.join(PARTS)})")
    parser.add_argument("--json", type=Path, help="also write part 2's figures to this file as JSON")
    args = parser.parse_args(argv)
    parts = args.only.split(",")
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown parts {sorted(unknown)}; known: {', '.join(PARTS)}")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    binary = resolve_binary(args.binary)
    started = time.monotonic()
    print(f"bench-cache: {binary}; {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores; {info_line()}", flush=True)
    for part, run in (("speed", speed), ("redis", work), ("idle", idle), ("memory", memory)):
        if part in parts:
            run(args, binary)
    print(f"\nbench-cache: done in {time.monotonic() - started:.0f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(RESULTS, indent=2))
    return 0


def info_line() -> str:
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
    return next((word for word in version if word.startswith("v=")), "redis-server ?")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
