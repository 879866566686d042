"""Black-box harness: starts the real `resonance server` on port 0 over a temp data dir.

Contract under test: /work/notes/api-spec.md (docs/api.md once written).
Standard library only. Run:
    RESONANCE_BIN=build/resonance /usr/bin/python3 -m pytest -q tests/integration
RESONANCE_SANITIZED=1 marks an ASan/UBSan build: every wait is stretched by SLOW.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("RESONANCE_BIN", str(REPO / "build" / "resonance"))
SANITIZED = os.environ.get("RESONANCE_SANITIZED") == "1"
# Multiplier for every timeout / "eventually" wait. Never used to loosen an
# "must not happen before" bound, only to give slow builds more time.
SLOW = 4.0 if SANITIZED else 1.0

STARTUP_TIMEOUT_S = 20 * SLOW
REQUEST_TIMEOUT_S = 10 * SLOW
STOP_TIMEOUT_S = 15 * SLOW

TS_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,9})?Z$")
TS_MICROS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
# W3C trace context ids and the traceparent the server and worker write.
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")
ID_RE = re.compile(r"^[0-9a-z]{13}$")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long crash/recovery test; deselect with -m 'not slow'")


# --------------------------------------------------------------------------- time


def parse_ts(s):
    """RFC 3339 UTC ('...Z') -> epoch seconds (float). Asserts the format."""
    assert isinstance(s, str), f"timestamp is not a string: {s!r}"
    m = TS_RE.match(s)
    assert m, f"not an RFC 3339 UTC timestamp: {s!r}"
    dt = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return dt.timestamp() + float(m.group(2) or 0)


def fmt_ts(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def wait_until(pred, timeout, interval=0.02, what="condition"):
    """Polls pred() until it returns something truthy; returns it. Fails after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.1f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


# --------------------------------------------------------------------------- config


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(k):
    return k if _BARE_KEY.match(k) else json.dumps(k)


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # an inline table (inside arrays: [{type = "file"}])
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {v!r} as TOML")


def to_toml(d, prefix=()):
    """Small dict -> TOML writer: scalars first, then one [dotted.table] per nested dict."""
    lines = []
    scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in d.items() if isinstance(v, dict)}
    if prefix and scalars:
        lines.append("[" + ".".join(_toml_key(p) for p in prefix) + "]")
    for k, v in scalars.items():
        lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    if scalars:
        lines.append("")
    for k, v in tables.items():
        lines.append(to_toml(v, prefix + (k,)))
    return "\n".join(lines)


# --------------------------------------------------------------------------- server


class ServerError(Exception):
    pass


class Server:
    """One `resonance server` process over a data dir that survives restarts.

    `config` is None (no --config), a TOML string, or a dict (written with to_toml).
    `args` are extra command-line flags (e.g. --log-level debug).
    """

    def __init__(self, workdir, config=None, name="server", args=()):
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = self.workdir / f"{name}.stderr.log"
        self.stdout_path = self.workdir / f"{name}.stdout.log"
        self.config_path = None
        if config is not None:
            text = config if isinstance(config, str) else to_toml(config)
            self.config_path = self.workdir / f"{name}.toml"
            self.config_path.write_text(text)
        self.args = list(args)
        self.proc = None
        self.port = None
        self.starts = 0

    # -- process control -----------------------------------------------------

    @property
    def addr_file(self):
        return self.data_dir / "listen.addr"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        assert not self.running(), "server already running"
        # A previous run (killed) leaves its listen.addr behind; it names a dead port.
        try:
            self.addr_file.unlink()
        except FileNotFoundError:
            pass
        cmd = [BIN, "server"]
        if self.config_path:
            cmd += ["--config", str(self.config_path)]
        cmd += ["--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir), *self.args]
        self.starts += 1
        with open(self.stderr_path, "ab") as err, open(self.stdout_path, "ab") as out:
            err.write(f"\n===== start #{self.starts}: {' '.join(cmd)}\n".encode())
            err.flush()
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         cwd=str(self.workdir))
        self._wait_ready()
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"server exited with {self.proc.returncode} during startup\n"
                                  + self.stderr_tail())
            try:
                text = self.addr_file.read_text()
            except FileNotFoundError:
                text = ""
            if text.endswith("\n"):
                host, _, port = text.strip().rpartition(":")
                assert host == "127.0.0.1", f"listen.addr names {text!r}"
                self.port = int(port)
                assert self.port > 0, f"listen.addr names port 0: {text!r}"
                break
            if time.monotonic() > deadline:
                raise ServerError("no listen.addr within startup timeout\n" + self.stderr_tail())
            time.sleep(0.01)
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"server exited with {self.proc.returncode} before ready\n"
                                  + self.stderr_tail())
            try:
                status, _, _ = self.request("GET", "/readyz", timeout=2 * SLOW)
                if status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise ServerError("/readyz never answered 200\n" + self.stderr_tail())
            time.sleep(0.02)

    def kill9(self):
        assert self.running(), "kill9 on a server that is not running"
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self, expect_code=0):
        """SIGTERM and wait; asserts the exit code (0 unless told)."""
        assert self.running(), "stop on a server that is not running"
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            pytest.fail(f"server did not exit within {STOP_TIMEOUT_S}s of SIGTERM\n" + self.stderr_tail())
        if expect_code is not None:
            assert code == expect_code, f"server exit code {code} after SIGTERM\n" + self.stderr_tail()
        return code

    def restart(self):
        """Starts again over the same data dir (stops it first if still running)."""
        if self.running():
            self.stop()
        return self.start()

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass

    def sanitizer_report(self):
        """The first ASan/UBSan/LSan report in the server's stderr, or None."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return None
        m = re.search(r"^.*(ERROR: \w+Sanitizer|runtime error:).*$", text, re.M)
        return text[m.start():m.start() + 3000] if m else None

    def stderr_tail(self, lines=40):
        try:
            data = self.stderr_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no stderr file)"
        return "----- server stderr (tail) -----\n" + "\n".join(data[-lines:])

    # -- HTTP ---------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=None):
        """Returns (status, headers, body) with body parsed as JSON when it parses.

        body: dict/list -> JSON with Content-Type application/json; str/bytes -> sent as is
        (Content-Type application/json unless headers say otherwise). headers: dict;
        a value of None removes that header.
        """
        hdrs = {}
        data = None
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = bytes(body)
            hdrs["Content-Type"] = "application/json"
        for k, v in (headers or {}).items():
            for existing in [h for h in hdrs if h.lower() == k.lower()]:
                del hdrs[existing]
            if v is not None:
                hdrs[k] = v
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout or REQUEST_TIMEOUT_S)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, resp.headers, decode_body(raw)
        finally:
            conn.close()

    # -- conveniences used by many tests -----------------------------------

    def enqueue(self, action="echo", expect=201, **fields):
        body = {"action": action}
        body.update(fields)
        status, _, task = self.request("POST", "/api/tasks", body)
        assert status == expect, f"enqueue {body} -> {status} {task}"
        return task

    def get(self, task_id):
        status, _, task = self.request("GET", f"/api/tasks/{task_id}")
        assert status == 200, f"GET task {task_id} -> {status} {task}"
        return task

    def lease(self, queues=("default",), worker="w1", max=1, wait_ms=0, timeout=None):
        status, _, body = self.request("POST", "/api/lease",
                                       {"worker": worker, "queues": list(queues), "max": max,
                                        "wait_ms": wait_ms}, timeout=timeout)
        assert status == 200, f"lease -> {status} {body}"
        assert isinstance(body, dict) and isinstance(body.get("tasks"), list), body
        return body["tasks"]

    def lease_one(self, queues=("default",), worker="w1", timeout=5.0):
        """Leases until one task arrives (bounded by timeout * SLOW)."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            tasks = self.lease(queues, worker=worker, max=1, wait_ms=200)
            if tasks:
                return tasks[0]
            if time.monotonic() > deadline:
                pytest.fail(f"no task leasable from {list(queues)} within {timeout * SLOW:.1f}s")

    def complete(self, task, result=None, expect=200):
        body = {"lease": task["lease"]}
        if result is not None:
            body["result"] = result
        status, _, out = self.request("POST", f"/api/tasks/{task['id']}/complete", body)
        assert status == expect, f"complete -> {status} {out}"
        return out

    def fail(self, task, cls="temporary", message="boom", expect=200, **extra):
        err = {"class": cls, "message": message}
        err.update(extra)
        status, _, out = self.request("POST", f"/api/tasks/{task['id']}/fail",
                                      {"lease": task["lease"], "error": err})
        assert status == expect, f"fail -> {status} {out}"
        return out

    def ledger(self):
        """Every ledger event, paging through GET /api/ledger."""
        out, after = [], 0
        while True:
            status, _, body = self.request("GET", f"/api/ledger?after={after}&limit=1000")
            assert status == 200, body
            if not body["events"]:
                return out
            out += body["events"]
            after = body["events"][-1]["seq"]

    def metric(self, series):
        """The value of one series of GET /metrics ('name' or 'name{a="b"}'), None when absent."""
        status, _, body = self.request("GET", "/metrics")
        assert status == 200
        text = body.decode() if isinstance(body, bytes) else str(body)
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def list_tasks(self, **query):
        q = "&".join(f"{k}={v}" for k, v in query.items())
        status, _, body = self.request("GET", "/api/tasks" + (f"?{q}" if q else ""))
        assert status == 200, f"list tasks -> {status} {body}"
        return body


def decode_body(raw):
    if not raw:
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def assert_error(status, headers, body, want_status, want_code=None, mentions=None):
    """Every error: {"error":{"code","message"}} with the given status; message names `mentions`."""
    assert status == want_status, f"want {want_status}, got {status}: {body!r}"
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"error body shape: {body!r}"
    err = body["error"]
    assert isinstance(err.get("code"), str) and err["code"], f"error.code missing: {body!r}"
    assert isinstance(err.get("message"), str) and err["message"], f"error.message missing: {body!r}"
    if want_code is not None:
        assert err["code"] == want_code, f"want code {want_code}, got {body!r}"
    if mentions is not None:
        assert mentions in err["message"], f"message should name {mentions!r}: {err['message']!r}"
    assert headers.get("X-Request-ID"), "error response without X-Request-ID"


def free_port():
    """A port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args, env=None, timeout=None):
    e = dict(os.environ)
    e.pop("RESONANCE_SERVER", None)
    if env:
        e.update(env)
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=e,
                          timeout=timeout or 30 * SLOW, stdin=subprocess.DEVNULL)


# --------------------------------------------------------------------------- fixtures


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in getattr(item, "_resonance_servers", []):
            rep.sections.append((f"server stderr ({srv.workdir.name})", srv.stderr_tail(60)))


@pytest.fixture
def tmp_workdir():
    d = tempfile.mkdtemp(prefix="resonance-it-")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def server_factory(request, tmp_workdir):
    """start(config=None) -> a running Server; every one is killed (by PID) at teardown."""
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"RESONANCE_BIN {BIN} is not an executable; build it first")
    servers = []
    request.node._resonance_servers = servers

    def start(config=None, name=None):
        name = name or f"server{len(servers)}"
        srv = Server(tmp_workdir / name, config=config, name=name)
        servers.append(srv)
        try:
            srv.start()
        except ServerError as e:
            pytest.fail(str(e))
        return srv

    yield start
    for srv in servers:
        srv.cleanup()
    for srv in servers:
        report = srv.sanitizer_report()
        if report:
            pytest.fail(f"sanitizer report in server stderr:\n{report}")


@pytest.fixture
def server(server_factory):
    """A server with a fast lease sweeper and default retry policy."""
    return server_factory({"sweep_interval_ms": 20})


# Short backoffs so retry tests run in well under a second per retry.
FAST_RETRY_CONFIG = {
    "sweep_interval_ms": 20,
    "retry": {
        "temporary": {"base_s": 0.2, "factor": 2},
        "timeout": {"base_s": 0.2, "factor": 2},
    },
}


@pytest.fixture
def fast_server(server_factory):
    return server_factory(FAST_RETRY_CONFIG)
