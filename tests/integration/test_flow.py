"""Flow control, black box: rate and concurrency limits at lease time, no head-of-line
blocking, backpressure from rate_limited failures, and the circuit breaker
(docs/flow-control.md)."""
import threading
import time

import pytest

from conftest import SLOW, Server, ServerError, assert_error, wait_until


def _events(server, kind):
    return [e for e in server.ledger() if e["kind"] == kind]


def _eager_workers(server, queue, n_workers, run_for_s, hold_s=0.0, on_lease=None):
    """n_workers threads lease one task at a time from `queue` (long-polling), hold it
    hold_s and complete it, for run_for_s. Returns the lease times (monotonic)."""
    stop = time.monotonic() + run_for_s
    times, lock = [], threading.Lock()
    errors = []

    def work(i):
        try:
            while time.monotonic() < stop:
                tasks = server.lease([queue], worker=f"w{i}", max=1, wait_ms=200)
                if not tasks:
                    continue
                with lock:
                    times.append(time.monotonic())
                if on_lease:
                    on_lease(+1)
                if hold_s:
                    time.sleep(hold_s)
                if on_lease:
                    on_lease(-1)  # before completing: the server frees the slot on complete
                server.complete(tasks[0])
        except Exception as e:  # surfaced in the test thread below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return sorted(times)


def test_rate_limit_holds_within_ten_percent_over_ten_seconds_with_eight_workers(server_factory):
    # Given queue "api" limited to 20/s with a burst of 1 and far more tasks than that,
    # when 8 eager workers lease for 11 s, then any 10 s window holds 200 leases +-10 %.
    srv = server_factory({"sweep_interval_ms": 50,
                          "queues": {"api": {"rate": "20/s", "burst": 1}}})
    status, _, _ = srv.request("POST", "/api/tasks/batch",
                               {"tasks": [{"action": "call", "queue": "api"}] * 400})
    assert status == 201
    times = _eager_workers(srv, "api", 8, 11.0)
    assert len(times) > 150, len(times)
    start = times[0]
    in_window = [t for t in times if start + 0.5 <= t < start + 10.5]
    print(f"{len(in_window)} leases in 10 s at 20/s")
    assert 180 <= len(in_window) <= 220, f"{len(in_window)} leases in 10 s at 20/s"


def test_hot_key_does_not_delay_other_keys(server_factory):
    # Given action "fetch" limited to 1/s per account (key from the payload), 20 tasks of
    # the hot account enqueued first and one task for each of 5 other accounts after,
    # when a worker asks for 10, then it gets one hot task and all 5 others at once.
    srv = server_factory({"actions": {"fetch": {"key_field": "account", "key_rate": "1/s",
                                                "key_burst": 1}}})
    hot = [{"action": "fetch", "payload": {"account": "hot", "n": i}} for i in range(20)]
    cold = [{"action": "fetch", "payload": {"account": f"cold-{i}"}} for i in range(5)]
    status, _, body = srv.request("POST", "/api/tasks/batch", {"tasks": hot + cold})
    assert status == 201
    assert body["tasks"][0]["limit_key"] == "hot"
    assert body["tasks"][20]["limit_key"] == "cold-0"
    got = srv.lease(max=10)
    keys = sorted(srv.get(t["id"])["limit_key"] for t in got)
    assert keys == ["cold-0", "cold-1", "cold-2", "cold-3", "cold-4", "hot"], keys
    assert srv.lease(max=10) == []  # the hot key waits for its next token
    # ...which comes about a second later, one task only.
    got = srv.lease(max=10, wait_ms=int(2000 * SLOW))
    assert len(got) == 1 and srv.get(got[0]["id"])["limit_key"] == "hot"
    _, _, flow = srv.request("GET", "/api/flow")
    assert flow["held"]["rate"] >= 1
    assert any(g["scope"] == "action_key" and g["key"] == "hot" for g in flow["limits"]), flow


def test_limit_key_on_the_task_wins_over_the_payload_field(server_factory):
    srv = server_factory({"actions": {"fetch": {"key_field": "account", "key_concurrency": 1}}})
    t = srv.enqueue("fetch", payload={"account": "a"}, limit_key="explicit")
    assert t["limit_key"] == "explicit"
    u = srv.enqueue("fetch", payload={"account": 42})
    assert u["limit_key"] == "42"
    v = srv.enqueue("fetch", payload={})
    assert v["limit_key"] is None


def test_concurrency_one_holds_under_eight_workers(server_factory):
    # Given queue "browser" with concurrency 1, when 8 workers race for 30 tasks, then
    # never more than one runs at once and all 30 are done.
    srv = server_factory({"sweep_interval_ms": 20, "queues": {"browser": {"concurrency": 1}}})
    status, _, _ = srv.request("POST", "/api/tasks/batch",
                               {"tasks": [{"action": "browse", "queue": "browser"}] * 30})
    assert status == 201
    running, peak, lock = [0], [0], threading.Lock()

    def on_lease(d):
        with lock:
            running[0] += d
            peak[0] = max(peak[0], running[0])

    deadline = time.monotonic() + 30 * SLOW
    done = 0
    while done < 30 and time.monotonic() < deadline:
        done += len(_eager_workers(srv, "browser", 8, 2.0, hold_s=0.02, on_lease=on_lease))
    assert done == 30
    assert peak[0] == 1, f"{peak[0]} ran at once"
    assert srv.metric('resonance_flow_held_total{reason="concurrency"}') > 0


def test_key_concurrency_lets_one_task_per_key_run(server_factory):
    srv = server_factory({"actions": {"login": {"key_field": "user", "key_concurrency": 1}}})
    for user in ("ann", "ann", "ann", "bob", "bob"):
        srv.enqueue("login", payload={"user": user})
    got = srv.lease(max=10)
    assert sorted(srv.get(t["id"])["limit_key"] for t in got) == ["ann", "bob"]
    srv.complete(got[0])
    again = srv.lease(max=10)
    assert [srv.get(t["id"])["limit_key"] for t in again] == [srv.get(got[0]["id"])["limit_key"]]


def test_task_cost_takes_that_many_tokens(server_factory):
    # Given action "embed" at 10/min with a burst of 10, a task of cost 8 and two of cost
    # 2, then the first two fit the bucket and the third waits.
    srv = server_factory({"actions": {"embed": {"rate": "10/min", "burst": 10}}})
    a = srv.enqueue("embed", cost=8)
    b = srv.enqueue("embed", cost=2)
    srv.enqueue("embed", cost=2)
    got = srv.lease(max=10)
    assert sorted(t["id"] for t in got) == sorted([a["id"], b["id"]])
    assert a["cost"] == 8


def test_running_tasks_hold_their_slots_across_a_restart(server_factory):
    # Given concurrency 1 and a task leased before a kill -9, when the server comes back,
    # then the recovered lease still holds the slot until it expires.
    cfg = {"sweep_interval_ms": 20, "queues": {"one": {"concurrency": 1}},
           "retry": {"timeout": {"base_s": 0.1}}}
    srv = server_factory(cfg)
    srv.enqueue("x", queue="one", timeout_s=2)
    srv.enqueue("x", queue="one", timeout_s=2)
    first = srv.lease(["one"])
    assert len(first) == 1
    srv.kill9()
    srv.start()
    assert srv.lease(["one"], max=5) == []
    # Once the recovered lease expires (2 s), one task runs again.
    got = srv.lease(["one"], max=5, wait_ms=int(4000 * SLOW))
    assert len(got) == 1


def test_rate_limited_failure_pauses_its_key(server_factory):
    # Given tasks of accounts a and b, when a's task fails rate_limited with
    # retry_after_s 1.5, then a's next task waits that long while b's runs at once; the
    # pause is in the ledger, the metrics and GET /api/flow.
    srv = server_factory({"sweep_interval_ms": 20,
                          "actions": {"api": {"key_field": "account"}}})
    a1 = srv.enqueue("api", payload={"account": "a"})
    a2 = srv.enqueue("api", payload={"account": "a"})
    b1 = srv.enqueue("api", payload={"account": "b"})
    t = srv.lease()[0]
    assert t["id"] == a1["id"]
    failed_at = time.monotonic()
    srv.fail(t, cls="rate_limited", message="429", retry_after_s=1.5)
    got = srv.lease(max=10)
    assert [x["id"] for x in got] == [b1["id"]]
    paused = _events(srv, "flow.paused")
    assert len(paused) == 1 and paused[0]["data"]["key"] == "a"
    assert paused[0]["data"]["action"] == "api"
    assert srv.metric("resonance_flow_pauses_total") == 1
    _, _, flow = srv.request("GET", "/api/flow")
    gate = [g for g in flow["limits"] if g["key"] == "a"]
    assert gate and gate[0]["paused_until"] is not None
    nxt = srv.lease(max=10, wait_ms=int(3000 * SLOW))
    assert nxt and nxt[0]["id"] in (a1["id"], a2["id"])
    assert time.monotonic() - failed_at >= 1.4


def _breaker_server(server_factory):
    return server_factory({
        "sweep_interval_ms": 20,
        "alerts": {"interval_ms": 100, "hold_s": 0},
        "retry": {"temporary": {"base_s": 30}},
        "actions": {"flaky": {"breaker": {"window_s": 60, "min_attempts": 4,
                                          "failure_ratio": 0.5, "cooldown_s": 1}}},
    })


def _open_breaker(srv):
    for _ in range(4):
        srv.enqueue("flaky")
    for t in srv.lease(max=4):
        srv.fail(t, cls="temporary")
    srv.enqueue("flaky")
    srv.enqueue("flaky")
    srv.enqueue("other")


def test_breaker_opens_probes_and_closes(server_factory):
    srv = _breaker_server(server_factory)
    _open_breaker(srv)
    _, _, body = srv.request("GET", "/api/breakers")
    b = body["breakers"][0]
    assert b["action"] == "flaky" and b["state"] == "open", body
    assert b["failures"] == 4 and b["probe_at"] is not None
    assert srv.metric('resonance_breaker_state{action="flaky"}') == 1
    opened = _events(srv, "breaker.opened")
    assert len(opened) == 1 and opened[0]["data"]["action"] == "flaky"

    def breaker_alert():
        _, _, alerts = srv.request("GET", "/api/alerts")
        return [a for a in alerts["firing"] if a["name"] == "BreakerOpen"]
    fired = wait_until(breaker_alert, 5 * SLOW, what="BreakerOpen firing")
    assert fired[0]["labels"]["action"] == "flaky"
    # While open, flaky tasks are held; others are not.
    got = srv.lease(max=10)
    assert [srv.get(t["id"])["action"] for t in got] == ["other"]
    # After the cool-down exactly one probe runs; the rest wait for it.
    probe = srv.lease(max=10, wait_ms=int(3000 * SLOW))
    assert len(probe) == 1
    assert srv.lease(max=10) == []
    _, _, body = srv.request("GET", "/api/breakers")
    assert body["breakers"][0]["state"] == "half_open"
    srv.complete(probe[0])
    _, _, body = srv.request("GET", "/api/breakers")
    assert body["breakers"][0]["state"] == "closed"
    assert len(srv.lease(max=10)) == 1  # the other held flaky task runs now
    assert [e["kind"] for e in srv.ledger() if e["kind"].startswith("breaker.")] == [
        "breaker.opened", "breaker.half_open", "breaker.closed"]
    assert srv.metric('resonance_breaker_state{action="flaky"}') == 0
    wait_until(lambda: not breaker_alert(), 5 * SLOW, what="BreakerOpen resolved")


def test_failed_probe_opens_the_breaker_again(server_factory):
    srv = _breaker_server(server_factory)
    _open_breaker(srv)
    srv.lease(max=10)  # "other"
    probe = srv.lease(max=10, wait_ms=int(3000 * SLOW))
    assert len(probe) == 1
    srv.fail(probe[0], cls="temporary")
    _, _, body = srv.request("GET", "/api/breakers")
    assert body["breakers"][0]["state"] == "open"
    assert body["breakers"][0]["opened_total"] == 2
    assert srv.lease(max=10) == []
    assert srv.metric('resonance_breaker_opened_total{action="flaky"}') == 2


def test_validation_failures_do_not_open_the_breaker(server_factory):
    srv = _breaker_server(server_factory)
    for _ in range(6):
        srv.enqueue("flaky")
    for t in srv.lease(max=6):
        srv.fail(t, cls="validation")
    _, _, body = srv.request("GET", "/api/breakers")
    assert body["breakers"][0]["state"] == "closed"


def test_bad_flow_fields_and_config_are_refused(server_factory, tmp_workdir):
    srv = server_factory()
    for field, value, mention in (("cost", 0, "cost"), ("cost", -2, "cost"),
                                  ("cost", "x", "cost"), ("limit_key", "k" * 201, "limit_key"),
                                  ("limit_key", 5, "limit_key")):
        status, headers, body = srv.request("POST", "/api/tasks", {"action": "a", field: value})
        assert_error(status, headers, body, 400, mentions=mention)
    assert srv.list_tasks()["tasks"] == []
    for cfg, mention in (({"queues": {"q": {"rate": "20/x"}}}, "queues.q.rate"),
                         ({"queues": {"q": {"rate": "abc"}}}, "queues.q.rate"),
                         ({"queues": {"q": {"burst": 5}}}, "queues.q.burst"),
                         ({"queues": {"q": {"concurrency": 0}}}, "queues.q.concurrency"),
                         ({"queues": {"q": {"speed": 1}}}, "queues.q.speed"),
                         ({"actions": {"a": {"breaker": {"failure_ratio": 2}}}},
                          "actions.a.breaker.failure_ratio"),
                         ({"breaker": {"cooldown_s": 0}}, "breaker.cooldown_s")):
        bad = Server(tmp_workdir / f"bad{abs(hash(mention))}", config=cfg)
        try:
            with pytest.raises(ServerError):
                bad.start()
            assert mention in bad.stderr_tail(), (cfg, bad.stderr_tail())
        finally:
            bad.cleanup()
