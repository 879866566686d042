"""Schedules, target sets, gaps and backfill (docs/schedules.md), black box."""
import time

import pytest

from conftest import SLOW, Server, ServerError, assert_error, parse_ts, wait_until


def scheduled(srv, schedule):
    """Tasks of one schedule, by scheduled_for."""
    status, _, body = srv.request("GET", "/api/tasks?limit=1000")
    assert status == 200, body
    tasks = [t for t in body["tasks"] if t.get("schedule") == schedule]
    return sorted(tasks, key=lambda t: (t["scheduled_for"], t["id"]))


def slots(tasks):
    return [round(parse_ts(t["scheduled_for"]), 3) for t in tasks]


def ledger_of(srv, kind, schedule):
    return [r for r in srv.ledger() if r["kind"] == kind and r["data"].get("schedule") == schedule]


def every(spec, **extra):
    s = {"cron": spec, "action": "collect", "queue": "sched"}
    s.update(extra)
    return s


def create(srv, body, expect=201):
    status, headers, out = srv.request("POST", "/api/schedules", body)
    assert status == expect, f"create {body} -> {status} {out}"
    return status, headers, out


def test_slots_are_exact_and_enqueued_once_across_a_restart(server_factory):
    srv = server_factory({"schedules": {"tick": every("@every 1s", catch_up="all")}})
    wait_until(lambda: len(scheduled(srv, "tick")) >= 2, 5 * SLOW, what="two slots")
    srv.stop()
    time.sleep(2.2)
    srv.start()
    before = len(scheduled(srv, "tick"))
    wait_until(lambda: len(scheduled(srv, "tick")) >= before + 4, 8 * SLOW, what="slots after restart")
    tasks = scheduled(srv, "tick")
    times = slots(tasks)
    # One task per slot, every whole second from the first to the last: the slots missed
    # while the server was down were caught up ("all"), none ran twice.
    assert all(t == int(t) for t in times), times
    assert times == [times[0] + i for i in range(len(times))], times
    for t in tasks:
        assert t["idempotency_key"] == f"schedule:tick:{t['scheduled_for']}", t
        assert t["action"] == "collect" and t["queue"] == "sched"
    fired = ledger_of(srv, "schedule.fired", "tick")
    assert sorted(parse_ts(r["data"]["slot"]) for r in fired) == times
    assert any(r["data"]["catch_up"] for r in fired), "no slot was caught up after the restart"
    assert all(len(r["data"]["tasks"]) == 1 for r in fired)
    # An ordinary task carries no schedule fields.
    plain = srv.enqueue("echo")
    assert "schedule" not in plain and "scheduled_for" not in plain
    status, _, sched = srv.request("GET", "/api/schedules/tick")
    assert status == 200 and sched["source"] == "config" and sched["catch_up"] == "all"
    assert parse_ts(sched["next_run_at"]) > parse_ts(sched["last_slot"])


def test_catch_up_policies_after_a_stop(server_factory):
    srv = server_factory({"schedules": {
        "skip": every("@every 1s", catch_up="skip"),
        "latest": every("@every 1s", catch_up="latest"),
        "all2": every("@every 1s", catch_up="all", catch_up_max=2),
    }})
    names = ("skip", "latest", "all2")
    wait_until(lambda: all(scheduled(srv, n) for n in names), 5 * SLOW, what="a slot each")
    srv.stop()
    time.sleep(3.5)  # three or four slots come due while the server is down
    srv.start()
    started = time.time()
    wait_until(lambda: all(len(ledger_of(srv, "schedule.fired", n)) >= 1 and
                           any(not r["data"]["catch_up"] and parse_ts(r["data"]["slot"]) > started
                               for r in ledger_of(srv, "schedule.fired", n)) for n in names),
               6 * SLOW, what="a slot after the restart for each schedule")
    want_caught_up = {"skip": 0, "latest": 1, "all2": 2}
    for n in names:
        fired = ledger_of(srv, "schedule.fired", n)
        caught = sorted(parse_ts(r["data"]["slot"]) for r in fired if r["data"]["catch_up"])
        assert len(caught) == want_caught_up[n], (n, fired)
        skipped = ledger_of(srv, "schedule.skipped", n)
        assert len(skipped) == 1, (n, skipped)
        s = skipped[0]["data"]
        assert s["catch_up"] == n.rstrip("2") if n != "all2" else s["catch_up"] == "all"
        first, last = parse_ts(s["first"]), parse_ts(s["last"])
        assert s["count"] == round(last - first) + 1 >= 1, s
        # The caught-up slots are the newest missed ones, right after the skipped ones.
        assert caught == [last + 1 + i for i in range(len(caught))], (n, caught, s)
        # Whatever the policy, slots are whole seconds without duplicates or holes other
        # than the skipped ones.
        times = slots(scheduled(srv, n))
        assert len(times) == len(set(times)), times
        missing = [t for t in range(int(times[0]), int(times[-1]) + 1) if t not in times]
        assert missing == [first + i for i in range(s["count"])], (n, missing, s)


def test_schedule_api_create_list_pause_resume_delete(server_factory):
    srv = server_factory({"schedules": {"cfg": every("@hourly")}})
    body = every("@every 1s", name="api1", payload={"k": 1}, priority=3)
    _, _, s = create(srv, body)
    assert s["name"] == "api1" and s["source"] == "api" and s["paused"] is False
    assert s["payload"] == {"k": 1} and s["priority"] == 3 and s["catch_up"] == "latest"
    assert s["time_zone"] == "UTC" and s["last_slot"] is None and s["next_run_at"]
    assert_error(*srv.request("POST", "/api/schedules", body), 409, "conflict", "api1")
    bad = [
        (every("61 * * * *", name="b1"), 422, "cron"),
        (every("@every 1s", name="b2", time_zone="Mars/Olympus"), 422, "time_zone"),
        ({"name": "b3", "cron": "@hourly"}, 400, "action"),
        ({"name": "b4", "action": "x"}, 400, "cron"),
        (every("@hourly", name="b5", colour="red"), 400, "colour"),
        (every("@hourly", name="b 6"), 400, "name"),
        (every("@hourly", name="b7", catch_up="most"), 400, "catch_up"),
        (every("@hourly", name="b8", target_set="nope"), 422, "target_set"),
        (every("@hourly", name="b9", backfill=True), 400, "backfill"),
        (every("@hourly", name="b10", gap_grace="soon"), 400, "gap_grace"),
        (every("@hourly", name="b11", payload=[1]), 400, "payload"),
    ]
    for b, code, field in bad:
        assert_error(*srv.request("POST", "/api/schedules", b), code, mentions=field)
    assert_error(*srv.request("POST", "/api/schedules", "{nope"), 400)

    status, _, listing = srv.request("GET", "/api/schedules")
    assert status == 200 and [x["name"] for x in listing["schedules"]] == ["api1", "cfg"]
    wait_until(lambda: scheduled(srv, "api1"), 4 * SLOW, what="api1 runs")
    assert scheduled(srv, "api1")[0]["payload"] == {"k": 1}
    assert scheduled(srv, "api1")[0]["priority"] == 3

    status, _, p = srv.request("POST", "/api/schedules/api1/pause")
    assert status == 200 and p["paused"] is True and p["next_run_at"] is None
    n = len(scheduled(srv, "api1"))
    time.sleep(1.6)
    assert len(scheduled(srv, "api1")) == n, "a paused schedule enqueued"
    status, _, r = srv.request("POST", "/api/schedules/api1/resume")
    assert status == 200 and r["paused"] is False and r["next_run_at"]
    wait_until(lambda: len(scheduled(srv, "api1")) > n, 4 * SLOW, what="runs again")
    # No catch-up of the paused slots.
    times = slots(scheduled(srv, "api1"))
    assert len(times) == len(set(times))
    assert_error(*srv.request("POST", "/api/schedules/none/pause"), 404)

    assert_error(*srv.request("DELETE", "/api/schedules/cfg"), 409, mentions="config")
    status, _, p = srv.request("POST", "/api/schedules/cfg/pause")
    assert status == 200 and p["paused"] is True
    status, _, d = srv.request("DELETE", "/api/schedules/api1")
    assert status == 200 and d == {"name": "api1", "deleted": True}
    assert_error(*srv.request("GET", "/api/schedules/api1"), 404)
    assert_error(*srv.request("DELETE", "/api/schedules/api1"), 404)
    kinds = [r["kind"] for r in srv.ledger() if r["kind"].startswith("schedule.")]
    for k in ("schedule.created", "schedule.paused", "schedule.resumed", "schedule.deleted"):
        assert k in kinds, kinds

    # Config schedules come back from the config, with their paused state from the store;
    # API schedules from the store.
    _, _, s2 = create(srv, every("@daily", name="api2", time_zone="Europe/Berlin"))
    srv.restart()
    status, _, cfg = srv.request("GET", "/api/schedules/cfg")
    assert status == 200 and cfg["paused"] is True
    status, _, api2 = srv.request("GET", "/api/schedules/api2")
    assert status == 200 and api2["time_zone"] == "Europe/Berlin"
    assert api2["next_run_at"] == s2["next_run_at"]
    assert_error(*srv.request("GET", "/api/schedules/api1"), 404)


def test_fan_out_over_a_target_set(server_factory):
    srv = server_factory({"target_sets": {"fixed": ["x", "y"]}})
    status, _, ts = srv.request("PUT", "/api/target-sets/universe", {"items": ["AAPL", "MSFT", "NVDA"]})
    assert status == 200 and ts["items"] == ["AAPL", "MSFT", "NVDA"] and ts["source"] == "api"
    for body, field in [({"items": "AAPL"}, "items"), ({"items": ["A", "A"]}, "items[1]"),
                        ({"items": ["A", 1]}, "items[1]"), ({}, "items"), ({"items": [], "x": 1}, "x")]:
        assert_error(*srv.request("PUT", "/api/target-sets/u2", body), 400, mentions=field)
    assert_error(*srv.request("PUT", "/api/target-sets/fixed", {"items": ["z"]}), 409, mentions="config")
    status, _, listing = srv.request("GET", "/api/target-sets")
    assert status == 200 and {s["name"] for s in listing["target_sets"]} == {"fixed", "universe"}

    create(srv, every("@every 1s", name="fan", target_set="universe", item_field="symbol",
                      payload={"depth": 2}))
    assert_error(*srv.request("DELETE", "/api/target-sets/universe"), 409, mentions="fan")

    def full_slots():
        by_slot = {}
        for t in scheduled(srv, "fan"):
            by_slot.setdefault(t["scheduled_for"], []).append(t)
        return by_slot
    wait_until(lambda: len(full_slots()) >= 2, 5 * SLOW, what="two fan-out slots")
    for slot, tasks in full_slots().items():
        assert sorted(t["payload"]["symbol"] for t in tasks) == ["AAPL", "MSFT", "NVDA"], tasks
        for t in tasks:
            assert t["payload"]["depth"] == 2
            assert t["idempotency_key"] == f"schedule:fan:{slot}:{t['payload']['symbol']}"
    fired = ledger_of(srv, "schedule.fired", "fan")
    assert fired and all(len(r["data"]["tasks"]) == 3 for r in fired)

    # A replaced set applies from the next slot.
    srv.request("PUT", "/api/target-sets/universe", {"items": ["TSLA"]})
    mark = time.time() + 0.05
    wait_until(lambda: any(parse_ts(s) > mark + 1 for s in full_slots()), 4 * SLOW, what="a slot after")
    late = [ts for s, ts in full_slots().items() if parse_ts(s) > mark + 1]
    assert all([t["payload"]["symbol"] for t in tasks] == ["TSLA"] for tasks in late)
    srv.request("DELETE", "/api/schedules/fan")
    status, _, d = srv.request("DELETE", "/api/target-sets/universe")
    assert status == 200 and d["deleted"] is True
    assert_error(*srv.request("GET", "/api/target-sets/universe"), 404)


def test_a_missed_slot_is_a_gap_an_alert_and_a_backfill_that_closes_it(server_factory):
    srv = server_factory({
        "alerts": {"interval_ms": 100, "hold_s": 0},
        "schedules": {"g": every("@every 1s", queue="gq", gap_grace="1s", backfill=True)},
    })
    # Nobody works queue gq: the first slot's task does not succeed within its grace.
    wait_until(lambda: srv.request("GET", "/api/gaps?schedule=g")[2]["gaps"], 6 * SLOW, what="a gap")
    status, _, p = srv.request("POST", "/api/schedules/g/pause")
    assert status == 200
    paused_at = time.time()

    def gaps():
        status, _, body = srv.request("GET", "/api/gaps?schedule=g&limit=1000")
        assert status == 200, body
        return body["gaps"]
    # Slots up to the pause are still checked; then the list holds still.
    time.sleep(2.5)
    found = gaps()
    assert found and all(parse_ts(g["slot"]) <= paused_at for g in found)
    g0 = found[-1]
    assert g0["schedule"] == "g" and g0["item"] is None and g0["open"] is True
    assert len(g0["task_ids"]) == 1 and g0["backfill_task_id"], g0
    assert g0["id"] == f"g:{g0['slot']}"
    backfill = srv.get(g0["backfill_task_id"])
    assert backfill["scheduled_for"] == g0["slot"] and backfill["schedule"] == "g"
    assert backfill["idempotency_key"] == f"schedule:g:{g0['slot']}:backfill"
    assert parse_ts(g0["detected_at"]) >= parse_ts(g0["slot"]) + 1

    def alert():
        status, _, body = srv.request("GET", "/api/alerts")
        return [a for a in body["firing"] if a["name"] == "ScheduleGaps" and a["labels"].get("schedule") == "g"]
    wait_until(alert, 5 * SLOW, what="ScheduleGaps firing")
    assert alert()[0]["value"] == len(found)
    assert srv.metric('resonance_schedule_gaps_total{schedule="g"}') == len(found)
    assert srv.metric('resonance_schedule_gaps_open{schedule="g"}') == len(found)
    detected = ledger_of(srv, "gap.detected", "g")
    assert sorted(r["data"]["id"] for r in detected) == sorted(g["id"] for g in found)

    # A worker now: the original tasks fail for good, the backfills succeed.
    backfills = {g["backfill_task_id"] for g in found}
    done = set()
    deadline = time.monotonic() + 10 * SLOW
    while done != backfills and time.monotonic() < deadline:
        for t in srv.lease(("gq",), max=50, wait_ms=200):
            if t["id"] in backfills:
                srv.complete(t, {"ok": True})
                done.add(t["id"])
            else:
                srv.fail(t, cls="validation", message="source had nothing")
    assert done == backfills
    wait_until(lambda: all(not g["open"] for g in gaps()), 5 * SLOW, what="gaps closed")
    for g in gaps():
        assert g["closed_by"] == g["backfill_task_id"] and g["closed_at"], g
    assert ledger_of(srv, "gap.closed", "g")
    wait_until(lambda: not alert(), 5 * SLOW, what="ScheduleGaps resolved")
    assert srv.metric('resonance_schedule_gaps_open{schedule="g"}') == 0
    assert_error(*srv.request("GET", "/api/gaps?limit=0"), 400, mentions="limit")


@pytest.mark.parametrize("schedule,mentions", [
    (every("61 * * * *"), "schedules.bad.cron"),
    (every("@hourly", time_zone="Nowhere/City"), "schedules.bad.time_zone"),
    (every("@hourly", target_set="missing"), "schedules.bad.target_set"),
    (every("@hourly", catch_up="sometimes"), "schedules.bad.catch_up"),
    ({"cron": "@hourly"}, "schedules.bad.action"),
])
def test_a_bad_schedule_in_the_config_stops_the_start(tmp_workdir, schedule, mentions):
    srv = Server(tmp_workdir / "bad", config={"schedules": {"bad": schedule}})
    try:
        with pytest.raises(ServerError):
            srv.start()
        assert srv.proc.returncode == 2
        assert mentions in srv.stderr_tail(), srv.stderr_tail()
    finally:
        srv.cleanup()
