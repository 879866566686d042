"""Leases: expiry, heartbeats, stale tokens, cancellation of running work."""

import time

from conftest import SLOW, assert_error, parse_ts, wait_until


def test_expired_lease_fails_attempt_with_timeout_class(fast_server):
    """Given timeout_s=1 and no heartbeat, then after ~1 s the task leaves running with error class timeout and the old token gets 409."""
    s = fast_server
    task = s.enqueue("slow", queue="exp", timeout_s=1)
    t0 = time.time()
    lt = s.lease_one(["exp"])
    expires = parse_ts(lt["lease_expires_at"])
    assert t0 + 1 - 0.05 <= expires <= time.time() + 1 + 0.05

    after = wait_until(lambda: (lambda t: t if t["state"] != "running" else None)(s.get(task["id"])),
                       timeout=1 + 3 * SLOW, what="lease to expire")
    assert time.time() >= expires - 0.05, "lease expired before lease_expires_at"
    assert after["state"] in ("scheduled", "ready"), after
    assert after["error"]["class"] == "timeout", after
    assert "expire" in after["error"]["message"].lower(), after["error"]
    assert after["attempt"] == 1

    status, headers, body = s.request("POST", f"/api/tasks/{task['id']}/complete",
                                      {"lease": lt["lease"], "result": "late"})
    assert_error(status, headers, body, 409, "conflict")
    unchanged = s.get(task["id"])
    assert unchanged["state"] in ("scheduled", "ready") and unchanged["result"] is None, unchanged

    again = s.lease_one(["exp"])
    assert again["id"] == task["id"] and again["attempt"] == 2
    assert again["lease"] != lt["lease"]


def test_expired_lease_of_last_attempt_goes_dead(fast_server):
    """Given max_attempts=1 and timeout_s=1, when the lease lapses, then the task is dead with class timeout."""
    s = fast_server
    task = s.enqueue("slow", queue="exp1", timeout_s=1, max_attempts=1)
    s.lease_one(["exp1"])
    dead = wait_until(lambda: (lambda t: t if t["state"] == "dead" else None)(s.get(task["id"])),
                      timeout=1 + 3 * SLOW, what="task to go dead")
    assert dead["error"]["class"] == "timeout"


def test_heartbeat_extends_lease_past_timeout(fast_server):
    """Given timeout_s=1, when the worker heartbeats every 0.3 s for 2.5 s, then the task stays running and completes on attempt 1."""
    s = fast_server
    task = s.enqueue("long", queue="hb", timeout_s=1)
    lt = s.lease_one(["hb"])
    prev_exp = parse_ts(lt["lease_expires_at"])
    end = time.time() + 2.5
    beats = 0
    while time.time() < end:
        time.sleep(0.3)
        t0 = time.time()
        status, _, hb = s.request("POST", f"/api/tasks/{task['id']}/heartbeat",
                                  {"lease": lt["lease"], "progress": {"beat": beats}})
        assert status == 200, hb
        assert hb["cancel"] is False
        exp = parse_ts(hb["lease_expires_at"])
        assert exp >= t0 + 1 - 0.05, "heartbeat should extend the lease to now + timeout_s"
        assert exp >= prev_exp
        prev_exp = exp
        beats += 1
    got = s.get(task["id"])
    assert got["state"] == "running", got
    assert got["progress"] == {"beat": beats - 1}
    assert got["attempt"] == 1
    done = s.complete(lt, result="done")
    assert done["state"] == "succeeded" and done["attempt"] == 1


def test_heartbeat_with_wrong_lease_is_409(server):
    """Given a running task, when heartbeating with a wrong token, then 409 conflict."""
    server.enqueue("x", queue="hbw")
    lt = server.lease_one(["hbw"])
    status, headers, body = server.request("POST", f"/api/tasks/{lt['id']}/heartbeat", {"lease": "not-the-token"})
    assert_error(status, headers, body, 409, "conflict")


def test_complete_with_wrong_lease_is_409_and_changes_nothing(server):
    """Given a running task, when completing or failing with a wrong token, then 409 and the task is unchanged."""
    task = server.enqueue("x", queue="stale")
    lt = server.lease_one(["stale"])
    before = server.get(task["id"])
    status, headers, body = server.request("POST", f"/api/tasks/{task['id']}/complete",
                                           {"lease": lt["lease"] + "x", "result": "forged"})
    assert_error(status, headers, body, 409, "conflict")
    status, headers, body = server.request("POST", f"/api/tasks/{task['id']}/fail",
                                           {"lease": "bogus", "error": {"class": "validation", "message": "m"}})
    assert_error(status, headers, body, 409, "conflict")
    after = server.get(task["id"])
    for key in ("state", "attempt", "result", "error", "worker", "lease_expires_at"):
        assert after[key] == before[key], key
    assert after["state"] == "running"
    assert server.complete(lt, result="real")["state"] == "succeeded"


def test_complete_after_another_worker_released_is_409(fast_server):
    """Given worker A's lease lapsed and B re-leased the task, when A completes, then 409 and B's lease still completes."""
    s = fast_server
    task = s.enqueue("x", queue="relase", timeout_s=1)
    la = s.lease_one(["relase"], worker="A")
    lb = s.lease_one(["relase"], worker="B", timeout=4 + 3 * SLOW)
    assert lb["id"] == task["id"] and lb["attempt"] == 2
    status, headers, body = s.request("POST", f"/api/tasks/{task['id']}/complete",
                                      {"lease": la["lease"], "result": "from A"})
    assert_error(status, headers, body, 409, "conflict")
    status, headers, body = s.request("POST", f"/api/tasks/{task['id']}/fail",
                                      {"lease": la["lease"], "error": {"class": "temporary", "message": "A"}})
    assert_error(status, headers, body, 409, "conflict")
    mid = s.get(task["id"])
    assert mid["state"] == "running" and mid["worker"] == "B" and mid["result"] is None
    done = s.complete(lb, result="from B")
    assert done["state"] == "succeeded" and done["result"] == "from B"


def test_complete_twice_second_is_409(server):
    """Given a completed task, when the same lease completes again, then 409 and the result stays."""
    server.enqueue("x", queue="twice")
    lt = server.lease_one(["twice"])
    server.complete(lt, result=1)
    status, headers, body = server.request("POST", f"/api/tasks/{lt['id']}/complete", {"lease": lt["lease"], "result": 2})
    assert_error(status, headers, body, 409, "conflict")
    assert server.get(lt["id"])["result"] == 1


def test_cancel_ready_task_is_cancelled_at_once(server):
    """Given a ready task, when cancelled, then it is cancelled at once and never leased."""
    task = server.enqueue("x", queue="cr")
    status, _, out = server.request("POST", f"/api/tasks/{task['id']}/cancel")
    assert status == 200, out
    assert out["state"] == "cancelled"
    assert server.get(task["id"])["state"] == "cancelled"
    assert server.lease(["cr"]) == []
    status, headers, body = server.request("POST", f"/api/tasks/{task['id']}/cancel")
    assert_error(status, headers, body, 409, "conflict")


def test_cancel_scheduled_task_is_cancelled_at_once(server):
    """Given a delayed task, when cancelled, then it is cancelled and does not run when its time comes."""
    task = server.enqueue("x", queue="cs", delay_s=0.3)
    status, _, out = server.request("POST", f"/api/tasks/{task['id']}/cancel")
    assert status == 200 and out["state"] == "cancelled", out
    time.sleep(0.5)
    assert server.lease(["cs"], wait_ms=200) == []


def test_cancel_running_task_is_seen_in_heartbeat_then_cancelled_on_complete(server):
    """Given a running task, when cancelled, then it stays running with cancel_requested, heartbeat says cancel, complete makes it cancelled."""
    task = server.enqueue("x", queue="crun")
    lt = server.lease_one(["crun"])
    status, _, out = server.request("POST", f"/api/tasks/{task['id']}/cancel")
    assert status == 200, out
    assert out["state"] == "running"
    assert out["cancel_requested"] is True
    status, _, hb = server.request("POST", f"/api/tasks/{task['id']}/heartbeat", {"lease": lt["lease"]})
    assert status == 200 and hb["cancel"] is True, hb
    done = server.complete(lt, result="stopped")
    assert done["state"] == "cancelled"
    assert server.get(task["id"])["state"] == "cancelled"


def test_cancel_running_task_then_fail_is_cancelled(server):
    """Given a running task with cancel requested, when the worker reports fail, then it is cancelled, not retried."""
    task = server.enqueue("x", queue="crf")
    lt = server.lease_one(["crf"])
    server.request("POST", f"/api/tasks/{task['id']}/cancel")
    out = server.fail(lt, cls="temporary", message="interrupted")
    assert out["state"] == "cancelled", out
    time.sleep(0.3)
    assert server.lease(["crf"]) == []


def test_cancel_unknown_task_is_404(server):
    """Given an id nobody created, when cancelling it, then 404 not_found."""
    status, headers, body = server.request("POST", "/api/tasks/0000000000000/cancel")
    assert_error(status, headers, body, 404, "not_found")
