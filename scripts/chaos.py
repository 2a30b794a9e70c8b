#!/usr/bin/env python3
"""Proof under faults (issue 4): a cluster of 3 session-api processes behind nginx, sessions in Redis,
load from several clients, and faults in the middle: kill -9 an instance and start it again, SIGSTOP
Redis for 2 s then SIGCONT, restart Redis; with `--redis sentinel|cluster` (issue 9) the faults hit the
master (or a primary) and a failover round kills it with -9 mid-run. Throughout, revocation rounds log a
user in, read the session through every instance (filling each one's near-cache, issue 14), revoke it through
one instance (a logout; every 4th round an operator's Redis DEL of the session key) and poll every instance
until it refuses the cookie: a 200 after the revocation answered is a failure, and the delay until each
instance refused is printed (p50 / p99 / max, bounded by --revocation-bound). At the end it prints per phase:
requests, 2xx, expected 4xx (403 for a cookie after its logout), 503, other errors, p99 and max latency and
the near-cache hit rate (from each instance's /metrics, METRICS_PORT); then the counts that must be 0, and
exits 1 if any is not. Loopback only, bounded in time; Python 3 standard library.

Run it through `scripts/chaos` (installs what is missing); `--help` lists the options.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True  # no __pycache__ in the work tree
import hashlib  # noqa: E402

from clusterlib import REDIS_MODES, REPO, Cluster, RedisReplyError, metric_samples, resolve_binary  # noqa: E402

NEAR_CACHE_LOOKUPS = "session_api_near_cache_lookups_total"
NEAR_CACHE_INVALIDATIONS = "session_api_near_cache_invalidations_total"

# Durations in seconds. `kills`: how many kill -9 rounds (each on the next instance); `restarts`: the signal
# that stops Redis in each restart round (SIGTERM: a clean restart; SIGKILL: a crash of the Redis process);
# `failovers` (Sentinel and Cluster only): rounds that kill -9 the master (or a primary), wait for its replica
# to take over, then start it again as a replica.
PROFILES = {
    "short": dict(baseline=3.0, dead=1.0, after_kill=3.0, pause=2.0, after_pause=3.0, after_restart=3.0, after_failover=3.0, kills=1, pauses=1, restarts=["SIGTERM"], failovers=1),
    "long": dict(baseline=15.0, dead=3.0, after_kill=10.0, pause=2.0, after_pause=10.0, after_restart=10.0, after_failover=10.0, kills=3, pauses=3, restarts=["SIGTERM", "SIGKILL"], failovers=2),
}

TIMEOUT = -1  # no answer within the client timeout: a hang
TRANSPORT = -2  # the front (nginx) refused or reset the connection

COOKIE = "_my_session_id"
COOKIE_RE = re.compile(COOKIE + r"=([0-9a-fA-F-]{36})")


@dataclass
class Rec:
    """One request as the client saw it."""

    t0: float
    dur: float
    method: str
    kind: str
    status: int
    rid: str
    origin: str = ""  # "app" (JSON body) or "proxy" (nginx's own HTML page) for 5xx
    expected: bool = False  # a 4xx that is the right answer (a logged-out cookie -> 403)


@dataclass
class Session:
    cookie: str
    user_id: str
    email: str
    logged_out: bool = False
    ambiguous: bool = False  # a logout whose outcome the client cannot know (503 / retried by nginx)
    revoked_at: float | None = None  # when its logout answered 200 (monotonic)


@dataclass
class Findings:
    """Everything that must stay empty, with evidence."""

    sessions_lost: dict = field(default_factory=dict)  # cookie -> first evidence: each session counts once
    users_lost: dict = field(default_factory=dict)  # user id -> evidence: each user counts once
    wrong_user: list = field(default_factory=list)
    app_5xx: list = field(default_factory=list)
    proxy_5xx_unexplained: list = field(default_factory=list)
    hangs: list = field(default_factory=list)
    slow_while_redis_stopped: list = field(default_factory=list)
    slow_during_failover: list = field(default_factory=list)
    revoked_still_valid: list = field(default_factory=list)
    stale_reads: list = field(default_factory=list)
    transport_errors: list = field(default_factory=list)
    no_retry_after: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, item) -> None:
        with self.lock:
            getattr(self, name).append(item)

    def user_lost(self, uid: str, evidence: str) -> None:
        with self.lock:
            self.users_lost[uid] = self.users_lost.get(uid, "") + ("; " if uid in self.users_lost else "") + evidence

    def session_lost(self, session: "Session", evidence: str) -> None:
        with self.lock:
            self.sessions_lost.setdefault(session.cookie, f"{session.email}: {evidence}")


class Client:
    """One keep-alive HTTP/1.1 connection to the front, with a hard timeout per request."""

    counter = 0
    counter_lock = threading.Lock()

    def __init__(self, host: str, port: int, name: str, timeout: float, records: list):
        self.host, self.port, self.name, self.timeout, self.records = host, port, name, timeout, records
        self.conn: http.client.HTTPConnection | None = None
        self.n = 0

    def close(self) -> None:
        if self.conn:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, kind: str, cookie: str | None = None, body: bytes | None = None, content_type: str | None = None, record: bool = True):
        self.n += 1
        rid = f"{self.name}-{self.n}"
        headers = {"X-Request-Id": rid, "User-Agent": "chaos"}
        if cookie:
            headers["Cookie"] = f"{COOKIE}={cookie}"
        if content_type:
            headers["Content-Type"] = content_type
        t0 = time.monotonic()
        status, data, resp_headers = 0, b"", {}
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
            status = response.status
            resp_headers = {k.lower(): v for k, v in response.getheaders()}
            if response.will_close:
                self.close()
        except (socket.timeout, TimeoutError):
            status = TIMEOUT
            self.close()
        except (OSError, http.client.HTTPException):
            status = TRANSPORT
            self.close()
        dur = time.monotonic() - t0
        origin = ""
        if status >= 500:
            origin = "app" if data.startswith(b"{") else "proxy"
        rec = Rec(t0, dur, method, kind, status, rid, origin)
        if record:
            self.records.append(rec)  # list.append is atomic
        return status, data, resp_headers, rec


class Pacer:
    """Calls at most `rate` times per second (0: no limit); never bunches up after a slow stretch."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = time.monotonic()

    def __call__(self) -> None:
        if not self.interval:
            return
        delay = self.next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self.next_at = max(self.next_at, time.monotonic()) + self.interval


def parse_json(data: bytes):
    try:
        return json.loads(data)
    except ValueError:
        return None


class Chaos:
    def __init__(self, args, user_store: str, binary: Path):
        self.args = args
        self.user_store = user_store
        self.profile = dict(PROFILES["short" if args.short else "long"])
        self.binary = binary
        self.data_dir = Path(args.data_dir or default_data_dir(args, user_store)).resolve()
        self.records: list[Rec] = []
        self.findings = Findings()
        self.stop_load = threading.Event()
        self.phases: list[tuple[str, float]] = []
        self.redis_stopped: list[tuple[float, float]] = []  # SIGSTOP .. SIGCONT windows
        self.redis_faults: list[tuple[float, float]] = []  # from SIGSTOP or stop, until every instance is ready again
        self.failovers: list[dict] = []  # {"port", "t_kill", "t_switched", "t_ready", "t_rejoined"}
        self.kills: list[dict] = []  # {"index", "addr", "t_kill", "t_up"}
        self.persistent: list[Session] = []
        self.admin: Session | None = None
        self.users: list[dict] = []  # the 50 users: id, email, password
        self.created: dict[str, str] = {}  # id -> email, every 201
        self.ambiguous_creates: list[str] = []  # emails whose POST got 502/503/timeout
        self.flow_sessions: list[Session] = []  # logged in by the login/logout clients
        self.flows = 0
        self.pending_logout_403: list = []  # (session, rec, earlier attempt failed): logouts answered 403
        self.lock = threading.Lock()
        self.run_id = f"{int(time.time())}{random.randrange(1000):03d}"
        self.command_timeout = int(os.environ.get("REDIS_COMMAND_TIMEOUT_MS", "1000")) / 1000.0
        # Revocation rounds: per (revocation, instance) the delay until that instance refused the cookie.
        self.revocations = {"logout": 0, "redis DEL": 0}
        self.revocation_delays: list[float] = []  # seconds from the revocation's answer to the first refusal
        self.revocation_unmeasured: dict[str, int] = {}  # why an instance's refusal was not seen (down, 503s)
        self.revocation_200s = 0  # 200s from any instance past --stale-bound after a revocation answered: failures
        # 200s answered within --stale-bound of a revocation (near-cache on): another process answered from its cache
        # before Redis' invalidation reached it. Allowed, counted, and the latest one reported.
        self.window_200s = 0
        self.window_latest = 0.0
        self.stale_bound = self.args.stale_bound if self.args.near_cache == "on" else 0.0
        self.revoked: list[Session] = []  # revoked by the revocation rounds: refused everywhere at the end, too
        self.direct_transport: list[Rec] = []  # direct requests to an instance that did not connect
        # Near-cache counters from each instance's /metrics: per phase (deltas) and per instance (last scrape).
        self.cache_by_phase: dict[str, dict[tuple[str, str], float]] = {}
        self.cache_last: list[dict | None] = []
        self.cache_seen = False  # some instance exported session_api_near_cache_lookups_total
        self.invalidations: dict[tuple[str, str], float] = {}  # final scrape + scrapes before each kill

    # -- helpers --

    def log(self, text: str) -> None:
        print(f"chaos[{self.user_store}] {time.monotonic() - self.t_start:6.1f}s {text}", flush=True)

    def phase(self, name: str) -> None:
        self.sample_cache()  # the phase that ends now (or the set-up) gets the lookups since the last scrape
        self.phases.append((name, time.monotonic()))
        self.log(f"phase: {name}")

    # -- near-cache metrics --

    def scrape(self, index: int) -> tuple[dict | None, dict | None]:
        """(lookups by (cache, result), invalidations by (cache, reason)) of instance `index`, or (None, None)
        when its /metrics does not answer; ({}, {}) when it answers without near-cache metrics."""
        text = self.cluster.metrics_text(index)
        if text is None:
            return None, None
        lookups = {(labels.get("cache", "?"), labels.get("result", "?")): value for labels, value in metric_samples(text, NEAR_CACHE_LOOKUPS)}
        invalidations = {(labels.get("cache", "?"), labels.get("reason", "?")): value for labels, value in metric_samples(text, NEAR_CACHE_INVALIDATIONS)}
        if lookups:
            self.cache_seen = True
        return lookups, invalidations

    def sample_cache(self, indices=None, final: bool = False) -> None:
        """Adds each instance's lookups since its last scrape to the current phase (a restarted instance starts
        from 0). `final`: also adds its invalidation counters to the totals (before a kill -9 and at the end)."""
        while len(self.cache_last) < len(self.cluster.apps):
            self.cache_last.append({})
        bucket = self.cache_by_phase.setdefault(self.phases[-1][0] if self.phases else "setup", {})
        for i in range(len(self.cluster.apps)) if indices is None else indices:
            lookups, invalidations = self.scrape(i)
            if lookups is None:
                continue
            last = self.cache_last[i] or {}
            reset = any(value < last.get(key, 0) for key, value in lookups.items())
            for key, value in lookups.items():
                bucket[key] = bucket.get(key, 0) + value - (0 if reset else last.get(key, 0))
            self.cache_last[i] = lookups
            if final:
                for key, value in invalidations.items():
                    self.invalidations[key] = self.invalidations.get(key, 0) + value

    @staticmethod
    def hit_rate(counts: dict[tuple[str, str], float] | None, cache: str) -> str:
        """hits / (hits + misses + bypasses) of `cache`, as a percentage, or n/a."""
        if not counts:
            return "n/a"
        hit, miss, bypass = (counts.get((cache, r), 0) for r in ("hit", "miss", "bypass"))
        total = hit + miss + bypass
        if not any(key[0] == cache for key in counts):
            return "n/a"
        return f"{100 * hit / total:.1f}%" if total else "-"

    def cache_caches(self) -> list[str]:
        """The cache labels seen in any scrape (sessions, users), sessions first."""
        names = {key[0] for counts in self.cache_by_phase.values() for key in counts}
        return sorted(names, key=lambda n: (n != "sessions", n)) or ["sessions"]

    def cache_totals(self) -> dict[tuple[str, str], float]:
        total: dict[tuple[str, str], float] = {}
        for counts in self.cache_by_phase.values():
            for key, value in counts.items():
                total[key] = total.get(key, 0) + value
        return total

    def cache_summary(self) -> str:
        if not self.cache_seen:
            return f"near-cache hit rate n/a (NEAR_CACHE={self.args.near_cache}; no {NEAR_CACHE_LOOKUPS} in /metrics)"
        totals = self.cache_totals()
        return f"near-cache (NEAR_CACHE={self.args.near_cache}) hit rate " + ", ".join(f"{c} {self.hit_rate(totals, c)}" for c in self.cache_caches())

    def startup_lines(self) -> str:
        """What the instances logged about their near-cache at each start ("near-cache on" / "near-cache off")."""
        counts: dict[str, int] = {}
        for log in sorted(self.cluster.logs_dir.glob("app-*.log")):
            for line in log.read_text(errors="replace").splitlines():
                match = re.search(r"near-cache (on|off)\b", line)
                if match and "[SessionAPI]" in line:
                    reason = re.search(r"reason=(.*?) \[", line)
                    key = f"near-cache {match.group(1)}" + (f" ({reason.group(1)})" if reason else "")
                    counts[key] = counts.get(key, 0) + 1
        return ", ".join(f"'{k}' x{v}" for k, v in sorted(counts.items())) or "no near-cache line (a binary without it)"

    def client(self, name: str, record: bool = True) -> Client:
        return Client("127.0.0.1", self.cluster.front_port, name, self.args.client_timeout, self.records if record else [])

    def login(self, c: Client, email: str, password: str, kind: str = "login", retry_until: float | None = None):
        """POST login; returns (status, Session or None, rec, headers). Retries 503s until `retry_until`."""
        from urllib.parse import urlencode

        body = urlencode({"email": email, "password": password}).encode()
        while True:
            status, data, headers, rec = c.request("POST", "/api/v1/auth_session/login", kind, body=body, content_type="application/x-www-form-urlencoded")
            if status == 200:
                user = parse_json(data) or {}
                match = COOKIE_RE.search(headers.get("set-cookie", ""))
                if user.get("email") != email:
                    self.findings.add("wrong_user", f"login as {email} answered {user.get('email')!r} ({rec.rid})")
                if not match:
                    self.findings.add("notes", f"login 200 without a session cookie ({rec.rid})")
                    return status, None, rec, headers
                return status, Session(match.group(1), user.get("id", ""), email), rec, headers
            if retry_until is not None and status in (503, 502, TRANSPORT) and time.monotonic() < retry_until:
                time.sleep(0.05)
                continue
            return status, None, rec, headers

    # -- set-up --

    def setup(self) -> None:
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)  # this run's own directory (data/chaos-<store>)
        env = {"PASSWORD_ARGON2_MEMORY_KIB": str(self.args.hash_memory_kib), "PASSWORD_ARGON2_ITERATIONS": "1", "LOG_LEVEL": os.environ.get("LOG_LEVEL", "info")}
        if self.args.wait_replicas:
            env["REDIS_WAIT_REPLICAS"] = str(self.args.wait_replicas)
        env["NEAR_CACHE"] = self.args.near_cache
        self.cluster = Cluster(
            self.binary,
            self.data_dir,
            instances=3,
            user_store=self.user_store,
            env=env,
            appendfsync=self.args.appendfsync,
            redis_db=self.args.redis_db,
            quiet=True,
            redis_mode=self.args.redis,
            metrics=True,
        )
        self.cluster.start()
        self.log(
            f"cluster up: nginx {self.cluster.front_url} -> {' '.join(self.cluster.instance_urls)} (metrics on "
            f"{', '.join(map(str, self.cluster.metrics_ports))}; NEAR_CACHE={self.args.near_cache}), redis {self.cluster.redis_description}, data {self.data_dir}"
        )
        admin_email, admin_password = f"admin-{self.run_id}@chaos.test", "admin-password"
        self.admin_password = admin_password
        self.cluster.create_user(admin_email, admin_password)
        c = self.client("setup", record=False)
        deadline = time.monotonic() + 30
        status, self.admin, _, _ = self.login(c, admin_email, admin_password, retry_until=deadline)
        if status != 200 or not self.admin:
            raise RuntimeError(f"admin login failed: {status}")
        for i in range(self.args.users):
            email, password = f"user{i}-{self.run_id}@chaos.test", f"pw-{i}-{random.randrange(10**9)}"
            body = json.dumps({"email": email, "password": password, "first_name": f"U{i}"}).encode()
            status, data, _, rec = c.request("POST", "/api/v1/users", "setup", cookie=self.admin.cookie, body=body, content_type="application/json")
            if status != 201:
                raise RuntimeError(f"creating {email}: {status} {data[:200]!r}")
            user = parse_json(data)
            self.users.append({"id": user["id"], "email": email, "password": password})
            self.created[user["id"]] = email
        for user in self.users:
            status, session, _, _ = self.login(c, user["email"], user["password"], retry_until=deadline)
            if status != 200 or not session:
                raise RuntimeError(f"login {user['email']}: {status}")
            if session.user_id != user["id"]:
                self.findings.add("wrong_user", f"login {user['email']} gave user {session.user_id}")
            self.persistent.append(session)
        # Every persistent session must work through every instance before the faults begin.
        for session in self.persistent + [self.admin]:
            for url in self.cluster.instance_urls:
                status, body = self.direct_me(url, session.cookie)
                if status != 200 or (parse_json(body) or {}).get("id") != session.user_id:
                    raise RuntimeError(f"session of {session.email} not valid on {url} before the run: {status}")
        c.close()
        self.log(f"{len(self.users)} users created and logged in (PASSWORD_ARGON2_MEMORY_KIB={self.args.hash_memory_kib}, one pass), plus an admin session for creating users")

    def direct_me(self, base_url: str, cookie: str) -> tuple[int, bytes]:
        host, port = base_url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=self.args.client_timeout)
        try:
            conn.request("GET", "/api/v1/users/me", headers={"Cookie": f"{COOKIE}={cookie}"})
            response = conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            return TRANSPORT, b""
        finally:
            conn.close()

    # -- load --

    def check_common(self, status: int, headers: dict, rec: Rec) -> None:
        if status == TIMEOUT:
            self.findings.add("hangs", f"{rec.method} {rec.kind} {rec.rid}: no answer within {self.args.client_timeout:.0f} s")
        elif status == TRANSPORT:
            self.findings.add("transport_errors", f"{rec.method} {rec.kind} {rec.rid}")
        elif status == 503 and rec.origin == "app" and "retry-after" not in headers:
            self.findings.add("no_retry_after", rec.rid)

    def me_worker(self, n: int) -> None:
        """Calls /users/me with the 50 cookies; every 200 must name the cookie's user."""
        c = self.client(f"me{n}")
        rng = random.Random(n)
        pace = Pacer(self.args.rate)
        while not self.stop_load.is_set():
            pace()
            session = rng.choice(self.persistent)
            status, data, headers, rec = c.request("GET", "/api/v1/users/me", "me", cookie=session.cookie)
            if status == 200:
                user = parse_json(data) or {}
                if user.get("id") != session.user_id or user.get("email") != session.email:
                    self.findings.add("wrong_user", f"/users/me for {session.email} answered {user.get('email')!r} ({rec.rid})")
            elif status in (401, 403):
                self.findings.session_lost(session, f"{status} on /users/me mid-run ({rec.rid}, {self.phase_of(rec.t0)})")
            self.check_common(status, headers, rec)
        c.close()

    def create_worker(self, n: int) -> None:
        """Creates users with the admin cookie; records every 201 and reads the user back at once."""
        c = self.client(f"create{n}")
        pace = Pacer(self.args.create_rate)
        i = 0
        while not self.stop_load.is_set():
            pace()
            i += 1
            email = f"new{n}-{i}-{self.run_id}@chaos.test"
            body = json.dumps({"email": email, "password": "pw"}).encode()
            status, data, headers, rec = c.request("POST", "/api/v1/users", "create", cookie=self.admin.cookie, body=body, content_type="application/json")
            self.check_common(status, headers, rec)
            if status == 201:
                user = parse_json(data) or {}
                if user.get("email") != email:
                    self.findings.add("wrong_user", f"create {email} answered {user.get('email')!r} ({rec.rid})")
                with self.lock:
                    self.created[user["id"]] = email
                # Read it back through the balancer (usually another process).
                for _ in range(50):
                    status, data, headers, rec = c.request("GET", f"/api/v1/users/{user['id']}", "read-back", cookie=self.admin.cookie)
                    self.check_common(status, headers, rec)
                    if status == 503 or status == TRANSPORT:
                        time.sleep(0.05)
                        continue
                    if status == 404:
                        self.findings.add("stale_reads", f"{email} ({user['id']}): 201, then 404 on read-back ({rec.rid})")
                    elif status == 200 and (parse_json(data) or {}).get("email") != email:
                        self.findings.add("wrong_user", f"read-back of {user['id']} answered another user ({rec.rid})")
                    elif status in (401, 403):
                        self.findings.session_lost(self.admin, f"{status} on a read-back mid-run ({rec.rid})")
                    break
            elif status in (401, 403):
                self.findings.session_lost(self.admin, f"{status} on a create mid-run ({rec.rid})")
            elif status != 503 and status != 409:
                with self.lock:
                    self.ambiguous_creates.append(email)
            if status == 503:
                time.sleep(0.02)
        c.close()

    def login_someone(self, c: Client, rng: random.Random, kind: str) -> Session | None:
        """Logs a random user in; the session (kept in flow_sessions, checked at the end), or None (a 503 backs off)."""
        user = rng.choice(self.users)
        status, session, rec, headers = self.login(c, user["email"], user["password"], kind=kind)
        self.check_common(status, headers, rec)
        if status != 200 or session is None:
            if status == 503:
                time.sleep(0.02)
            return None
        with self.lock:
            self.flow_sessions.append(session)
        return session

    def session_worker(self, n: int) -> None:
        """Logs users in and out: login -> /me (must be the user) -> logout -> /me (must be 403)."""
        c = self.client(f"flow{n}")
        rng = random.Random(1000 + n)
        pace = Pacer(self.args.flow_rate)
        while not self.stop_load.is_set():
            pace()
            session = self.login_someone(c, rng, "login")
            if session is None:
                continue
            # /me until it answers (503 while Redis is away): 200 naming the user, never 403.
            self.flow_me(c, session, expect_valid=True)
            if self.stop_load.is_set():
                break
            self.flow_logout(c, session)
            if session.logged_out and not session.ambiguous:
                self.flow_me(c, session, expect_valid=False)
            with self.lock:
                self.flows += 1
        c.close()

    def flow_me(self, c: Client, session: Session, expect_valid: bool) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, data, headers, rec = c.request("GET", "/api/v1/users/me", "flow-me" if expect_valid else "after-logout", cookie=session.cookie)
            self.check_common(status, headers, rec)
            if status in (503, TRANSPORT) or (status >= 500 and rec.origin == "proxy"):
                if self.stop_load.is_set():
                    return
                time.sleep(0.05)
                continue
            if status == 200:
                user = parse_json(data) or {}
                if user.get("id") != session.user_id:
                    self.findings.add("wrong_user", f"/users/me for {session.email} answered {user.get('email')!r} ({rec.rid})")
                if not expect_valid:
                    if self.within_window(rec.t0 + rec.dur, session.revoked_at):
                        time.sleep(0.002)
                        continue  # answered from another process's cache before the invalidation reached it
                    self.findings.add("revoked_still_valid", f"{session.email}: 200 after a logout that answered 200 ({rec.rid})")
            elif status == 403:
                if expect_valid:
                    self.findings.session_lost(session, f"403 right after login ({rec.rid}, {self.phase_of(rec.t0)})")
                else:
                    rec.expected = True
            return

    def flow_logout(self, c: Client, session: Session) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, data, headers, rec = c.request("DELETE", "/api/v1/auth_session/logout", "logout", cookie=session.cookie)
            self.check_common(status, headers, rec)
            if status == 200:
                session.logged_out = True
                session.revoked_at = rec.t0 + rec.dur
                return
            if status == 403:
                # Right only when an earlier attempt did delete it: our earlier attempt got a 503 whose
                # command Redis ran anyway, or nginx moved this DELETE after its first instance died (the
                # access log shows it). Otherwise the session was gone before its logout: lost.
                earlier_attempt = session.ambiguous
                session.logged_out = True
                session.ambiguous = True
                rec.expected = True
                with self.lock:
                    self.pending_logout_403.append((session, rec, earlier_attempt))
                return
            # 503 (Redis away) or a proxy error: the outcome is unknown; try again.
            session.ambiguous = True
            if self.stop_load.is_set():
                session.logged_out = True  # may or may not be; never counted as lost
                return
            time.sleep(0.05)

    # -- revocation reaches every instance --

    def direct_clients(self, name: str) -> list[Client]:
        """One keep-alive connection per instance, straight to it (not through nginx)."""
        return [Client("127.0.0.1", port, f"{name}-i{i + 1}", self.args.client_timeout, self.records) for i, port in enumerate(self.cluster.app_ports)]

    def check_direct(self, status: int, headers: dict, rec: Rec) -> None:
        """check_common for a request straight to an instance: a refused connection is an instance that is down
        (kill -9 rounds), kept for the report, not a proxy error."""
        if status == TRANSPORT:
            self.direct_transport.append(rec)
        else:
            self.check_common(status, headers, rec)

    def revoke_worker(self, n: int) -> None:
        """Login -> /users/me through every instance (each one's near-cache holds the session) -> revoke it
        through one instance (logout, or every 4th round a Redis DEL of the session key, as an operator would)
        -> poll every instance until it refuses the cookie. A 200 after the revocation answered is a failure;
        the delay until each instance refused is measured, up to --revocation-bound."""
        c = self.client(f"revoke{n}")
        direct = self.direct_clients(f"revoke{n}")
        rng = random.Random(2000 + n)
        pace = Pacer(self.args.revoke_rate)
        turn = 0
        while not self.stop_load.is_set():
            pace()
            session = self.login_someone(c, rng, "revoke-login")  # valid at the end unless revoked below
            if session is None:
                continue
            warmed = []
            for i, d in enumerate(direct):
                if self.direct_me_until_answered(d, session, deadline=time.monotonic() + 5):
                    warmed.append(i)
            if self.stop_load.is_set():
                break
            via = turn % len(direct)
            use_del = turn % 4 == 3
            turn += 1
            how = f"logout through instance {via + 1}"
            answered = None
            if use_del:
                answered = self.redis_del_session(session)
                how = "redis DEL of the session key"
            if answered is None:
                answered = self.direct_logout(direct[via], session)
                how = f"logout through instance {via + 1}"
                if answered is None:
                    session.logged_out = session.ambiguous = True  # outcome unknown: neither valid nor revoked for sure
                    continue
            self.revocations["redis DEL" if how.startswith("redis") else "logout"] += 1
            session.logged_out = True
            with self.lock:
                self.revoked.append(session)
            self.poll_refused(direct, session, warmed, answered, how)
        c.close()
        for d in direct:
            d.close()

    def direct_me_until_answered(self, d: Client, session: Session, deadline: float) -> bool:
        """GET /users/me on one instance until it answers (503 while Redis is away); True on a 200 naming the user."""
        while time.monotonic() < deadline and not self.stop_load.is_set():
            status, data, headers, rec = d.request("GET", "/api/v1/users/me", "revoke-warm", cookie=session.cookie)
            self.check_direct(status, headers, rec)
            if status == 200:
                if (parse_json(data) or {}).get("id") != session.user_id:
                    self.findings.add("wrong_user", f"/users/me for {session.email} answered another user ({rec.rid})")
                return True
            if status in (401, 403):
                self.findings.session_lost(session, f"{status} on {d.name} right after login ({rec.rid}, {self.phase_of(rec.t0)})")
                return False
            if status == TRANSPORT:
                return False  # that instance is down (a kill round)
            time.sleep(0.05)
        return False

    def redis_del_session(self, session: Session) -> float | None:
        """DEL <prefix>session:<sha256 of the cookie> straight in Redis; the time it answered 1, or None."""
        prefix = os.environ.get("REDIS_PREFIX", "session-api:")
        key = prefix + "session:" + hashlib.sha256(session.cookie.encode()).hexdigest()
        try:
            deleted = self.cluster.redis_query("DEL", key, timeout=2.0)
        except (OSError, RedisReplyError, RuntimeError, StopIteration, ConnectionError):
            return None  # Redis away: fall back to a logout
        if deleted != 1:
            self.findings.add("notes", f"redis DEL of the session of {session.email} deleted {deleted} keys (key {key})")
            return None
        return time.monotonic()

    def direct_logout(self, d: Client, session: Session) -> float | None:
        """DELETE logout on one instance until it answers 200 (or 403 after an earlier attempt); the time of that
        answer, or None when the outcome stayed unknown."""
        deadline = time.monotonic() + 30
        earlier_attempt = False
        while time.monotonic() < deadline and not self.stop_load.is_set():
            status, _, headers, rec = d.request("DELETE", "/api/v1/auth_session/logout", "revoke-logout", cookie=session.cookie)
            self.check_direct(status, headers, rec)
            if status == 200:
                return rec.t0 + rec.dur
            if status == 403:
                rec.expected = True
                if not earlier_attempt:
                    self.findings.session_lost(session, f"its logout on {d.name} answered 403 ({rec.rid}): gone before it was logged out")
                return rec.t0 + rec.dur
            if status == TRANSPORT:
                return None  # the instance died under it (a kill round): outcome unknown
            earlier_attempt = True  # a 503: Redis may have run it
            time.sleep(0.05)
        return None

    def poll_refused(self, direct: list[Client], session: Session, warmed: list[int], answered: float, how: str) -> None:
        """Polls every instance (those that served the session first) until each refuses the cookie."""
        bound = self.args.revocation_bound
        pending = list(range(len(direct)))
        stale: dict[int, list] = {}  # instance -> [200s, first rid, ms after, last ms after]
        while pending and time.monotonic() < answered + bound:
            for i in list(pending):
                status, _, headers, rec = direct[i].request("GET", "/api/v1/users/me", "revoke-poll", cookie=session.cookie)
                self.check_direct(status, headers, rec)
                after = rec.t0 + rec.dur - answered
                if status in (401, 403):
                    rec.expected = True
                    pending.remove(i)
                    if i in warmed:
                        with self.lock:
                            self.revocation_delays.append(after)
                elif status == 200 and not self.within_window(rec.t0 + rec.dur, answered):
                    entry = stale.setdefault(i, [0, rec.rid, after * 1000, 0.0])
                    entry[0] += 1
                    entry[3] = after * 1000
                elif status == TRANSPORT:
                    pending.remove(i)
                    self.count_unmeasured("instance down")
            if pending:
                time.sleep(0.002)
        for i in pending:
            self.count_unmeasured(f"still 200 after {bound:.1f} s" if i in stale else f"only 503s for {bound:.1f} s")
        for i, (count, rid, first_ms, last_ms) in sorted(stale.items()):
            with self.lock:
                self.revocation_200s += count
            refused = "never refused" if i in pending else "then refused"
            self.findings.add(
                "revoked_still_valid",
                f"{session.email}: {count} x 200 from instance {i + 1} from {first_ms:.1f} to {last_ms:.1f} ms after its {how} answered, {refused} "
                f"(first {rid}, {self.phase_of(answered)})",
            )

    def within_window(self, answered_at: float, revoked_at: float | None) -> bool:
        """Whether a 200 answered at `answered_at` is inside the propagation window of a revocation that answered at
        `revoked_at` (then it is counted, not a failure)."""
        if revoked_at is None or answered_at - revoked_at > self.stale_bound:
            return False
        with self.lock:
            self.window_200s += 1
            self.window_latest = max(self.window_latest, answered_at - revoked_at)
        return True

    def count_unmeasured(self, why: str) -> None:
        with self.lock:
            self.revocation_unmeasured[why] = self.revocation_unmeasured.get(why, 0) + 1

    # -- faults --

    def run_load_and_faults(self) -> None:
        p = self.profile
        threads = []
        for i in range(self.args.me_clients):
            threads.append(threading.Thread(target=self.me_worker, args=(i,), daemon=True))
        for i in range(self.args.create_clients):
            threads.append(threading.Thread(target=self.create_worker, args=(i,), daemon=True))
        for i in range(self.args.flow_clients):
            threads.append(threading.Thread(target=self.session_worker, args=(i,), daemon=True))
        for i in range(self.args.revoke_clients):
            threads.append(threading.Thread(target=self.revoke_worker, args=(i,), daemon=True))
        self.phase("baseline")
        for t in threads:
            t.start()
        time.sleep(p["baseline"])

        failovers = p["failovers"] if self.args.redis != "single" else 0
        rounds = max(p["kills"], p["pauses"], len(p["restarts"]), failovers)
        for r in range(rounds):
            suffix = f" #{r + 1}" if rounds > 1 else ""
            if r < p["kills"]:
                index = r % len(self.cluster.apps)
                self.phase(f"kill -9 instance {index + 1}{suffix}")
                addr = f"127.0.0.1:{self.cluster.app_ports[index]}"
                self.sample_cache([index], final=True)  # its counters die with it
                t_kill = time.monotonic()
                self.cluster.kill_instance(index)
                self.log(f"killed session-api-{index + 1} ({addr}) with SIGKILL; down for {p['dead']:.0f} s")
                time.sleep(p["dead"])
                self.cluster.start_instance(index)
                self.cache_last[index] = {}  # the new process counts from 0
                t_up = time.monotonic()
                self.kills.append({"index": index, "addr": addr, "t_kill": t_kill, "t_up": t_up})
                self.log(f"session-api-{index + 1} started again, healthy after {t_up - t_kill - p['dead']:.2f} s")
                time.sleep(p["after_kill"])
            if r < p["pauses"]:
                self.phase(f"redis SIGSTOP {p['pause']:.0f} s{suffix}")
                t_stop = time.monotonic()
                self.cluster.pause_redis()
                time.sleep(p["pause"])
                self.cluster.resume_redis()
                t_cont = time.monotonic()
                self.redis_stopped.append((t_stop, t_cont))
                self.cluster.wait_ready(timeout=30)
                self.cluster.wait_redis_ready(timeout=60)  # replicas in sync again (Sentinel, Cluster)
                self.redis_faults.append((t_stop, time.monotonic()))
                self.log(f"redis SIGCONT after {t_cont - t_stop:.2f} s; every instance ready {time.monotonic() - t_cont:.2f} s later")
                time.sleep(p["after_pause"])
            if r < len(p["restarts"]):
                sig = signal.SIGKILL if self.args.redis_kill else signal.Signals[p["restarts"][r]]
                self.phase(f"redis restart ({signal.Signals(sig).name}){suffix}")
                t0 = time.monotonic()
                self.cluster.restart_redis(sig=sig)
                t1 = time.monotonic()
                self.cluster.wait_ready(timeout=30)
                self.redis_faults.append((t0, time.monotonic()))
                self.log(f"redis {signal.Signals(sig).name} + start (same port, same AOF): {t1 - t0:.2f} s; every instance ready {time.monotonic() - t1:.2f} s later")
                time.sleep(p["after_restart"])
            if r < failovers:
                self.phase(f"redis failover (kill -9 {'master' if self.args.redis == 'sentinel' else 'a primary'}){suffix}")
                t0 = time.monotonic()
                port = self.cluster.failover()
                t_switched = time.monotonic()
                self.cluster.wait_ready(timeout=30)
                t_ready = time.monotonic()
                self.log(f"redis {port} killed with SIGKILL; its replica took over after {t_switched - t0:.2f} s; every instance ready {t_ready - t_switched:.2f} s later")
                self.cluster.rejoin(port)
                t_rejoined = time.monotonic()
                self.cluster.wait_ready(timeout=30)
                self.redis_faults.append((t0, time.monotonic()))
                self.failovers.append({"port": port, "t_kill": t0, "t_switched": t_switched, "t_ready": t_ready, "t_rejoined": t_rejoined})
                self.log(f"redis {port} started again: a replica in sync after {t_rejoined - t_ready:.2f} s")
                time.sleep(p["after_failover"])
        self.phase("stop load")
        self.stop_load.set()
        for t in threads:
            t.join(self.args.client_timeout * 3 + 35)
            if t.is_alive():
                self.findings.add("hangs", f"load thread {t.name} did not finish")

    # -- verification --

    def phase_of(self, t: float) -> str:
        name = "setup"
        for phase_name, start in self.phases:
            if t >= start:
                name = phase_name
        return name

    def verify(self) -> None:
        self.phase("final checks")
        self.cluster.wait_ready(timeout=30)
        dead = self.cluster.dead_children()
        if dead:
            self.findings.add("notes", f"children that died on their own: {dead}")
        c = self.client("verify")

        def get(path: str, cookie: str, kind: str, expect: int = 200):
            deadline = time.monotonic() + 20
            while True:
                status, data, headers, rec = c.request("GET", path, kind, cookie=cookie)
                self.check_common(status, headers, rec)
                if status in (503, TRANSPORT) and time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                rec.expected = status == expect and status >= 400
                return status, data

        # Sessions never logged out: valid through every instance and through nginx.
        must_be_valid = [*self.persistent, self.admin, *[s for s in self.flow_sessions if not s.logged_out]]
        for session in must_be_valid:
            answers = []
            for url in self.cluster.instance_urls:
                answers.append(self.direct_me(url, session.cookie))
            answers.append(get("/api/v1/users/me", session.cookie, "final-me"))
            for status, data in answers:
                if status == 200:
                    if (parse_json(data) or {}).get("id") != session.user_id:
                        self.findings.add("wrong_user", f"final /users/me for {session.email} named another user")
                elif status in (401, 403):
                    self.findings.session_lost(session, f"valid before, {status} at the end (never logged out)")
                    break
                else:
                    self.findings.add("notes", f"final /users/me for {session.email}: {status}")
        # Sessions logged out with a 200: must stay invalid.
        for session in [s for s in self.flow_sessions if s.logged_out and not s.ambiguous]:
            status, _ = get("/api/v1/users/me", session.cookie, "final-logged-out", expect=403)
            if status == 200:
                self.findings.add("revoked_still_valid", f"{session.email}: valid at the end after its logout answered 200")
        # Sessions the revocation rounds revoked: refused by every instance, asked straight.
        for session in self.revoked:
            for url in self.cluster.instance_urls:
                status, _ = self.direct_me(url, session.cookie)
                if status == 200:
                    self.findings.add("revoked_still_valid", f"{session.email}: 200 from {url} at the end, after its revocation")
        # Users: every 201 must still be there, by id, and in the listing of every instance. A fresh
        # admin session reads them (the old one is checked above); without one, the store is read directly.
        status, reader, _, _ = self.login(c, self.admin.email, self.admin_password, kind="final-login", retry_until=time.monotonic() + 20)
        if reader is None:
            self.findings.add("notes", f"the admin cannot log in at the end ({status}): users checked in the store itself")
            present = self.users_in_store()
            for uid, email in sorted(self.created.items()):
                if uid not in present:
                    self.findings.user_lost(uid, f"{email} ({uid}): got a 201, absent from the store")
            listing_ids = [None] * len(self.cluster.instance_urls)
        else:
            listing_ids = []
            for url in self.cluster.instance_urls:
                host, port = url.removeprefix("http://").split(":")
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                conn.request("GET", "/api/v1/users", headers={"Cookie": f"{COOKIE}={reader.cookie}"})
                response = conn.getresponse()
                body = response.read()
                conn.close()
                if response.status != 200:
                    self.findings.add("notes", f"GET /api/v1/users on {url}: {response.status}")
                    listing_ids.append(None)
                    continue
                listing_ids.append({u["id"] for u in parse_json(body)})
            for uid, email in sorted(self.created.items()):
                status, data = get(f"/api/v1/users/{uid}", reader.cookie, "final-user")
                if status == 404:
                    self.findings.user_lost(uid, f"{email} ({uid}): got a 201, now 404")
                elif status == 200:
                    if (parse_json(data) or {}).get("email") != email:
                        self.findings.add("wrong_user", f"GET /users/{uid} named another user")
                else:
                    self.findings.add("notes", f"final GET /users/{uid}: {status}")
                for url, ids in zip(self.cluster.instance_urls, listing_ids):
                    if ids is not None and uid not in ids:
                        self.findings.user_lost(uid, f"missing from the listing of {url}")
        self.listing_sizes = [len(ids) if ids is not None else None for ids in listing_ids]
        # Creates whose outcome the client could not know: did they land? (information only)
        if self.ambiguous_creates:
            all_emails = set()
            for user in self.users_in_store().values():
                all_emails.add(user)
            landed = sum(1 for e in self.ambiguous_creates if e in all_emails)
            self.findings.add("notes", f"{len(self.ambiguous_creates)} creates had no answer the client could trust (proxy 502 / timeout); {landed} of them exist")
        c.close()
        self.explain_proxy_errors()
        self.check_redis_windows()
        self.store_count = len(self.users_in_store())
        self.sample_cache(final=True)

    def users_in_store(self) -> dict[str, str]:
        """id -> email of every user, read from the store itself (Redis hashes or .db_User.json)."""
        if self.user_store == "json":
            path = self.data_dir / ".db_User.json"
            return {uid: user["email"] for uid, user in json.loads(path.read_text()).items()} if path.exists() else {}
        prefix = os.environ.get("REDIS_PREFIX", "session-api:")
        users = {}
        for uid in self.cluster.redis_query("SMEMBERS", prefix + "users"):
            # The user's hash carries the user's hash tag (one Redis Cluster slot with its session index).
            email = self.cluster.redis_query("HGET", prefix + "user:{" + uid.decode() + "}", "email")
            if email is not None:
                users[uid.decode()] = email.decode()
        return users

    def access_log(self) -> dict[str, str]:
        entries = {}
        path = self.cluster.nginx_dir / "access.log"
        for line in path.read_text(errors="replace").splitlines():
            match = re.search(r" id=(\S+)$", line)
            if match:
                entries[match.group(1)] = line
        return entries

    def explain_proxy_errors(self) -> None:
        """nginx's own 5xx (HTML, not the app's JSON): allowed only for a POST in flight to an instance
        at the moment it was killed (nginx never resends a POST), as shown by nginx's access log."""
        log = self.access_log()
        self.proxy_explained = []
        for rec in self.records:
            if rec.status < 500:
                continue
            if rec.origin == "app":
                if rec.status != 503:
                    self.findings.add("app_5xx", f"{rec.method} {rec.kind} {rec.rid}: {rec.status}")
                continue
            line = log.get(rec.rid, "")
            upstreams = re.search(r"upstream=(.*?) upstream_status=", line)
            killed = [k for k in self.kills if rec.t0 <= k["t_up"] and rec.t0 + rec.dur >= k["t_kill"] - 0.5]
            explained = rec.method == "POST" and any(upstreams and k["addr"] in upstreams.group(1) for k in killed)
            if explained:
                self.proxy_explained.append(f"{rec.status} {rec.method} {rec.kind} {rec.rid}: {line}")
            else:
                self.findings.add("proxy_5xx_unexplained", f"{rec.status} {rec.method} {rec.kind} {rec.rid}: {line or 'not in the access log'}")
        # Requests nginx moved to another instance after a dead one (upstream list "a, b").
        self.moved = {}
        for line in log.values():
            attempts = re.search(r'"(\S+) .*upstream=(.*?) upstream_status=(.*?) upstream_time=', line)
            if attempts and "," in attempts.group(2):
                key = f"{attempts.group(1)} ({attempts.group(3)})"
                self.moved[key] = self.moved.get(key, 0) + 1
        # 503s while Redis was up and every instance was ready (information: which instance, when).
        self.unexpected_503 = []
        for rec in self.records:
            if rec.status == 503 and not any(rec.t0 < end + 0.05 and rec.t0 + rec.dur > start - 0.05 for start, end in self.redis_faults):
                kill = min(self.kills, key=lambda k: abs(rec.t0 - k["t_up"]), default=None)
                since = f", {rec.t0 - kill['t_up']:+.3f} s from the restart of {kill['addr']}" if kill else ""
                self.unexpected_503.append(f"{rec.method} {rec.kind} {rec.rid} ({self.phase_of(rec.t0)}{since}): {log.get(rec.rid, '')}")
        # A logout answered 403 must be explained: an earlier attempt of the same DELETE reached Redis.
        for session, rec, earlier_attempt in self.pending_logout_403:
            line = log.get(rec.rid, "")
            attempts = re.search(r"upstream_status=(.*?) upstream_time=", line)
            moved = attempts is not None and "," in attempts.group(1)
            if earlier_attempt or moved:
                self.findings.add("notes", f"logout of {session.email} answered 403: an earlier attempt had deleted it ({rec.rid}, {'moved by nginx' if moved else 'after a 503'})")
            else:
                rec.expected = False
                self.findings.session_lost(session, f"its first logout answered 403 ({rec.rid}): gone before it was logged out")

    def check_redis_windows(self) -> None:
        """While Redis was stopped, every request must have ended (503) within the command timeout + margin; during
        a failover (from the kill until every instance is ready again), every 503 within twice the command timeout
        + margin (in a Redis Cluster a command follows redirects and retries for up to about twice the timeout)."""
        self.failover_stats = []
        failover_bound = 2 * self.command_timeout + self.args.margin
        for failover in self.failovers:
            during = [r for r in self.records if r.t0 < failover["t_ready"] and r.t0 + r.dur > failover["t_kill"]]
            for r in during:
                if r.status == 503 and r.dur > failover_bound:
                    self.findings.add("slow_during_failover", f"{r.method} {r.kind} {r.rid}: 503 after {r.dur:.2f} s (bound {failover_bound:.2f} s)")
            ok_after = [r for r in self.records if r.t0 > failover["t_kill"] and 200 <= r.status < 300]
            unavailable = [r for r in during if r.status == 503]
            last_503 = max((r.t0 + r.dur for r in unavailable), default=failover["t_kill"])
            self.failover_stats.append(
                {
                    "port": failover["port"],
                    "switched": failover["t_switched"] - failover["t_kill"],
                    "ready": failover["t_ready"] - failover["t_kill"],
                    "requests": len(during),
                    "503": len(unavailable),
                    "served": sum(1 for r in during if 200 <= r.status < 300),
                    "last_503": last_503 - failover["t_kill"],
                    "max_503": max((r.dur for r in unavailable), default=0.0),
                    "first_ok": (min((r.t0 for r in ok_after), default=failover["t_kill"]) - failover["t_kill"]),
                }
            )
        bound = self.command_timeout + self.args.margin
        self.pause_stats = []
        for t_stop, t_cont in self.redis_stopped:
            during = [r for r in self.records if r.t0 < t_cont and r.t0 + r.dur > t_stop]
            slow = [r for r in during if r.dur > bound]
            for r in slow:
                self.findings.add("slow_while_redis_stopped", f"{r.method} {r.kind} {r.rid}: {r.status} after {r.dur:.2f} s (bound {bound:.2f} s)")
            started = [r for r in during if r.t0 >= t_stop]
            self.pause_stats.append(
                {
                    "requests": len(during),
                    "503": sum(1 for r in during if r.status == 503),
                    "max": max((r.dur for r in during), default=0.0),
                    "max_503": max((r.dur for r in started if r.status == 503), default=0.0),
                }
            )

    # -- report --

    def report(self) -> bool:
        rows = []
        caches = self.cache_caches()
        names = [name for name, _ in self.phases]
        by_phase: dict[str, list[Rec]] = {name: [] for name in names}
        for rec in self.records:
            by_phase.setdefault(self.phase_of(rec.t0), []).append(rec)
        for name in names:
            recs = by_phase.get(name, [])
            if not recs:
                continue
            durations = sorted(r.dur for r in recs)
            p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))]
            ok = sum(1 for r in recs if 200 <= r.status < 300)
            expected = sum(1 for r in recs if r.expected)
            unavailable = sum(1 for r in recs if r.status == 503)
            other = len(recs) - ok - expected - unavailable
            rows.append((name, len(recs), ok, expected, unavailable, other, p99 * 1000, durations[-1] * 1000, *(self.hit_rate(self.cache_by_phase.get(name), c) for c in caches)))
        redis = "" if self.args.redis == "single" else f" --redis {self.args.redis}"
        wait = f" (REDIS_WAIT_REPLICAS={self.args.wait_replicas})" if self.args.wait_replicas else ""
        title = f"chaos{redis} --user-store {self.user_store}{' --short' if self.args.short else ''}"
        print(f"\n== {title}: 3 instances behind nginx, sessions in Redis{wait}, users in {self.user_store}; redis: {self.cluster.redis_description}")
        header = ("phase", "requests", "2xx", "exp.403", "503", "other", "p99 ms", "max ms", *(f"{c} hit" for c in caches))
        width = max(len(r[0]) for r in rows + [header])
        print(f"{header[0]:<{width}}  " + "  ".join(f"{h:>8}" for h in header[1:8]) + "".join(f"  {h:>12}" for h in header[8:]))
        for row in rows:
            print(
                f"{row[0]:<{width}}  {row[1]:>8}  {row[2]:>8}  {row[3]:>8}  {row[4]:>8}  {row[5]:>8}  {row[6]:>8.1f}  {row[7]:>8.1f}"
                + "".join(f"  {cell:>12}" for cell in row[8:])
            )
        total = len(self.records)
        print(f"total {total} requests; {self.flows} login/logout cycles; {len(self.created) - len(self.users)} users created under load; {len(self.users)} users with live sessions")
        other_codes: dict = {}
        for r in self.records:
            if not (200 <= r.status < 300 or r.status == 503 or r.expected):
                key = {TIMEOUT: "timeout", TRANSPORT: "transport"}.get(r.status, f"{r.status} {r.origin}".strip())
                other_codes[f"{r.method} {r.kind} {key}"] = other_codes.get(f"{r.method} {r.kind} {key}", 0) + 1
        if other_codes:
            print("other errors: " + ", ".join(f"{k}: {v}" for k, v in sorted(other_codes.items())))
        if getattr(self, "moved", None):
            print("moved by nginx to another instance (method, upstream statuses): " + ", ".join(f"{k}: {v}" for k, v in sorted(self.moved.items())))
        for entry in getattr(self, "proxy_explained", []):
            print(f"  nginx 502 for a POST in flight to the killed instance (not resent, by design): {entry}")
        unexpected = getattr(self, "unexpected_503", [])
        if unexpected:
            print(f"503 while Redis was up and every instance ready: {len(unexpected)}")
            for entry in unexpected[:10]:
                print(f"  {entry}")
        for i, stats in enumerate(getattr(self, "failover_stats", [])):
            print(
                f"failover #{i + 1}: redis {stats['port']} killed; a replica took over after {stats['switched']:.2f} s, every instance ready after "
                f"{stats['ready']:.2f} s; {stats['requests']} requests overlapped it: {stats['served']} served, {stats['503']} got 503 (slowest "
                f"{stats['max_503']:.2f} s, bound 2 x command timeout + {self.args.margin:.1f} s; the last ended {stats['last_503']:.2f} s after the kill)"
            )
        for i, stats in enumerate(getattr(self, "pause_stats", [])):
            print(
                f"redis stopped #{i + 1}: {stats['requests']} requests overlapped it, {stats['503']} got 503; slowest 503 that started during it "
                f"{stats['max_503']:.2f} s, slowest request overlapping it {stats['max']:.2f} s (bound: command timeout {self.command_timeout:.1f} s + {self.args.margin:.1f} s)"
            )
        print(f"users in the store at the end: {self.store_count} (listing per instance: {self.listing_sizes})")
        totals = self.cache_totals()
        if self.cache_seen:
            counts = "; ".join(
                f"{c}: {self.hit_rate(totals, c)} ({', '.join(f'{r} {totals.get((c, r), 0):.0f}' for r in ('hit', 'miss', 'bypass'))})" for c in caches
            )
            invalidated = ", ".join(f"{c}/{r} {v:.0f}" for (c, r), v in sorted(self.invalidations.items()))
            print(f"near-cache (NEAR_CACHE={self.args.near_cache}) hit rate = hit / (hit + miss + bypass) of {NEAR_CACHE_LOOKUPS}, summed over the instances "
                  f"(set-up and final checks included; the counters of a killed instance scraped just before its kill): {counts}; invalidations: {invalidated or 'none'}")
        else:
            print(f"near-cache hit rate: n/a (NEAR_CACHE={self.args.near_cache}; no instance exported {NEAR_CACHE_LOOKUPS} on its METRICS_PORT)")
        print(f"near-cache at start-up (app logs): {self.startup_lines()}")
        delays = sorted(self.revocation_delays)
        if delays:
            p50 = delays[len(delays) // 2]
            p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
            spread = f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms"
        else:
            spread = "none measured"
        unmeasured = ", ".join(f"{why}: {n}" for why, n in sorted(self.revocation_unmeasured.items())) or "none"
        print(
            f"revocation rounds: {sum(self.revocations.values())} ({self.revocations['logout']} logouts straight to an instance, {self.revocations['redis DEL']} "
            f"Redis DELs of the session key), each after a 200 from every instance; delay from the revocation's answer to the refusal (403) "
            f"by each instance that had served it: {spread} over {len(delays)} (polled every ~2 ms up to --revocation-bound "
            f"{self.args.revocation_bound:.1f} s); 200s after a revocation: {self.revocation_200s}; not measured: {unmeasured}"
        )
        latest = f", the latest {self.window_latest * 1000:.1f} ms after the revocation answered" if self.window_200s else ""
        print(
            f"200s within the propagation window (--stale-bound {self.stale_bound * 1000:.0f} ms; another process answered from its "
            f"near-cache before Redis' invalidation reached it; logout flows and revocation rounds): {self.window_200s}{latest}"
        )
        if self.direct_transport:
            outside = [r for r in self.direct_transport if not any(k["t_kill"] - 0.5 <= r.t0 <= k["t_up"] + 0.5 for k in self.kills)]
            print(f"direct requests to an instance that did not connect: {len(self.direct_transport)} ({len(outside)} outside a kill -9 window)")
            for r in outside[:5]:
                self.findings.add("notes", f"{r.method} {r.kind} {r.rid}: no connection to the instance outside a kill window ({self.phase_of(r.t0)})")
        statuses = getattr(self, "exit_statuses", {})
        print("stopped with SIGTERM, exit statuses: " + ", ".join(f"{name} {status}" for name, status in statuses.items()))
        f = self.findings
        checks = [
            ("sessions lost (valid before, invalid after, never logged out)", f.sessions_lost),
            ("users lost (got a 201, absent now)", f.users_lost),
            ("wrong-user answers", f.wrong_user),
            ("5xx other than 503 (from the app)", f.app_5xx),
            ("nginx 5xx not explained by a killed upstream", f.proxy_5xx_unexplained),
            ("hangs (no answer within the client timeout)", f.hangs),
            ("slow answers while Redis was stopped", f.slow_while_redis_stopped),
            ("slow 503s during a failover", f.slow_during_failover),
            ("logged-out or revoked sessions still valid (any 200 after)", f.revoked_still_valid),
            ("read-back misses (201, then 404 elsewhere)", f.stale_reads),
            ("connection errors from nginx", f.transport_errors),
            ("503 without Retry-After", f.no_retry_after),
        ]
        failed = False
        for label, items in checks:
            items = list(items.values()) if isinstance(items, dict) else items
            print(f"{label:<62} {len(items)}")
            for item in items[:10]:
                print(f"    {item}")
            if len(items) > 10:
                print(f"    ... {len(items) - 10} more")
            failed |= bool(items)
        for note in f.notes[:20]:
            print(f"note: {note}")
        if len(f.notes) > 20:
            print(f"note: ... {len(f.notes) - 20} more")
        print(f"RESULT {self.user_store}: {'FAIL' if failed else 'PASS'}\n", flush=True)
        self.summary = self.cache_summary()
        return not failed

    def run(self) -> bool:
        self.t_start = time.monotonic()
        try:
            self.setup()
            self.run_load_and_faults()
            self.verify()
        finally:
            self.stop_load.set()
            if hasattr(self, "cluster"):
                self.cluster.stop()
                # Lifecycle: on SIGTERM each instance finishes its requests, closes Redis and exits 0.
                bad = {name: status for name, status in self.cluster.exit_statuses.items() if status != 0}
                if bad:
                    self.findings.add("notes", f"exit statuses after SIGTERM that are not 0: {bad}")
                self.exit_statuses = self.cluster.exit_statuses
        return self.report()


def default_data_dir(args, user_store: str) -> Path:
    """./data/chaos-<store>, or ./data/chaos-<sentinel|cluster>-<store>."""
    return REPO / "data" / (f"chaos-{user_store}" if args.redis == "single" else f"chaos-{args.redis}-{user_store}")


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="the CI form (about 25 s of load per user store)")
    parser.add_argument("--user-store", choices=["json", "redis", "both"], default="both", help="default: both, one after the other")
    parser.add_argument("--binary", help="session-api to run (env SESSION_API_BINARY; default: the release build, built when needed)")
    parser.add_argument("--data-dir", help="default: ./data/chaos-<store> (emptied first)")
    parser.add_argument("--users", type=int, default=50, help="users logged in before the faults (default 50)")
    parser.add_argument("--me-clients", type=int, default=4, help="clients calling /users/me (default 4)")
    parser.add_argument("--create-clients", type=int, default=1, help="clients creating users (default 1)")
    parser.add_argument("--flow-clients", type=int, default=2, help="clients logging in and out (default 2)")
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s per /users/me client, 0: no limit (default 100)")
    parser.add_argument("--create-rate", type=float, default=25.0, help="creates/s per creating client, 0: no limit (default 25)")
    parser.add_argument("--flow-rate", type=float, default=20.0, help="login/logout cycles/s per client, 0: no limit (default 20)")
    parser.add_argument("--hash-memory-kib", type=int, default=64, help="PASSWORD_ARGON2_MEMORY_KIB of the cluster, with one pass (default 64: cheap logins)")
    parser.add_argument("--client-timeout", type=float, default=10.0, help="seconds before a request counts as a hang (default 10)")
    parser.add_argument("--margin", type=float, default=0.5, help="seconds over the Redis command timeout a request may take while Redis is stopped (default 0.5)")
    parser.add_argument("--redis-kill", action="store_true", help="stop Redis with SIGKILL (a crash) in every restart round (default: SIGTERM, a clean restart; the long form also has one SIGKILL round)")
    parser.add_argument("--appendfsync", choices=["everysec", "always"], default="everysec", help="Redis's AOF fsync policy (default everysec)")
    parser.add_argument("--redis-db", type=int, default=0, help="Redis database number the instances use (default 0)")
    parser.add_argument(
        "--redis",
        choices=REDIS_MODES,
        default="single",
        help="single (default): one redis-server; sentinel: master, replica and 3 Sentinels; cluster: a Redis Cluster of 3 primaries + 3 replicas. "
        "With sentinel or cluster, the pauses and restarts hit the master (or a primary in turn), and failover rounds kill it with -9",
    )
    parser.add_argument("--wait-replicas", type=int, default=0, help="REDIS_WAIT_REPLICAS for the instances (default 0: logins do not wait)")
    parser.add_argument("--near-cache", choices=["on", "off"], default="on", help="NEAR_CACHE of every instance (default on); the hit rate comes from each one's /metrics")
    parser.add_argument("--revoke-clients", type=int, default=1, help="clients running revocation rounds (default 1)")
    parser.add_argument("--revoke-rate", type=float, default=5.0, help="revocation rounds/s per client, 0: no limit (default 5)")
    parser.add_argument(
        "--stale-bound",
        type=float,
        default=0.25,
        help="seconds after a revocation answered during which another instance may still answer 200 from its near-cache "
        "(counted, not a failure; default 0.25; 0 with --near-cache off)",
    )
    parser.add_argument(
        "--revocation-bound", type=float, default=2.0, help="seconds each instance is polled after a revocation until it refuses the cookie (default 2)"
    )
    args = parser.parse_args(argv)
    if args.redis == "cluster" and args.redis_db:
        parser.error("--redis cluster: a Redis Cluster has only database 0")

    stores = ["json", "redis"] if args.user_store == "both" else [args.user_store]
    if args.data_dir and len(stores) > 1:
        parser.error("--data-dir needs one --user-store")
    binary = resolve_binary(args.binary)
    # SIGTERM/SIGINT: stop the cluster (the `finally` in Chaos.run) and exit non-zero.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started with SIGINT ignored (a background job)
    results = {}
    summaries = {}
    started = time.monotonic()
    for store in stores:
        try:
            chaos = Chaos(args, store, binary)
            results[store] = chaos.run()
            summaries[store] = getattr(chaos, "summary", "")
        except KeyboardInterrupt:
            print("chaos: interrupted", file=sys.stderr)
            return 130
        except (RuntimeError, TimeoutError, OSError) as error:
            print(f"chaos[{store}]: could not run: {error}", file=sys.stderr)
            logs = sorted((Path(args.data_dir or default_data_dir(args, store)) / "logs").glob("app-*.log"))
            if logs:
                tail = logs[0].read_text(errors="replace").splitlines()[-5:]
                print(f"chaos[{store}]: last lines of {logs[0]}:\n  " + "\n  ".join(tail), file=sys.stderr)
            results[store] = False
    summary = ", ".join(f"{store} {'PASS' if ok else 'FAIL'}" + (f" ({summaries[store]})" if summaries.get(store) else "") for store, ok in results.items())
    print(f"chaos: {summary} ({time.monotonic() - started:.0f} s)")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
