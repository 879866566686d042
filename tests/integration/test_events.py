"""Live events over Server-Sent Events: GET /api/events and GET /api/tasks/{id}/events.

Read with a raw-socket SSE client (below) so the tests see exactly what the server
writes, incrementally: event order on both endpoints, the per-task stream closing after
its terminal event, resume with Last-Event-ID (no gap, no duplicate), a slow client
dropped and counted while the server keeps serving, keep-alive comments, 404, and
SIGTERM with a stream open.
"""

import json
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (SLOW, STARTUP_TIMEOUT_S, TS_MICROS_RE, assert_error, parse_ts, run_cli,
                      wait_until)

class SseStream:
    """One GET over a raw socket; next() returns the next SSE block as a dict.

    A block is what lies between blank lines: {"id", "event", "data", "retry",
    "comments"} (absent fields are None / []); data is parsed as JSON when it parses.
    next() returns None at end of stream, and fails the test on a timeout.
    """

    def __init__(self, port, path, headers=None, rcvbuf=None, timeout=10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout * SLOW)
        self.sock.connect(("127.0.0.1", port))
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        self.eof = False
        self.raw = b""  # the whole body read so far
        self.status = None
        self.headers = {}
        if rcvbuf is None:
            self._read_header()

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            pytest.fail(f"no data from the event stream within {timeout:.1f}s; got so far: "
                        f"{self.raw[-500:]!r}")
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk
        return chunk

    def _read_header(self, timeout=10.0):
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(timeout * SLOW):
                pytest.fail(f"stream closed before the header: {self.buf!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.raw = self.buf
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()

    def next(self, timeout=10.0):
        deadline = time.monotonic() + timeout * SLOW
        while b"\n\n" not in self.buf:
            if self.eof:
                assert self.buf.strip() == b"", f"stream ended inside a block: {self.buf!r}"
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no SSE block within {timeout * SLOW:.1f}s; got so far: "
                            f"{self.raw[-500:]!r}")
            got = self._fill(left)
            self.raw += got
        block, self.buf = self.buf.split(b"\n\n", 1)
        ev = {"id": None, "event": None, "data": None, "retry": None, "comments": []}
        data_lines = []
        for line in block.decode().split("\n"):
            if line.startswith(":"):
                ev["comments"].append(line)
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data_lines.append(value)
            elif field in ("id", "event", "retry"):
                ev[field] = value
            else:
                pytest.fail(f"unexpected SSE line {line!r}")
        if data_lines:
            text = "\n".join(data_lines)
            try:
                ev["data"] = json.loads(text)
            except ValueError:
                ev["data"] = text
        return ev

    def next_event(self, timeout=10.0):
        """The next block that is an event (skips retry lines and comments)."""
        while True:
            ev = self.next(timeout)
            if ev is None or ev["event"] is not None:
                return ev
            assert ev["data"] is None, f"data without event name: {ev}"

    def expect_end(self, timeout=5.0):
        """Asserts the server closes the stream (after only comments, if anything)."""
        while True:
            ev = self.next(timeout)
            if ev is None:
                return
            assert ev["event"] is None, f"expected the stream to end, got {ev}"

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


@pytest.fixture
def streams():
    opened = []

    def open_stream(srv, path, **kw):
        s = SseStream(srv.port, path, **kw)
        opened.append(s)
        return s

    yield open_stream
    for s in opened:
        s.close()


def metric(srv, name, labels=""):
    return srv.metric(name + labels)


def open_live(streams, srv, path):
    """Opens a stream and reads its preamble (retry line), so the subscription is live."""
    s = streams(srv, path)
    assert s.status == 200, s.raw
    first = s.next()
    assert first["retry"] == "2000", f"stream should start with retry: 2000, got {first}"
    return s


def run_task(srv, task_id, progress):
    leased = srv.lease_one()
    assert leased["id"] == task_id
    status, _, out = srv.request("POST", f"/api/tasks/{task_id}/heartbeat",
                                 {"lease": leased["lease"], "progress": progress})
    assert status == 200, out
    srv.complete(leased, result={"ok": True})
    return leased


# --------------------------------------------------------------------------- format and order


def test_stream_headers_and_preamble(server, streams):
    """Given GET /api/events, then 200 text/event-stream, no-cache, no Content-Length, the
    request id echoed, Connection: close, and a retry line first."""
    s = streams(server, "/api/events", headers={"X-Request-ID": "sse-req-1"})
    assert s.status == 200
    assert s.headers["content-type"] == "text/event-stream"
    assert s.headers["cache-control"] == "no-cache"
    assert s.headers["x-request-id"] == "sse-req-1"
    assert s.headers["connection"].lower() == "close"
    assert "content-length" not in s.headers and "transfer-encoding" not in s.headers
    assert s.next()["retry"] == "2000"


def test_a_tasks_life_in_order_on_both_streams(server, streams):
    """Given both streams open, when a task is enqueued, leased, heartbeated with progress
    and completed, then /api/events shows enqueued, leased, progress, succeeded with ids =
    ledger seqs (none on progress), and the per-task stream shows a snapshot then the same
    events and closes after task.succeeded."""
    all_events = open_live(streams, server, "/api/events")
    task = server.enqueue("echo", payload={"n": 1})
    one = open_live(streams, server, f"/api/tasks/{task['id']}/events")
    snap = one.next_event()
    assert snap["event"] == "snapshot" and snap["id"] is None
    assert snap["data"] == server.get(task["id"]), "the snapshot is the task as GET shows it"
    run_task(server, task["id"], {"pct": 40, "note": "half"})

    got = [all_events.next_event() for _ in range(4)]
    assert [e["event"] for e in got] == ["task.enqueued", "task.leased", "task.progress",
                                         "task.succeeded"]
    ledger_events = [e for e in got if e["event"] != "task.progress"]
    ids = [int(e["id"]) for e in ledger_events]
    assert ids == list(range(ids[0], ids[0] + 3)), f"ids are consecutive ledger seqs: {ids}"
    for e in ledger_events:
        d = e["data"]
        assert set(d) == {"seq", "ts", "kind", "task_id", "data"}, d
        assert d["seq"] == int(e["id"]) and d["kind"] == e["event"]
        assert d["task_id"] == task["id"]
        assert TS_MICROS_RE.match(d["ts"]), d["ts"]
    assert got[0]["data"]["data"]["action"] == "echo"
    assert got[1]["data"]["data"]["attempt"] == 1
    progress = got[2]
    assert progress["id"] is None, "progress events are not in the ledger and carry no id"
    assert progress["data"] == {"ts": progress["data"]["ts"], "kind": "task.progress",
                                "task_id": task["id"], "progress": {"pct": 40, "note": "half"}}
    assert parse_ts(got[1]["data"]["ts"]) <= parse_ts(progress["data"]["ts"]) <= \
        parse_ts(got[3]["data"]["ts"])

    # The stream carries exactly what the ledger holds.
    status, _, ledger = server.request("GET", f"/api/ledger?after={ids[0] - 1}&limit=3")
    assert status == 200
    assert [(r["seq"], r["kind"], r["data"]) for r in ledger["events"]] == \
        [(e["data"]["seq"], e["data"]["kind"], e["data"]["data"]) for e in ledger_events]

    per_task = [one.next_event() for _ in range(3)]
    assert [e["event"] for e in per_task] == ["task.leased", "task.progress", "task.succeeded"]
    assert [e["id"] for e in per_task] == [got[1]["id"], None, got[3]["id"]]
    one.expect_end()


def test_per_task_stream_of_a_finished_task_is_a_snapshot_then_the_end(server, streams):
    """Given a task that already succeeded, then its stream sends the snapshot (state
    succeeded) and closes."""
    task = server.enqueue("echo")
    run_task(server, task["id"], {"pct": 100})
    s = open_live(streams, server, f"/api/tasks/{task['id']}/events")
    snap = s.next_event()
    assert snap["event"] == "snapshot"
    assert snap["data"]["state"] == "succeeded" and snap["data"]["result"] == {"ok": True}
    s.expect_end()


def test_per_task_stream_closes_after_cancel_and_dead(fast_server, streams):
    """Given streams on a ready task and a running task with one attempt, when the first is
    cancelled and the second fails for good, then each ends with its terminal event."""
    srv = fast_server
    a = srv.enqueue("echo")
    sa = open_live(streams, srv, f"/api/tasks/{a['id']}/events")
    assert sa.next_event()["data"]["state"] == "ready"
    status, _, _ = srv.request("POST", f"/api/tasks/{a['id']}/cancel")
    assert status == 200
    ev = sa.next_event()
    assert ev["event"] == "task.cancelled" and ev["data"]["data"] == {"from": "ready"}
    sa.expect_end()

    b = srv.enqueue("echo", max_attempts=1)
    sb = open_live(streams, srv, f"/api/tasks/{b['id']}/events")
    assert sb.next_event()["event"] == "snapshot"
    leased = srv.lease_one()
    srv.fail(leased, cls="temporary", message="broken")
    assert sb.next_event()["event"] == "task.leased"
    dead = sb.next_event()
    assert dead["event"] == "task.dead" and dead["data"]["data"]["message"] == "broken"
    sb.expect_end()


def test_unknown_task_and_bad_resume_id_are_errors_before_streaming(server):
    """Given an id nobody has, a string that is no id, or a malformed Last-Event-ID, then
    a JSON error (404, 404, 400) instead of a stream."""
    task = server.enqueue("echo")
    unknown = task["id"][:-4] + ("zzzz" if not task["id"].endswith("zzzz") else "yyyy")
    status, headers, body = server.request("GET", f"/api/tasks/{unknown}")
    assert status == 404  # the id really is unknown
    status, headers, body = server.request("GET", f"/api/tasks/{unknown}/events")
    assert_error(status, headers, body, 404, "not_found", mentions=unknown)
    assert headers["Content-Type"] == "application/json"
    status, headers, body = server.request("GET", "/api/tasks/not-an-id/events")
    assert_error(status, headers, body, 404, "not_found")
    status, headers, body = server.request("GET", "/api/events",
                                           headers={"Last-Event-ID": "seven"})
    assert_error(status, headers, body, 400, "invalid_argument", mentions="Last-Event-ID")
    status, headers, body = server.request("GET", "/api/events?after=-3")
    assert_error(status, headers, body, 400, "invalid_argument", mentions="after")


def test_kind_filter_takes_comma_separated_prefixes(server, streams):
    """Given kind=worker.,queue. then only worker and queue events arrive, not task ones."""
    s = open_live(streams, server, "/api/events?kind=worker.,queue.")
    server.enqueue("echo")
    status, _, _ = server.request("POST", "/api/workers/register",
                                  {"worker": "w9", "pool": "p", "pid": 1, "host": "h",
                                   "queues": ["default"], "concurrency": 1})
    assert status == 200
    server.enqueue("echo")
    status, _, _ = server.request("POST", "/api/queues/default/pause")
    assert status == 200
    assert [s.next_event()["event"] for _ in range(2)] == ["worker.registered", "queue.paused"]
    server.enqueue("echo")
    status, _, _ = server.request("POST", "/api/queues/default/resume")
    assert s.next_event()["event"] == "queue.resumed", "task events were filtered out"


# --------------------------------------------------------------------------- resume


def read_ids(stream, n):
    out = []
    for _ in range(n):
        ev = stream.next_event()
        assert ev is not None, "stream ended early"
        out.append(int(ev["id"]))
    return out


def test_resume_with_last_event_id_gives_exactly_the_missed_events_then_live(server, streams):
    """Given a stream read up to id N and closed, when 7 tasks are enqueued meanwhile and the
    client reconnects with Last-Event-ID: N, then it gets exactly N+1..N+7 from the store and
    then the live ones, with no duplicate; ?after= does the same."""
    s = open_live(streams, server, "/api/events")
    for _ in range(3):
        server.enqueue("echo")
    first = read_ids(s, 3)
    s.close()
    missed = [server.enqueue("echo", payload={"i": i})["id"] for i in range(7)]
    r = streams(server, "/api/events", headers={"Last-Event-ID": str(first[-1])})
    assert r.status == 200 and r.next()["retry"] == "2000"
    replay = [r.next_event() for _ in range(7)]
    assert [int(e["id"]) for e in replay] == list(range(first[-1] + 1, first[-1] + 8))
    assert [e["data"]["task_id"] for e in replay] == missed
    live = [server.enqueue("echo")["id"] for _ in range(2)]
    after_switch = [r.next_event() for _ in range(2)]
    assert [int(e["id"]) for e in after_switch] == [first[-1] + 8, first[-1] + 9]
    assert [e["data"]["task_id"] for e in after_switch] == live

    q = open_live(streams, server, f"/api/events?after={first[-1] + 5}")
    assert read_ids(q, 4) == list(range(first[-1] + 6, first[-1] + 10))


def test_resume_while_events_keep_coming_has_no_gap_and_no_duplicate(server, streams):
    """Given a producer enqueueing without pause, when a client reconnects with its
    Last-Event-ID four times, then the ids it saw over all connections are every seq from
    its first to its last exactly once."""
    stop = threading.Event()
    errors = []

    def produce():
        while not stop.is_set():
            try:
                server.request("POST", "/api/tasks", {"action": "echo"})
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return

    s = open_live(streams, server, "/api/events")
    t = threading.Thread(target=produce, daemon=True)
    t.start()
    try:
        seen = []
        for _ in range(5):
            seen += read_ids(s, 40)
            s.close()
            s = streams(server, "/api/events", headers={"Last-Event-ID": str(seen[-1])})
            assert s.status == 200
        seen += read_ids(s, 40)
    finally:
        stop.set()
        t.join(10 * SLOW)
    assert not errors, errors
    assert seen == list(range(seen[0], seen[0] + len(seen))), "gap or duplicate across resumes"


def test_per_task_resume_replays_its_missed_events_and_then_ends(server, streams):
    """Given a per-task stream closed after task.leased, when the task finishes and the
    client resumes with Last-Event-ID, then it gets task.succeeded (no snapshot; progress is
    not replayed, it is not in the ledger) and the stream ends."""
    task = server.enqueue("echo")
    s = open_live(streams, server, f"/api/tasks/{task['id']}/events")
    assert s.next_event()["event"] == "snapshot"
    leased = server.lease_one()
    ev = s.next_event()
    assert ev["event"] == "task.leased"
    s.close()
    server.enqueue("other")  # an event of another task in between
    status, _, _ = server.request("POST", f"/api/tasks/{task['id']}/heartbeat",
                                  {"lease": leased["lease"], "progress": {"pct": 1}})
    assert status == 200
    server.complete(leased)
    r = streams(server, f"/api/tasks/{task['id']}/events", headers={"Last-Event-ID": ev["id"]})
    assert r.status == 200
    got = r.next_event()
    assert got["event"] == "task.succeeded" and int(got["id"]) == int(ev["id"]) + 2
    r.expect_end()
    # Resumed from its last event, a finished task's stream ends at once.
    again = streams(server, f"/api/tasks/{task['id']}/events", headers={"Last-Event-ID": got["id"]})
    assert again.status == 200
    again.expect_end()


def test_resume_from_past_the_ledger_end_resets_then_goes_live(server, streams):
    """Given ?after= far beyond the ledger, then a reset event says so and live events follow."""
    s = open_live(streams, server, "/api/events?after=1000000000")
    reset = s.next_event()
    assert reset["event"] == "reset" and reset["id"] is None
    assert reset["data"]["reason"] == "ahead_of_ledger"
    assert reset["data"]["after"] == 1000000000
    task = server.enqueue("echo")
    ev = s.next_event()
    assert ev["event"] == "task.enqueued" and ev["data"]["task_id"] == task["id"]
    assert int(ev["id"]) == reset["data"]["last_seq"] + 1


def test_resume_beyond_the_replay_cap_resets(server, streams):
    """Given more than 100,000 records after Last-Event-ID, then a reset event
    (too_far_behind) and live events instead of a replay."""
    s = open_live(streams, server, "/api/events?kind=queue.")
    for _ in range(101):
        status, _, body = server.request("POST", "/api/tasks/batch",
                                         {"tasks": [{"action": "bulk"}] * 1000}, timeout=60 * SLOW)
        assert status == 201, body
    r = open_live(streams, server, "/api/events?after=1")
    reset = r.next_event()
    assert reset["event"] == "reset" and reset["data"]["reason"] == "too_far_behind"
    assert reset["data"]["last_seq"] > 100001
    server.enqueue("echo")
    ev = r.next_event()
    assert ev["event"] == "task.enqueued" and int(ev["id"]) == reset["data"]["last_seq"] + 1


# --------------------------------------------------------------------------- limits and life


def test_slow_client_is_dropped_and_counted_while_the_server_keeps_serving(server_factory,
                                                                          streams):
    """Given sse_client_buffer_bytes = 4096 and a client that never reads, when thousands of
    events are published, then that client is dropped (resonance_sse_clients_dropped_total
    1), while a client that reads everything and a filtered one stay connected, and /healthz
    answers fast all along."""
    srv = server_factory({"sse_client_buffer_bytes": 4096})
    slow = streams(srv, "/api/events", rcvbuf=4096)
    fast = open_live(streams, srv, "/api/events")
    calm = open_live(streams, srv, "/api/events?kind=queue.")
    wait_until(lambda: metric(srv, "resonance_sse_clients") == 3, 5 * SLOW, what="3 clients")
    assert metric(srv, "resonance_sse_clients_dropped_total") == 0

    fast_bytes = bytearray()
    stop = threading.Event()

    def drain():
        fast.sock.settimeout(0.2)
        while not stop.is_set():
            try:
                chunk = fast.sock.recv(1 << 20)
            except socket.timeout:
                continue
            if not chunk:
                return
            fast_bytes.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        action = "a" * 200  # bigger events fill the socket buffers sooner
        worst = 0.0
        batches = 0
        for batches in range(1, 61):
            status, _, body = srv.request("POST", "/api/tasks/batch",
                                          {"tasks": [{"action": action}] * 1000},
                                          timeout=30 * SLOW)
            assert status == 201, body
            t0 = time.monotonic()
            status, _, _ = srv.request("GET", "/healthz")
            worst = max(worst, time.monotonic() - t0)
            assert status == 200
            if metric(srv, "resonance_sse_clients_dropped_total") == 1:
                break
        assert metric(srv, "resonance_sse_clients_dropped_total") == 1, \
            "the slow client was not dropped"
        assert batches >= 2, "dropped by the first burst: the limit is about falling behind"
        assert worst < 0.5 * SLOW, f"/healthz took {worst:.3f}s while a client was stuck"
        wait_until(lambda: metric(srv, "resonance_sse_clients") == 2, 5 * SLOW,
                   what="only the slow client gone from resonance_sse_clients")
        # The clients that keep up still get events.
        status, _, _ = srv.request("POST", "/api/queues/default/pause")
        assert calm.next_event()["event"] == "queue.paused"
        wait_until(lambda: b"event: queue.paused" in fast_bytes, 10 * SLOW,
                   what="queue.paused on the unfiltered reading client")
        assert fast_bytes.count(b"event: task.enqueued") == 1000 * batches
    finally:
        stop.set()
        reader.join(5 * SLOW)
    assert metric(srv, "resonance_sse_clients_dropped_total") == 1
    # The slow client, reading at last, finds its stream closed after what was in flight.
    slow.sock.settimeout(10 * SLOW)
    while slow.sock.recv(1 << 20):
        pass


def test_keep_alive_comments_arrive_on_an_idle_stream(server_factory, streams):
    """Given sse_keepalive_ms = 200, then an idle stream gets ': keep-alive' comments about
    every 200 ms; with the default (15 s) none arrives within a second."""
    srv = server_factory({"sse_keepalive_ms": 200})
    s = open_live(streams, srv, "/api/events")
    t0 = time.monotonic()
    for _ in range(3):
        block = s.next(timeout=2)
        assert block["comments"] == [": keep-alive"] and block["event"] is None, block
    assert time.monotonic() - t0 >= 0.5, "keep-alives came faster than configured"

    default = server_factory({"sweep_interval_ms": 20})
    d = open_live(streams, default, "/api/events")
    r, _, _ = select.select([d.sock], [], [], 1.0)
    assert not r, f"unexpected data on an idle stream: {d.sock.recv(1000)!r}"


def test_sse_clients_gauge_and_request_metrics_follow_the_streams(server, streams):
    """Given two open streams, then resonance_sse_clients is 2; when the clients hang up it
    drops to 0 and each stream is counted once in resonance_http_requests_total (status 200)."""
    a = open_live(streams, server, "/api/events")
    task = server.enqueue("echo")
    b = open_live(streams, server, f"/api/tasks/{task['id']}/events")
    assert metric(server, "resonance_sse_clients") == 2
    a.close()
    b.close()
    wait_until(lambda: metric(server, "resonance_sse_clients") == 0, 5 * SLOW,
               what="resonance_sse_clients back to 0")
    wait_until(lambda: metric(server, "resonance_http_requests_total",
                              '{route="/api/events",method="GET",status="200"}') == 1,
               5 * SLOW, what="the stream counted")
    assert metric(server, "resonance_http_requests_total",
                  '{route="/api/tasks/{id}/events",method="GET",status="200"}') == 1


def test_sigterm_with_open_streams_exits_zero_promptly(server_factory, streams):
    """Given shutdown_grace_ms = 30000 and two streams open, when the server gets SIGTERM,
    then it closes the streams and exits 0 in well under the grace period."""
    srv = server_factory({"shutdown_grace_ms": 30000})
    task = srv.enqueue("echo")
    a = open_live(streams, srv, "/api/events")
    b = open_live(streams, srv, f"/api/tasks/{task['id']}/events")
    assert b.next_event()["event"] == "snapshot"
    t0 = time.monotonic()
    os.kill(srv.pid, signal.SIGTERM)
    try:
        code = srv.proc.wait(timeout=5 * SLOW)
    except subprocess.TimeoutExpired:
        pytest.fail("server still running 5 s after SIGTERM with open streams")
    assert code == 0
    assert time.monotonic() - t0 < 5 * SLOW
    a.expect_end()
    b.expect_end()


def test_sse_config_keys_are_range_checked(tmp_workdir):
    """Given sse_keepalive_ms or sse_client_buffer_bytes out of range or of the wrong type,
    then the server exits 2 naming the key."""
    for text, key in (("sse_keepalive_ms = 50", "sse_keepalive_ms"),
                      ("sse_keepalive_ms = 600001", "sse_keepalive_ms"),
                      ("sse_client_buffer_bytes = 4095", "sse_client_buffer_bytes"),
                      ('sse_client_buffer_bytes = "1MiB"', "sse_client_buffer_bytes")):
        path = tmp_workdir / "bad.toml"
        path.write_text(text + "\n")
        try:
            r = run_cli("server", "--config", str(path), "--listen", "127.0.0.1:0",
                        "--data-dir", str(tmp_workdir / "data"), timeout=STARTUP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"server accepted {text!r}")
        assert r.returncode == 2, f"{text!r}: exit {r.returncode}, stderr {r.stderr!r}"
        assert key in r.stderr, r.stderr
