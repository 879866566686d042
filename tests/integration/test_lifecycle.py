"""A task's way through the server: enqueue, lease, complete, results; ordering; delays."""

import time

from conftest import ID_RE, SLOW, TS_MICROS_RE, fmt_ts, parse_ts


def test_enqueue_lease_complete_reaches_succeeded_and_results(server):
    """Given an enqueued task, when a worker leases and completes it, then it is succeeded and first in results."""
    status, headers, task = server.request("POST", "/api/tasks", {"action": "echo", "payload": {"a": 1}})
    assert status == 201, task
    assert ID_RE.match(task["id"]), task["id"]
    assert task["state"] == "ready"
    assert task["action"] == "echo"
    assert task["queue"] == "default"
    assert task["payload"] == {"a": 1}
    assert task["priority"] == 0
    assert task["attempt"] == 0
    assert task["max_attempts"] == 5
    assert task["timeout_s"] == 30
    assert task["result"] is None and task["error"] is None
    assert task["started_at"] is None and task["finished_at"] is None
    assert "lease" not in task
    for field in ("created_at", "updated_at", "run_at"):
        assert TS_MICROS_RE.match(task[field]), (field, task[field])
    tid = task["id"]

    got = server.get(tid)
    assert got["id"] == tid and got["state"] == "ready"

    t0 = time.time()
    leased = server.lease(["default"], worker="w1")
    assert len(leased) == 1
    lt = leased[0]
    assert lt["id"] == tid
    assert lt["state"] == "running"
    assert lt["attempt"] == 1
    assert isinstance(lt["lease"], str) and lt["lease"]
    expires = parse_ts(lt["lease_expires_at"])
    assert t0 + 30 - 2 <= expires <= time.time() + 30 + 2, "lease_expires_at should be now + timeout_s"

    running = server.get(tid)
    assert running["state"] == "running"
    assert running["worker"] == "w1"
    assert running["started_at"] is not None
    assert "lease" not in running, "the lease token must not be shown outside lease responses"

    done = server.complete(lt, result={"ok": True})
    assert done["state"] == "succeeded"
    assert done["result"] == {"ok": True}

    final = server.get(tid)
    assert final["state"] == "succeeded"
    assert final["result"] == {"ok": True}
    assert final["attempt"] == 1
    assert TS_MICROS_RE.match(final["finished_at"])
    assert parse_ts(final["finished_at"]) >= parse_ts(final["started_at"])

    status, _, res = server.request("GET", "/api/results")
    assert status == 200, res
    assert res["results"][0]["id"] == tid
    first = res["results"][0]
    assert first["state"] == "succeeded"
    assert first["action"] == "echo" and first["queue"] == "default"
    assert first["attempt"] == 1
    assert isinstance(first["duration_ms"], (int, float)) and first["duration_ms"] >= 0
    assert first["result"] == {"ok": True}
    assert first["finished_at"] == final["finished_at"]
    assert res["success_rate"] == 1.0


def test_server_starts_without_config_file(server_factory):
    """Given no --config, then the server starts with defaults and accepts a task."""
    srv = server_factory(None)
    task = srv.enqueue("plain")
    assert task["max_attempts"] == 5 and task["timeout_s"] == 30


def test_legacy_enqueue_with_only_action_returns_201(server):
    """Given the old RPA script's call POST /api/tasks {"action":"youtube_learn"}, then 201 and a ready task."""
    status, headers, task = server.request("POST", "/api/tasks", {"action": "youtube_learn"})
    assert status == 201, task
    assert task["action"] == "youtube_learn"
    assert task["state"] == "ready"
    assert task["payload"] == {}
    assert task["queue"] == "default"


def test_legacy_enqueue_with_curl_form_content_type_is_accepted(server):
    """Given curl -d's default Content-Type application/x-www-form-urlencoded and a JSON body, then 201."""
    status, _, task = server.request("POST", "/api/tasks", '{"action":"youtube_learn"}',
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 201, task
    assert task["action"] == "youtube_learn"


def test_legacy_results_shape_newest_first_with_success_rate(server):
    """Given one succeeded and one dead task, then GET /api/results?count=20 lists both newest first with rate 0.5."""
    status, _, empty = server.request("GET", "/api/results?count=20")
    assert status == 200
    assert empty["results"] == []
    assert empty["success_rate"] is None, "success_rate is null when nothing is listed"

    a = server.enqueue("youtube_learn")
    b = server.enqueue("youtube_learn")
    la = server.lease()[0]
    assert la["id"] == a["id"]
    server.complete(la, result={"video": 1})
    time.sleep(0.01)
    lb = server.lease()[0]
    assert lb["id"] == b["id"]
    server.fail(lb, cls="validation", message="bad url")

    status, _, res = server.request("GET", "/api/results?count=20")
    assert status == 200, res
    assert set(res) >= {"results", "success_rate"}
    ids = [r["id"] for r in res["results"]]
    assert ids == [b["id"], a["id"]], "newest finished first"
    dead, ok = res["results"]
    for item in res["results"]:
        for key in ("id", "action", "queue", "state", "attempt", "duration_ms", "finished_at"):
            assert key in item, (key, item)
    assert dead["state"] == "dead"
    assert dead["error"]["class"] == "validation" and dead["error"]["message"] == "bad url"
    assert ok["state"] == "succeeded" and ok["result"] == {"video": 1}
    assert res["success_rate"] == 0.5

    status, _, one = server.request("GET", "/api/results?count=1")
    assert status == 200 and [r["id"] for r in one["results"]] == [b["id"]]
    assert one["success_rate"] == 0.0

    for bad in ("0", "1001", "x"):
        status, _, body = server.request("GET", f"/api/results?count={bad}")
        assert status == 400, (bad, body)


def test_lease_orders_by_priority_then_run_at_then_id(server):
    """Given tasks of mixed priority and run_at in one queue, then lease returns priority desc, run_at asc, id asc."""
    past = fmt_ts(time.time() - 60)
    older = fmt_ts(time.time() - 120)
    t_low1 = server.enqueue("o", queue="ord", priority=0)
    t_high = server.enqueue("o", queue="ord", priority=5)
    t_low2 = server.enqueue("o", queue="ord", priority=0)
    t_top = server.enqueue("o", queue="ord", priority=10)
    # Same priority as t_high, created later, but with an earlier run_at: must come before it.
    t_high_early = server.enqueue("o", queue="ord", priority=5, run_at=past)
    # Same priority and same run_at: id (creation order) decides.
    t_same1 = server.enqueue("o", queue="ord", priority=-1, run_at=older)
    t_same2 = server.enqueue("o", queue="ord", priority=-1, run_at=older)
    t_neg_late = server.enqueue("o", queue="ord", priority=-1)
    assert t_high_early["state"] == "ready"
    assert t_high_early["run_at"] == past

    leased = server.lease(["ord"], max=10)
    got = [t["id"] for t in leased]
    want = [t_top["id"], t_high_early["id"], t_high["id"], t_low1["id"], t_low2["id"],
            t_same1["id"], t_same2["id"], t_neg_late["id"]]
    assert got == want


def test_lease_max_limits_batch_size(server):
    """Given 5 ready tasks, when leasing max=2, then exactly 2 come back and 3 remain."""
    for _ in range(5):
        server.enqueue("m", queue="mq")
    assert len(server.lease(["mq"], max=2)) == 2
    assert len(server.lease(["mq"], max=10)) == 3
    assert server.lease(["mq"], max=10) == []


def test_delayed_task_is_scheduled_and_not_leased_before_run_at(server):
    """Given delay_s=1, then the task is scheduled, not leasable at once, and leasable after its run_at."""
    t0 = time.time()
    task = server.enqueue("later", queue="dq", delay_s=1)
    t1 = time.time()
    assert task["state"] == "scheduled"
    run_at = parse_ts(task["run_at"])
    assert t0 + 1 - 0.05 <= run_at <= t1 + 1 + 0.05, (t0, run_at)

    assert server.lease(["dq"]) == []
    time.sleep(max(0, run_at - time.time() - 0.4))
    assert server.lease(["dq"]) == [], "leased before its run_at"

    deadline = time.time() + 3 * SLOW
    got = []
    while not got and time.time() < deadline:
        got = server.lease(["dq"], wait_ms=100)
    assert got, "delayed task never became leasable"
    leased_at = time.time()
    assert leased_at >= run_at - 0.05
    assert got[0]["id"] == task["id"] and got[0]["attempt"] == 1


def test_run_at_in_future_is_scheduled(server):
    """Given run_at one minute ahead, then state scheduled with that run_at, and nothing leasable."""
    when = fmt_ts(time.time() + 60)
    task = server.enqueue("future", queue="fq", run_at=when)
    assert task["state"] == "scheduled"
    assert abs(parse_ts(task["run_at"]) - parse_ts(when)) < 1e-5
    assert server.get(task["id"])["state"] == "scheduled"
    assert server.lease(["fq"]) == []


def test_lease_only_takes_from_named_queues(server):
    """Given tasks in queues a and b, when leasing from b, then only b's task is returned."""
    server.enqueue("x", queue="qa_only")
    tb = server.enqueue("x", queue="qb_only")
    got = server.lease(["qb_only"], max=10)
    assert [t["id"] for t in got] == [tb["id"]]
    assert server.lease(["default"], max=10) == []
