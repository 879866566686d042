"""Operator endpoints: dead letters, queue pause/resume, queue counts, workers, health."""

from conftest import assert_error


def make_dead(server, queue="dlqq", action="doomed"):
    task = server.enqueue(action, queue=queue)
    lt = server.lease_one([queue])
    assert lt["id"] == task["id"]
    out = server.fail(lt, cls="validation", message="no such video")
    assert out["state"] == "dead"
    return task


def test_dlq_lists_dead_tasks_only(server):
    """Given one dead and one ready task, then GET /api/dlq lists the dead one only."""
    dead = make_dead(server)
    ready = server.enqueue("fine", queue="dlqq")
    status, _, body = server.request("GET", "/api/dlq")
    assert status == 200, body
    ids = [t["id"] for t in body["tasks"]]
    assert dead["id"] in ids and ready["id"] not in ids
    item = next(t for t in body["tasks"] if t["id"] == dead["id"])
    assert item["state"] == "dead"
    assert item["error"] == {"class": "validation", "message": "no such video"}
    status, _, body = server.request("GET", "/api/dlq?queue=otherq")
    assert status == 200 and body["tasks"] == []


def test_dlq_requeue_makes_task_ready_with_attempt_zero(server):
    """Given a dead task, when requeued, then it is ready with attempt 0 and no error, and a lease returns it as attempt 1."""
    dead = make_dead(server)
    status, _, out = server.request("POST", f"/api/dlq/{dead['id']}/requeue")
    assert status == 200, out
    assert out["id"] == dead["id"]
    assert out["state"] == "ready"
    assert out["attempt"] == 0
    assert out["error"] is None
    status, _, body = server.request("GET", "/api/dlq")
    assert dead["id"] not in [t["id"] for t in body["tasks"]]
    lt = server.lease_one(["dlqq"])
    assert lt["id"] == dead["id"] and lt["attempt"] == 1
    assert server.complete(lt)["state"] == "succeeded"


def test_dlq_delete_removes_task(server):
    """Given a dead task, when deleted from the DLQ, then 200 {id, deleted:true} and GET task is 404."""
    dead = make_dead(server)
    status, _, out = server.request("DELETE", f"/api/dlq/{dead['id']}")
    assert status == 200, out
    assert out == {"id": dead["id"], "deleted": True} or (out["id"] == dead["id"] and out["deleted"] is True)
    status, headers, body = server.request("GET", f"/api/tasks/{dead['id']}")
    assert_error(status, headers, body, 404, "not_found")
    status, _, body = server.request("GET", "/api/dlq")
    assert dead["id"] not in [t["id"] for t in body["tasks"]]
    status, headers, body = server.request("DELETE", f"/api/dlq/{dead['id']}")
    assert_error(status, headers, body, 404, "not_found")


def test_dlq_requeue_or_delete_of_non_dead_task_is_409(server):
    """Given a ready task, when requeued or deleted via the DLQ, then 409 and the task stays ready."""
    task = server.enqueue("fine", queue="nd")
    status, headers, body = server.request("POST", f"/api/dlq/{task['id']}/requeue")
    assert_error(status, headers, body, 409, "conflict")
    status, headers, body = server.request("DELETE", f"/api/dlq/{task['id']}")
    assert_error(status, headers, body, 409, "conflict")
    assert server.get(task["id"])["state"] == "ready"


def test_dlq_requeue_or_delete_of_unknown_task_is_404(server):
    """Given ids nobody created, when requeued or deleted, then 404 not_found."""
    for tid in ("0000000000000", "zzzzzzzzzzzzz", "nope"):
        status, headers, body = server.request("POST", f"/api/dlq/{tid}/requeue")
        assert_error(status, headers, body, 404, "not_found")
        status, headers, body = server.request("DELETE", f"/api/dlq/{tid}")
        assert_error(status, headers, body, 404, "not_found")


def test_paused_queue_leases_nothing_while_others_still_lease(server):
    """Given queue pa paused, then lease over [pa, pb] returns only pb's task; resume makes pa's task leasable."""
    ta = server.enqueue("x", queue="pa")
    tb = server.enqueue("x", queue="pb")
    status, _, out = server.request("POST", "/api/queues/pa/pause")
    assert status == 200, out
    assert out["name"] == "pa" and out["paused"] is True
    got = server.lease(["pa", "pb"], max=10)
    assert [t["id"] for t in got] == [tb["id"]]
    assert server.lease(["pa"], max=10) == []

    # Enqueue into a paused queue still works; it just is not handed out.
    ta2 = server.enqueue("x", queue="pa")
    assert ta2["state"] == "ready"
    assert server.lease(["pa"], max=10) == []

    status, _, out = server.request("POST", "/api/queues/pa/resume")
    assert status == 200, out
    assert out["name"] == "pa" and out["paused"] is False
    got = server.lease(["pa"], max=10)
    assert [t["id"] for t in got] == [ta["id"], ta2["id"]]


def test_queues_lists_paused_flag_and_counts(server):
    """Given tasks scheduled, ready and running in two queues and one paused, then GET /api/queues shows each count and flag."""
    server.enqueue("x", queue="qa")
    server.enqueue("x", queue="qa")
    server.enqueue("x", queue="qa", delay_s=60)
    server.enqueue("x", queue="qb")
    server.enqueue("x", queue="qb")
    server.lease_one(["qb"])
    server.request("POST", "/api/queues/qa/pause")
    server.request("POST", "/api/queues/emptyq/pause")

    status, _, body = server.request("GET", "/api/queues")
    assert status == 200, body
    queues = {q["name"]: q for q in body["queues"]}
    assert queues["qa"]["paused"] is True
    assert (queues["qa"]["scheduled"], queues["qa"]["ready"], queues["qa"]["running"]) == (1, 2, 0)
    assert queues["qb"]["paused"] is False
    assert (queues["qb"]["scheduled"], queues["qb"]["ready"], queues["qb"]["running"]) == (0, 1, 1)
    assert queues["emptyq"]["paused"] is True, "a paused queue is listed even without tasks"

    server.request("POST", "/api/queues/qa/resume")
    status, _, body = server.request("GET", "/api/queues")
    queues = {q["name"]: q for q in body["queues"]}
    assert queues["qa"]["paused"] is False


def test_workers_lists_workers_seen_by_lease(server):
    """Given worker w-alpha leased a task, then GET /api/workers lists it with running 1."""
    server.enqueue("x", queue="wq")
    server.lease_one(["wq"], worker="w-alpha")
    status, _, body = server.request("GET", "/api/workers")
    assert status == 200, body
    workers = {w["name"]: w for w in body["workers"]}
    assert "w-alpha" in workers
    assert workers["w-alpha"]["running"] == 1
    assert workers["w-alpha"]["last_seen"]


def test_health_endpoints_answer_ok(server):
    """Given a running server, then /healthz, /readyz and /api/health answer 200 with status ok."""
    for path in ("/healthz", "/api/health"):
        status, headers, body = server.request("GET", path)
        assert status == 200, (path, body)
        assert body["status"] == "ok", (path, body)
    status, _, _ = server.request("GET", "/readyz")
    assert status == 200
