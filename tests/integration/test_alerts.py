"""The alert engine in the server, black box: the scenarios operators ran by hand."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import SLOW, run_cli, wait_until
from test_worker import handlers, wait_state, worker_factory  # noqa: F401 (fixture)


def alerts(srv):
    status, _, body = srv.request("GET", "/api/alerts")
    assert status == 200, body
    return body


def firing(srv, name, **labels):
    return [a for a in alerts(srv)["firing"]
            if a["name"] == name and all(a["labels"].get(k) == v for k, v in labels.items())]


def ledger_alerts(srv):
    return [r for r in srv.ledger() if r["kind"].startswith("alert.")]


def metric(srv, series):
    return srv.metric(series)


class Receiver:
    """An HTTP receiver that records (path, parsed JSON body) of every POST and answers 200."""

    def __init__(self):
        self.posts = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def alerts(self):
        with self.lock:
            return [a for path, body in self.posts if path == "/api/v2/alerts" for a in body]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def test_queue_overload_goes_warning_then_critical_then_resolves_and_loses_nothing(server_factory):
    """Given the QueueDepth bands (warning from 6, critical from 21), when 10 and then 90 more tasks wait and then
    all are worked off, then the alert fires as warning, escalates to critical, resolves after the hold time, every
    transition is in the ledger and in /metrics, the file sink keeps the final state, and all 100 tasks succeed."""
    srv = server_factory({"sweep_interval_ms": 20,
                          "alerts": {"interval_ms": 100, "hold_s": 1, "rules": {"QueueDepth": {"for_s": 0}}}})
    ids = [srv.enqueue("work", queue="ov")["id"] for _ in range(10)]
    wait_until(lambda: firing(srv, "QueueDepth", queue="ov"), 10 * SLOW, what="QueueDepth firing")
    first = firing(srv, "QueueDepth", queue="ov")[0]
    assert first["severity"] == "warning" and first["value"] == 10 and first["threshold"] == 6, first
    assert first["annotations"]["summary"] == "10 ready tasks in queue ov", first
    assert metric(srv, 'resonance_alerts_firing{alertname="QueueDepth",severity="warning"}') == 1

    ids += [srv.enqueue("work", queue="ov")["id"] for _ in range(90)]
    wait_until(lambda: [a for a in firing(srv, "QueueDepth", queue="ov") if a["severity"] == "critical"],
               10 * SLOW, what="QueueDepth critical")
    assert metric(srv, 'resonance_alerts_firing{alertname="QueueDepth",severity="critical"}') == 1
    status, _, health = srv.request("GET", "/api/health")
    assert status == 200 and health["alerts"]["firing"] >= 1, health

    # The slow worker: works them off in batches.
    done = 0
    while done < 100:
        for t in srv.lease(queues=("ov",), max=25):
            srv.complete(t)
            done += 1
    wait_until(lambda: not firing(srv, "QueueDepth", queue="ov"), 10 * SLOW, what="QueueDepth resolved")
    assert all(srv.get(i)["state"] == "succeeded" for i in ids)

    history = [(a["state"], a["severity"]) for a in alerts(srv)["history"] if a["name"] == "QueueDepth"]
    assert history[0] == ("resolved", history[1][1]), history  # newest first
    states = [s for s, _ in reversed(history)]
    assert states[0] == "pending" and states[-1] == "resolved", history
    sev = [sv for s, sv in reversed(history) if s == "firing"]
    assert sev[0] == "warning" and "critical" in sev, history

    kinds = [(r["kind"], r["data"]["severity"]) for r in ledger_alerts(srv) if r["data"]["name"] == "QueueDepth"]
    assert kinds[0] == ("alert.pending", "warning"), kinds
    assert ("alert.firing", "warning") in kinds and ("alert.firing", "critical") in kinds, kinds
    assert kinds.index(("alert.firing", "warning")) < kinds.index(("alert.firing", "critical")), kinds
    assert kinds[-1][0] == "alert.resolved", kinds
    assert metric(srv, 'resonance_alerts_firing{alertname="QueueDepth",severity="critical"}') == 0

    files = list((srv.data_dir / "alerts").glob("QueueDepth-*.json"))
    assert len(files) == 1, files
    saved = json.loads(files[0].read_text())
    assert saved["state"] == "resolved" and saved["labels"]["queue"] == "ov" and saved["resolved_at"], saved


def test_success_rate_drop_fires_to_alertmanager_and_resolves_with_normal_traffic(server_factory, worker_factory,
                                                                                  receiver):
    """Given a queue success-rate rule (below 70 % over 5 minutes, for 1 s) and an Alertmanager sink, when 20 tasks
    with an unknown action go dead as validation errors among normal traffic, then the alert fires within its for
    window, the receiver gets Alertmanager v2 POSTs, a JSON file appears; normal traffic afterwards resolves it and
    the receiver hears that too (endsAt)."""
    srv = server_factory({
        "sweep_interval_ms": 20,
        "alerts": {"interval_ms": 100, "hold_s": 1, "resend_s": 1,
                   "rules": {"QueueSuccessRate": {"signal": "success_rate", "op": "<", "threshold": 0.7,
                                                  "per_action": False, "window_minutes": 5, "min_samples": 5,
                                                  "for_s": 1, "severity": "critical",
                                                  "labels": {"team": "rpa"},
                                                  "annotations": {"summary": "queue {{queue}} succeeds {{value}}"}}},
                   "sinks": [{"type": "alertmanager", "url": receiver.url}, {"type": "file"}]}})
    worker_factory(srv, handlers(ok={"type": "noop"}), name="sw")
    normal = [srv.enqueue("ok", queue="default")["id"] for _ in range(10)]
    broken = [srv.enqueue("no_such_action", queue="default")["id"] for _ in range(20)]
    for i in normal + broken:
        wait_state(srv, i, ("succeeded", "dead"))
    assert all(srv.get(i)["error"]["class"] == "validation" for i in broken)

    t0 = time.monotonic()
    wait_until(lambda: firing(srv, "QueueSuccessRate", queue="default"), 10 * SLOW, what="QueueSuccessRate firing")
    a = firing(srv, "QueueSuccessRate", queue="default")[0]
    assert a["value"] == pytest.approx(10 / 30) and a["labels"]["team"] == "rpa", a
    assert a["annotations"]["summary"] == "queue default succeeds 0.3333", a
    assert time.monotonic() - t0 < 10 * SLOW

    wait_until(lambda: [x for x in receiver.alerts() if x["labels"].get("alertname") == "QueueSuccessRate"],
               10 * SLOW, what="an Alertmanager POST")
    am = [x for x in receiver.alerts() if x["labels"].get("alertname") == "QueueSuccessRate"][0]
    assert am["labels"]["severity"] == "critical" and am["labels"]["queue"] == "default", am
    assert am["labels"]["team"] == "rpa" and am["annotations"]["summary"] == "queue default succeeds 0.3333", am
    assert am["startsAt"].endswith("Z") and "endsAt" not in am, am
    assert list((srv.data_dir / "alerts").glob("QueueSuccessRate-*.json"))

    more = [srv.enqueue("ok", queue="default")["id"] for _ in range(60)]  # 70 of 90: 0.78
    for i in more:
        wait_state(srv, i, ("succeeded", "dead"))
    wait_until(lambda: not firing(srv, "QueueSuccessRate", queue="default"), 15 * SLOW, what="resolved")
    wait_until(lambda: [x for x in receiver.alerts()
                        if x["labels"].get("alertname") == "QueueSuccessRate" and x.get("endsAt")],
               10 * SLOW, what="the resolved POST")
    assert any(r["kind"] == "alert.resolved" and r["data"]["name"] == "QueueSuccessRate" for r in ledger_alerts(srv))


def test_bad_alert_config_exits_2(tmp_workdir):
    cases = (('[alerts.rules.X]\nop = ">"\n', "alerts.rules.X.signal"),
             ('[alerts.rules.QueueDepth]\nseverity = "page"\n', "alerts.rules.QueueDepth.severity"),
             ('[alerts.rules.X]\nsignal = "queue_length"\n', "alerts.rules.X.signal"),
             ('[[alerts.sinks]]\ntype = "pager"\n', "alerts.sinks[0].type"),
             ('[[alerts.sinks]]\ntype = "webhook"\nurl = "https://x"\n', "alerts.sinks[0].url"),
             ('[alerts]\ninterval_ms = 1\n', "alerts.interval_ms"))
    for text, mentions in cases:
        path = tmp_workdir / "bad.toml"
        path.write_text(text)
        r = run_cli("server", "--config", str(path), "--listen", "127.0.0.1:0",
                    "--data-dir", str(tmp_workdir / "d"), timeout=20)
        assert r.returncode == 2 and mentions in r.stderr, (text, r.returncode, r.stderr)


def test_canary_runs_through_a_real_worker_and_alerts_when_it_goes_missing(server_factory, worker_factory):
    """Given a canary on queue cq every second and a worker on cq (with no handlers: the canary is built in), then
    canaries succeed end to end, with their result in /metrics, the ledger and /api/stats; when the worker stops,
    the next canary goes missing and CanaryFailing fires; a worker back on the queue resolves it."""
    srv = server_factory({"sweep_interval_ms": 20, "canaries": [{"queue": "cq", "interval_s": 1, "timeout_s": 2}],
                          "alerts": {"interval_ms": 100, "hold_s": 1}})
    w = worker_factory(srv, "", name="cw", args=("--queues", "cq"))
    wait_until(lambda: (metric(srv, 'resonance_canary_runs_total{queue="cq",outcome="ok"}') or 0) >= 1,
               15 * SLOW, what="a canary that succeeded")
    assert metric(srv, 'resonance_canary_latency_seconds{queue="cq"}') > 0
    assert metric(srv, 'resonance_canary_last_success_timestamp_seconds{queue="cq"}') > time.time() - 60
    assert metric(srv, 'resonance_canary_failing{queue="cq"}') == 0
    status, _, events = srv.request("GET", "/api/ledger?limit=1000")
    results = [e["data"] for e in events["events"] if e["kind"] == "canary.result"]
    assert results and results[0]["queue"] == "cq" and results[0]["outcome"] == "ok", results
    task = srv.get(results[0]["task_id"])
    assert task["action"] == "resonance.canary" and task["result"]["canary"] == "ok", task
    status, _, s = srv.request("GET", "/api/stats?window=5m&action=resonance.canary")
    assert status == 200 and s["succeeded"] >= 1, s

    assert w.stop() == 0
    wait_until(lambda: firing(srv, "CanaryFailing", queue="cq"), 20 * SLOW, what="CanaryFailing firing")
    assert metric(srv, 'resonance_canary_failing{queue="cq"}') == 1
    assert (metric(srv, 'resonance_canary_runs_total{queue="cq",outcome="missing"}') or 0) >= 1
    assert firing(srv, "CanaryFailing", queue="cq")[0]["severity"] == "critical"

    worker_factory(srv, "", name="cw2", args=("--queues", "cq"))
    wait_until(lambda: not firing(srv, "CanaryFailing", queue="cq"), 20 * SLOW, what="CanaryFailing resolved")
    assert metric(srv, 'resonance_canary_failing{queue="cq"}') == 0
