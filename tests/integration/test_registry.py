"""Worker registry: register, heartbeat, lost workers, identity conflicts, deregister."""

import time

from conftest import assert_error, wait_until

REGISTRY_CONFIG = {"sweep_interval_ms": 20, "worker_heartbeat_ms": 200,
                   "worker_lost_after_ms": 600,
                   "retry": {"timeout": {"base_s": 0.2, "factor": 2}}}


def register(server, worker="w1", pid=4242, expect=200, **fields):
    body = {"worker": worker, "pool": "rpa", "pid": pid, "host": "box", "queues": ["default"],
            "concurrency": 2}
    body.update(fields)
    status, headers, out = server.request("POST", "/api/workers/register", body)
    assert status == expect, out
    return status, headers, out


def workers_by_name(server):
    status, _, body = server.request("GET", "/api/workers")
    assert status == 200, body
    return {w["worker"]: w for w in body["workers"]}


def test_registered_worker_is_listed_with_what_it_said(server_factory):
    """Given a registered worker, then GET /api/workers shows its pool, pid, host, queues and state active."""
    srv = server_factory(REGISTRY_CONFIG)
    _, _, out = register(srv)
    assert out == {"worker": "w1", "heartbeat_ms": 200, "lost_after_ms": 600}
    w = workers_by_name(srv)["w1"]
    assert w["registered"] is True
    assert (w["pool"], w["pid"], w["host"], w["queues"], w["concurrency"]) == \
        ("rpa", 4242, "box", ["default"], 2)
    assert w["state"] == "active" and w["started_at"] and w["last_seen"]


def test_second_live_worker_with_same_identity_is_refused(server_factory):
    """Given w1 registered by pid 4242, when pid 4343 registers as w1, then 409 names the holder."""
    srv = server_factory(REGISTRY_CONFIG)
    register(srv)
    status, headers, body = register(srv, pid=4343, expect=409)
    assert_error(status, headers, body, 409, "conflict", mentions="4242")


def test_silent_worker_is_lost_and_its_tasks_retried_at_once(server_factory):
    """Given w1 holds a task with a 60 s lease and stops heartbeating, then within ~lost_after it is
    lost, the task is failed as timeout ("worker lost") and leasable again, long before the lease ends."""
    srv = server_factory(REGISTRY_CONFIG)
    register(srv)
    task = srv.enqueue("scrape", timeout_s=60)
    leased = srv.lease_one(worker="w1")
    assert leased["id"] == task["id"]
    started = time.monotonic()
    wait_until(lambda: workers_by_name(srv)["w1"]["state"] == "lost", 5, what="w1 lost")
    t = srv.get(task["id"])
    assert t["state"] in ("scheduled", "ready"), t
    assert t["error"] == {"class": "timeout", "message": "worker lost"}
    again = srv.lease_one(worker="w2", timeout=5)
    assert again["id"] == task["id"] and again["attempt"] == 2
    assert time.monotonic() - started < 10
    # The lost worker's old lease is stale now.
    status, headers, body = srv.request("POST", f"/api/tasks/{task['id']}/complete",
                                        {"lease": leased["lease"]})
    assert_error(status, headers, body, 409, "conflict")


def test_heartbeats_keep_a_worker_active(server_factory):
    """Given w1 heartbeats every 150 ms for 1.5 s (longer than lost_after), then it stays active."""
    srv = server_factory(REGISTRY_CONFIG)
    register(srv)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        status, _, body = srv.request("POST", "/api/workers/w1/heartbeat", {"running": []})
        assert status == 200 and body == {"ok": True}
        time.sleep(0.15)
    assert workers_by_name(srv)["w1"]["state"] == "active"


def test_heartbeat_of_unknown_or_lost_worker_is_404_and_register_again_works(server_factory):
    """Given no registration, heartbeat gets 404; after w1 is lost, heartbeat gets 404 and
    registering again (even from a new pid) makes it active."""
    srv = server_factory(REGISTRY_CONFIG)
    status, headers, body = srv.request("POST", "/api/workers/nobody/heartbeat", {})
    assert_error(status, headers, body, 404, "not_found")
    register(srv)
    wait_until(lambda: workers_by_name(srv)["w1"]["state"] == "lost", 5, what="w1 lost")
    status, headers, body = srv.request("POST", "/api/workers/w1/heartbeat", {})
    assert_error(status, headers, body, 404, "not_found")
    register(srv, pid=5555)
    w = workers_by_name(srv)["w1"]
    assert w["state"] == "active" and w["pid"] == 5555


def test_deregistered_worker_is_gone_and_its_name_free(server_factory):
    """Given w1 deregisters, then it is listed as gone and another pid may take the name."""
    srv = server_factory(REGISTRY_CONFIG)
    register(srv)
    status, _, body = srv.request("POST", "/api/workers/w1/deregister")
    assert status == 200 and body == {"ok": True}
    assert workers_by_name(srv)["w1"]["state"] == "gone"
    register(srv, pid=6666)
    status, headers, body = srv.request("POST", "/api/workers/ghost/deregister")
    assert_error(status, headers, body, 404, "not_found")


def test_register_rejects_bad_fields(server_factory):
    """Given a registration without a worker name or with a wrong type, then 400 naming the field."""
    srv = server_factory(REGISTRY_CONFIG)
    status, headers, body = srv.request("POST", "/api/workers/register", {"pool": "rpa"})
    assert_error(status, headers, body, 400, "invalid_argument", mentions="worker")
    status, headers, body = srv.request("POST", "/api/workers/register",
                                        {"worker": "w1", "pid": "x"})
    assert_error(status, headers, body, 400, "invalid_argument", mentions="pid")


def test_registry_events_are_in_the_ledger(server_factory):
    """Given a worker registers, is lost, registers again and deregisters, then the ledger has
    worker.registered, worker.lost and worker.deregistered events."""
    srv = server_factory(REGISTRY_CONFIG)
    register(srv)
    wait_until(lambda: workers_by_name(srv)["w1"]["state"] == "lost", 5, what="w1 lost")
    register(srv)
    srv.request("POST", "/api/workers/w1/deregister")
    status, _, body = srv.request("GET", "/api/ledger?limit=1000")
    kinds = [e["kind"] for e in body["events"] if e["data"].get("worker") == "w1"]
    assert kinds == ["worker.registered", "worker.lost", "worker.registered", "worker.deregistered"]


def test_deregistering_worker_hands_back_the_tasks_it_still_holds(server_factory):
    """Given w1 holds a task with a 60 s lease and deregisters, then the task fails at once as
    temporary ("worker stopped") and another worker can lease it."""
    srv = server_factory(REGISTRY_CONFIG)
    register(srv)
    task = srv.enqueue("scrape", timeout_s=60)
    leased = srv.lease_one(worker="w1")
    status, _, body = srv.request("POST", "/api/workers/w1/deregister")
    assert status == 200, body
    t = srv.get(task["id"])
    assert t["error"] == {"class": "temporary", "message": "worker stopped"}
    assert t["state"] in ("scheduled", "ready")
    again = srv.lease_one(worker="w2", timeout=5)
    assert again["id"] == task["id"] and again["attempt"] == 2
    status, _, body = srv.request("POST", f"/api/tasks/{task['id']}/complete",
                                  {"lease": leased["lease"]})
    assert status == 409, body
