#!/usr/bin/env python3
"""What authentication costs, with production password hashing (Argon2id, the defaults: m=19456 KiB, t=2, p=1).

  1. Repeated Basic auth against a session cookie: GET /api/v1/users/me with the same `Authorization: Basic`
     header (AUTH_TYPE=basic_auth; after the first request the verification comes from the credential cache)
     and with a session cookie (AUTH_TYPE=session_redis_auth, JSON users), wrk -t1 -cC -dDs --latency each,
     ROUNDS times alternated; prints req/s and p99 of each and basic / session.
  2. /api/v1/status during a login storm (session_redis_auth): wrk on /status alone, then the same wrk while a
     second wrk posts correct logins as fast as it can (each login is one Argon2id hash on the hash pool);
     prints /status req/s, p50, p99 of both, the logins/s, how many logins were refused with 503 (hash queue
     full), and the server's peak RSS (VmHWM).

Each server is a release build started on a free loopback port with a private data dir and a private
redis-server (free port, temp dir, no persistence), stopped by PID at the end. wrk and the server share the
machine's cores: the figures are comparative, not capacity.

  scripts/bench-auth.py [--binary PATH] [--duration 8] [--connections 32] [--rounds 3]
"""
import argparse
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True
from clusterlib import build_release_binary  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EMAIL = "bench@x.test"
PASSWORD = "bench-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(what: str, check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, subprocess.CalledProcessError):
            pass
        time.sleep(0.05)
    sys.exit(f"bench-auth: {what} did not come up within {timeout:.0f} s")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


class Processes:
    """Children started here, stopped by PID (SIGTERM, then wait) in reverse order."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []

    def start(self, argv: list[str], env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
        out = open(log, "wb") if log else subprocess.DEVNULL
        child = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.children.append(child)
        return child

    def stop(self, child: subprocess.Popen) -> None:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self.children)):
            self.stop(child)


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str] | None = None, script: Path | None = None) -> dict:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if script:
        argv += ["-s", str(script)]
    out = subprocess.run(argv + [url], check=True, capture_output=True, text=True).stdout
    return parse_wrk(out)


def to_ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(out: str) -> dict:
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        result[f"p{pct}"] = to_ms(match.group(1)) if match else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    total = re.search(r"(\d+) requests in", out)
    result["requests"] = int(total.group(1)) if total else 0
    return result


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", type=Path, help="a release session-api (default: the release build of scripts/clusterlib.py, built when needed)")
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    for tool in ("wrk", "redis-server", "redis-cli"):
        if not shutil.which(tool):
            sys.exit(f"bench-auth: {tool} is missing (apt-get install wrk redis-server redis-tools)")
    binary = args.binary
    if binary is None:
        binary = build_release_binary()

    work = Path(tempfile.mkdtemp(prefix="bench-auth."))
    procs = Processes()
    try:
        redis_port = free_port()
        procs.start(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", str(work),
                     "--save", "", "--appendonly", "no"], log=work / "redis.log")
        poll("redis-server", lambda: subprocess.run(["redis-cli", "-p", str(redis_port), "ping"], capture_output=True,
                                                    text=True).stdout.strip() == "PONG")
        data = work / "data"
        data.mkdir()
        base_env = dict(os.environ, DATA_DIR=str(data), LOG_LEVEL="warning", API_HOST="127.0.0.1")
        subprocess.run([str(binary), "user", "create", "--email", EMAIL, "--first-name", "Bench"], input=PASSWORD + "\n",
                       env=base_env, check=True, capture_output=True, text=True)
        print(f"== {binary}; {os.cpu_count()} cores; wrk -t1 -c{args.connections} -d{args.duration}s --latency; "
              f"Argon2id defaults; one user made with `session-api user create`")

        def serve(auth_type: str) -> tuple[subprocess.Popen, str]:
            port = free_port()
            env = dict(base_env, AUTH_TYPE=auth_type, API_PORT=str(port), REDIS_URL=f"redis://127.0.0.1:{redis_port}")
            child = procs.start([str(binary), "serve"], env=env, log=work / f"{auth_type}.log")
            url = f"http://127.0.0.1:{port}"
            poll(f"session-api ({auth_type})", lambda: http_ok(url + "/healthz"))
            return child, url

        def login(url: str) -> str:
            body = urllib.parse.urlencode({"email": EMAIL, "password": PASSWORD}).encode()
            with urllib.request.urlopen(url + "/api/v1/auth_session/login", data=body, timeout=10) as response:
                cookie = response.headers["Set-Cookie"].split(";")[0]
            return cookie

        # 1. Basic against session. Both servers stay up; the rounds alternate.
        basic, basic_url = serve("basic_auth")
        session, session_url = serve("session_redis_auth")
        authorization = "Basic " + base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode()
        cookie = login(session_url)
        runs: dict[str, list[dict]] = {"basic": [], "session": []}
        for round_ in range(1, args.rounds + 1):
            for name, url, headers in (("basic", basic_url, {"Authorization": authorization}),
                                       ("session", session_url, {"Cookie": cookie})):
                wrk(url + "/api/v1/users/me", 2, args.connections, headers)  # warm-up, not recorded
                result = wrk(url + "/api/v1/users/me", args.duration, args.connections, headers)
                if result["non2xx"]:
                    sys.exit(f"bench-auth: {name} /users/me answered {result['non2xx']} non-2xx responses")
                runs[name].append(result)
                print(f"round {round_} {name:7s} /users/me {result['rps']:9.0f} req/s  p50 {result['p50']:.2f} ms  "
                      f"p99 {result['p99']:.2f} ms")
        best = {name: max(results, key=lambda r: r["rps"]) for name, results in runs.items()}
        print(f"RESULT basic_users_me_rps={best['basic']['rps']:.0f} session_users_me_rps={best['session']['rps']:.0f} "
              f"basic/session={best['basic']['rps'] / best['session']['rps']:.2f} (best of {args.rounds})")
        procs.stop(basic)

        # 2. /status during a login storm, on the session server.
        storm_script = work / "login.lua"
        storm_script.write_text(
            'wrk.method = "POST"\n'
            f'wrk.body = "email={urllib.parse.quote(EMAIL)}&password={urllib.parse.quote(PASSWORD)}"\n'
            'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n')
        status_connections = 8
        wrk(session_url + "/api/v1/status", 2, status_connections)
        quiet = wrk(session_url + "/api/v1/status", args.duration, status_connections)
        storm = subprocess.Popen(["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration + 2}s", "-s", str(storm_script),
                                  session_url + "/api/v1/auth_session/login"], stdout=subprocess.PIPE, text=True)
        time.sleep(1)  # let the storm fill the hash queue before /status is measured (it runs 2 s longer)
        loud = wrk(session_url + "/api/v1/status", args.duration, status_connections)
        storm_result = parse_wrk(storm.communicate()[0])
        rss = peak_rss_mib(session.pid)
        for name, r in (("quiet", quiet), ("storm", loud)):
            print(f"/status {name}: {r['rps']:9.0f} req/s  p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms (wrk -c{status_connections})")
        print(f"logins during the storm: {storm_result['rps']:.1f}/s, {storm_result['requests']} requests, "
              f"{storm_result['non2xx']} not 200 (503 when the hash queue is full)")
        print(f"RESULT status_p99_quiet_ms={quiet['p99']:.2f} status_p99_storm_ms={loud['p99']:.2f} "
              f"logins_per_s={storm_result['rps']:.1f} peak_rss_mib={rss:.1f}")
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
