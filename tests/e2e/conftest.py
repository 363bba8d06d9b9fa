"""Fixtures for Floe's end-to-end tests: real `floe` processes, real Kafka clients.

* `playground`: one `floe playground` process (SQLite + local directory) on free ports.
* `cluster`: `floe metadata` on a fresh PostgreSQL database plus `floe agent`s on S3 (moto),
  each test with its own database and object-store prefix. Needs FLOE_TEST_PG_URL and
  FLOE_TEST_S3_ENDPOINT (tests/run sets them); without them the cluster tests are skipped,
  unless FLOE_E2E_REQUIRE_SERVICES=1, where they fail.

Every process logs to a file under the test's tmp_path; when a test fails, the tail of each
log is attached to the report.
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FLOE_BIN = os.environ.get("FLOE_BIN", str(ROOT / "target" / "debug" / "floe"))
READY_TIMEOUT = float(os.environ.get("FLOE_E2E_READY_TIMEOUT", "60"))
STOP_TIMEOUT = float(os.environ.get("FLOE_E2E_STOP_TIMEOUT", "20"))
FLUSH_MS = os.environ.get("FLOE_E2E_FLUSH_MS", "50")

# Processes started by the current test, for log tails on failure.
_CURRENT: list["FloeProcess"] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


class FloeProcess:
    """One `floe` process with its log file; start/stop may be repeated (restart)."""

    def __init__(self, name: str, args: list[str], log_dir: pathlib.Path, admin_port: int,
                 env: dict[str, str] | None = None):
        self.name = name
        self.args = args
        self.log_path = log_dir / f"{name}.log"
        self.admin_port = admin_port
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        _CURRENT.append(self)

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, wait: bool = True) -> "FloeProcess":
        if not os.path.exists(FLOE_BIN):
            pytest.fail(f"floe binary not found at {FLOE_BIN} (run cargo build or set FLOE_BIN)")
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} already running"
        self.starts += 1
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env["NO_COLOR"] = "1"
        env["RUST_BACKTRACE"] = "1"
        if self.env:
            env.update(self.env)
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts}: {FLOE_BIN} {' '.join(self.args)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen([FLOE_BIN, *self.args], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        log.close()
        pidfile = os.environ.get("FLOE_E2E_PIDFILE")
        if pidfile:  # lets tests/run kill leftovers by PID if pytest itself dies
            with open(pidfile, "a") as f:
                f.write(f"{self.proc.pid}\n")
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} before ready\n"
                                     + self.log_tail())
            try:
                status, _ = http_get(self.admin_url + "/readyz", timeout=2)
                if status == 200:
                    return
                last = f"HTTP {status}"
            except OSError as e:
                last = repr(e)
            time.sleep(0.05)
        raise AssertionError(f"{self.name} not ready after {timeout}s ({last})\n" + self.log_tail())

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit code (None if never run);
        a process that needed SIGKILL returns -9."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return -9
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return f"(no log at {self.log_path})"
        return f"--- {self.name} log tail ({self.log_path}) ---\n" + "\n".join(text[-lines:])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for p in list(_CURRENT):
            report.sections.append((f"floe log: {p.name}", p.log_tail()))


@pytest.fixture(autouse=True)
def _track_processes():
    _CURRENT.clear()
    yield
    # Fixtures stop their processes; this is the safety net for anything left behind.
    for p in list(_CURRENT):
        if p.running():
            p.kill()


class Playground:
    """`floe playground` on a data directory that survives restarts."""

    def __init__(self, tmp_path: pathlib.Path, name: str = "playground",
                 extra_args: list[str] | None = None, env: dict[str, str] | None = None,
                 flags: bool = True):
        self.data_dir = tmp_path / f"{name}-data"
        self.port = free_port()
        self.admin_port = free_port()
        if flags:
            args = ["playground", "--data-dir", str(self.data_dir),
                    "--listen", f"127.0.0.1:{self.port}",
                    "--admin-listen", f"127.0.0.1:{self.admin_port}",
                    "--flush-interval-ms", FLUSH_MS,
                    "--auto-create-topics-enable", "false"]
        else:  # the same settings through FLOE_* environment variables
            args = ["playground"]
            env = {"FLOE_DATA_DIR": str(self.data_dir),
                   "FLOE_LISTEN": f"127.0.0.1:{self.port}",
                   "FLOE_ADMIN_LISTEN": f"127.0.0.1:{self.admin_port}",
                   "FLOE_FLUSH_INTERVAL_MS": FLUSH_MS,
                   "FLOE_AUTO_CREATE_TOPICS_ENABLE": "false", **(env or {})}
        self.process = FloeProcess(name, args + (extra_args or []), tmp_path, self.admin_port, env)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return self.process.admin_url

    def start(self) -> "Playground":
        self.process.start()
        return self

    def stop(self) -> int | None:
        return self.process.stop()

    def restart(self) -> None:
        rc = self.stop()
        assert rc == 0, f"playground exit code after SIGTERM: {rc}\n{self.process.log_tail()}"
        self.start()


@pytest.fixture
def playground(tmp_path):
    pg = Playground(tmp_path).start()
    yield pg
    pg.stop()


@pytest.fixture
def playground_factory(tmp_path):
    made: list[Playground] = []

    def make(**kw) -> Playground:
        pg = Playground(tmp_path, name=f"playground{len(made)}", **kw)
        made.append(pg)
        return pg

    yield make
    for pg in made:
        pg.stop()


def _services_or_skip() -> tuple[str, str, str]:
    pg = os.environ.get("FLOE_TEST_PG_URL")
    s3 = os.environ.get("FLOE_TEST_S3_ENDPOINT")
    if not pg or not s3:
        msg = "FLOE_TEST_PG_URL / FLOE_TEST_S3_ENDPOINT not set (run tests/run)"
        if os.environ.get("FLOE_E2E_REQUIRE_SERVICES") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return pg, s3, os.environ.get("FLOE_TEST_S3_BUCKET", "floe-test")


def _psql(url: str, sql: str) -> None:
    r = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"psql failed: {sql}: {r.stderr}"


class Cluster:
    """`floe metadata` on its own PostgreSQL database, plus agents on one S3 prefix."""

    def __init__(self, tmp_path: pathlib.Path, pg_url: str, s3_endpoint: str, bucket: str):
        self.tmp_path = tmp_path
        self.s3_endpoint = s3_endpoint
        self.bucket = bucket
        tag = uuid.uuid4().hex[:12]
        self.db_name = f"floe_e2e_{tag}"
        self.pg_admin_url = pg_url
        base, _, _ = pg_url.rpartition("/")
        self.db_url = f"{base}/{self.db_name}"
        _psql(pg_url, f"CREATE DATABASE {self.db_name}")
        self.prefix = f"e2e-{tag}"
        self.object_store = f"s3://{bucket}/{self.prefix}"
        self.md_port = free_port()
        md_admin = free_port()
        self.metadata = FloeProcess(
            "metadata",
            ["metadata", "--database-url", self.db_url, "--listen", f"127.0.0.1:{self.md_port}",
             "--admin-listen", f"127.0.0.1:{md_admin}"],
            tmp_path, md_admin)
        self.agents: list[Agent] = []
        self.compactors: list[FloeProcess] = []

    @property
    def metadata_url(self) -> str:
        return f"http://127.0.0.1:{self.md_port}"

    def start(self, agents: int = 1) -> "Cluster":
        self.metadata.start()
        for _ in range(agents):
            self.add_agent()
        return self

    def add_agent(self, zone: str = "zone-a", extra_args: list[str] | None = None,
                  start: bool = True) -> "Agent":
        a = Agent(self, len(self.agents) + 1, zone, extra_args or [])
        self.agents.append(a)
        if start:
            a.start()
        return a

    def add_compactor(self, extra_args: list[str] | None = None) -> FloeProcess:
        """A `floe compactor` on this cluster, started; fast passes and a 1 s grace period
        unless `extra_args` say otherwise."""
        admin_port = free_port()
        flags = {"--compactor-interval-ms": "200", "--compactor-grace-ms": "1000",
                 "--compactor-orphan-interval-ms": "1000"}
        extra = list(extra_args or [])
        for i in range(0, len(extra) - 1, 2):
            flags.pop(extra[i], None)
        args = ["compactor", "--metadata-url", self.metadata_url,
                "--object-store", self.object_store, "--s3-endpoint", self.s3_endpoint,
                "--admin-listen", f"127.0.0.1:{admin_port}",
                *[x for kv in flags.items() for x in kv], *extra]
        p = FloeProcess(f"compactor{len(self.compactors) + 1}", args, self.tmp_path, admin_port)
        self.compactors.append(p)
        return p.start()

    @property
    def bootstrap(self) -> str:
        return self.agents[0].bootstrap

    def close(self) -> None:
        for c in self.compactors:
            c.stop()
        for a in self.agents:
            a.process.stop()
        self.metadata.stop()
        try:
            _psql(self.pg_admin_url, f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
        except AssertionError:
            pass


class Agent:
    def __init__(self, cluster: Cluster, node_id: int, zone: str, extra_args: list[str]):
        self.node_id = node_id
        self.zone = zone
        self.port = free_port()
        self.admin_port = free_port()
        args = ["agent", "--metadata-url", cluster.metadata_url,
                "--object-store", cluster.object_store,
                "--s3-endpoint", cluster.s3_endpoint,
                "--zone", zone,
                "--node-id", str(node_id),
                "--listen", f"127.0.0.1:{self.port}",
                "--advertise", f"127.0.0.1:{self.port}",
                "--admin-listen", f"127.0.0.1:{self.admin_port}",
                "--flush-interval-ms", FLUSH_MS,
                "--auto-create-topics-enable", "false", *extra_args]
        self.process = FloeProcess(f"agent{node_id}", args, cluster.tmp_path, self.admin_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return self.process.admin_url

    def start(self) -> "Agent":
        self.process.start()
        return self

    def stop(self) -> int | None:
        return self.process.stop()

    def restart(self) -> None:
        rc = self.stop()
        assert rc == 0, f"agent exit code after SIGTERM: {rc}\n{self.process.log_tail()}"
        self.start()


@pytest.fixture
def cluster_factory(tmp_path):
    pg, s3, bucket = _services_or_skip()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "floe-test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "floe-test")
    os.environ.setdefault("AWS_REGION", "us-east-1")
    made: list[Cluster] = []

    def make(agents: int = 1) -> Cluster:
        c = Cluster(tmp_path, pg, s3, bucket)
        made.append(c)
        return c.start(agents)

    yield make
    for c in made:
        c.close()


@pytest.fixture
def cluster(cluster_factory):
    return cluster_factory(1)
