"""OTLP/HTTP JSON tracing (issue 4): the spans a server and a worker export to a collector, and
export that never slows requests down when the collector is down or never answers.

The collector is an in-test ThreadingHTTPServer that records every POSTed JSON body.
"""

import json
import re
import signal
import socket
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import HEX16, HEX32, STARTUP_TIMEOUT_S, SLOW, TRACEPARENT_RE, free_port, run_cli, wait_until
from test_worker import handlers, script, wait_state, worker_factory  # noqa: F401 (fixture)

DECIMAL = re.compile(r"^[0-9]+$")

SENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
SENT_PARENT = "b7ad6b7169203331"
SENT_TP = f"00-{SENT_TRACE}-{SENT_PARENT}-01"

KIND_INTERNAL, KIND_SERVER, KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER = 1, 2, 3, 4, 5


# --------------------------------------------------------------------------- collector


class Collector:
    """An OTLP/HTTP JSON receiver: records (path, content type, parsed body) of every POST."""

    def __init__(self):
        self.bodies = []
        self.errors = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                with outer.lock:
                    try:
                        outer.bodies.append((self.path, self.headers.get("Content-Type"), json.loads(raw)))
                    except ValueError as e:
                        outer.errors.append(f"not JSON ({e}): {raw[:300]!r}")
                body = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def spans(self):
        """[(resource attributes dict, scope dict, span dict)] of everything received so far."""
        out = []
        with self.lock:
            bodies = list(self.bodies)
        for _, _, body in bodies:
            for rs in body.get("resourceSpans", []):
                res = attrs(rs.get("resource", {}).get("attributes", []))
                for ss in rs.get("scopeSpans", []):
                    for sp in ss.get("spans", []):
                        out.append((res, ss.get("scope", {}), sp))
        return out


@pytest.fixture
def collector():
    c = Collector()
    try:
        yield c
    finally:
        c.stop()


class BlackHole:
    """Accepts connections and never reads or answers them."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done.is_set():
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                continue

    def stop(self):
        self.done.set()
        self.thread.join(timeout=5)
        for c in self.conns:
            c.close()
        self.sock.close()


def attrs(lst):
    """OTLP attribute list -> {key: python value}; intValue (a decimal string) -> int."""
    out = {}
    for a in lst:
        v = a["value"]
        assert len(v) == 1, f"attribute value with not exactly one field: {a}"
        (kind, val), = v.items()
        if kind == "intValue":
            assert isinstance(val, str) and re.match(r"^-?[0-9]+$", val), f"intValue must be a decimal string: {a}"
            val = int(val)
        elif kind == "stringValue":
            assert isinstance(val, str), a
        elif kind == "boolValue":
            assert isinstance(val, bool), a
        elif kind == "doubleValue":
            assert isinstance(val, (int, float)), a
        else:
            pytest.fail(f"unexpected attribute value kind: {a}")
        out[a["key"]] = (kind, val)
    return out


def plain(d):
    return {k: v for k, (_, v) in d.items()}


def task_hex(task_id):
    """Task id (13 chars of 0-9a-z minus i l o u) -> its u64 as 16 lowercase hex digits."""
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    v = 0
    for c in task_id:
        v = v * 32 + alphabet.index(c)
    assert v < 1 << 64
    return format(v, "016x")


def check_span_format(res, scope, sp, t0, t1):
    """Id formats, decimal-string nanos in [t0, t1], kind, status, resource and scope."""
    where = json.dumps(sp)
    assert HEX32.match(sp.get("traceId", "")), f"traceId: {where}"
    assert HEX16.match(sp.get("spanId", "")), f"spanId: {where}"
    if "parentSpanId" in sp:
        assert HEX16.match(sp["parentSpanId"]), f"parentSpanId: {where}"
    assert isinstance(sp.get("name"), str) and sp["name"], where
    for k in ("startTimeUnixNano", "endTimeUnixNano"):
        assert isinstance(sp.get(k), str) and DECIMAL.match(sp[k]), f"{k} must be a decimal string: {where}"
    start, end = int(sp["startTimeUnixNano"]), int(sp["endTimeUnixNano"])
    assert start <= end, f"start after end: {where}"
    assert int((t0 - 5) * 1e9) <= start and end <= int((t1 + 5) * 1e9), f"times are not now: {where}"
    assert sp.get("kind") in (1, 2, 3, 4, 5), where
    assert sp.get("status", {}).get("code") in (1, 2), f"status.code: {where}"
    r = plain(res)
    assert r.get("service.name") == "resonance", res
    assert r.get("resonance.role") in ("server", "worker"), res
    assert isinstance(r.get("service.instance.id"), str) and r["service.instance.id"], res
    assert isinstance(r.get("service.version"), str) and r["service.version"], res
    assert scope.get("name") == "resonance" and isinstance(scope.get("version"), str) and scope["version"], scope


def metric_value(srv, name, labels=""):
    return srv.metric(f"{name}{{{labels}}}" if labels else name)


def tracing(endpoint, **extra):
    t = {"otlp_endpoint": endpoint, "flush_ms": 100}
    t.update(extra)
    return t


def toml_tracing(endpoint, **extra):
    lines = ["[tracing]"]
    for k, v in tracing(endpoint, **extra).items():
        lines.append(f"{k} = {json.dumps(v)}")
    return "\n".join(lines) + "\n"


TP_HANDLER = ('import json, os, sys\n'
              'sys.stdin.read()\n'
              'json.dump({"tp": os.environ.get("TRACEPARENT")}, sys.stdout)\n')


# --------------------------------------------------------------------------- (a) the spans


def test_server_and_worker_export_linked_spans_of_one_trace(server_factory, worker_factory, collector,
                                                             tmp_workdir):
    """Given server and worker exporting to a collector and a task enqueued with a traceparent, then the collector
    gets http.server (parent: the caller), task.enqueue (parent: http.server, id: the task id), task.attempt (from
    the worker, parent: task.enqueue, id: the handler's TRACEPARENT span) and task.finish (parent: the attempt),
    all in the sent trace, with the documented kinds, attributes, formats and resources."""
    t0 = time.time()
    srv = server_factory({"sweep_interval_ms": 20, "tracing": tracing(collector.endpoint)})
    tp = script(tmp_workdir, "tp.py", TP_HANDLER, interpreter="/usr/bin/python3")
    bad = script(tmp_workdir, "bad.sh", 'cat >/dev/null\necho "broken input" >&2\nexit 65\n')
    worker_factory(srv, handlers(tp={"argv": [str(tp)]}, bad={"argv": [str(bad)]}) + toml_tracing(collector.endpoint),
                   name="tracew")

    status, hdrs, task = srv.request("POST", "/api/tasks", {"action": "tp"},
                                     headers={"traceparent": SENT_TP, "X-Request-ID": "trace-req-1"})
    assert status == 201, task
    assert hdrs["X-Trace-ID"] == SENT_TRACE, dict(hdrs)
    m = TRACEPARENT_RE.match(hdrs["traceparent"])
    assert m and m.group(1) == SENT_TRACE, hdrs["traceparent"]
    http_span_id = m.group(2)
    enqueue_id = task_hex(task["id"])

    done = wait_state(srv, task["id"], ("succeeded", "dead"))
    assert done["state"] == "succeeded", done
    hm = TRACEPARENT_RE.match(done["result"]["tp"] or "")
    assert hm and hm.group(1) == SENT_TRACE, done["result"]
    attempt_id = hm.group(2)

    # A failing task (exit 65: dead as validation) in a trace of its own.
    failing = srv.enqueue("bad")
    assert wait_state(srv, failing["id"], ("dead", "succeeded"))["state"] == "dead"
    # A request without traceparent: a root span in a fresh trace.
    st, h_root, _ = srv.request("GET", "/healthz", headers={"X-Request-ID": "trace-root"})
    assert st == 200

    def named(name, trace_id=None):
        return [(r, sc, s) for r, sc, s in collector.spans()
                if s.get("name") == name and (trace_id is None or s.get("traceId") == trace_id)]

    def all_there():
        return (named("http.server", SENT_TRACE) and named("task.enqueue", SENT_TRACE)
                and named("task.attempt", SENT_TRACE) and named("task.finish", SENT_TRACE)
                and named("task.attempt", failing["trace_id"]) and named("task.finish", failing["trace_id"])
                and named("http.server", h_root["X-Trace-ID"]))

    wait_until(all_there, timeout=15 * SLOW, interval=0.05,
               what="http.server, task.enqueue, task.attempt and task.finish spans at the collector")
    t1 = time.time()
    assert not collector.errors, collector.errors
    for path, ctype, _ in list(collector.bodies):
        assert path == "/v1/traces", path
        assert ctype and ctype.startswith("application/json"), ctype
    for res, scope, sp in collector.spans():
        check_span_format(res, scope, sp, t0, t1)

    # http.server: the enqueue request, child of the caller's span.
    servers = [x for x in named("http.server", SENT_TRACE) if x[2]["spanId"] == http_span_id]
    assert len(servers) == 1, f"no http.server span with the response's span id {http_span_id}: " \
                              f"{[s for _, _, s in named('http.server', SENT_TRACE)]}"
    res, _, hs = servers[0]
    assert plain(res)["resonance.role"] == "server", res
    assert hs["kind"] == KIND_SERVER, hs
    assert hs.get("parentSpanId") == SENT_PARENT, hs
    a = attrs(hs["attributes"])
    assert a["http.request.method"] == ("stringValue", "POST"), a
    assert a["http.route"] == ("stringValue", "/api/tasks"), a
    assert a["url.path"] == ("stringValue", "/api/tasks"), a
    assert a["http.response.status_code"] == ("intValue", 201), a
    assert a["http.request_id"] == ("stringValue", "trace-req-1"), a
    assert hs["status"]["code"] == 1, hs

    # task.enqueue: child of http.server; its span id is the task id's u64.
    enq = named("task.enqueue", SENT_TRACE)
    assert len(enq) == 1, enq
    res, _, es = enq[0]
    assert plain(res)["resonance.role"] == "server"
    assert es["kind"] == KIND_PRODUCER, es
    assert es["spanId"] == enqueue_id, (es, task["id"])
    assert es.get("parentSpanId") == http_span_id, es
    assert plain(attrs(es["attributes"])) == {"task.id": task["id"], "task.queue": "default", "task.action": "tp",
                                              "task.state": "ready"}, es
    assert int(hs["startTimeUnixNano"]) <= int(es["startTimeUnixNano"]) <= int(es["endTimeUnixNano"]) \
        <= int(hs["endTimeUnixNano"]) + 10**9, (hs, es)  # within its request (1 s of slack at the end)

    # task.attempt: exported by the worker, child of task.enqueue, the span the handler saw.
    att = named("task.attempt", SENT_TRACE)
    assert len(att) == 1, att
    res, _, at = att[0]
    assert plain(res)["resonance.role"] == "worker", res
    assert plain(res)["service.instance.id"] != plain(servers[0][0])["service.instance.id"], res
    assert at["kind"] == KIND_CONSUMER, at
    assert at["spanId"] == attempt_id, (at, done["result"])
    assert at.get("parentSpanId") == enqueue_id, at
    aa = attrs(at["attributes"])
    assert plain(aa) == {"task.id": task["id"], "task.queue": "default", "task.action": "tp", "task.attempt": 1,
                         "worker.id": "tracew"}, aa
    assert aa["task.attempt"][0] == "intValue", aa
    assert at["status"]["code"] == 1, at

    # task.finish: by the server, child of the attempt (the worker's batch completion carries it).
    fin = named("task.finish", SENT_TRACE)
    assert len(fin) == 1, fin
    res, _, fs = fin[0]
    assert plain(res)["resonance.role"] == "server"
    assert fs["kind"] == KIND_INTERNAL, fs
    assert fs.get("parentSpanId") == attempt_id, fs
    assert plain(attrs(fs["attributes"])) == {"task.id": task["id"], "task.outcome": "complete",
                                              "task.state": "succeeded"}, fs
    assert int(at["startTimeUnixNano"]) <= int(fs["endTimeUnixNano"]), (at, fs)

    # The failed attempt: status 2 with error.class; its finish says fail / dead.
    res, _, fa = named("task.attempt", failing["trace_id"])[0]
    assert fa["status"]["code"] == 2, fa
    fa_attrs = plain(attrs(fa["attributes"]))
    assert fa_attrs["error.class"] == "validation" and fa_attrs["task.id"] == failing["id"], fa
    assert fa.get("parentSpanId") == task_hex(failing["id"]), fa
    _, _, ff = named("task.finish", failing["trace_id"])[0]
    assert ff.get("parentSpanId") == fa["spanId"], (ff, fa)
    assert plain(attrs(ff["attributes"])) == {"task.id": failing["id"], "task.outcome": "fail",
                                              "task.state": "dead"}, ff

    # A request without traceparent is a root span in the trace named by X-Trace-ID.
    roots = [s for _, _, s in named("http.server", h_root["X-Trace-ID"])]
    assert len(roots) == 1, roots
    assert "parentSpanId" not in roots[0], roots[0]
    assert roots[0]["spanId"] == TRACEPARENT_RE.match(h_root["traceparent"]).group(2)
    assert plain(attrs(roots[0]["attributes"]))["http.route"] == "/healthz", roots[0]

    assert metric_value(srv, "resonance_trace_spans_exported_total") >= 4
    assert (metric_value(srv, "resonance_trace_spans_dropped_total", 'reason="export_failed"') or 0) == 0


def test_a_tracing_worker_still_drains_on_sigterm(server_factory, worker_factory, collector, tmp_workdir):
    """Given a worker exporting spans, when it gets SIGTERM, then it drains and exits 0 (the exporter's thread must
    not take the signal and die with its default action) and its last attempt's span still reaches the
    collector."""
    srv = server_factory({"sweep_interval_ms": 20, "tracing": tracing(collector.endpoint)})
    tp = script(tmp_workdir, "tp.py", TP_HANDLER, interpreter="/usr/bin/python3")
    w = worker_factory(srv, handlers(tp={"argv": [str(tp)]}) + toml_tracing(collector.endpoint, flush_ms=60000),
                       name="drainw")
    task = srv.enqueue("tp")
    assert wait_state(srv, task["id"], ("succeeded", "dead"))["state"] == "succeeded"
    assert w.stop(signal.SIGTERM) == 0, w.log_tail()
    assert "received SIGTERM" in w.log_tail(), w.log_tail()
    # flush_ms is a minute: only the shutdown flush can have sent the attempt span.
    wait_until(lambda: any(span.get("name") == "task.attempt" and
                           any(a["key"] == "task.id" and a["value"].get("stringValue") == task["id"]
                               for a in span.get("attributes", []))
                           for _, _, span in collector.spans()),
               5 * SLOW, what="the drained worker's task.attempt span")


def test_per_task_complete_request_parents_the_finish_span(server_factory, collector):
    """Given a task leased and completed by hand with a traceparent of the task's trace, then task.finish is a child
    of that complete request's http.server span."""
    srv = server_factory({"sweep_interval_ms": 20, "tracing": tracing(collector.endpoint)})
    task = srv.enqueue("manual")
    leased = srv.lease_one()
    assert leased["id"] == task["id"]
    caller_span = "1122334455667788"
    status, hdrs, out = srv.request("POST", f"/api/tasks/{task['id']}/complete", {"lease": leased["lease"]},
                                    headers={"traceparent": f"00-{task['trace_id']}-{caller_span}-01"})
    assert status == 200, out
    complete_span = TRACEPARENT_RE.match(hdrs["traceparent"]).group(2)

    def finish():
        return [s for _, _, s in collector.spans() if s["name"] == "task.finish" and s["traceId"] == task["trace_id"]]

    fin = wait_until(finish, timeout=10 * SLOW, interval=0.05, what="the task.finish span")
    assert len(fin) == 1, fin
    assert fin[0].get("parentSpanId") == complete_span, (fin, complete_span)
    assert plain(attrs(fin[0]["attributes"])) == {"task.id": task["id"], "task.outcome": "complete",
                                                  "task.state": "succeeded"}, fin
    hs = wait_until(lambda: [s for _, _, s in collector.spans() if s["spanId"] == complete_span],
                    timeout=10 * SLOW, interval=0.05, what="the complete request's http.server span")[0]
    assert hs["name"] == "http.server" and hs.get("parentSpanId") == caller_span, hs
    assert plain(attrs(hs["attributes"]))["http.route"] == "/api/tasks/{id}/complete", hs


# --------------------------------------------------------------------------- (b) never blocking


def _enqueue_latencies(servers, n):
    """Enqueues n tasks on each server, interleaved (so machine noise hits all alike); per-server latencies."""
    lat = [[] for _ in servers]
    for i in range(n):
        for k, srv in enumerate(servers):
            t = time.perf_counter()
            status, _, body = srv.request("POST", "/api/tasks", {"action": "echo", "payload": {"i": i}})
            lat[k].append(time.perf_counter() - t)
            assert status == 201, body
    return lat


def test_a_down_or_silent_collector_never_slows_requests(server_factory):
    """Given one server exporting to a closed port and one to a socket that never answers (timeout 500 ms, small
    queue), then their median enqueue latency stays within 3x (+5 ms) of a server with tracing off, and the lost
    spans show in resonance_trace_spans_dropped_total (export_failed; queue_full for the small queue)."""
    hole = BlackHole()
    try:
        down_endpoint = f"http://127.0.0.1:{free_port()}/v1/traces"
        off = server_factory({"sweep_interval_ms": 20}, name="off")
        down = server_factory({"sweep_interval_ms": 20, "tracing": tracing(down_endpoint)}, name="down")
        silent = server_factory({"sweep_interval_ms": 20,
                                 "tracing": tracing(f"http://127.0.0.1:{hole.port}/v1/traces", timeout_ms=500,
                                                    queue_size=16, batch_size=4)}, name="silent")
        lat_off, lat_down, lat_silent = _enqueue_latencies([off, down, silent], 200)
        m_off, m_down, m_silent = (statistics.median(x) for x in (lat_off, lat_down, lat_silent))
        report = (f"median enqueue latency: tracing off {m_off * 1000:.2f} ms, endpoint down {m_down * 1000:.2f} ms, "
                  f"black hole {m_silent * 1000:.2f} ms (max {max(lat_silent) * 1000:.1f} ms)")
        print("\n" + report)
        assert m_down < 3 * m_off + 0.005, report
        assert m_silent < 3 * m_off + 0.005, report

        def dropped(srv, reason):
            return metric_value(srv, "resonance_trace_spans_dropped_total", f'reason="{reason}"') or 0

        wait_until(lambda: dropped(down, "export_failed") > 0, timeout=5 * SLOW, interval=0.1,
                   what="resonance_trace_spans_dropped_total{reason=\"export_failed\"} > 0 (endpoint down)")
        assert (metric_value(down, "resonance_trace_spans_exported_total") or 0) == 0
        # 400 spans into a queue of 16 whose exporter waits 500 ms per batch: most never get in.
        assert dropped(silent, "queue_full") > 100, dropped(silent, "queue_full")
        wait_until(lambda: dropped(silent, "export_failed") > 0, timeout=5 * SLOW, interval=0.1,
                   what="export_failed drops after the 500 ms export timeout (black hole)")
        assert (metric_value(silent, "resonance_trace_spans_exported_total") or 0) == 0
        assert hole.conns, "the exporter never connected to the black hole"
        assert metric_value(off, "resonance_trace_spans_exported_total") in (None, 0)
        # A stuck exporter does not hold up shutdown for long either.
        t = time.monotonic()
        silent.stop()
        assert time.monotonic() - t < 10 * SLOW
    finally:
        hole.stop()


# --------------------------------------------------------------------------- (c) bad config


def test_bad_tracing_config_exits_2(tmp_workdir):
    """Given otlp_endpoint https://..., not a URL, or flush_ms / timeout_ms below their minimum, then the server exits
    2 naming the key; so does the worker for a bad endpoint."""
    def run(kind, tracing_toml):
        path = tmp_workdir / f"bad-{time.monotonic_ns()}.toml"
        path.write_text(tracing_toml)
        if kind == "server":
            args = ["server", "--config", str(path), "--listen", "127.0.0.1:0",
                    "--data-dir", str(tmp_workdir / f"data-{time.monotonic_ns()}")]
        else:
            args = ["worker", "--config", str(path), "--server", "http://127.0.0.1:1"]
        try:
            return run_cli(*args, timeout=STARTUP_TIMEOUT_S)
        except Exception as e:  # accepted: it runs until the timeout
            pytest.fail(f"{kind} did not exit with {tracing_toml!r}: {e}")

    for kind, toml, key in (
            ("server", '[tracing]\notlp_endpoint = "https://collector:4318/v1/traces"\n', "tracing.otlp_endpoint"),
            ("server", '[tracing]\notlp_endpoint = "not a url"\n', "tracing.otlp_endpoint"),
            ("server", '[tracing]\notlp_endpoint = "http://127.0.0.1:4318/v1/traces"\nflush_ms = 5\n',
             "tracing.flush_ms"),
            ("server", '[tracing]\notlp_endpoint = "http://127.0.0.1:4318/v1/traces"\ntimeout_ms = 50\n',
             "tracing.timeout_ms"),
            ("server", '[tracing]\nendpoint = "http://127.0.0.1:4318/v1/traces"\n', "tracing.endpoint"),
            ("worker", '[tracing]\notlp_endpoint = "https://collector:4318/v1/traces"\n', "tracing.otlp_endpoint")):
        r = run(kind, toml)
        assert r.returncode == 2, f"{kind} with {toml!r}: exit {r.returncode}, stderr {r.stderr!r}"
        assert key in r.stderr, f"{kind} with {toml!r}: stderr should name {key}: {r.stderr!r}"
