"""Producer side: idempotency, batches, listing with filters and paging, long-poll leasing."""

import threading
import time

from conftest import SLOW, assert_error


def test_idempotency_key_returns_existing_task(server):
    """Given a task enqueued with key k, when enqueued again with k, then 200 with the same id and only one task exists."""
    body = {"action": "idem_action", "payload": {"n": 1}, "idempotency_key": "k-123"}
    s1, _, t1 = server.request("POST", "/api/tasks", body)
    assert s1 == 201, t1
    assert t1["idempotency_key"] == "k-123"
    s2, _, t2 = server.request("POST", "/api/tasks", dict(body, payload={"n": 2}))
    assert s2 == 200, t2
    assert t2["id"] == t1["id"]
    assert t2["payload"] == {"n": 1}, "the existing task comes back unchanged"
    listed = server.list_tasks(action="idem_action")["tasks"]
    assert [t["id"] for t in listed] == [t1["id"]]

    s3, _, t3 = server.request("POST", "/api/tasks", dict(body, idempotency_key="k-456"))
    assert s3 == 201 and t3["id"] != t1["id"]


def test_idempotency_key_still_dedups_after_task_finished(server):
    """Given a task with key k that already succeeded, when enqueued with k again, then 200 with the finished task."""
    t1 = server.enqueue("idem_done", queue="idq", idempotency_key="done-1")
    server.complete(server.lease_one(["idq"]))
    s2, _, t2 = server.request("POST", "/api/tasks", {"action": "idem_done", "queue": "idq",
                                                        "idempotency_key": "done-1"})
    assert s2 == 200 and t2["id"] == t1["id"] and t2["state"] == "succeeded"


def test_batch_enqueue_creates_all_in_input_order(server):
    """Given a batch of 3 tasks, then 201 with 3 tasks in input order, all retrievable."""
    items = [{"action": "b_first", "priority": 1}, {"action": "b_second", "queue": "bq"},
             {"action": "b_third", "payload": {"x": [1, 2]}, "delay_s": 30}]
    status, _, body = server.request("POST", "/api/tasks/batch", {"tasks": items})
    assert status == 201, body
    tasks = body["tasks"]
    assert [t["action"] for t in tasks] == ["b_first", "b_second", "b_third"]
    assert tasks[0]["priority"] == 1
    assert tasks[1]["queue"] == "bq"
    assert tasks[2]["payload"] == {"x": [1, 2]} and tasks[2]["state"] == "scheduled"
    assert len({t["id"] for t in tasks}) == 3
    assert [t["id"] for t in tasks] == sorted(t["id"] for t in tasks), "ids follow creation (input) order"
    for t in tasks:
        assert server.get(t["id"])["action"] == t["action"]


def test_batch_with_one_invalid_item_is_400_naming_index_and_creates_nothing(server):
    """Given a batch whose item 1 has action 5, then 400 naming tasks[1] and none of the batch exists."""
    items = [{"action": "batch_bad_x"}, {"action": 5}, {"action": "batch_bad_x"}]
    status, headers, body = server.request("POST", "/api/tasks/batch", {"tasks": items})
    assert_error(status, headers, body, 400, "invalid_argument", mentions="tasks[1]")
    assert server.list_tasks(action="batch_bad_x")["tasks"] == []

    items = [{"action": "batch_bad_y"}, {"action": "batch_bad_y"}, {"action": "batch_bad_y", "priority": "high"}]
    status, headers, body = server.request("POST", "/api/tasks/batch", {"tasks": items})
    assert_error(status, headers, body, 400, "invalid_argument", mentions="tasks[2]")
    assert server.list_tasks(action="batch_bad_y")["tasks"] == []


def test_batch_empty_or_not_a_list_is_400(server):
    """Given a batch with no items or tasks not a list, then 400 invalid_argument."""
    for bad in ({"tasks": []}, {"tasks": {"action": "x"}}, {}):
        status, headers, body = server.request("POST", "/api/tasks/batch", bad)
        assert_error(status, headers, body, 400, "invalid_argument")
    assert server.list_tasks()["tasks"] == []


def test_batch_complete_with_one_stale_lease_completes_the_others(server):
    """Given 3 leased tasks, when batch-completed with item 1's token wrong, then items 0 and 2 succeed and item 1 has a conflict error."""
    for i in range(3):
        server.enqueue("bc", queue="bcq", payload={"i": i})
    leased = server.lease(["bcq"], max=3)
    assert len(leased) == 3
    items = [{"id": t["id"], "lease": t["lease"], "result": {"i": n}} for n, t in enumerate(leased)]
    items[1]["lease"] = "stale-token"
    status, _, body = server.request("POST", "/api/complete", {"tasks": items})
    assert status == 200, body
    out = body["tasks"]
    assert [o["id"] for o in out] == [t["id"] for t in leased]
    assert out[0].get("state") == "succeeded" and "error" not in out[0]
    assert out[2].get("state") == "succeeded" and "error" not in out[2]
    assert out[1]["error"]["code"] == "conflict" and out[1]["error"]["message"]
    assert server.get(leased[0]["id"])["result"] == {"i": 0}
    assert server.get(leased[2]["id"])["state"] == "succeeded"
    mid = server.get(leased[1]["id"])
    assert mid["state"] == "running" and mid["result"] is None


def test_batch_fail_applies_each_item_on_its_own(server):
    """Given 2 leased tasks, when batch-failed (one validation, one with a stale token), then the first is dead and the second still running."""
    for _ in range(2):
        server.enqueue("bf", queue="bfq")
    a, b = server.lease(["bfq"], max=2)
    items = [{"id": a["id"], "lease": a["lease"], "error": {"class": "validation", "message": "bad"}},
             {"id": b["id"], "lease": "stale", "error": {"class": "validation", "message": "bad"}}]
    status, _, body = server.request("POST", "/api/fail", {"tasks": items})
    assert status == 200, body
    out = body["tasks"]
    assert out[0] == {"id": a["id"], "state": "dead"} or out[0].get("state") == "dead"
    assert out[1]["error"]["code"] == "conflict"
    assert server.get(a["id"])["state"] == "dead"
    assert server.get(b["id"])["state"] == "running"


def test_long_poll_lease_returns_task_enqueued_while_waiting(server):
    """Given an empty queue and a lease with wait_ms, when a task is enqueued 300 ms later, then the lease returns it well before wait_ms."""
    wait_ms = int(2000 * max(1.0, SLOW / 2))
    enqueued = {}

    def producer():
        time.sleep(0.3)
        enqueued["task"] = server.enqueue("lp", queue="lpq")

    th = threading.Thread(target=producer)
    t0 = time.monotonic()
    th.start()
    got = server.lease(["lpq"], wait_ms=wait_ms, timeout=wait_ms / 1000 + 10 * SLOW)
    elapsed = time.monotonic() - t0
    th.join()
    assert len(got) == 1 and got[0]["id"] == enqueued["task"]["id"]
    assert elapsed >= 0.25
    assert elapsed < 0.6 * wait_ms / 1000, f"long-poll took {elapsed:.2f}s of {wait_ms} ms"


def test_long_poll_lease_with_nothing_returns_empty_after_wait(server):
    """Given an empty queue, when leasing with wait_ms=1000, then {"tasks":[]} after about 1 s."""
    t0 = time.monotonic()
    status, _, body = server.request("POST", "/api/lease",
                                     {"worker": "w", "queues": ["nothing"], "wait_ms": 1000})
    elapsed = time.monotonic() - t0
    assert status == 200 and body == {"tasks": []}, body
    assert 0.9 <= elapsed <= 1.0 + 1.0 * SLOW, elapsed


def test_lease_without_wait_returns_empty_at_once(server):
    """Given an empty queue, when leasing with wait_ms 0, then {"tasks":[]} at once."""
    t0 = time.monotonic()
    status, _, body = server.request("POST", "/api/lease", {"worker": "w", "queues": ["none"]})
    assert status == 200 and body == {"tasks": []}
    assert time.monotonic() - t0 < 0.5 * SLOW


def test_list_tasks_filters_and_pages_with_after(server):
    """Given 4 ready tasks in q among others, when listing state=ready&queue=q&limit=2, then pages of 2 in id order via next_after."""
    ready = [server.enqueue("lst", queue="lq") for _ in range(5)]
    server.enqueue("lst", queue="other")
    sched = server.enqueue("lst", queue="lq", delay_s=60)
    leased = server.lease_one(["lq"])
    assert leased["id"] == ready[0]["id"]
    want = [t["id"] for t in ready[1:]]

    seen = []
    after = None
    for _ in range(10):
        q = "/api/tasks?state=ready&queue=lq&limit=2" + (f"&after={after}" if after else "")
        status, _, page = server.request("GET", q)
        assert status == 200, page
        ids = [t["id"] for t in page["tasks"]]
        assert len(ids) <= 2
        assert ids == sorted(ids)
        for t in page["tasks"]:
            assert t["state"] == "ready" and t["queue"] == "lq"
        seen += ids
        if page["next_after"] is not None:
            assert ids and page["next_after"] == ids[-1], page["next_after"]
        after = page["next_after"]
        if not after or not ids:
            break
    assert seen == want

    running = server.list_tasks(state="running", queue="lq")["tasks"]
    assert [t["id"] for t in running] == [leased["id"]]
    scheduled = server.list_tasks(state="scheduled")["tasks"]
    assert [t["id"] for t in scheduled] == [sched["id"]]
    everything = server.list_tasks(action="lst")
    assert len(everything["tasks"]) == 7


def test_list_tasks_rejects_bad_state_and_limit(server):
    """Given a bad state name or a limit outside 1..1000, then 400 invalid_argument."""
    for q in ("state=bogus", "limit=0", "limit=1001", "limit=abc"):
        status, headers, body = server.request("GET", f"/api/tasks?{q}")
        assert_error(status, headers, body, 400, "invalid_argument")
