#!/usr/bin/env python3
"""A local session-api cluster: Redis (one redis-server, a Sentinel set or a Redis Cluster), N session-api
processes and nginx in front.

Python 3 standard library only; loopback only; every child is started by this module, tracked by PID,
and stopped by PID (SIGTERM, then SIGKILL after a bound). Nothing outside the data directory is written.

    from clusterlib import Cluster
    with Cluster(binary=".build/release/session-api", data_dir="data/cluster") as cluster:
        print(cluster.front_url)
        cluster.kill_instance(0)          # kill -9
        cluster.start_instance(0)         # same port, waits until /healthz answers
        cluster.pause_redis(); cluster.resume_redis()
        cluster.restart_redis()           # SIGTERM (final AOF fsync), start again: same port, same dir

    # Redis with failover: redis_mode="sentinel" (master, replica, 3 Sentinels) or "cluster" (3 primaries, 3 replicas)
    with Cluster(binary, data_dir, redis_mode="cluster") as cluster:
        port = cluster.failover()         # kill -9 a primary, wait until its replica took over and the apps answer
        cluster.rejoin(port)              # start it again: it comes back as a replica

Layout under the data directory:
    .db_User.json            users (USER_STORE=json), shared by every instance (DATA_DIR)
    redis/                   redis-server's AOF (appendonly yes) and redis.log; with Sentinel or Cluster, one
                             directory per server: redis/node-<port>/ (AOF, redis.log, node.conf or nodes.conf)
                             and redis/sentinel-<port>/ (sentinel.conf, rewritten by the Sentinel)
    nginx/                   nginx.conf, nginx.pid, error.log, access.log, tmp/ (temp paths)
    logs/app-<i>.log         each instance's stdout and stderr (appended across restarts)

Children are started with `setpriv --pdeathsig SIGTERM` when setpriv exists, so that even if the
Python process itself is killed with -9 they do not outlive it. The kernel sends that signal when the
*thread* that forked the child ends: start children from the main thread (or one that lives as long).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


# --- a minimal RESP client (PING, INFO, SCARD, ... for readiness checks and reports) -------------


def _resp_encode(args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _resp_read(f):
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisReplyError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise ConnectionError(f"unexpected reply {line!r}")


class RedisReplyError(Exception):
    pass


def free_cluster_port() -> int:
    """A free port at most 55535 whose cluster bus port (+10000) is free too."""
    while True:
        port = free_port()
        if port <= 55535 and port_is_free(port + 10000):
            return port


def redis_command(port: int, *args, timeout: float = 1.0, db: int = 0):
    """Runs one command on 127.0.0.1:port (in database `db`) and returns the decoded reply (raises on error replies)."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        s.sendall((_resp_encode(["SELECT", db]) if db else b"") + _resp_encode(args))
        with s.makefile("rb") as f:
            if db:
                _resp_read(f)
            return _resp_read(f)


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of metric `name` in Prometheus text (`name{a="x",b="y"} 3`): [(labels, value), ...]."""
    out = []
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, labels = head.partition("{")
        if metric != name:
            continue
        pairs = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels))
        try:
            out.append((pairs, float(value)))
        except ValueError:
            pass
    return out


def info_fields(info) -> dict[str, str]:
    """`INFO` text as a dict (`role` -> `master`, ...)."""
    text = info.decode() if isinstance(info, bytes) else str(info)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


# --- processes ------------------------------------------------------------------------------------


class Child:
    """One child process, started by argv, tracked by PID, stopped by PID."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None, log: Path | None = None, cwd: Path | None = None):
        self.name = name
        self.argv = argv
        self.env = env
        self.log = log
        self.cwd = cwd
        self.popen: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        assert not self.running(), f"{self.name} already runs"
        argv = self.argv
        if _SETPRIV:
            argv = [_SETPRIV, "--pdeathsig", "SIGTERM", "--", *argv]
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        try:
            # A session of its own: a Ctrl-C on the terminal reaches only the controller, which then
            # stops the children in order (nginx, instances, Redis).
            self.popen = subprocess.Popen(
                argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            if self.log:
                out.close()

    def send(self, sig: int) -> None:
        if self.running():
            os.kill(self.popen.pid, sig)

    def wait(self, timeout: float) -> bool:
        """True when the process has exited within `timeout` seconds."""
        if self.popen is None:
            return True
        try:
            self.popen.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self, timeout: float = 15.0, sig: int = signal.SIGTERM) -> int | None:
        """`sig` (SIGTERM), wait up to `timeout` s, then SIGKILL. Returns the exit status."""
        if self.popen is None:
            return None
        if self.running():
            self.send(signal.SIGCONT)  # a stopped process would never act on SIGTERM
            self.send(sig)
            if not self.wait(timeout):
                print(f"clusterlib: {self.name} (pid {self.pid}) ignored {signal.Signals(sig).name} for {timeout:.0f} s: SIGKILL", file=sys.stderr)
                self.send(signal.SIGKILL)
                self.wait(10)
        return self.popen.returncode

    def kill(self) -> None:
        """kill -9, and reap it."""
        self.send(signal.SIGKILL)
        self.wait(10)


_SETPRIV = shutil.which("setpriv")


def wait_until(predicate, timeout: float, what: str, interval: float = 0.02) -> None:
    """Polls `predicate` until it is true; raises TimeoutError naming `what` after `timeout` s.
    A RuntimeError from `predicate` (say, the child died) ends the wait at once; other errors count as "not yet"."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except RuntimeError:
            raise
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def http_status(url: str, timeout: float = 1.0) -> int:
    """The HTTP status of GET `url` (0 when it does not answer)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, urllib.error.URLError):
        return 0


# --- the cluster ----------------------------------------------------------------------------------

REDIS_MODES = ("single", "sentinel", "cluster")
# The name the Sentinels monitor the master under (REDIS_SENTINEL_MASTER).
SENTINEL_MASTER = "session-api"
# Fast failover for a local cluster: a master or primary that does not answer for 3 s is replaced. A
# SIGSTOP of 2 s (the chaos run's pause) stays below it: a pause, not a failover.
DOWN_AFTER_MS = 3000


class Cluster:
    """redis-server + N session-api instances + nginx, all on 127.0.0.1, all children of this process."""

    def __init__(
        self,
        binary: str | Path,
        data_dir: str | Path,
        instances: int = 3,
        front_port: int = 0,
        app_base_port: int = 0,
        redis_port: int = 0,
        user_store: str = "json",
        env: dict[str, str] | None = None,
        log_level: str = "info",
        appendfsync: str = "everysec",
        nginx_workers: int = 1,
        redis_db: int = 0,
        quiet: bool = False,
        redis_mode: str = "single",
        metrics: bool = False,
    ):
        """`front_port`/`app_base_port`/`redis_port` 0: free ports. `env`: extra variables for the instances
        (they also inherit this process's environment; the cluster's own settings win). `redis_mode`: "single"
        (one redis-server on `redis_port`), "sentinel" (a master and a replica, 3 Sentinels; REDIS_SENTINELS) or
        "cluster" (a Redis Cluster of 3 primaries with a replica each; REDIS_CLUSTER_NODES), on free ports.
        `metrics`: each instance gets METRICS_PORT (a free loopback port of its own, kept across its restarts)."""
        if user_store not in ("json", "redis"):
            raise ValueError(f"user store must be json or redis, not {user_store!r}")
        if redis_mode not in REDIS_MODES:
            raise ValueError(f"redis mode must be one of {', '.join(REDIS_MODES)}, not {redis_mode!r}")
        if redis_mode == "cluster" and redis_db:
            raise ValueError("a Redis Cluster has only database 0")
        if instances < 1:
            raise ValueError("at least one instance")
        self.binary = Path(os.path.abspath(binary))
        if not os.access(self.binary, os.X_OK):
            raise FileNotFoundError(f"{self.binary} is not an executable (build it first)")
        for tool in ("redis-server", "nginx"):
            if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
                raise FileNotFoundError(f"{tool} is not installed")
        self.nginx_binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.data_dir = Path(data_dir).resolve()
        self.user_store = user_store
        self.log_level = log_level
        self.appendfsync = appendfsync
        self.nginx_workers = nginx_workers
        self.redis_db = redis_db
        self.quiet = quiet
        self.extra_env = dict(env or {})
        self.redis_mode = redis_mode
        if redis_mode == "single":
            self.redis_ports = [redis_port or free_port()]
        elif redis_mode == "sentinel":
            self.redis_ports = [redis_port or free_port(), free_port()]
        else:
            self.redis_ports = [free_cluster_port() for _ in range(6)]
        self.sentinel_ports = [free_port() for _ in range(3)] if redis_mode == "sentinel" else []
        self.redis_port = self.redis_ports[0]
        self.front_port = front_port or free_port()
        if app_base_port:
            self.app_ports = [app_base_port + i for i in range(instances)]
        else:
            self.app_ports = []
            while len(self.app_ports) < instances:
                port = free_port()
                taken = {*self.redis_ports, *(p + 10000 for p in self.redis_ports), *self.sentinel_ports, self.front_port}
                if port not in self.app_ports and port not in taken:
                    self.app_ports.append(port)
        self.metrics_ports: list[int] = []
        while metrics and len(self.metrics_ports) < instances:
            port = free_port()
            taken = {*self.redis_ports, *(p + 10000 for p in self.redis_ports), *self.sentinel_ports, self.front_port, *self.app_ports}
            if port not in self.metrics_ports and port not in taken:
                self.metrics_ports.append(port)
        self.redis_dir = self.data_dir / "redis"
        self.nginx_dir = self.data_dir / "nginx"
        self.logs_dir = self.data_dir / "logs"
        self.redis_nodes: dict[int, Child] = {}  # port -> redis-server (data nodes and Sentinels)
        self.apps: list[Child] = []
        self.nginx: Child | None = None
        self.redis_paused = False
        self.paused_port: int | None = None
        self._fault_turn = 0  # which primary the next pause or restart of a Redis Cluster hits
        self._down_port: int | None = None  # a server `failover` killed, until `rejoin`

    # -- addresses --

    @property
    def front_url(self) -> str:
        return f"http://{LOOPBACK}:{self.front_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://{LOOPBACK}:{self.redis_port}" + (f"/{self.redis_db}" if self.redis_db else "")

    @property
    def redis_description(self) -> str:
        """What runs, for messages."""
        if self.redis_mode == "sentinel":
            return f"Sentinel master '{SENTINEL_MASTER}' (master {self.redis_ports[0]}, replica {self.redis_ports[1]}; Sentinels {','.join(map(str, self.sentinel_ports))})"
        if self.redis_mode == "cluster":
            return f"Redis Cluster of 3 primaries + 3 replicas ({','.join(map(str, self.redis_ports))})"
        return self.redis_url

    def redis_env(self) -> dict[str, str]:
        """The REDIS_* variables that point an instance (or the CLI) at this Redis."""
        if self.redis_mode == "sentinel":
            env = {"REDIS_SENTINELS": ",".join(f"{LOOPBACK}:{p}" for p in self.sentinel_ports), "REDIS_SENTINEL_MASTER": SENTINEL_MASTER}
            if self.redis_db:
                env["REDIS_URL"] = f"redis://sentinel-master/{self.redis_db}"  # only the database is used
            return env
        if self.redis_mode == "cluster":
            return {"REDIS_CLUSTER_NODES": ",".join(f"{LOOPBACK}:{p}" for p in self.redis_ports)}
        return {"REDIS_URL": self.redis_url}

    def instance_url(self, index: int) -> str:
        return f"http://{LOOPBACK}:{self.app_ports[index]}"

    @property
    def instance_urls(self) -> list[str]:
        return [self.instance_url(i) for i in range(len(self.app_ports))]

    def app_env(self) -> dict[str, str]:
        """The environment every instance (and the CLI) gets."""
        env = dict(os.environ)
        env.update(self.extra_env)
        for name in ("REDIS_URL", "REDIS_SENTINELS", "REDIS_SENTINEL_MASTER", "REDIS_CLUSTER_NODES"):
            env.pop(name, None)
        env.update(self.redis_env())
        env.update(
            AUTH_TYPE="session_redis_auth",
            USER_STORE=self.user_store,
            DATA_DIR=str(self.data_dir),
            TRUSTED_PROXIES=LOOPBACK,
            API_HOST=LOOPBACK,
        )
        env.setdefault("LOG_LEVEL", self.log_level)
        return env

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(f"cluster: {text}", file=sys.stderr, flush=True)

    # -- whole cluster --

    def start(self, timeout: float = 60.0) -> "Cluster":
        """Starts Redis, the instances and nginx, and waits until every instance and the front answer."""
        for port in [*self.redis_ports, *self.sentinel_ports, self.front_port, *self.app_ports, *self.metrics_ports]:
            if not port_is_free(port):
                raise OSError(f"port {port} on {LOOPBACK} is in use")
        self._check_stale_nginx()
        for directory in (self.data_dir, self.redis_dir, self.nginx_dir / "tmp", self.logs_dir):
            directory.mkdir(parents=True, exist_ok=True)
        try:
            self.start_redis(timeout=timeout)
            self.apps = [self._app_child(i) for i in range(len(self.app_ports))]
            for app in self.apps:
                app.start()
            for i in range(len(self.apps)):
                self.wait_healthy(i, timeout=timeout)
            self.start_nginx(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stops every child: nginx first (no new requests), then the instances (they finish in-flight
        requests and close their Redis connections), then Redis (final AOF fsync). SIGTERM, then SIGKILL
        after `timeout` s. No pid file is left behind."""
        self.exit_statuses: dict[str, int | None] = {}
        if self.nginx:
            self.exit_statuses[self.nginx.name] = self.nginx.stop(timeout)
            (self.nginx_dir / "nginx.pid").unlink(missing_ok=True)
        for app in self.apps:
            self.exit_statuses[app.name] = app.stop(timeout)
        # The Sentinels first, so that stopping the master starts no failover.
        for port in [*self.sentinel_ports, *self.redis_ports]:
            node = self.redis_nodes.get(port)
            if node:
                self.exit_statuses[node.name] = node.stop(timeout)
        self.redis_paused = False

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def children(self) -> list[Child]:
        return [c for c in [*self.redis_nodes.values(), *self.apps, self.nginx] if c is not None]

    def dead_children(self) -> list[str]:
        """Names of children that were started and are no longer running (none expected)."""
        return [f"{c.name} (pid {c.pid}, status {c.popen.returncode})" for c in self.children() if c.popen and not c.running()]

    # -- Redis --

    @property
    def redis(self) -> Child | None:
        """The single redis-server, or the current master (Sentinel); None in a Redis Cluster."""
        if self.redis_mode == "cluster":
            return None
        port = self.redis_port if self.redis_mode == "single" else self.current_master_port()
        return self.redis_nodes.get(port)

    def node_dir(self, port: int) -> Path:
        return self.redis_dir if self.redis_mode == "single" else self.redis_dir / f"node-{port}"

    def _data_args(self, port: int) -> list[str]:
        d = self.node_dir(port)
        args = [
            "--bind", LOOPBACK,
            "--port", str(port),
            "--dir", str(d),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", str(d / "redis.log"),
        ]  # fmt: skip
        if self.redis_mode != "single":
            # A replica that needs a full copy gets it at once (Redis waits 5 s by default, for more replicas to
            # share one transfer): until it has it, a failover would promote a replica without the latest writes.
            args += ["--repl-diskless-sync-delay", "0"]
        return args

    def _redis_child(self, port: int) -> Child:
        server = shutil.which("redis-server") or "redis-server"
        d = self.node_dir(port)
        d.mkdir(parents=True, exist_ok=True)
        if self.redis_mode == "single":
            return Child("redis-server", [server, *self._data_args(port)])
        if self.redis_mode == "cluster":
            cluster_args = [
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", str(DOWN_AFTER_MS),
                "--cluster-require-full-coverage", "no", "--cluster-replica-validity-factor", "0",
            ]  # fmt: skip
            return Child(f"redis-{port}", [server, *self._data_args(port), *cluster_args])
        # Sentinel mode: a configuration file, which the Sentinels rewrite when they change the node's role (so a
        # restarted node keeps the role it had). Written once; the replica starts as one.
        conf = d / "node.conf"
        if not conf.exists():
            args = self._data_args(port)
            lines = [f"{name[2:]} {value if value else chr(34) * 2}" for name, value in zip(args[::2], args[1::2])]
            if port != self.redis_ports[0]:
                lines.append(f"replicaof {LOOPBACK} {self.redis_ports[0]}")
            conf.write_text("\n".join(lines) + "\n")
        return Child(f"redis-{port}", [server, str(conf)])

    def _sentinel_child(self, port: int) -> Child:
        d = self.redis_dir / f"sentinel-{port}"
        d.mkdir(parents=True, exist_ok=True)
        conf = d / "sentinel.conf"
        if not conf.exists():
            conf.write_text(
                f"""port {port}
bind {LOOPBACK}
dir {d}
daemonize no
logfile {d / "sentinel.log"}
sentinel monitor {SENTINEL_MASTER} {LOOPBACK} {self.redis_ports[0]} 2
sentinel down-after-milliseconds {SENTINEL_MASTER} {DOWN_AFTER_MS}
sentinel failover-timeout {SENTINEL_MASTER} 10000
sentinel parallel-syncs {SENTINEL_MASTER} 1
"""
            )
        return Child(f"sentinel-{port}", [shutil.which("redis-server") or "redis-server", str(conf), "--sentinel"])

    def start_redis(self, timeout: float = 60.0) -> None:
        """Starts every Redis server (same ports, same directories) and waits until the data is served: one
        server loaded; a master with its replica in sync and Sentinels that know both; a cluster whose 16384
        slots are all served (created with `redis-cli --cluster create` on the first start)."""
        for port in self.redis_ports:
            self.redis_nodes[port] = self._redis_child(port)
            self.redis_nodes[port].start()
        self.redis_paused = False
        for port in self.redis_ports:
            self.wait_node_ready(port, timeout)
        if self.redis_mode == "cluster" and redis_command(self.redis_ports[0], "CLUSTER", "INFO").decode().find("cluster_known_nodes:1\r") >= 0:
            create = subprocess.run(
                ["redis-cli", "--cluster", "create", *[f"{LOOPBACK}:{p}" for p in self.redis_ports], "--cluster-replicas", "1", "--cluster-yes"],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            if create.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {create.stdout[-500:]} {create.stderr[-500:]}")
        for port in self.sentinel_ports:
            self.redis_nodes[port] = self._sentinel_child(port)
            self.redis_nodes[port].start()
        self.wait_redis_ready(timeout)
        self._say(f"redis: {self.redis_description}, AOF under {self.redis_dir}")

    def node_ready(self, port: int) -> bool:
        if redis_command(port, "PING", timeout=0.5) != "PONG":
            return False
        return "loading:0" in redis_command(port, "INFO", "persistence", timeout=0.5).decode()

    def wait_node_ready(self, port: int, timeout: float = 30.0) -> None:
        node = self.redis_nodes[port]

        def ready():
            if not node.running():
                raise RuntimeError(f"{node.name} exited with status {node.popen.returncode}; see {self.node_dir(port) / 'redis.log'}")
            return self.node_ready(port)

        wait_until(ready, timeout, f"redis-server on port {port} (loaded)")

    def redis_ready(self) -> bool:
        """Whether Redis serves every key, with every server that runs in its place (a replica in sync)."""
        if self.redis_mode == "single":
            return self.node_ready(self.redis_port)
        running = [p for p in self.redis_ports if self.redis_nodes[p].running()]
        infos = {p: info_fields(redis_command(p, "INFO", "replication", timeout=0.5)) for p in running}
        if any(not self.node_ready(p) for p in running):
            return False
        replicas = [p for p in running if infos[p].get("role") == "slave"]
        if any(infos[p].get("master_link_status") != "up" for p in replicas):
            return False
        if self.redis_mode == "cluster":
            for p in running:
                info = redis_command(p, "CLUSTER", "INFO", timeout=0.5).decode()
                if "cluster_state:ok" not in info or "cluster_slots_ok:16384" not in info:
                    return False
            return len(self.primary_ports()) == 3
        master = self.current_master_port()
        if master is None or infos.get(master, {}).get("role") != "master":
            return False
        for port in self.sentinel_ports:
            fields = redis_command(port, "SENTINEL", "MASTER", SENTINEL_MASTER, timeout=0.5)
            pairs = dict(zip([f.decode() for f in fields[::2]], [f.decode() for f in fields[1::2]]))
            if pairs.get("flags") != "master" or pairs.get("num-other-sentinels") != "2" or pairs.get("num-slaves") != str(len(replicas)):
                return False
        return True

    def wait_redis_ready(self, timeout: float = 60.0) -> None:
        def ready():
            for port, node in self.redis_nodes.items():
                if not node.running() and port != self._down_port:
                    raise RuntimeError(f"{node.name} exited with status {node.popen.returncode}; see {self.redis_dir}")
            return self.redis_ready()

        wait_until(ready, timeout, f"Redis ({self.redis_description}) to serve every key")

    def current_master_port(self) -> int | None:
        """The master the Sentinels name (Sentinel mode); the one server otherwise; None in a Redis Cluster."""
        if self.redis_mode == "single":
            return self.redis_port
        if self.redis_mode == "cluster":
            return None
        for port in self.sentinel_ports:
            try:
                reply = redis_command(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER, timeout=0.5)
                if reply:
                    return int(reply[1])
            except (OSError, RedisReplyError, ValueError):
                continue
        return None

    def primary_ports(self) -> list[int]:
        """The primaries of a Redis Cluster that serve slots and are not marked failed, as a running node sees them."""
        for port in self.redis_ports:
            if not self.redis_nodes[port].running():
                continue
            primaries = []
            for line in redis_command(port, "CLUSTER", "NODES", timeout=0.5).decode().splitlines():
                fields = line.split()
                if len(fields) >= 9 and "master" in fields[2] and "fail" not in fields[2]:
                    primaries.append(int(fields[1].split("@")[0].rsplit(":", 1)[1]))
            return sorted(primaries)
        return []

    def _fault_target(self) -> int:
        """The server a pause or restart hits: the one server, the master, or the next primary in turn."""
        if self.redis_mode == "cluster":
            primaries = self.primary_ports()
            port = primaries[self._fault_turn % len(primaries)]
            self._fault_turn += 1
            return port
        port = self.current_master_port()
        if port is None:
            raise RuntimeError("the Sentinels name no master")
        return port

    def pause_redis(self) -> None:
        """SIGSTOP: Redis keeps its sockets but answers nothing (a hung Redis). With Sentinel, the master; in a
        Redis Cluster, one primary (in turn)."""
        self.paused_port = self._fault_target()
        self.redis_nodes[self.paused_port].send(signal.SIGSTOP)
        self.redis_paused = True

    def resume_redis(self) -> None:
        self.redis_nodes[self.paused_port].send(signal.SIGCONT)
        self.redis_paused = False

    def stop_redis(self, sig: int = signal.SIGTERM, timeout: float = 15.0, port: int | None = None) -> int | None:
        """SIGTERM: Redis writes and fsyncs the AOF and exits (nothing acknowledged is lost). SIGKILL: a
        crash; with appendfsync everysec Redis may have acknowledged writes it still held in memory while a
        background fsync ran (rare), and a machine crash loses about the last second; with appendfsync
        always, nothing."""
        status = self.redis_nodes[port or self.redis_port].stop(timeout, sig=sig)
        self.redis_paused = False
        return status

    def restart_redis(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Stops Redis with `sig` and starts it again on the same port with the same directory and AOF (with
        Sentinel, the master; in a Redis Cluster, one primary in turn: back within the failover timeout, it
        stays the master). Returns the port."""
        port = self._fault_target()
        self.stop_redis(sig, port=port)
        self.redis_nodes[port] = self._redis_child(port)
        self.redis_nodes[port].start()
        self.wait_node_ready(port, timeout)
        # With replicas: until they have resynchronised with the restarted master, a failover would lose the writes since.
        self.wait_redis_ready(timeout)
        return port

    def failover(self, timeout: float = 60.0) -> int:
        """kill -9 of the master (Sentinel) or of a primary (Cluster, in turn), then waits until its replica serves
        in its place. The killed server stays down: `rejoin` starts it again. Returns its port."""
        if self.redis_mode == "single":
            raise RuntimeError("one redis-server has no replica to fail over to")
        port = self._fault_target()
        self._down_port = port
        self.redis_nodes[port].kill()

        def switched():
            if self.redis_mode == "sentinel":
                master = self.current_master_port()
                return master not in (None, port) and info_fields(redis_command(master, "INFO", "replication", timeout=0.5)).get("role") == "master"
            return port not in self.primary_ports() and self.redis_ready()

        wait_until(switched, timeout, f"a replica to take over from the killed {port}")
        return port

    def rejoin(self, port: int, timeout: float = 60.0) -> None:
        """Starts a server killed by `failover` again (same port, directory, AOF); it comes back as a replica of
        the server that took over. Waits until it is in sync and the Sentinels or the cluster know it."""
        self.redis_nodes[port] = self._redis_child(port)
        self.redis_nodes[port].start()
        self._down_port = None
        self.wait_node_ready(port, timeout)
        self.wait_redis_ready(timeout)

    def data_primaries(self) -> list[int]:
        """The ports of the servers that take writes: the one server, the master, or every primary."""
        if self.redis_mode == "cluster":
            return self.primary_ports()
        return [self.current_master_port() or self.redis_port]

    def node_command(self, port: int, *args, timeout: float = 10.0):
        """One command on one server (INFO, CONFIG, ... of that server)."""
        return redis_command(port, *args, timeout=timeout, db=self.redis_db if self.redis_mode != "cluster" else 0)

    def redis_query(self, *args, timeout: float = 10.0):
        """One command on the data, wherever it lives: the one server, the master, or (following MOVED) the
        primary of the key's slot."""
        if self.redis_mode != "cluster":
            return redis_command(self.current_master_port() or self.redis_port, *args, timeout=timeout, db=self.redis_db)
        port = next(p for p in self.primary_ports())
        for _ in range(5):
            try:
                return redis_command(port, *args, timeout=timeout)
            except RedisReplyError as error:
                parts = str(error).split()
                if parts and parts[0] in ("MOVED", "ASK") and len(parts) == 3:
                    port = int(parts[2].rsplit(":", 1)[1])
                    continue
                raise
        raise RuntimeError(f"too many redirects for {args[:2]}")

    # -- instances --

    def _app_child(self, index: int) -> Child:
        env = self.app_env()
        env["API_PORT"] = str(self.app_ports[index])
        if self.metrics_ports:
            env.update(METRICS_PORT=str(self.metrics_ports[index]), METRICS_HOST=LOOPBACK)
        return Child(f"session-api-{index + 1}", [str(self.binary), "serve"], env=env, log=self.logs_dir / f"app-{index + 1}.log", cwd=self.data_dir)

    def start_instance(self, index: int, timeout: float = 30.0) -> None:
        """Starts instance `index` (again) on its port and waits until /healthz answers."""
        app = self.apps[index]
        if app.running():
            raise RuntimeError(f"{app.name} runs already")
        self.apps[index] = self._app_child(index)
        self.apps[index].start()
        self.wait_healthy(index, timeout)

    def kill_instance(self, index: int, sig: int = signal.SIGKILL) -> None:
        """kill -9 (default) instance `index` and reap it."""
        app = self.apps[index]
        app.send(sig)
        app.wait(30)

    def metrics_text(self, index: int, timeout: float = 2.0) -> str | None:
        """GET /metrics of instance `index` (Prometheus text), or None (no METRICS_PORT, not answering)."""
        if not self.metrics_ports:
            return None
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{self.metrics_ports[index]}/metrics", timeout=timeout) as response:
                return response.read().decode(errors="replace")
        except (OSError, urllib.error.URLError):
            return None

    def healthy(self, index: int) -> bool:
        return http_status(self.instance_url(index) + "/healthz", timeout=0.5) == 200

    def ready(self, index: int) -> bool:
        return http_status(self.instance_url(index) + "/readyz", timeout=2.0) == 200

    def wait_healthy(self, index: int, timeout: float = 30.0) -> None:
        app = self.apps[index]

        def check():
            if not app.running():
                raise RuntimeError(f"{app.name} exited with status {app.popen.returncode}; see {app.log}")
            return self.healthy(index)

        wait_until(check, timeout, f"{app.name} on {self.instance_url(index)}/healthz")
        self._say(f"{app.name} on {self.instance_url(index)} (pid {app.pid})")

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every instance's /readyz is 200 (its stores answer)."""
        for i in range(len(self.apps)):
            wait_until(lambda i=i: self.ready(i), timeout, f"{self.apps[i].name}/readyz")

    # -- nginx --

    def _check_stale_nginx(self) -> None:
        pid_file = self.nginx_dir / "nginx.pid"
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, 0)
            alive = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"nginx")
        except (ValueError, OSError):
            alive = False
        if alive:
            raise RuntimeError(f"an nginx (pid {pid}) already runs for {self.data_dir}: another cluster on this data dir?")
        pid_file.unlink()  # left by a cluster that was killed with -9

    def nginx_config(self) -> str:
        d = self.nginx_dir
        servers = "\n".join(f"        server {LOOPBACK}:{port} max_fails=1 fail_timeout=2s;" for port in self.app_ports)
        return f"""# Generated by scripts/clusterlib.py for {self.data_dir}; regenerated at every start.
daemon off;
master_process on;
worker_processes {self.nginx_workers};
pid {d}/nginx.pid;
error_log {d}/error.log notice;

events {{
    worker_connections 1024;
}}

http {{
    # Every path nginx may write is under the data dir (Debian's compiled-in ones are under /var).
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    # Bodies (the app refuses more than 1 MiB) and responses stay in memory, so the workers never need
    # the temp directories (when nginx runs as root its workers run as an unprivileged user).
    client_max_body_size 2m;
    client_body_buffer_size 2m;
    proxy_max_temp_file_size 0;

    log_format cluster '$time_iso8601 $remote_addr "$request" $status $body_bytes_sent $request_time '
                       'upstream=$upstream_addr upstream_status=$upstream_status '
                       'upstream_time=$upstream_response_time id=$http_x_request_id';
    access_log {d}/access.log cluster;

    upstream session_api {{
        # Round robin, no stickiness: any instance serves any session (they share Redis).
{servers}
        keepalive 32;
        keepalive_timeout 30s;
    }}

    server {{
        listen {LOOPBACK}:{self.front_port};
        server_tokens off;

        location / {{
            proxy_pass http://session_api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 1s;
            proxy_send_timeout 30s;
            proxy_read_timeout 30s;
            # A dead upstream (refused, reset, connect timeout) is retried on the next one, but only for
            # idempotent methods: without `non_idempotent`, nginx never resends a POST (or PATCH) that
            # reached an upstream. The app answers 503 itself when Redis is down: not retried.
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
            proxy_next_upstream_timeout 5s;
        }}
    }}
}}
"""

    def start_nginx(self, timeout: float = 30.0) -> None:
        (self.nginx_dir / "tmp").mkdir(parents=True, exist_ok=True)
        conf = self.nginx_dir / "nginx.conf"
        conf.write_text(self.nginx_config())
        argv = [self.nginx_binary, "-p", str(self.nginx_dir), "-c", str(conf), "-e", str(self.nginx_dir / "error.log")]
        check = subprocess.run([*argv, "-t", "-q"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{check.stderr}")
        self.nginx = Child("nginx", argv, log=self.nginx_dir / "stderr.log")
        self.nginx.start()

        def up():
            if not self.nginx.running():
                raise RuntimeError(f"nginx exited with status {self.nginx.popen.returncode}; see {self.nginx_dir / 'error.log'}")
            return http_status(self.front_url + "/healthz") == 200

        wait_until(up, timeout, f"nginx on {self.front_url}")
        self._say(f"nginx on {self.front_url} (pid {self.nginx.pid}, config {conf})")

    # -- the CLI against this cluster's stores --

    def cli(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.binary), *args], env=self.app_env(), input=stdin, capture_output=True, text=True, check=check, cwd=self.data_dir
        )

    def create_user(self, email: str, password: str) -> dict:
        """`session-api user create` against the cluster's user store; returns its JSON output if any."""
        # The password on stdin: on the command line, other users would see it in ps.
        result = self.cli("user", "create", "--email", email, check=False, stdin=password + "\n")
        if result.returncode != 0:
            raise RuntimeError(f"session-api user create failed ({result.returncode}): {result.stderr.strip()}")
        try:
            return json.loads(result.stdout)
        except ValueError:
            return {"output": result.stdout.strip()}


# --- building the binary --------------------------------------------------------------------------


# How every script builds the release server, as scripts/lib.sh's SWIFT_RELEASE (the same flags, so that one
# build serves them all): Swift's runtime and Foundation linked statically (less resident memory; README, Performance).
SWIFT_RELEASE = ["-c", "release", "--static-swift-stdlib"]


def build_release_binary() -> Path:
    """`swift build SWIFT_RELEASE --product session-api` (a no-op when up to date); returns the binary."""
    subprocess.run(["swift", "build", *SWIFT_RELEASE, "--product", "session-api"], cwd=REPO, check=True)
    out = subprocess.run(["swift", "build", *SWIFT_RELEASE, "--show-bin-path"], cwd=REPO, check=True, capture_output=True, text=True)
    return Path(out.stdout.strip()) / "session-api"


def resolve_binary(binary: str | None) -> Path:
    """`binary` (or $SESSION_API_BINARY) when given, else the release build (built when needed)."""
    binary = binary or os.environ.get("SESSION_API_BINARY")
    if binary:
        path = Path(binary).resolve()
        if not os.access(path, os.X_OK):
            raise SystemExit(f"{path}: not an executable session-api")
        return path
    return build_release_binary()


# --- `scripts/cluster` ----------------------------------------------------------------------------


class _Stop(Exception):
    pass


def _raise_stop(signum, _frame):
    raise _Stop(signal.Signals(signum).name)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def cluster_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/cluster",
        description="Run redis-server, N session-api processes and nginx (round robin) on 127.0.0.1 until Ctrl-C or SIGTERM.",
    )
    parser.add_argument("-n", "--instances", type=int, default=_env_int("CLUSTER_INSTANCES", 3), help="session-api processes (env CLUSTER_INSTANCES, default 3)")
    parser.add_argument("--port", type=int, default=_env_int("CLUSTER_PORT", 8080), help="nginx's port, the front URL (env CLUSTER_PORT, default 8080)")
    parser.add_argument(
        "--app-port", type=int, default=_env_int("CLUSTER_APP_PORT", 8081), help="first instance's port; the others follow (env CLUSTER_APP_PORT, default 8081; 0: free ports)"
    )
    parser.add_argument("--redis-port", type=int, default=_env_int("CLUSTER_REDIS_PORT", 0), help="redis-server's port (env CLUSTER_REDIS_PORT, default: a free port)")
    parser.add_argument("--user-store", choices=["json", "redis"], default=os.environ.get("USER_STORE", "json"), help="where users live (env USER_STORE, default json)")
    parser.add_argument(
        "--redis",
        choices=REDIS_MODES,
        default=os.environ.get("CLUSTER_REDIS", "single"),
        help="single: one redis-server; sentinel: master, replica and 3 Sentinels; cluster: a Redis Cluster of 3 primaries + 3 replicas (env CLUSTER_REDIS, default single)",
    )
    parser.add_argument("--data-dir", default=os.environ.get("CLUSTER_DATA_DIR", str(REPO / "data" / "cluster")), help="everything the cluster writes (env CLUSTER_DATA_DIR, default ./data/cluster)")
    parser.add_argument("--binary", help="session-api to run (env SESSION_API_BINARY; default: the release build, built when needed)")
    args = parser.parse_args(argv)

    # Ctrl-C and SIGTERM end the wait below; `finally` then stops every child in order.
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    cluster = None
    try:
        binary = resolve_binary(args.binary)
        cluster = Cluster(
            binary=binary,
            data_dir=args.data_dir,
            instances=args.instances,
            front_port=args.port,
            app_base_port=args.app_port,
            redis_port=args.redis_port,
            user_store=args.user_store,
            redis_mode=args.redis,
        )
        cluster.start()
        redis_env = " ".join(f"{name}={value}" for name, value in cluster.redis_env().items())
        env = f"USER_STORE={cluster.user_store} {redis_env} DATA_DIR={cluster.data_dir}"
        print(
            f"""
session-api cluster: {len(cluster.apps)} instances behind nginx, sessions in Redis, users in {cluster.user_store}
  front URL   {cluster.front_url}
  instances   {' '.join(cluster.instance_urls)}
  redis       {cluster.redis_description} (AOF in {cluster.redis_dir})
  logs        {cluster.logs_dir}/app-*.log, {cluster.nginx_dir}/access.log, {cluster.nginx_dir}/error.log

Create a first user, then log in:
  {env} \\
    {binary} user create --email bob@example.com     # asks for the password (or pipe it on stdin)
  curl -c jar -d email=bob@example.com -d 'password=correct horse' {cluster.front_url}/api/v1/auth_session/login
  curl -b jar {cluster.front_url}/api/v1/users/me

Ctrl-C (or SIGTERM) stops everything.""",
            flush=True,
        )
        while True:
            dead = cluster.dead_children()
            if dead:
                print(f"cluster: a child exited on its own: {', '.join(dead)}; stopping", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except _Stop as stop:
        print(f"\ncluster: {stop}: stopping", file=sys.stderr)
        return 0
    except (OSError, RuntimeError, TimeoutError, ValueError, subprocess.CalledProcessError) as error:
        print(f"cluster: {error}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if cluster:
            cluster.stop()
            statuses = ", ".join(f"{name} {status}" for name, status in cluster.exit_statuses.items() if status is not None)
            if statuses:
                print(f"cluster: stopped; exit statuses: {statuses}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "cluster":
        sys.exit(cluster_main(sys.argv[2:]))
    print("usage: clusterlib.py cluster [options]  (or import it: from clusterlib import Cluster)", file=sys.stderr)
    sys.exit(2)
