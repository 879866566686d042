"""Failed attempts: backoff per error class, attempt counting, dead letters, per-action policy."""

import time

from conftest import FAST_RETRY_CONFIG, SLOW, parse_ts

# How far the server's run_at may sit from our own estimate (clock read on both sides of
# the request; the server computes run_at while handling it).
SLACK_S = 0.05


def fail_and_check_backoff(server, task, backoff_s, cls="temporary", **extra):
    t0 = time.time()
    out = server.fail(task, cls=cls, message=f"{cls} failure", **extra)
    t1 = time.time()
    assert out["state"] == "scheduled", out
    assert out["error"]["class"] == cls
    run_at = parse_ts(out["run_at"])
    assert t0 + backoff_s - SLACK_S <= run_at <= t1 + backoff_s + SLACK_S, \
        f"run_at should be now+{backoff_s}s, is now+{run_at - t0:.3f}s"
    return out, run_at


def test_temporary_failure_reschedules_with_exponential_backoff(fast_server):
    """Given base_s=0.2 factor=2, when attempts fail temporary, then run_at is now+0.2 then now+0.4 and attempt grows."""
    s = fast_server
    task = s.enqueue("flaky_default", queue="rt")
    l1 = s.lease_one(["rt"])
    assert l1["attempt"] == 1
    out, run_at = fail_and_check_backoff(s, l1, 0.2)
    assert out["attempt"] == 1
    got = s.get(task["id"])
    assert got["state"] in ("scheduled", "ready")
    assert got["error"] == {"class": "temporary", "message": "temporary failure"}

    l2 = s.lease_one(["rt"])
    assert time.time() >= run_at - SLACK_S, "leased before the backoff elapsed"
    assert l2["id"] == task["id"] and l2["attempt"] == 2
    assert l2["lease"] != l1["lease"]
    fail_and_check_backoff(s, l2, 0.4)

    l3 = s.lease_one(["rt"])
    assert l3["attempt"] == 3
    done = s.complete(l3, result=3)
    assert done["state"] == "succeeded" and done["attempt"] == 3


def test_backoff_is_not_leasable_early(fast_server):
    """Given a temporary failure with 0.2 s backoff, then an immediate lease returns nothing."""
    s = fast_server
    s.enqueue("x", queue="early")
    l1 = s.lease_one(["early"])
    s.fail(l1)
    assert s.lease(["early"]) == []


def test_task_goes_dead_after_max_attempts(fast_server):
    """Given max_attempts=3, when all 3 attempts fail temporary, then the task is dead with the last error."""
    s = fast_server
    task = s.enqueue("always_fails", queue="ma", max_attempts=3)
    for n in (1, 2, 3):
        lt = s.lease_one(["ma"])
        assert lt["attempt"] == n
        out = s.fail(lt, message=f"fail {n}")
        if n < 3:
            assert out["state"] == "scheduled", out
    assert out["state"] == "dead", out
    assert out["error"] == {"class": "temporary", "message": "fail 3"}
    got = s.get(task["id"])
    assert got["state"] == "dead" and got["attempt"] == 3 and got["finished_at"]
    time.sleep(0.5 * SLOW)
    assert s.lease(["ma"]) == []


def test_default_max_attempts_is_five(fast_server):
    """Given defaults, when every attempt fails temporary, then the 5th failure makes it dead."""
    s = fast_server
    s.enqueue("x", queue="five")
    for n in range(1, 6):
        lt = s.lease_one(["five"])
        assert lt["attempt"] == n
        out = s.fail(lt)
        assert out["state"] == ("dead" if n == 5 else "scheduled"), (n, out)


def test_validation_failure_is_dead_at_once(fast_server):
    """Given a first attempt failing with class validation, then the task is dead at once (no retry)."""
    s = fast_server
    task = s.enqueue("bad_input", queue="val")
    lt = s.lease_one(["val"])
    out = s.fail(lt, cls="validation", message="missing url")
    assert out["state"] == "dead"
    assert out["attempt"] == 1
    assert out["error"] == {"class": "validation", "message": "missing url"}
    status, _, dlq = s.request("GET", "/api/dlq")
    assert status == 200 and task["id"] in [t["id"] for t in dlq["tasks"]]


def test_cancelled_class_failure_is_cancelled(fast_server):
    """Given a failure of class cancelled, then the task is cancelled (terminal, not retried)."""
    s = fast_server
    s.enqueue("x", queue="cc")
    lt = s.lease_one(["cc"])
    out = s.fail(lt, cls="cancelled", message="user gave up")
    assert out["state"] == "cancelled"
    time.sleep(0.3)
    assert s.lease(["cc"]) == []


def test_rate_limited_waits_retry_after_and_does_not_use_attempts(fast_server):
    """Given max_attempts=2, when attempt 1 is rate_limited (retry_after_s=0.5), then it waits 0.5 s and two more real failures are allowed."""
    s = fast_server
    task = s.enqueue("api_call", queue="rl", max_attempts=2)
    l1 = s.lease_one(["rl"])
    _, run_at = fail_and_check_backoff(s, l1, 0.5, cls="rate_limited", retry_after_s=0.5)
    assert s.lease(["rl"]) == []

    l2 = s.lease_one(["rl"])
    assert time.time() >= run_at - SLACK_S
    assert l2["attempt"] == 2, "attempt counts attempts started, the throttled one included"
    out = s.fail(l2, message="real failure 1")
    assert out["state"] == "scheduled", "a rate_limited failure must not use up one of max_attempts"

    l3 = s.lease_one(["rl"])
    assert l3["attempt"] == 3
    out = s.fail(l3, message="real failure 2")
    assert out["state"] == "dead", out
    assert s.get(task["id"])["error"]["message"] == "real failure 2"


def test_rate_limited_without_retry_after_uses_class_base(server_factory):
    """Given [retry.rate_limited] base_s=0.3, when failing rate_limited without retry_after_s, then run_at = now+0.3."""
    s = server_factory({"sweep_interval_ms": 20, "retry": {"rate_limited": {"base_s": 0.3}}})
    s.enqueue("x", queue="rl2")
    lt = s.lease_one(["rl2"])
    fail_and_check_backoff(s, lt, 0.3, cls="rate_limited")


def test_per_action_retry_override_is_honoured(server_factory):
    """Given server-wide base_s=5 and [actions."flaky".retry.temporary] base_s=0.2, then flaky retries in 0.2 s, others in 5 s."""
    cfg = {
        "sweep_interval_ms": 20,
        "retry": {"temporary": {"base_s": 5, "factor": 2}},
        "actions": {"flaky": {"retry": {"temporary": {"base_s": 0.2, "factor": 2}}}},
    }
    s = server_factory(cfg)
    s.enqueue("flaky", queue="pa")
    s.enqueue("steady", queue="pb")
    lf = s.lease_one(["pa"])
    ls = s.lease_one(["pb"])
    fail_and_check_backoff(s, lf, 0.2)
    fail_and_check_backoff(s, ls, 5.0)
    assert s.lease_one(["pa"])["attempt"] == 2
    assert s.lease(["pb"]) == []


def test_per_action_max_retries_override(server_factory):
    """Given [actions."once".retry.temporary] max_retries=1, then the second temporary failure is dead despite max_attempts=5."""
    cfg = dict(FAST_RETRY_CONFIG)
    cfg["actions"] = {"once": {"retry": {"temporary": {"base_s": 0.1, "max_retries": 1}}}}
    s = server_factory(cfg)
    s.enqueue("once", queue="mr")
    out = s.fail(s.lease_one(["mr"]))
    assert out["state"] == "scheduled"
    out = s.fail(s.lease_one(["mr"]))
    assert out["state"] == "dead", out
