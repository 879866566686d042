"""Structured logs (issue 4): one JSON object per line, the access log, the worker's attempt
lines, the text format, size-based rotation, and the flags and [logging] keys.

Black box: only the files a real `resonance server` / `resonance worker` write are read.
"""

import http.client
import json
import re
import time
from pathlib import Path

import pytest

from conftest import (HEX16, HEX32, REQUEST_TIMEOUT_S, SLOW, STARTUP_TIMEOUT_S, TRACEPARENT_RE,
                      TS_MICROS_RE, Server, ServerError,
                      parse_ts, run_cli, wait_until)
from test_worker import handlers, script, wait_state, worker_factory  # noqa: F401 (fixture)

LEVELS = ("debug", "info", "warn", "error")
# <ts> <LEVEL padded to 5> <module>: <msg> key=value ...
TEXT_LINE_RE = re.compile(r"^(\S+) (DEBUG|INFO |WARN |ERROR) ([A-Za-z0-9_.-]+): (.*)$")
TEXT_FIELD_RE = re.compile(r' ([A-Za-z0-9_.]+)=("(?:[^"\\]|\\.)*"|[^ "]*)(?= |$)')

# A W3C context the tests send: the trace id must come back everywhere.
SENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SENT_PARENT = "00f067aa0ba902b7"
SENT_TP = f"00-{SENT_TRACE}-{SENT_PARENT}-01"


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def flag_server(request, server_factory, tmp_workdir):
    """start(args, config=None) -> a running Server; server_factory's teardown kills it (by pid)."""
    def start(args, config=None, name="flagserver"):
        srv = Server(tmp_workdir / name, config=config, name=name, args=args)
        request.node._resonance_servers.append(srv)  # the list server_factory cleans up
        try:
            srv.start()
        except ServerError as e:
            pytest.fail(str(e))
        return srv
    return start


def raw_request(srv, method, path, body=None, headers=None):
    """(status, headers, raw body bytes): the access log's `bytes` is compared with the raw size."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=REQUEST_TIMEOUT_S)
    try:
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def log_lines(path):
    """Lines of a server/worker stderr file, without the harness's '===== start' markers."""
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return []
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("===== start #")]


def json_lines(path):
    out = []
    for ln in log_lines(path):
        try:
            obj = json.loads(ln)
        except ValueError:
            pytest.fail(f"log line of {path} is not JSON: {ln!r}")
        assert isinstance(obj, dict), f"log line is not a JSON object: {ln!r}"
        out.append(obj)
    return out


def check_line_shape(obj, line=None):
    """The documented keys, in order, and no empty string fields."""
    line = line or json.dumps(obj)
    keys = list(obj.keys())
    assert keys[:4] == ["ts", "level", "msg", "module"], f"keys should start ts, level, msg, module: {line}"
    assert TS_MICROS_RE.match(obj["ts"]), f"ts is not RFC 3339 UTC with 6 fractional digits: {line}"
    assert obj["level"] in LEVELS, f"bad level: {line}"
    assert isinstance(obj["msg"], str) and obj["msg"], f"msg missing: {line}"
    assert isinstance(obj["module"], str) and obj["module"], f"module missing: {line}"
    for k, v in obj.items():
        assert v != "", f"empty string field {k!r} should be omitted: {line}"


def access_lines(path):
    return [o for o in json_lines(path) if o.get("msg") == "request" and o.get("module") == "http"]


def find_access(srv, pred, what):
    return wait_until(lambda: next((o for o in access_lines(srv.stderr_path) if pred(o)), None),
                      timeout=5 * SLOW, what=what)


def task_hex(task_id):
    """Task id (13 chars of 0-9a-z minus i l o u) -> its u64 as 16 lowercase hex digits."""
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    v = 0
    for c in task_id:
        v = v * 32 + alphabet.index(c)
    assert v < 1 << 64
    return format(v, "016x")


# --------------------------------------------------------------------------- (a) every line


def test_every_server_stderr_line_is_a_json_object_with_ts_level_msg_module(server_factory):
    """Given a server that served a 200, a 201, a 404 and a 400, then every stderr line parses as a JSON object
    starting with ts (RFC 3339 UTC, 6 fractional digits, close to now), level, msg, module; the access lines
    of the 404 (route unmatched) and the 400 are among them."""
    t0 = time.time()
    srv = server_factory({"sweep_interval_ms": 20})
    assert raw_request(srv, "GET", "/healthz")[0] == 200
    assert raw_request(srv, "POST", "/api/tasks", {"action": "echo"})[0] == 201
    st404, h404, _ = raw_request(srv, "GET", "/no/such/route")
    assert st404 == 404
    st400, h400, _ = raw_request(srv, "POST", "/api/tasks", b"{not json")
    assert st400 == 400
    srv.stop()
    t1 = time.time()

    objs = json_lines(srv.stderr_path)
    assert len(objs) >= 6, f"too few log lines: {objs}"
    for o in objs:
        check_line_shape(o)
        ts = parse_ts(o["ts"])
        assert t0 - 5 <= ts <= t1 + 5, f"ts {o['ts']} is not close to now (UTC): {o}"
    msgs = [o["msg"] for o in objs]
    assert any(m.startswith("listening on http://127.0.0.1:") for m in msgs), msgs

    acc = access_lines(srv.stderr_path)
    by_id = {o.get("request_id"): o for o in acc}
    miss = by_id.get(h404["X-Request-ID"])
    assert miss, f"no access line for the 404 (request id {h404['X-Request-ID']}): {acc}"
    assert miss["route"] == "unmatched" and miss["path"] == "/no/such/route", miss
    assert miss["status"] == 404 and miss["method"] == "GET" and miss["level"] == "info", miss
    bad = by_id.get(h400["X-Request-ID"])
    assert bad, f"no access line for the 400: {acc}"
    assert bad["status"] == 400 and bad["route"] == "/api/tasks" and bad["method"] == "POST", bad
    assert len(acc) >= 4, acc


# --------------------------------------------------------------------------- (b) access line


def test_access_line_carries_request_and_trace_ids_route_status_and_size(server_factory):
    """Given an enqueue with a traceparent and an X-Request-ID, then the response echoes the ids and its access
    line has that trace_id and request_id, route /api/tasks, status 201, bytes = body size, the span of the
    response's traceparent; GET /api/tasks/ID logs the route pattern; no traceparent -> a fresh trace id."""
    srv = server_factory({"sweep_interval_ms": 20})
    status, hdrs, raw = raw_request(srv, "POST", "/api/tasks", {"action": "echo", "payload": {"k": "v"}},
                                    headers={"traceparent": SENT_TP, "X-Request-ID": "log-req-1"})
    assert status == 201, raw
    task = json.loads(raw)
    assert hdrs["X-Request-ID"] == "log-req-1"
    assert hdrs["X-Trace-ID"] == SENT_TRACE, dict(hdrs)
    m = TRACEPARENT_RE.match(hdrs.get("traceparent", ""))
    assert m, f"response traceparent: {hdrs.get('traceparent')!r}"
    assert m.group(1) == SENT_TRACE
    span = m.group(2)
    assert span != SENT_PARENT, "the response's span must be the server's own, not the caller's"
    assert task["trace_id"] == SENT_TRACE

    line = find_access(srv, lambda o: o.get("request_id") == "log-req-1", "the enqueue's access line")
    check_line_shape(line)
    assert line["level"] == "info" and line["module"] == "http"
    assert line["method"] == "POST" and line["route"] == "/api/tasks" and line["path"] == "/api/tasks", line
    assert line["status"] == 201 and type(line["status"]) is int, line
    assert line["bytes"] == len(raw) and type(line["bytes"]) is int, (line, len(raw))
    assert isinstance(line["duration_ms"], (int, float)) and 0 <= line["duration_ms"] < 10000 * SLOW, line
    assert line["trace_id"] == SENT_TRACE, line
    assert line["span_id"] == span, line

    # GET by id: the route pattern, the concrete path.
    st, h2, raw2 = raw_request(srv, "GET", f"/api/tasks/{task['id']}", headers={"X-Request-ID": "log-req-2"})
    assert st == 200
    got = find_access(srv, lambda o: o.get("request_id") == "log-req-2", "the GET's access line")
    assert got["route"] == "/api/tasks/{id}", got
    assert got["path"] == f"/api/tasks/{task['id']}", got
    assert got["status"] == 200 and got["bytes"] == len(raw2), got
    # No traceparent: a fresh trace id, the one in X-Trace-ID, and a fresh request id echoed in the log.
    assert HEX32.match(h2["X-Trace-ID"]) and h2["X-Trace-ID"] != SENT_TRACE, dict(h2)
    assert got["trace_id"] == h2["X-Trace-ID"], got
    assert got["span_id"] == TRACEPARENT_RE.match(h2["traceparent"]).group(2), (got, dict(h2))

    # An invalid traceparent is ignored: a fresh trace, not a piece of the bad header.
    st, h3, _ = raw_request(srv, "GET", "/healthz", headers={"traceparent": f"00-{'0' * 32}-{SENT_PARENT}-01"})
    assert st == 200
    assert HEX32.match(h3["X-Trace-ID"]) and h3["X-Trace-ID"] != "0" * 32, dict(h3)
    rid = h3["X-Request-ID"]
    assert HEX16.match(rid), rid
    health = find_access(srv, lambda o: o.get("request_id") == rid, "the healthz access line")
    assert health["trace_id"] == h3["X-Trace-ID"] and health["route"] == "/healthz", health


# --------------------------------------------------------------------------- (c) worker


TP_HANDLER = ('import json, os, sys\n'
              'sys.stdin.read()\n'
              'json.dump({"tp": os.environ.get("TRACEPARENT")}, sys.stdout)\n')


def test_worker_attempt_lines_share_the_trace_and_span_the_handler_sees(server_factory, worker_factory,
                                                                          tmp_workdir):
    """Given a worker at --log-level debug and a handler that returns its TRACEPARENT, then 'attempt succeeded'
    (debug, module worker) names the task, the trace id sent at enqueue and the span id of the handler's
    TRACEPARENT; a handler that exits 65 gives 'attempt failed' at info with error_class and error."""
    srv = server_factory({"sweep_interval_ms": 20})
    tp = script(tmp_workdir, "tp.py", TP_HANDLER, interpreter="/usr/bin/python3")
    bad = script(tmp_workdir, "bad.sh", 'cat >/dev/null\necho "no good input" >&2\nexit 65\n')
    w = worker_factory(srv, handlers(tp={"argv": [str(tp)]}, bad={"argv": [str(bad)]}), name="logw",
                       args=("--log-level", "debug"))

    status, _, task = srv.request("POST", "/api/tasks", {"action": "tp"}, headers={"traceparent": SENT_TP})
    assert status == 201, task
    failing = srv.enqueue("bad")
    done = wait_state(srv, task["id"], ("succeeded", "dead"))
    assert done["state"] == "succeeded", done
    m = TRACEPARENT_RE.match(done["result"]["tp"] or "")
    assert m, f"handler's TRACEPARENT: {done['result']!r}"
    assert m.group(1) == SENT_TRACE
    handler_span = m.group(2)
    assert handler_span not in (SENT_PARENT, task_hex(task["id"])), "the attempt gets a span of its own"

    def worker_line(msg, task_id):
        for ln in log_lines(w.log_path):
            try:
                o = json.loads(ln)
            except ValueError:
                continue
            if o.get("msg") == msg and o.get("task_id") == task_id:
                return o
        return None

    ok = wait_until(lambda: worker_line("attempt succeeded", task["id"]), timeout=10 * SLOW,
                    what="the worker's 'attempt succeeded' line")
    check_line_shape(ok)
    assert ok["level"] == "debug" and ok["module"] == "worker", ok
    assert ok["trace_id"] == SENT_TRACE, ok
    assert ok["span_id"] == handler_span, ok
    assert ok["worker"] == "logw" and ok["action"] == "tp" and ok["attempt"] == 1, ok
    assert isinstance(ok["duration_ms"], (int, float)) and ok["duration_ms"] >= 0, ok
    assert "error_class" not in ok and "error" not in ok, ok

    dead = wait_state(srv, failing["id"], ("dead", "succeeded"))
    assert dead["state"] == "dead", dead
    fl = wait_until(lambda: worker_line("attempt failed", failing["id"]), timeout=10 * SLOW,
                    what="the worker's 'attempt failed' line")
    check_line_shape(fl)
    assert fl["level"] == "info" and fl["module"] == "worker", fl
    assert fl["trace_id"] == failing["trace_id"] and HEX16.match(fl["span_id"]), fl
    assert fl["error_class"] == "validation", fl
    assert "status 65" in fl["error"] and "no good input" in fl["error"], fl
    assert fl["action"] == "bad" and fl["attempt"] == 1 and fl["worker"] == "logw", fl

    # Every line the worker wrote is a JSON log object too.
    for ln in log_lines(w.log_path):
        try:
            o = json.loads(ln)
        except ValueError:
            pytest.fail(f"worker log line is not JSON: {ln!r}")
        check_line_shape(o, ln)


def test_worker_at_the_default_level_does_not_log_successes(server_factory, worker_factory, tmp_workdir):
    """Given a worker without --log-level, then a successful attempt writes no 'attempt succeeded' line."""
    srv = server_factory({"sweep_interval_ms": 20})
    tp = script(tmp_workdir, "tp.py", TP_HANDLER, interpreter="/usr/bin/python3")
    w = worker_factory(srv, handlers(tp={"argv": [str(tp)]}), name="quietw")
    task = srv.enqueue("tp")
    assert wait_state(srv, task["id"], ("succeeded", "dead"))["state"] == "succeeded"
    assert w.stop() == 0
    text = w.log()
    assert text.strip(), "the worker logged nothing at all"
    assert "attempt succeeded" not in text, text
    assert all(json.loads(ln)["level"] != "debug" for ln in log_lines(w.log_path)), text


# --------------------------------------------------------------------------- (d) text format


def test_text_format_lines(flag_server, worker_factory, tmp_workdir):
    """Given --log-format text (server and worker), then lines read '<ts> <LEVEL:5> <module>: <msg> k=v ...',
    not JSON, and a value with a space is quoted."""
    srv = flag_server(["--log-format", "text"], config={"sweep_interval_ms": 20})
    st, hdrs, raw = raw_request(srv, "POST", "/api/tasks", {"action": "echo"},
                                headers={"traceparent": SENT_TP, "X-Request-ID": "two words"})
    assert st == 201
    span = TRACEPARENT_RE.match(hdrs["traceparent"]).group(2)
    w = worker_factory(srv, handlers(noop={"type": "noop"}), name="textw",
                       args=("--log-format", "text", "--log-level", "debug"))
    wait_until(lambda: log_lines(w.log_path), timeout=10 * SLOW, what="a worker log line")
    assert w.stop() == 0
    srv.stop()

    lines = log_lines(srv.stderr_path)
    assert len(lines) >= 3, lines
    access = None
    for ln in lines:
        with pytest.raises(ValueError):
            json.loads(ln)
        m = TEXT_LINE_RE.match(ln)
        assert m, f"not '<ts> <LEVEL> <module>: <msg>': {ln!r}"
        assert TS_MICROS_RE.match(m.group(1)), ln
        if m.group(3) == "http" and m.group(4).startswith("request "):
            if 'request_id="two words"' in ln:
                access = ln
    assert access, "no text access line with request_id=\"two words\":\n" + "\n".join(lines)
    assert " INFO  http: request " in access, access
    fields = dict(TEXT_FIELD_RE.findall(" " + access.split(": request", 1)[1]))
    assert fields.get("method") == "POST" and fields.get("route") == "/api/tasks", (fields, access)
    assert fields.get("status") == "201" and fields.get("bytes") == str(len(raw)), (fields, access)
    assert fields.get("request_id") == '"two words"', (fields, access)
    assert fields.get("trace_id") == SENT_TRACE and fields.get("span_id") == span, (fields, access)

    wlines = log_lines(w.log_path)
    assert wlines, "the worker logged nothing"
    for ln in wlines:
        m = TEXT_LINE_RE.match(ln)
        assert m and TS_MICROS_RE.match(m.group(1)), f"worker text line: {ln!r}"


# --------------------------------------------------------------------------- (e) rotation


def test_log_file_rotation_keeps_whole_lines_and_at_most_keep_files(server_factory, tmp_workdir):
    """Given [logging] file, max_bytes 4000, keep 2 and ~200 requests, then FILE, FILE.1, FILE.2 exist and FILE.3
    does not; each is <= 4000 bytes of whole JSON lines, older files hold older lines, and the request ids that
    remain are the newest ones with no gap."""
    logfile = tmp_workdir / "logs" / "server.log"
    logfile.parent.mkdir()
    srv = server_factory({"sweep_interval_ms": 20,
                          "logging": {"file": str(logfile), "max_bytes": 4000, "keep": 2}})
    n = 200
    for i in range(n):
        st, _, _ = raw_request(srv, "GET", "/healthz", headers={"X-Request-ID": f"rot-{i:03d}"})
        assert st == 200
    srv.stop()

    files = [logfile, Path(f"{logfile}.1"), Path(f"{logfile}.2")]
    for f in files:
        assert f.exists(), f"{f} missing; dir has {sorted(p.name for p in logfile.parent.iterdir())}"
    assert not Path(f"{logfile}.3").exists(), "keep = 2 but FILE.3 exists"
    assert sorted(p.name for p in logfile.parent.iterdir()) == ["server.log", "server.log.1", "server.log.2"]

    per_file = []
    for f in files:
        data = f.read_bytes()
        assert len(data) <= 4000, f"{f} has {len(data)} bytes > max_bytes"
        assert data.endswith(b"\n"), f"{f} does not end with a whole line: {data[-200:]!r}"
        objs = []
        for ln in data.decode().splitlines():
            try:
                o = json.loads(ln)
            except ValueError:
                pytest.fail(f"{f}: not a whole JSON line: {ln!r}")
            check_line_shape(o, ln)
            objs.append(o)
        assert objs, f"{f} is empty"
        per_file.append(objs)
    # The rotated files were full: the next line did not fit.
    for f in files[1:]:
        assert f.stat().st_size > 4000 - 600, f"{f} rotated while far from max_bytes ({f.stat().st_size})"

    # Oldest first: FILE.2, FILE.1, FILE.
    ordered = per_file[2] + per_file[1] + per_file[0]
    stamps = [parse_ts(o["ts"]) for o in ordered]
    assert stamps == sorted(stamps), "lines are not in time order across FILE.2, FILE.1, FILE"
    ids = [o["request_id"] for o in ordered if o.get("msg") == "request" and str(o.get("request_id", "")).startswith("rot-")]
    assert ids, "no access lines kept"
    first = int(ids[0][4:])
    assert ids == [f"rot-{i:03d}" for i in range(first, n)], f"kept ids are not the newest, gap-free: {ids}"
    assert first > 0, "nothing was rotated away"
    # Nothing went to stderr but the harness's marker (the log is the file).
    assert not [ln for ln in log_lines(srv.stderr_path) if '"msg":"request"' in ln]


# --------------------------------------------------------------------------- (f) bad values


def _exit2(result, *mentions):
    assert result.returncode == 2, f"exit {result.returncode}; stderr: {result.stderr!r}"
    for m in mentions:
        assert m in result.stderr, f"stderr should name {m!r}: {result.stderr!r}"


def _run_server(tmp_workdir, *args, config=None):
    data = tmp_workdir / f"data-{time.monotonic_ns()}"
    cmd = ["server", "--listen", "127.0.0.1:0", "--data-dir", str(data)]
    if config is not None:
        path = tmp_workdir / f"bad-{time.monotonic_ns()}.toml"
        path.write_text(config)
        cmd += ["--config", str(path)]
    try:
        return run_cli(*cmd, *args, timeout=STARTUP_TIMEOUT_S)
    except Exception as e:  # a server that accepted the value runs until the timeout
        pytest.fail(f"server did not exit on a bad value ({args}, {config!r}): {e}")


def test_bad_log_flags_and_logging_keys_exit_2_naming_them(tmp_workdir):
    """Given a bad --log-level / --log-format on server or worker, or a bad [logging] level, an unknown key or a
    wrong type, then the process exits 2 and its message names the flag or key."""
    _exit2(_run_server(tmp_workdir, "--log-level", "loud"), "--log-level")
    _exit2(_run_server(tmp_workdir, "--log-format", "xml"), "--log-format")
    for args, flag in ((("--log-level", "verbose"), "--log-level"), (("--log-format", "yaml"), "--log-format")):
        try:
            r = run_cli("worker", "--server", "http://127.0.0.1:1", *args, timeout=STARTUP_TIMEOUT_S)
        except Exception as e:
            pytest.fail(f"worker did not exit on {args}: {e}")
        _exit2(r, flag)
    _exit2(_run_server(tmp_workdir, config='[logging]\nlevel = "chatty"\n'), "logging.level")
    _exit2(_run_server(tmp_workdir, config='[logging]\nformat = "xml"\n'), "logging.format")
    _exit2(_run_server(tmp_workdir, config='[logging]\ncolour = true\n'), "logging.colour")
    _exit2(_run_server(tmp_workdir, config='[logging]\nmax_bytes = "big"\n'), "logging.max_bytes")
    _exit2(_run_server(tmp_workdir, config='[logging]\naccess_log = "no"\n'), "logging.access_log")


# --------------------------------------------------------------------------- (g) access_log = false


def test_access_log_false_writes_no_request_lines(server_factory):
    """Given [logging] access_log = false, then requests (ok, 404, 400) log no 'request' line; other lines remain."""
    srv = server_factory({"sweep_interval_ms": 20, "logging": {"access_log": False, "level": "debug"}})
    for _ in range(5):
        assert raw_request(srv, "GET", "/healthz")[0] == 200
    assert raw_request(srv, "POST", "/api/tasks", {"action": "echo"})[0] == 201
    assert raw_request(srv, "GET", "/nope")[0] == 404
    assert raw_request(srv, "POST", "/api/tasks", b"[")[0] == 400
    srv.stop()
    objs = json_lines(srv.stderr_path)
    assert any(o["msg"].startswith("listening on") for o in objs), objs
    assert [o for o in objs if o["msg"] == "request"] == [], "access lines with access_log = false"
    for o in objs:
        check_line_shape(o)
