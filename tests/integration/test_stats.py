"""Task history: GET /api/stats over stored history, GET /api/baselines from a fixture
history written into the store, checked against values computed by hand."""
import math
import sqlite3
import time

import pytest

from conftest import SLOW, assert_error, wait_until

KINDS = ("temporary", "rate_limited", "timeout", "validation", "cancelled")


def stats(srv, query="window=5m"):
    status, _, body = srv.request("GET", "/api/stats?" + query)
    assert status == 200, body
    return body


def check_history(s):
    assert s["succeeded"] == 2 and s["dead"] == 1 and s["retried"] == 1 and s["cancelled"] == 1, s
    assert s["finished"] == 4 and s["attempts"] == 4, s
    assert s["success_rate"] == pytest.approx(2 / 3), s
    assert s["failure_rate"] == pytest.approx(0.5), s
    assert s["throughput_per_s"] == pytest.approx(4 / 300), s
    assert s["failures_by_class"] == {"temporary": 1, "rate_limited": 0, "timeout": 0, "validation": 1,
                                      "cancelled": 0}, s
    assert s["retries_by_class"]["temporary"] == 1 and sum(s["retries_by_class"].values()) == 1, s
    d = s["duration_s"]
    assert d["count"] == 4, d
    assert 0 <= d["p50"] <= d["p95"] <= d["p99"] <= d["max"] < 60, d
    assert s["wait_s"]["count"] == 4, s["wait_s"]


def test_stats_count_what_happened_and_survive_a_restart(server_factory):
    """Given two successes, a dead task, a retried attempt and a cancellation, then /api/stats shows exactly
    those, with rates, percentiles, classes and a row per action, filters by action, and says the same after a
    restart (the history is stored)."""
    srv = server_factory({"sweep_interval_ms": 20})
    for _ in range(4):
        srv.enqueue("a", queue="sq")
    cancelled = srv.enqueue("b", queue="sq")
    status, _, _ = srv.request("POST", f"/api/tasks/{cancelled['id']}/cancel")
    assert status == 200
    leased = [srv.lease_one(queues=("sq",)) for _ in range(4)]
    srv.complete(leased[0])
    srv.complete(leased[1])
    srv.fail(leased[2], cls="validation")
    srv.fail(leased[3], cls="temporary")

    s = stats(srv)
    assert s["window"] == "5m" and s["window_s"] == 300, s
    assert s["queue"] is None and s["action"] is None, s
    check_history(s)
    by = {(r["queue"], r["action"]): r for r in s["by_action"]}
    assert set(by) == {("sq", "a"), ("sq", "b")}, s["by_action"]
    assert by[("sq", "a")]["succeeded"] == 2 and by[("sq", "a")]["cancelled"] == 0
    assert by[("sq", "b")]["cancelled"] == 1 and by[("sq", "b")]["attempts"] == 0
    assert by[("sq", "b")]["success_rate"] is None and by[("sq", "b")]["duration_s"]["p50"] is None

    only_b = stats(srv, "window=1h&action=b")
    assert only_b["action"] == "b" and only_b["cancelled"] == 1 and only_b["succeeded"] == 0, only_b
    assert stats(srv, "window=1h&queue=elsewhere")["finished"] == 0

    srv.restart()
    check_history(stats(srv))
    check_history(stats(srv, "window=24h") | {"throughput_per_s": 4 / 300})


def test_stats_window_is_checked(server):
    for bad in ("5x", "0m", "8d", "m", "-5m", "1.5h", "100000h"):
        status, headers, body = server.request("GET", f"/api/stats?window={bad}")
        assert_error(status, headers, body, 400, "invalid_argument", mentions="window")
    assert stats(server, "")["window"] == "1h"  # the default
    for good, seconds in (("1m", 60), ("6h", 21600), ("24h", 86400), ("7d", 604800)):
        assert stats(server, f"window={good}")["window_s"] == seconds


def encode(succeeded=0, dead=0, duration_bucket=None, duration_us=0, attempts=0):
    """MinuteStats::Encode for a fixture row: counts, and `attempts` durations of duration_us each."""
    nums = [succeeded, 0, dead, 0] + [0] * 5 + [0] * 5
    buckets = [0] * 54
    if attempts:
        buckets[duration_bucket] = attempts
    nums += [attempts, attempts * duration_us, duration_us if attempts else 0] + buckets
    nums += [0, 0, 0] + [0] * 54
    return "v1 " + " ".join(str(n) for n in nums)


def test_baselines_match_hand_computed_values_from_a_fixture_history(server_factory):
    """Given stored history of four complete hours (success 0.9, 1.0, 0.8, 0.9; attempt durations 1 s, 1 s, 1 s,
    10 s), plus rows that must not count (the current hour, and one older than the look-back), then
    /api/baselines gives mean 0.9, sigma 0.0707107, threshold 0.7585786 and p95 mean 3.25, sigma 3.8971143,
    threshold 11.044229; a queue with too little history gets the 70 % floor and no duration threshold."""
    srv = server_factory({"baselines": {"lookback_hours": 6, "min_hours": 4, "min_samples": 5}})
    srv.stop()
    hour = int(time.time() // 60) // 60 * 60  # the current hour's first minute
    rows = [(hour - 60 * 1 + 5, "bq", "a", encode(9, 1, 24, 1_000_000, 10)),
            (hour - 60 * 2 + 5, "bq", "a", encode(10, 0, 24, 1_000_000, 10)),
            (hour - 60 * 3 + 5, "bq", "a", encode(8, 2, 24, 1_000_000, 10)),
            (hour - 60 * 4 + 5, "bq", "a", encode(9, 1, 32, 10_000_000, 10)),
            # split across two minutes of one hour: summed into one sample
            (hour - 60 * 4 + 6, "bq", "a", encode(0, 0)),
            (hour + 1, "bq", "a", encode(0, 10, 40, 100_000_000, 10)),        # current hour: ignored
            (hour - 60 * 10, "bq", "a", encode(0, 10, 40, 100_000_000, 10)),  # older than 6 h: ignored
            (hour - 60 * 1 + 5, "young", "a", encode(10, 0, 24, 1_000_000, 10))]
    db = sqlite3.connect(str(srv.data_dir / "resonance.db"))
    db.executemany("INSERT INTO stats (minute, queue, action, data) VALUES (?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    srv.start()

    status, _, body = srv.request("GET", "/api/baselines")
    assert status == 200, body
    assert body["lookback_hours"] == 6 and body["min_hours"] == 4 and body["min_samples"] == 5, body
    assert body["success_floor"] == pytest.approx(0.7)
    got = {(b["queue"], b["action"]): b for b in body["baselines"]}
    assert set(got) == {("bq", "a"), ("young", "a")}, body
    b = got[("bq", "a")]
    sr, du = b["success_rate"], b["duration_p95_s"]
    assert sr["hours"] == 4 and sr["learned"] is True, b
    assert sr["mean"] == pytest.approx(0.9, abs=1e-9)
    assert sr["stddev"] == pytest.approx(math.sqrt(0.005), abs=1e-7)
    assert sr["threshold"] == pytest.approx(0.9 - 2 * math.sqrt(0.005), abs=1e-7)
    assert du["hours"] == 4 and du["learned"] is True, b
    assert du["mean"] == pytest.approx(3.25, abs=1e-9)
    sigma = math.sqrt((3 * 2.25 ** 2 + 6.75 ** 2) / 4)
    assert du["stddev"] == pytest.approx(sigma, abs=1e-7)
    assert du["threshold"] == pytest.approx(3.25 + 2 * sigma, abs=1e-6)

    y = got[("young", "a")]
    assert y["success_rate"]["learned"] is False and y["success_rate"]["threshold"] == pytest.approx(0.7), y
    assert y["success_rate"]["mean"] == pytest.approx(1.0), y
    assert y["duration_p95_s"]["threshold"] is None and y["duration_p95_s"]["learned"] is False, y

    status, _, only = srv.request("GET", "/api/baselines?queue=young")
    assert status == 200 and [x["queue"] for x in only["baselines"]] == ["young"], only


def test_history_older_than_history_keep_days_is_pruned(server_factory):
    """Given history rows from 40 and from 2 days ago and history_keep_days = 31, when the server runs its alert
    loop, then the 40-day-old rows are deleted and the recent ones kept."""
    srv = server_factory({"history_keep_days": 31, "alerts": {"interval_ms": 100}})
    srv.stop()
    now_minute = int(time.time() // 60)
    db = sqlite3.connect(str(srv.data_dir / "resonance.db"))
    db.executemany("INSERT INTO stats (minute, queue, action, data) VALUES (?, ?, ?, ?)",
                   [(now_minute - 40 * 1440, "old", "a", encode(1, 0)),
                    (now_minute - 2 * 1440, "recent", "a", encode(1, 0))])
    db.commit()
    db.close()
    srv.start()

    def queues():
        con = sqlite3.connect(str(srv.data_dir / "resonance.db"))
        try:
            return sorted(q for (q,) in con.execute("SELECT queue FROM stats"))
        finally:
            con.close()
    wait_until(lambda: queues() == ["recent"], 10 * SLOW, what="the old row pruned")
