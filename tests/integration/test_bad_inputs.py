"""Bad requests: each gets the documented status and error body, creates nothing, and the server keeps working."""

import http.client
import json
import re
import socket

import pytest

from conftest import REQUEST_TIMEOUT_S, assert_error

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"

# (field named in the message, request body) for POST /api/tasks -> 400 invalid_argument
WRONG_FIELDS = [
    ("action", {"action": 5}),
    ("action", {"action": ""}),
    ("action", {"action": "a" * 201}),
    ("action", {"payload": {}}),  # missing
    ("priority", {"action": "x", "priority": "x"}),
    ("priority", {"action": "x", "priority": 1.5}),
    ("payload", {"action": "x", "payload": [1]}),
    ("payload", {"action": "x", "payload": "text"}),
    ("delay_s", {"action": "x", "delay_s": -1}),
    ("delay_s", {"action": "x", "delay_s": "5"}),
    ("max_attempts", {"action": "x", "max_attempts": 0}),
    ("max_attempts", {"action": "x", "max_attempts": 1001}),
    ("timeout_s", {"action": "x", "timeout_s": 0}),
    ("timeout_s", {"action": "x", "timeout_s": 86401}),
    ("queue", {"action": "x", "queue": 5}),
    ("run_at", {"action": "x", "run_at": "yesterday"}),
    ("idempotency_key", {"action": "x", "idempotency_key": 5}),
]


def assert_no_tasks(server):
    body = server.list_tasks(limit=1000)
    assert body["tasks"] == [], f"bad requests created tasks: {[t['action'] for t in body['tasks']]}"


@pytest.mark.parametrize("field,body", WRONG_FIELDS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(WRONG_FIELDS)])
def test_enqueue_wrong_field_is_400_naming_field(server, field, body):
    """Given an enqueue with a missing/wrong-typed/out-of-range field, then 400 invalid_argument naming it and no task."""
    status, headers, out = server.request("POST", "/api/tasks", body)
    assert_error(status, headers, out, 400, "invalid_argument", mentions=field)
    assert_no_tasks(server)


def test_enqueue_with_delay_and_run_at_is_400(server):
    """Given both delay_s and run_at, then 400 invalid_argument and no task."""
    status, headers, out = server.request("POST", "/api/tasks",
                                          {"action": "x", "delay_s": 1, "run_at": "2030-01-01T00:00:00.000000Z"})
    assert_error(status, headers, out, 400, "invalid_argument")
    assert_no_tasks(server)


def test_enqueue_requiring_approval_is_422(server):
    """Given requires_approval true (not supported yet), then 422 unprocessable and no task."""
    status, headers, out = server.request("POST", "/api/tasks", {"action": "x", "requires_approval": True})
    assert_error(status, headers, out, 422, "unprocessable")
    assert_no_tasks(server)


@pytest.mark.parametrize("raw", ['{"action":', '{action: "x"}', "nul", '{"action":"x"} trailing', "\xff\xfe"])
def test_malformed_json_is_400_invalid_json(server, raw):
    """Given a body that is not well-formed JSON, then 400 invalid_json and no task."""
    status, headers, out = server.request("POST", "/api/tasks", raw.encode("latin-1"))
    assert_error(status, headers, out, 400, "invalid_json")
    assert_no_tasks(server)


def test_body_not_an_object_is_400(server):
    """Given a JSON array or string as the body, then 400 and no task."""
    for raw in ("[1]", '"youtube_learn"', "42"):
        status, headers, out = server.request("POST", "/api/tasks", raw)
        assert_error(status, headers, out, 400)
    assert_no_tasks(server)


def send_raw_body(server, path, body, content_type="application/json"):
    """POSTs body; tolerates the server answering and closing before the whole body is sent."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=REQUEST_TIMEOUT_S)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", content_type)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            conn.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = conn.getresponse()
        raw = resp.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw
        return resp.status, resp.headers, parsed
    finally:
        conn.close()


def test_body_over_1mib_is_413(server):
    """Given a body over max_body_bytes (1 MiB), then 413 payload_too_large and no task."""
    payload = "x" * (1024 * 1024)
    body = json.dumps({"action": "big", "payload": {"blob": payload}}).encode()
    assert len(body) > 1024 * 1024
    status, headers, out = send_raw_body(server, "/api/tasks", body)
    assert_error(status, headers, out, 413, "payload_too_large")
    assert_no_tasks(server)
    assert server.enqueue("after_big")["state"] == "ready"


def test_body_just_under_limit_is_accepted(server):
    """Given a 900 KB payload, then 201 and the payload round-trips."""
    blob = "y" * (900 * 1024)
    task = server.enqueue("big_ok", payload={"blob": blob})
    assert server.get(task["id"])["payload"]["blob"] == blob


def test_lower_max_body_bytes_is_honoured(server_factory):
    """Given max_body_bytes=2048, when a 4000-byte body arrives, then 413."""
    s = server_factory({"max_body_bytes": 2048})
    body = json.dumps({"action": "x", "payload": {"p": "z" * 4000}}).encode()
    status, headers, out = send_raw_body(s, "/api/tasks", body)
    assert_error(status, headers, out, 413, "payload_too_large")
    assert s.enqueue("small")["state"] == "ready"


@pytest.mark.parametrize("method,path", [("GET", "/api/nope"), ("GET", "/nope"), ("POST", "/api/tasks/x/y/z"),
                                         ("GET", "/api/tasks/0000000000000/bogus")])
def test_unknown_route_is_404(server, method, path):
    """Given a path no route serves, then 404 not_found."""
    status, headers, out = server.request(method, path, {} if method == "POST" else None)
    assert_error(status, headers, out, 404, "not_found")


@pytest.mark.parametrize("method,path", [("DELETE", "/api/tasks"), ("PUT", "/api/tasks"), ("GET", "/api/lease"),
                                         ("DELETE", "/api/queues"), ("GET", "/api/complete")])
def test_wrong_method_is_405_with_allow(server, method, path):
    """Given a known path with the wrong method, then 405 method_not_allowed with an Allow header."""
    status, headers, out = server.request(method, path)
    assert_error(status, headers, out, 405, "method_not_allowed")
    assert headers.get("Allow"), "405 must set Allow"
    assert_no_tasks(server)


@pytest.mark.parametrize("tid", ["0000000000000", "zzzzzzzzzzzzz", "not-an-id", "ABCDEFGHIJKLM"])
def test_unknown_task_id_is_404(server, tid):
    """Given an id nobody created (well-formed or not), then GET /api/tasks/{id} is 404 not_found."""
    status, headers, out = server.request("GET", f"/api/tasks/{tid}")
    assert_error(status, headers, out, 404, "not_found")


def test_wrong_content_type_is_415(server):
    """Given Content-Type text/xml, then 415 unsupported_media_type and no task."""
    status, headers, out = server.request("POST", "/api/tasks", '{"action":"x"}', headers={"Content-Type": "text/xml"})
    assert_error(status, headers, out, 415, "unsupported_media_type")
    assert_no_tasks(server)


def test_no_content_type_is_accepted(server):
    """Given a JSON body without Content-Type (old scripts), then 201."""
    status, _, task = server.request("POST", "/api/tasks", '{"action":"youtube_learn"}',
                                     headers={"Content-Type": None})
    assert status == 201, task


def test_lease_bad_arguments_are_400_naming_field(server):
    """Given lease bodies with a missing worker or out-of-range max/wait_ms or queues not a list, then 400 naming the field."""
    cases = [("worker", {"queues": ["default"]}),
             ("worker", {"worker": 7}),
             ("max", {"worker": "w", "max": 0}),
             ("max", {"worker": "w", "max": 1001}),
             ("wait_ms", {"worker": "w", "wait_ms": 60001}),
             ("wait_ms", {"worker": "w", "wait_ms": -1}),
             ("queues", {"worker": "w", "queues": "default"})]
    for field, body in cases:
        status, headers, out = server.request("POST", "/api/lease", body)
        assert_error(status, headers, out, 400, "invalid_argument", mentions=field)


def test_complete_and_fail_bad_arguments_are_400_and_task_keeps_running(server):
    """Given a running task, when complete lacks lease or fail has an unknown class, then 400 naming it and the task stays running."""
    server.enqueue("x", queue="cf")
    lt = server.lease_one(["cf"])
    path = f"/api/tasks/{lt['id']}"
    status, headers, out = server.request("POST", path + "/complete", {"result": 1})
    assert_error(status, headers, out, 400, "invalid_argument", mentions="lease")
    status, headers, out = server.request("POST", path + "/fail",
                                          {"lease": lt["lease"], "error": {"class": "bogus", "message": "m"}})
    assert_error(status, headers, out, 400, "invalid_argument", mentions="class")
    status, headers, out = server.request("POST", path + "/fail", {"lease": lt["lease"]})
    assert_error(status, headers, out, 400, "invalid_argument", mentions="error")
    status, headers, out = server.request("POST", path + "/complete", "{bad")
    assert_error(status, headers, out, 400, "invalid_json")
    got = server.get(lt["id"])
    assert got["state"] == "running" and got["attempt"] == 1
    assert server.complete(lt)["state"] == "succeeded"


def test_every_response_has_request_id_and_echoes_incoming(server):
    """Given requests with and without X-Request-ID, then every response carries one and an incoming one is echoed."""
    seen = set()
    for method, path, body in [("GET", "/healthz", None), ("POST", "/api/tasks", {"action": "rid"}),
                               ("GET", "/api/nope", None), ("POST", "/api/tasks", "{bad"),
                               ("GET", "/api/results", None), ("GET", "/metrics", None)]:
        status, headers, _ = server.request(method, path, body)
        rid = headers.get("X-Request-ID")
        assert rid, f"{method} {path} -> {status} without X-Request-ID"
        seen.add(rid)
    assert len(seen) == 6, "generated request ids should differ"

    status, headers, _ = server.request("GET", "/healthz", headers={"X-Request-ID": "req-abc-123"})
    assert headers.get("X-Request-ID") == "req-abc-123"
    status, headers, _ = server.request("POST", "/api/tasks", {"action": 5}, headers={"X-Request-ID": "req-err-9"})
    assert status == 400 and headers.get("X-Request-ID") == "req-err-9"


def test_traceparent_sets_task_trace_id(server):
    """Given a W3C traceparent on enqueue, then the task's trace_id is its trace id and the response carries a traceparent."""
    status, headers, task = server.request("POST", "/api/tasks", {"action": "traced"},
                                           headers={"traceparent": TRACEPARENT})
    assert status == 201, task
    assert task["trace_id"] == TRACE_ID
    assert server.get(task["id"])["trace_id"] == TRACE_ID
    tp = headers.get("traceparent")
    assert tp and re.match(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$", tp), tp
    assert tp.split("-")[1] == TRACE_ID, "the response continues the caller's trace"


def test_invalid_traceparent_is_ignored(server):
    """Given a malformed traceparent, then the enqueue still succeeds and trace_id is not taken from it."""
    status, _, task = server.request("POST", "/api/tasks", {"action": "traced"},
                                     headers={"traceparent": "garbage-trace"})
    assert status == 201, task
    assert task["trace_id"] != "garbage-trace"


def test_half_sent_request_does_not_hurt_server(server):
    """Given a client that sends half a header and disconnects, then the server keeps answering."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Len")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"act")
    status, _, _ = server.request("GET", "/healthz")
    assert status == 200
    assert_no_tasks(server)


def test_after_bad_inputs_server_works_and_nothing_was_created(server):
    """Given a burst of every kind of bad request, then no task exists and a good enqueue/lease/complete still works."""
    for _, body in WRONG_FIELDS:
        server.request("POST", "/api/tasks", body)
    server.request("POST", "/api/tasks", "{oops")
    server.request("POST", "/api/tasks", '{"action":"x"}', headers={"Content-Type": "text/xml"})
    server.request("POST", "/api/tasks/batch", {"tasks": [{"action": "ok"}, {"action": None}]})
    server.request("DELETE", "/api/tasks")
    server.request("POST", "/api/tasks", {"action": "x", "requires_approval": True})
    assert_no_tasks(server)
    task = server.enqueue("good")
    lt = server.lease_one()
    assert lt["id"] == task["id"]
    assert server.complete(lt)["state"] == "succeeded"
