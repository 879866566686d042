"""Crash test: kill -9 the server at random moments under concurrent load; nothing acknowledged may be lost."""

import http.client
import os
import random
import threading
import time

import pytest

from conftest import SLOW, ServerError, run_cli

KILLS = 20
PRODUCERS = 4
CONSUMERS = 4
CLIENT_TIMEOUT_S = 5 * SLOW
CLIENT_ERRORS = (OSError, http.client.HTTPException, ValueError)


class Record:
    """What the clients saw. Everything guarded by `lock`."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked_enqueues = set()   # ids from 2xx enqueue responses
        self.completed_at = {}        # id -> monotonic time the completion's 200 arrived
        self.violations = []          # (id, lease sent at, completion acked at)
        self.anomalies = []           # malformed 2xx answers
        self.unknown = 0              # requests whose answer never arrived
        self.enqueue_requests = 0
        self.leased = 0


def producer(srv, rec, stop, idx):
    k = 0
    while not stop.is_set():
        k += 1
        if k % 2:
            path, body = "/api/tasks", {"action": "crash", "payload": {"p": idx, "k": k}, "timeout_s": 3}
        else:
            path, body = "/api/tasks/batch", {"tasks": [{"action": "crash", "payload": {"p": idx, "k": k, "j": j},
                                                         "timeout_s": 3} for j in range(5)]}
        try:
            status, _, out = srv.request("POST", path, body, timeout=CLIENT_TIMEOUT_S)
        except CLIENT_ERRORS:
            with rec.lock:
                rec.unknown += 1  # may or may not exist; not acked, so not checked
            time.sleep(0.02)
            continue
        with rec.lock:
            rec.enqueue_requests += 1
            if 200 <= status < 300:
                try:
                    ids = [out["id"]] if path == "/api/tasks" else [t["id"] for t in out["tasks"]]
                    rec.acked_enqueues.update(ids)
                except (TypeError, KeyError):
                    rec.anomalies.append(("enqueue", status, out))
        time.sleep(0.02 if status < 300 else 0.05)


def consumer(srv, rec, stop, idx):
    k = 0
    while not stop.is_set():
        k += 1
        sent = time.monotonic()
        try:
            status, _, out = srv.request("POST", "/api/lease",
                                         {"worker": f"crash-c{idx}", "queues": ["default"], "max": 10,
                                          "wait_ms": 200}, timeout=CLIENT_TIMEOUT_S)
        except CLIENT_ERRORS:
            with rec.lock:
                rec.unknown += 1
            time.sleep(0.02)
            continue
        if status != 200:
            time.sleep(0.05)
            continue
        try:
            tasks = out["tasks"]
            leases = [(t["id"], t["lease"]) for t in tasks]
        except (TypeError, KeyError):
            with rec.lock:
                rec.anomalies.append(("lease", status, out))
            continue
        with rec.lock:
            rec.leased += len(leases)
            for tid, _ in leases:
                acked_at = rec.completed_at.get(tid)
                if acked_at is not None and acked_at < sent:
                    rec.violations.append((tid, sent, acked_at))
        if not leases:
            continue
        if k % 2:
            items = [{"id": tid, "lease": lease, "result": {"by": idx}} for tid, lease in leases]
            try:
                status, _, out = srv.request("POST", "/api/complete", {"tasks": items}, timeout=CLIENT_TIMEOUT_S)
            except CLIENT_ERRORS:
                with rec.lock:
                    rec.unknown += 1
                continue
            now = time.monotonic()
            if status == 200 and isinstance(out, dict):
                with rec.lock:
                    for item in out.get("tasks", []):
                        if item.get("state") == "succeeded":
                            rec.completed_at.setdefault(item["id"], now)
        else:
            for tid, lease in leases:
                try:
                    status, _, out = srv.request("POST", f"/api/tasks/{tid}/complete",
                                                 {"lease": lease, "result": {"by": idx}}, timeout=CLIENT_TIMEOUT_S)
                except CLIENT_ERRORS:
                    with rec.lock:
                        rec.unknown += 1
                    continue
                now = time.monotonic()
                if status == 200:
                    with rec.lock:
                        if isinstance(out, dict) and out.get("state") == "succeeded":
                            rec.completed_at.setdefault(tid, now)
                        else:
                            rec.anomalies.append(("complete", status, out))


def list_all_tasks(srv):
    tasks = {}
    after = None
    for _ in range(10000):
        q = "/api/tasks?limit=1000" + (f"&after={after}" if after else "")
        status, _, page = srv.request("GET", q, timeout=30 * SLOW)
        assert status == 200, page
        for t in page["tasks"]:
            tasks[t["id"]] = t
        after = page.get("next_after")
        if not after or not page["tasks"]:
            break
    return tasks


@pytest.mark.slow
def test_kill9_under_concurrent_load_loses_no_acknowledged_work(server_factory):
    """Given producers and consumers running while the server is killed -9 twenty times, then every acked enqueue exists, no acked completion is leased again, and the ledger verifies."""
    seed = int(os.environ.get("RESONANCE_CRASH_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    print(f"crash test seed {seed} (set RESONANCE_CRASH_SEED to replay the kill timing)")
    srv = server_factory({"sweep_interval_ms": 20, "retry": {"timeout": {"base_s": 0.2}}})
    rec = Record()
    stop = threading.Event()
    threads = [threading.Thread(target=producer, args=(srv, rec, stop, i), daemon=True) for i in range(PRODUCERS)]
    threads += [threading.Thread(target=consumer, args=(srv, rec, stop, i), daemon=True) for i in range(CONSUMERS)]
    for t in threads:
        t.start()

    t0 = time.monotonic()
    kills = 0
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.2, 1.0))
            srv.kill9()
            kills += 1
            srv.start()
        time.sleep(2.0)  # a quiet spell: leases from before the last crash settle
    except ServerError as e:
        pytest.fail(f"restart after kill #{kills} failed: {e}")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=CLIENT_TIMEOUT_S * 3)
    load_s = time.monotonic() - t0
    print(f"{kills} kills in {load_s:.1f}s; {len(rec.acked_enqueues)} enqueues acked, "
          f"{len(rec.completed_at)} completions acked, {rec.leased} leased, {rec.unknown} unknown outcomes")

    assert kills == KILLS
    assert not any(t.is_alive() for t in threads), "client threads did not stop"
    assert not rec.anomalies, rec.anomalies[:5]
    assert len(rec.acked_enqueues) >= 100, "too little load to mean anything"
    assert len(rec.completed_at) >= 50, "too few completions to mean anything"
    assert not rec.violations, f"{len(rec.violations)} acked completions were leased again, e.g. {rec.violations[:5]}"

    all_tasks = list_all_tasks(srv)
    missing = sorted(rec.acked_enqueues - all_tasks.keys())
    assert not missing, f"{len(missing)} acked enqueues lost, e.g. {missing[:5]}"
    not_done = sorted(tid for tid in rec.completed_at if all_tasks.get(tid, {}).get("state") != "succeeded")
    assert not not_done, f"{len(not_done)} acked completions not succeeded, e.g. " \
                         f"{[(t, all_tasks.get(t, {}).get('state')) for t in not_done[:5]]}"
    # The listing is the server's view; GET each of a sample the way a client would.
    sample = rng.sample(sorted(rec.acked_enqueues), min(300, len(rec.acked_enqueues)))
    sample += rng.sample(sorted(rec.completed_at), min(100, len(rec.completed_at)))
    for tid in sample:
        status, _, task = srv.request("GET", f"/api/tasks/{tid}")
        assert status == 200, (tid, status, task)
        if tid in rec.completed_at:
            assert task["state"] == "succeeded", task

    srv.stop()
    proc = run_cli("ledger", "verify", "--data-dir", str(srv.data_dir), timeout=120 * SLOW)
    assert proc.returncode == 0, f"ledger verify failed:\n{proc.stdout}\n{proc.stderr}"
