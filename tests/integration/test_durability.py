"""Durability: what was acknowledged survives kill -9 and SIGTERM; leases and schedules survive restarts."""

import time

from conftest import FAST_RETRY_CONFIG, SLOW, assert_error, wait_until


def test_acked_tasks_survive_kill9(server):
    """Given 40 acked enqueues (single and batch), when the server is killed -9 and restarted, then every task exists unchanged."""
    acked = {}
    for i in range(20):
        t = server.enqueue("durable", queue="dq", payload={"i": i}, priority=i % 3)
        acked[t["id"]] = t
    status, _, body = server.request("POST", "/api/tasks/batch",
                                     {"tasks": [{"action": "durable_b", "payload": {"j": j}} for j in range(20)]})
    assert status == 201
    for t in body["tasks"]:
        acked[t["id"]] = t

    server.kill9()
    server.restart()
    for tid, t in acked.items():
        got = server.get(tid)
        for key in ("action", "queue", "payload", "priority", "state", "run_at", "created_at", "max_attempts"):
            assert got[key] == t[key], (tid, key, got[key], t[key])
    assert len(server.list_tasks(limit=1000)["tasks"]) == 40


def test_finished_states_survive_kill9(server):
    """Given a succeeded, a dead and a cancelled task, when killed -9 and restarted, then each keeps its state, result and error, and none is leasable."""
    ok = server.enqueue("a", queue="fs")
    dead = server.enqueue("b", queue="fs")
    cancelled = server.enqueue("c", queue="fs")
    l1, l2 = server.lease(["fs"], max=2)
    server.complete(l1, result={"r": 1})
    server.fail(l2, cls="validation", message="nope")
    server.request("POST", f"/api/tasks/{cancelled['id']}/cancel")

    server.kill9()
    server.restart()
    g = server.get(ok["id"])
    assert g["state"] == "succeeded" and g["result"] == {"r": 1} and g["finished_at"]
    g = server.get(dead["id"])
    assert g["state"] == "dead" and g["error"] == {"class": "validation", "message": "nope"}
    assert server.get(cancelled["id"])["state"] == "cancelled"
    assert server.lease(["fs"], max=10, wait_ms=300) == []
    status, _, dlq = server.request("GET", "/api/dlq")
    assert [t["id"] for t in dlq["tasks"]] == [dead["id"]]
    status, _, res = server.request("GET", "/api/results")
    assert {r["id"] for r in res["results"]} == {ok["id"], dead["id"], cancelled["id"]}


def test_running_task_whose_lease_lapsed_while_down_is_retried(server_factory):
    """Given a running task with timeout_s=1, when the server is down past its lease, then after restart it is retried with class timeout."""
    s = server_factory(FAST_RETRY_CONFIG)
    task = s.enqueue("crashy", queue="rq", timeout_s=1)
    lt = s.lease_one(["rq"])
    s.kill9()
    time.sleep(1.5)
    s.restart()
    after = wait_until(lambda: (lambda t: t if t["state"] in ("scheduled", "ready") else None)(s.get(task["id"])),
                       timeout=3 * SLOW, what="lapsed lease to be swept after restart")
    assert after["error"]["class"] == "timeout"
    assert after["attempt"] == 1
    again = s.lease_one(["rq"])
    assert again["id"] == task["id"] and again["attempt"] == 2
    status, headers, body = s.request("POST", f"/api/tasks/{task['id']}/complete", {"lease": lt["lease"]})
    assert_error(status, headers, body, 409, "conflict")
    assert s.complete(again)["state"] == "succeeded"


def test_running_task_with_live_lease_survives_restart(server):
    """Given a running task with a 30 s lease, when killed -9 and restarted, then it is still running and its lease token still completes it."""
    task = server.enqueue("steady", queue="lq")
    lt = server.lease_one(["lq"])
    server.kill9()
    server.restart()
    got = server.get(task["id"])
    assert got["state"] == "running" and got["attempt"] == 1
    assert server.lease(["lq"]) == [], "a live lease must not be handed out twice"
    assert server.complete(lt, result="after restart")["state"] == "succeeded"


def test_scheduled_task_keeps_run_at_across_restart(server):
    """Given a task scheduled 30 s ahead, when killed -9 and restarted, then it is still scheduled with the same run_at."""
    task = server.enqueue("later", queue="sq", delay_s=30)
    retry = server.enqueue("retry_later", queue="sq2", max_attempts=3)
    lt = server.lease_one(["sq2"])
    failed = server.fail(lt)  # default temporary backoff: 1 s
    server.kill9()
    server.restart()
    got = server.get(task["id"])
    assert got["state"] == "scheduled"
    assert got["run_at"] == task["run_at"]
    assert server.lease(["sq"]) == []
    got = server.get(retry["id"])
    assert got["run_at"] == failed["run_at"]
    assert got["error"] == failed["error"] and got["attempt"] == 1
    assert server.lease_one(["sq2"])["attempt"] == 2


def test_sigterm_exits_zero_and_keeps_acked_tasks(server):
    """Given acked enqueues and a completion, when SIGTERM, then exit code 0 and after restart all are present."""
    ids = [server.enqueue("graceful", payload={"i": i})["id"] for i in range(30)]
    lt = server.lease_one()
    server.complete(lt, result="x")
    server.stop()
    server.restart()
    for tid in ids:
        server.get(tid)
    assert server.get(lt["id"])["state"] == "succeeded"


def test_sigterm_during_long_poll_exits_zero(server):
    """Given a lease long-polling for 10 s, when SIGTERM arrives, then the server still exits 0."""
    import threading

    def poll():
        try:
            server.request("POST", "/api/lease", {"worker": "w", "queues": ["none"], "wait_ms": 10000}, timeout=30)
        except OSError:
            pass

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    time.sleep(0.3)
    server.stop()
    th.join(timeout=5)


def test_idempotency_key_survives_restart(server):
    """Given a task enqueued with key k, when killed -9 and restarted, then enqueue with k returns 200 and the same id."""
    t1 = server.enqueue("idem", idempotency_key="survivor")
    server.kill9()
    server.restart()
    status, _, t2 = server.request("POST", "/api/tasks", {"action": "idem", "idempotency_key": "survivor"})
    assert status == 200 and t2["id"] == t1["id"]


def test_ids_keep_increasing_across_restart(server):
    """Given tasks created before a restart, then tasks created after it have larger ids."""
    before = server.enqueue("x")["id"]
    server.kill9()
    server.restart()
    after = server.enqueue("x")["id"]
    assert after > before


def test_paused_queue_stays_paused_after_restart(server):
    """Given a paused queue, when stopped and restarted, then it is still paused (spec is silent; Sidekiq/BullMQ keep pauses)."""
    server.enqueue("x", queue="pz")
    server.request("POST", "/api/queues/pz/pause")
    server.stop()
    server.restart()
    assert server.lease(["pz"]) == []
    status, _, body = server.request("GET", "/api/queues")
    assert {q["name"]: q for q in body["queues"]}["pz"]["paused"] is True
