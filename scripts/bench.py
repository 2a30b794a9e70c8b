#!/usr/bin/env python3
"""Every performance figure of issue 10 from one run, in one table, the Go peer beside session-api.

Run by `scripts/bench` (which installs what is missing); each part is a script of its own, run here in turn on
the same release build (built when needed, as scripts/clusterlib.py builds it), and each part's raw output is
kept in the run's directory (data/bench/<time>/):

  client    Redis GET on one connection: redis-benchmark -t get -c 1 -P 64 (C) against redis-client-bench
            (RedisClient, 256 commands in flight), alternated --client-rounds times, best of each.
  speed     ../shared/peers/bench.py --rounds R --duration D, rounds alternated: the Go peer, session-api with
            JSON users, session-api with Redis users (the bench user written into Redis by redis-cli before
            each start, as the store lays it out), session-api with NEAR_CACHE=false; AUTH_TYPE=session_redis_auth,
            one private redis-server; wrk -t1 -c64 on /status and on /users/me with one cookie; peak RSS (VmHWM,
            which includes the login's one Argon2id hash). Medians of the rounds.
  start     from the fork of each server to its first 200 on /api/v1/status (a fresh connection every ms),
            median of 5 starts, for session-api and the Go peer's binary.
  memory    scripts/bench-memory.py, one round: RSS once ready, after 8 logins, after 5 s of /users/me load.
  cpu       scripts/bench-instructions.py: instructions per request under callgrind (every thread).
  redis     scripts/bench-cache.py --only redis: Redis commands (INFO commandstats, scripts' inner commands
            included) and Redis CPU (INFO cpu) per GET /users/me, 100 sessions in turn, for each user store with
            the near-cache on and off: what an operator sizes Redis by.
  scale     scripts/bench-scale.py --sizes S: GET /users, /stats, a create, a login with 1k/10k/100k users in
            each store; Redis memory per session and Redis commands and CPU per /users/me.

wrk, Redis and the servers share the machine's cores: the figures are comparisons within this run, not
capacity. Loopback only; every process is started on a free port and stopped by PID (by each part).

  scripts/bench [--binary B] [--rounds 3] [--duration 8] [--sizes 1000,10000,100000] [--only part,...] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True
from clusterlib import REPO, SWIFT_RELEASE, Child, free_port, resolve_binary, wait_until  # noqa: E402

SCRIPTS = REPO / "scripts"
PEERS = REPO.parent / "shared" / "peers"
PEERS_BUILD = Path(os.environ.get("PEERS_BUILD_DIR", Path.home() / ".cache" / "session-api-peers"))
PARTS = ("client", "speed", "start", "memory", "cpu", "redis", "scale")
# The user ../shared/peers/bench.py logs in as (its make_users), for the Redis user store.
BENCH_ID, BENCH_EMAIL, BENCH_PASSWORD = "3c84c31b-67cf-49c3-b32c-e9de28f7a8eb", "bench@x.test", "benchpass"


def run_part(name: str, command: list[str], run_dir: Path) -> str:
    """Runs one part, its output both shown and kept in <run_dir>/<name>.log; returns the output."""
    print(f"\n== {name}: {shlex.join(str(c) for c in command)}", flush=True)
    started = time.monotonic()
    with open(run_dir / f"{name}.log", "w") as log:
        child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        assert child.stdout is not None
        for line in child.stdout:
            print("   " + line, end="", flush=True)
            log.write(line)
            lines.append(line)
        if child.wait() != 0:
            raise SystemExit(f"bench: part {name} failed (exit {child.returncode}); its output is in {run_dir / (name + '.log')}")
    print(f"   ({name}: {time.monotonic() - started:.0f} s)", flush=True)
    return "".join(lines)


def private_redis(directory: Path, log: str) -> tuple[Child, int]:
    """A redis-server on a free loopback port, without persistence, answering PING; stop it with `.stop()`."""
    port = free_port()
    redis = Child("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", "", "--appendonly", "no"],
                  log=directory / log)  # fmt: skip
    redis.start()
    try:
        wait_until(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout.strip() == "PONG", 10, "redis-server")
    except BaseException:
        redis.stop()
        raise
    return redis, port


# --- client --------------------------------------------------------------------------------------------


def client(args, run_dir: Path) -> dict:
    subprocess.run(["swift", "build", *SWIFT_RELEASE, "--product", "redis-client-bench"], cwd=REPO, check=True)
    bin_dir = subprocess.run(["swift", "build", *SWIFT_RELEASE, "--show-bin-path"], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()
    redis, port = private_redis(run_dir, "client-redis.log")
    try:
        key = "key:__rand_int__"
        subprocess.run(["redis-cli", "-p", str(port), "set", key, "xxx"], check=True, capture_output=True)
        c_best = swift_best = 0.0
        for _ in range(args.client_rounds):
            out = run_part("client, redis-benchmark", ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "get", "-c", "1", "-P", "64",
                                                        "-n", str(args.client_requests), "--csv"], run_dir)  # fmt: skip
            found = re.search(r'^"GET","([\d.]+)"', out, re.M)
            c_best = max(c_best, float(found.group(1)) if found else 0.0)
            out = run_part("client, redis-client-bench", [f"{bin_dir}/redis-client-bench", "--port", str(port), "--requests", str(args.client_requests),
                                                           "--in-flight", "256", "--key", key], run_dir)  # fmt: skip
            found = re.search(r"^RESULT requests_per_second=(\d+)", out, re.M)
            swift_best = max(swift_best, float(found.group(1)) if found else 0.0)
    finally:
        redis.stop()
    return {"redis_benchmark_gets": c_best, "redis_client_gets": swift_best}


# --- speed -----------------------------------------------------------------------------------------------


def session_api_peer(name: str, binary: Path, env: str, redis_user: bool = False) -> str:
    """A bench.py NAME=COMMAND peer, run in bench.py's scratch dir with REDIS_URL set; `{port}` is filled in.
    Each start gets a fresh copy of the users file (a login replaces the peers' SHA-256 hash in place, which
    the Go peer could not read back); with Redis users, the bench user is (re)written into Redis first."""
    seed = ""
    if redis_user:
        sha = hashlib.sha256(BENCH_PASSWORD.encode()).hexdigest()
        user = f"session-api:user:{{{{{BENCH_ID}}}}}"  # {{id}}: bench.py's str.format makes it {id}
        seed = (
            f"redis-cli -u \"$REDIS_URL\" HSET '{user}' id {BENCH_ID} email {BENCH_EMAIL} _password {sha} first_name Bench "
            f"last_name Marker created_at 2026-11-25T02:11:05 updated_at 2026-11-25T02:11:05 >/dev/null && "
            f"redis-cli -u \"$REDIS_URL\" SET session-api:user-email:{BENCH_EMAIL} {BENCH_ID} >/dev/null && "
            f"redis-cli -u \"$REDIS_URL\" SADD session-api:users {BENCH_ID} >/dev/null && "
        )
    return (
        f"{name}=rm -rf {name} && mkdir {name} && cp .db_User.json {name}/ && cd {name} && {seed}"
        f"AUTH_TYPE=session_redis_auth {env} LOG_LEVEL=warning API_HOST=127.0.0.1 API_PORT={{port}} exec {binary} serve"
    )


SPEED_PEERS = {
    "go": None,
    "session-api": ("NEAR_CACHE=true", False),
    "session-api-redis-users": ("NEAR_CACHE=true USER_STORE=redis", True),
    "session-api-no-cache": ("NEAR_CACHE=false", False),
}


def speed(args, binary: Path, run_dir: Path) -> dict:
    command = [sys.executable, "-B", str(PEERS / "bench.py"), "--rounds", str(args.rounds), "--duration", str(args.duration)]
    for name, spec in SPEED_PEERS.items():
        command += ["--peer", name if spec is None else session_api_peer(name, binary, *spec)]
    out = run_part("speed", command, run_dir)
    raw = re.search(r"raw results: (\S+)", out)
    if not raw:
        raise SystemExit("bench: ../shared/peers/bench.py printed no results path")
    results = json.loads(Path(raw.group(1)).read_text())
    (run_dir / "speed.json").write_text(json.dumps(results, indent=2))
    medians = {}
    for peer in SPEED_PEERS:
        rows = [r for r in results if r["peer"] == peer]
        medians[peer] = {
            "status_rps": statistics.median(r["status"]["rps"] for r in rows),
            "status_p99": statistics.median(r["status"]["p99_ms"] for r in rows),
            "me_rps": statistics.median(r["me"]["rps"] for r in rows),
            "me_p50": statistics.median(r["me"]["p50_ms"] for r in rows),
            "me_p99": statistics.median(r["me"]["p99_ms"] for r in rows),
            "peak_mib": statistics.median(r["rss_all_mib"] for r in rows),
            "non2xx": sum(r["status"]["non2xx"] + r["me"]["non2xx"] for r in rows),
        }
    return medians


# --- start -----------------------------------------------------------------------------------------------


def first_200(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/status", timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


def start_times(name: str, command: list[str], env: dict[str, str], cwd: Path, starts: int = 5) -> dict:
    """Median time from the fork to the first 200, and VmRSS at that moment."""
    took, rss = [], []
    for n in range(starts):
        port = free_port()
        child_env = dict(os.environ, **env, API_PORT=str(port), PORT=str(port))
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=cwd, env=child_env, stdout=subprocess.DEVNULL, stderr=open(cwd / f"{name}-{n}.log", "w"))
        try:
            while not first_200(port):
                if child.poll() is not None or time.perf_counter() - started > 30:
                    raise SystemExit(f"bench: {name} gave no 200 within 30 s of its start (see {cwd})")
                time.sleep(0.001)
            took.append((time.perf_counter() - started) * 1000)
            status = Path(f"/proc/{child.pid}/status").read_text()
            rss.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024)
        finally:
            child.terminate()
            child.wait(30)
    print(f"   {name}: start to first 200 {', '.join(f'{t:.0f}' for t in took)} ms; RSS then {statistics.median(rss):.1f} MiB", flush=True)
    return {"ms": statistics.median(took), "rss_mib": statistics.median(rss)}


def start(args, binary: Path, run_dir: Path) -> dict:
    print("\n== start: fork to first 200 on /api/v1/status, 5 starts each (a private redis-server, 1000 JSON users)", flush=True)
    work = run_dir / "start"
    work.mkdir()
    sys.path.insert(0, str(PEERS))
    from bench import make_users  # noqa: E402  (../shared/peers/bench.py: the users every peer reads)

    make_users(work / ".db_User.json")
    redis, port = private_redis(work, "redis.log")
    try:
        env = {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "REDIS_PREFIX": "session-api:", "AUTH_TYPE": "session_redis_auth",
               "LOG_LEVEL": "warning", "API_HOST": "127.0.0.1"}  # fmt: skip
        result = {"session-api": start_times("session-api", [str(binary), "serve"], env, work)}
        go = PEERS_BUILD / "peer-go"
        if go.exists():
            result["go"] = start_times("go", [str(go)], env, work)
        else:
            print(f"   go: {go} is not built (the speed part builds it)", flush=True)
    finally:
        redis.stop()
    return result


# --- the parts that are scripts of their own -------------------------------------------------------------


def memory(args, binary: Path, run_dir: Path) -> dict:
    out = run_dir / "memory.json"
    run_part("memory", [sys.executable, "-B", str(SCRIPTS / "bench-memory.py"), "--binary", f"session-api={binary}", "--rounds", "1", "--json", str(out)], run_dir)
    return json.loads(out.read_text())["session-api"]


def cpu(args, binary: Path, run_dir: Path) -> list:
    out = run_dir / "instructions.json"
    run_part("cpu", [sys.executable, "-B", str(SCRIPTS / "bench-instructions.py"), "--binary", str(binary), "--requests", str(args.instruction_requests),
                     "--json", str(out)], run_dir)  # fmt: skip
    return json.loads(out.read_text())


def redis(args, binary: Path, run_dir: Path) -> dict:
    out = run_dir / "redis.json"
    run_part("redis", [sys.executable, "-B", str(SCRIPTS / "bench-cache.py"), "--binary", str(binary), "--only", "redis", "--duration", str(max(3, args.duration // 2)),
                       "--json", str(out)], run_dir)  # fmt: skip
    return json.loads(out.read_text())["redis"]


def scale(args, binary: Path, run_dir: Path) -> list:
    out = run_dir / "scale.json"
    run_part("scale", [sys.executable, "-B", str(SCRIPTS / "bench-scale.py"), "--binary", str(binary), "--sizes", args.sizes, "--json", str(out)], run_dir)
    return json.loads(out.read_text())


# --- the table --------------------------------------------------------------------------------------------


def verdict(met: bool) -> str:
    return "met" if met else "**not met**"


def table(r: dict, args) -> list[str]:
    rows = [("figure", "session-api", "Go peer", "goal")]
    sp = r.get("speed")
    if sp:
        go = sp["go"]
        for peer, label in (("session-api", "JSON users"), ("session-api-redis-users", "Redis users"), ("session-api-no-cache", "JSON users, NEAR_CACHE=false")):
            m = sp[peer]
            ratio = m["me_rps"] / go["me_rps"]
            goal = f">= 1.2x Go: {ratio:.2f}x, {verdict(ratio >= 1.2)}" if peer != "session-api-no-cache" else f"{ratio:.2f}x Go (the cache off, for comparison)"
            rows.append((f"GET /users/me req/s, {label}", f"{m['me_rps']:,.0f}", f"{go['me_rps']:,.0f}", goal))
            rows.append((f"GET /users/me p50 / p99 ms, {label}", f"{m['me_p50']:.2f} / {m['me_p99']:.2f}", f"{go['me_p50']:.2f} / {go['me_p99']:.2f}",
                         f"p99 <= Go's: {verdict(m['me_p99'] <= go['me_p99'])}" if peer != "session-api-no-cache" else ""))  # fmt: skip
        m = sp["session-api"]
        rows.append(("GET /status req/s", f"{m['status_rps']:,.0f}", f"{go['status_rps']:,.0f}", f"{m['status_rps'] / go['status_rps']:.2f}x Go"))
        for peer, label in (("session-api", "JSON users"), ("session-api-redis-users", "Redis users")):
            ratio = sp[peer]["me_rps"] / sp[peer]["status_rps"]
            rows.append((f"/users/me ÷ /status of the same process, {label}", f"{ratio:.2f}", f"{go['me_rps'] / go['status_rps']:.2f}",
                         f">= 0.75: {verdict(ratio >= 0.75)}"))  # fmt: skip
        peak = max(sp["session-api"]["peak_mib"], sp["session-api-redis-users"]["peak_mib"])
        rows.append(("peak RSS (VmHWM) over a login and the load, MiB", f"{sp['session-api']['peak_mib']:.1f} (Redis users {sp['session-api-redis-users']['peak_mib']:.1f})",
                     f"{go['peak_mib']:.1f}", f"<= 32: {verdict(peak <= 32)}"))  # fmt: skip
    mem = r.get("memory")
    if mem:
        rows.append(("RSS ready / after 8 logins / after 5 s of /users/me load, MiB (anonymous)",
                     f"{mem['ready'] / 1024:.1f} / {mem['logins'] / 1024:.1f} / {mem['load'] / 1024:.1f} ({mem['anon'] / 1024:.1f})", "", ""))
        rows.append(("login (default Argon2id), median of 8, ms", f"{mem['login_ms']:.0f}", "", ""))
    st = r.get("start")
    if st:
        s = st["session-api"]
        g = st.get("go")
        rows.append(("start to first 200, ms (RSS then, MiB)", f"{s['ms']:.0f} ({s['rss_mib']:.1f})", f"{g['ms']:.0f} ({g['rss_mib']:.1f})" if g else "-",
                     f"<= 300: {verdict(s['ms'] <= 300)}"))  # fmt: skip
    ins = r.get("cpu")
    if ins:
        for f in ins:
            label = f"instructions per GET {f['path'].removeprefix('/api/v1')}" + ("" if f["path"].endswith("status") else f", NEAR_CACHE={'on' if f['near_cache'] else 'off'}")
            rows.append((label, f"{f['instructions'] / f['requests']:,.0f}", "-", "measured (callgrind)"))
    sc = r.get("scale")
    if sc:
        sizes = sorted({row["n"] for row in sc})
        size_label = " / ".join(f"{n // 1000}k" if n >= 1000 else str(n) for n in sizes)
        for store in ("json", "redis"):
            by_n = {row["n"]: row for row in sc if row["store"] == store}
            if not by_n:
                continue
            for key, label, fmt in (("list_ms", "GET /users", "{:.1f}"), ("page_ms", "GET /users?limit=100", "{:.1f}"), ("stats_ms", "GET /stats", "{:.2f}"),
                                    ("create_ms", "a create", "{:.1f}"), ("login_ms", "a login (cheap hash)", "{:.1f}"), ("me_ms", "one GET /users/me", "{:.2f}")):  # fmt: skip
                rows.append((f"{label}, {store} users, {size_label} users, ms", " / ".join(fmt.format(by_n[n][key]) if n in by_n else "-" for n in sizes), "-", ""))
            rows.append((f"peak RSS, {store} users, {size_label} users, MiB", " / ".join(f"{by_n[n]['rss_mib']:.1f}" if n in by_n else "-" for n in sizes), "-", ""))
        first = next(row for row in sc if row["store"] == "redis") if any(row["store"] == "redis" for row in sc) else sc[0]
        per_entry = first["index_bytes"] / first["index_entries"] if first["index_entries"] else 0
        rows.append(("Redis memory per session: its hash, its index's size / entries, bytes",
                     f"{first['session_bytes']}, {first['index_bytes']} / {first['index_entries']} (~{per_entry:.0f} an entry)", "-", ""))
        if first["user_bytes"]:
            rows.append(("Redis memory per user (USER_STORE=redis), bytes", f"{first['user_bytes']}", "-", ""))
    rw = r.get("redis")
    if rw:
        for key, m in rw.items():
            store, _, cache = key.partition(" near_cache=")
            rows.append((f"Redis per GET /users/me, {store} users, NEAR_CACHE={cache}: commands; redis-server CPU (INFO cpu), us",
                         f"{m['calls'] / 1000:.3f}, {m['cpu_us']:.2f}", "-", ""))  # fmt: skip
    cl = r.get("client")
    if cl:
        ratio = cl["redis_client_gets"] / cl["redis_benchmark_gets"] if cl["redis_benchmark_gets"] else 0
        rows.append(("Redis GET/s, one connection: RedisClient (256 in flight) ÷ redis-benchmark -P 64, best of each",
                     f"{cl['redis_client_gets']:,.0f} ÷ {cl['redis_benchmark_gets']:,.0f} = {ratio:.2f}", "-", f">= 0.5: {verdict(ratio >= 0.5)}"))  # fmt: skip
    lines = [f"| {' | '.join(rows[0])} |", "|" + "---|" * len(rows[0])]
    lines += [f"| {' | '.join(row)} |" for row in rows[1:]]
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", help="the session-api to measure (default: the release build, built when needed)")
    parser.add_argument("--rounds", type=int, default=3, help="speed: rounds of bench.py, alternated (default 3)")
    parser.add_argument("--duration", type=int, default=8, help="speed: seconds of wrk per route (default 8)")
    parser.add_argument("--sizes", default="1000,10000,100000", help="scale: numbers of users (default 1000,10000,100000)")
    parser.add_argument("--instruction-requests", type=int, default=2000, help="cpu: requests per case under callgrind (default 2000)")
    parser.add_argument("--client-rounds", type=int, default=3)
    parser.add_argument("--client-requests", type=int, default=2_000_000)
    parser.add_argument("--only", default=",".join(PARTS), help=f"parts to run, of {','.join(PARTS)} (default all)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round of 3 s, sizes 1000,10000, 500 instructions requests, 1 client round of 500k")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.sizes, args.instruction_requests, args.client_rounds, args.client_requests = 1, 3, "1000,10000", 500, 1, 500_000
    parts = [p for p in args.only.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"bench: unknown parts {sorted(unknown)} (known: {', '.join(PARTS)})")
    binary = resolve_binary(args.binary)
    run_dir = REPO / "data" / "bench" / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    print(f"bench: {binary} (git {head}); {os.cpu_count()} cores; parts {','.join(parts)}; raw output in {run_dir}", flush=True)
    started = time.monotonic()
    results: dict = {}
    for part in PARTS:  # in this order whatever --only says: speed builds the Go peer that start runs
        if part not in parts:
            continue
        if part == "client":
            results[part] = client(args, run_dir)
        else:
            results[part] = globals()[part](args, binary, run_dir)
        (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    took = time.monotonic() - started
    print(f"\n== bench: one run, {took / 60:.1f} min; git {head}; {os.cpu_count()} cores; speed: median of {args.rounds} rounds of "
          f"wrk -t1 -c64 -d{args.duration}s; results in {run_dir}\n")  # fmt: skip
    print("\n".join(table(results, args)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
