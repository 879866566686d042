"""GET /metrics: the Prometheus text exposition against docs/metrics.md, promtool's lint,
label bounds, [metrics] enabled = false, pool gauges from [[pools]], and a real
Prometheus (scripts/prometheus.sh) scraping a running server.

Needs the Debian package prometheus (promtool, prometheus) for the last tests: run
scripts/deps.sh.
"""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import REPO, SLOW, wait_until

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS_MD = REPO / "docs" / "metrics.md"
PROMETHEUS_SH = REPO / "scripts" / "prometheus.sh"
PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


# --------------------------------------------------------------------------- text format


_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _parse_labels(text, line):
    """'a="x",b="y\\"z"' -> {"a": "x", "b": 'y"z'}; asserts the syntax."""
    labels = {}
    i = 0
    while i < len(text):
        m = _LABEL_NAME_RE.match(text, i)
        assert m, f"bad label name at {text[i:]!r} in {line!r}"
        name = m.group(0)
        i = m.end()
        assert text[i:i + 2] == '="', f"expected =\" after {name} in {line!r}"
        i += 2
        value = []
        while True:
            assert i < len(text), f"unterminated label value in {line!r}"
            c = text[i]
            if c == "\\":
                nxt = text[i + 1:i + 2]
                assert nxt in ("\\", '"', "n"), f"bad escape \\{nxt} in {line!r}"
                value.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                value.append(c)
                i += 1
        assert name not in labels, f"label {name} twice in {line!r}"
        labels[name] = "".join(value)
        if i < len(text):
            assert text[i] == ",", f"expected , after label {name} in {line!r}"
            i += 1
    return labels


def _parse_value(s, line):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    try:
        return float(s)
    except ValueError:
        pytest.fail(f"bad sample value {s!r} in {line!r}")


def parse_exposition(text):
    """Prometheus text format 0.0.4 -> {family: {"help", "type", "samples": [(name, labels, value)]}}.

    Asserts the structure: one HELP and one TYPE per family, both before its samples,
    every sample belongs to a declared family (histograms: _bucket/_sum/_count), a
    family's samples are contiguous and no series appears twice.
    """
    assert text.endswith("\n"), "exposition does not end with a newline"
    families = {}
    order = []  # family of each sample line, in order (contiguity check)
    seen_series = set()
    for line in text.split("\n")[:-1]:
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                kind, name = parts[1], parts[2]
                rest = parts[3] if len(parts) > 3 else ""
                assert _NAME_RE.fullmatch(name), f"bad metric name in {line!r}"
                fam = families.setdefault(name, {"help": None, "type": None, "samples": []})
                assert not fam["samples"], f"# {kind} for {name} after its samples"
                if kind == "HELP":
                    assert fam["help"] is None, f"two HELP lines for {name}"
                    fam["help"] = rest
                else:
                    assert fam["type"] is None, f"two TYPE lines for {name}"
                    assert rest in ("counter", "gauge", "histogram", "summary", "untyped"), line
                    fam["type"] = rest
            continue  # other comments are allowed
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?$", line)
        assert m, f"unparsable sample line {line!r}"
        name, label_text, value_text, _ts = m.groups()
        labels = _parse_labels(label_text or "", line)
        value = _parse_value(value_text, line)
        family = name if name in families else None
        if family is None:
            for suffix in HISTOGRAM_SUFFIXES:
                base = name[: -len(suffix)]
                if name.endswith(suffix) and families.get(base, {}).get("type") in ("histogram", "summary"):
                    family = base
                    break
        assert family is not None, f"sample {name} has no # TYPE/# HELP before it: {line!r}"
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen_series, f"series twice: {line!r}"
        seen_series.add(key)
        if order and order[-1] != family:
            assert family not in order, f"samples of {family} are not contiguous"
        order.append(family)
        families[family]["samples"].append((name, labels, value))
    return families


def series(families, name, **labels):
    """Values of samples `name` (a sample name, e.g. x_bucket) whose labels include `labels`."""
    base = name
    if base not in families:
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in families:
                base = name[: -len(suffix)]
    fam = families.get(base)
    assert fam is not None, f"no family for {name}"
    return [(lab, v) for n, lab, v in fam["samples"]
            if n == name and all(lab.get(k) == v2 for k, v2 in labels.items())]


def value(families, name, **labels):
    """The one sample `name` with exactly these labels; fails when absent."""
    want = dict(labels)
    samples = families.get(_family_of(families, name), {}).get("samples", [])
    for n, lab, v in samples:
        if n == name and lab == want:
            return v
    present = [lab for n, lab, _ in samples if n == name]
    pytest.fail(f"no sample {name}{want}; present: {present}")


def _family_of(families, name):
    if name in families:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in families:
            return name[: -len(suffix)]
    return name


# --------------------------------------------------------------------------- the contract


def documented_families():
    """docs/metrics.md tables -> {name: (type, [labels])}."""
    out = {}
    for line in METRICS_MD.read_text().splitlines():
        m = re.match(r"^\|\s*`(resonance_[a-zA-Z0-9_]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|", line)
        if m:
            name, kind, labels = m.group(1), m.group(2), m.group(3)
            out[name] = (kind, [x.strip() for x in labels.split(",") if x.strip()])
    assert len(out) >= 25, f"docs/metrics.md lists only {len(out)} families?"
    return out


# Which bullet of "## Histogram buckets" covers which family.
_BUCKET_BULLETS = {
    "task duration and wait": ("resonance_task_duration_seconds", "resonance_task_wait_seconds"),
    "HTTP request duration": ("resonance_http_request_duration_seconds",),
    "store commit": ("resonance_store_commit_seconds",),
    "store commit batch size (count)": ("resonance_store_commit_batch_size",),
}


def documented_buckets():
    """docs/metrics.md "## Histogram buckets" -> {family: [upper bounds]}."""
    text = METRICS_MD.read_text()
    section = text.split("## Histogram buckets", 1)[1]
    section = section.split("\n## ", 1)[0]
    bullets = re.split(r"\n- ", "\n" + section.split("\n", 1)[1].strip())
    out = {}
    for b in bullets:
        b = " ".join(b.split())
        if not b:
            continue
        key, _, nums = b.partition(":")
        key = key.lstrip("- ").strip()
        assert key in _BUCKET_BULLETS, f"unknown bucket bullet {key!r} in docs/metrics.md"
        bounds = [float(x) for x in nums.replace(",", " ").split()]
        for fam in _BUCKET_BULLETS[key]:
            out[fam] = bounds
    assert set(out) == {f for fams in _BUCKET_BULLETS.values() for f in fams}, out
    return out


def check_histograms(families):
    """Every histogram series: le bounds ascending, counts cumulative, +Inf == _count, _sum present."""
    for name, fam in families.items():
        if fam["type"] != "histogram":
            continue
        groups = {}
        for n, lab, v in fam["samples"]:
            base = tuple(sorted((k, x) for k, x in lab.items() if k != "le"))
            g = groups.setdefault(base, {"buckets": [], "sum": None, "count": None})
            if n == name + "_bucket":
                assert "le" in lab, f"{n}{lab} without le"
                g["buckets"].append((_parse_value(lab["le"], f"{n}{lab}"), v))
            elif n == name + "_sum":
                g["sum"] = v
            elif n == name + "_count":
                g["count"] = v
            else:
                pytest.fail(f"histogram {name} has a sample {n}")
        for base, g in groups.items():
            where = f"{name}{dict(base)}"
            assert g["buckets"], f"{where}: no buckets"
            assert g["count"] is not None and g["sum"] is not None, f"{where}: _sum/_count missing"
            bounds = [le for le, _ in g["buckets"]]
            assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), \
                f"{where}: le not strictly ascending: {bounds}"
            assert bounds[-1] == math.inf, f"{where}: last bucket is le={bounds[-1]}, not +Inf"
            counts = [c for _, c in g["buckets"]]
            assert all(a <= b for a, b in zip(counts, counts[1:])), \
                f"{where}: buckets not cumulative: {counts}"
            assert counts[-1] == g["count"], f"{where}: +Inf bucket {counts[-1]} != _count {g['count']}"
            assert g["sum"] >= 0, f"{where}: negative _sum"


# --------------------------------------------------------------------------- helpers


def scrape(srv):
    status, headers, body = srv.request("GET", "/metrics")
    assert status == 200, f"GET /metrics -> {status} {body!r}"
    assert headers.get("Content-Type") == CONTENT_TYPE, headers.get("Content-Type")
    assert isinstance(body, (bytes, bytearray)), f"/metrics answered JSON, not text: {body!r}"
    return body.decode()


def scrape_parsed(srv):
    return parse_exposition(scrape(srv))


def lease_n(srv, queue, n, worker="w1"):
    got = []
    deadline = time.monotonic() + 10 * SLOW
    while len(got) < n:
        got += srv.lease([queue], worker=worker, max=n - len(got), wait_ms=200)
        if time.monotonic() > deadline:
            pytest.fail(f"leased only {len(got)} of {n} from {queue}")
    return got


def register_worker(srv, worker, pool=None, pid=None, expect=200):
    body = {"worker": worker, "pid": pid or os.getpid(), "host": "testhost",
            "queues": ["default"], "concurrency": 1}
    if pool is not None:
        body["pool"] = pool
    status, _, out = srv.request("POST", "/api/workers/register", body)
    assert status == expect, f"register {body} -> {status} {out}"
    return out


# --------------------------------------------------------------------------- (a) known work


def test_metrics_after_known_work_match_the_contract(server):
    """Given 5 tasks on mq/a leased, 3 completed, 1 failed validation (dead) and 1 failed
    temporary (retried), then /metrics counts exactly that, and every family follows
    docs/metrics.md (HELP, TYPE, type, labels, buckets) in a well-formed exposition."""
    created = [server.enqueue("a", queue="mq") for _ in range(5)]
    leased = lease_n(server, "mq", 5)
    assert sorted(t["id"] for t in leased) == sorted(t["id"] for t in created)
    for t in leased[:3]:
        assert server.complete(t, result={"ok": True})["state"] == "succeeded"
    assert server.fail(leased[3], cls="validation", message="bad input")["state"] == "dead"
    retried = server.fail(leased[4], cls="temporary", message="flaky")
    assert retried["state"] in ("scheduled", "ready"), retried
    assert server.get(created[0]["id"])["id"] == created[0]["id"]  # a GET /api/tasks/{id}
    status, _, _ = server.request("GET", "/no/such/route")
    assert status == 404

    fams = scrape_parsed(server)

    # -- tasks
    assert value(fams, "resonance_tasks_enqueued_total", queue="mq", action="a") == 5
    assert value(fams, "resonance_tasks_leased_total", queue="mq") == 5
    outcomes = {o: value(fams, "resonance_tasks_finished_total", queue="mq", action="a", outcome=o)
                for o in ("succeeded", "dead", "retried", "cancelled")}
    assert outcomes == {"succeeded": 3, "dead": 1, "retried": 1, "cancelled": 0}
    failures = {lab["class"]: v for lab, v in
                series(fams, "resonance_task_failures_total", queue="mq", action="a")}
    assert failures.get("validation") == 1 and failures.get("temporary") == 1, failures
    assert sum(failures.values()) == 2, failures
    retries = {lab["class"]: v for lab, v in
               series(fams, "resonance_task_retries_total", queue="mq", action="a")}
    assert retries.get("temporary") == 1 and sum(retries.values()) == 1, retries
    assert value(fams, "resonance_dead_letters") == 1
    depth = {lab["state"]: v for lab, v in series(fams, "resonance_queue_depth", queue="mq")}
    assert set(depth) == {"scheduled", "ready", "running"}, depth
    assert depth["scheduled"] + depth["ready"] == 1 and depth["running"] == 0, depth
    assert value(fams, "resonance_queue_paused", queue="mq") == 0
    assert value(fams, "resonance_task_duration_seconds_count", queue="mq", action="a") == 5
    assert value(fams, "resonance_task_wait_seconds_count", queue="mq") == 5
    assert value(fams, "resonance_leases_expired_total", queue="mq") == 0
    assert value(fams, "resonance_rate_limited_total", queue="mq", action="a") == 0
    for fam in ("resonance_tasks_enqueued_total", "resonance_tasks_finished_total",
                "resonance_tasks_leased_total", "resonance_queue_depth"):
        queues = {lab.get("queue") for _, lab, _ in fams[fam]["samples"]}
        assert queues == {"mq"}, f"{fam}: queues {queues}"

    # -- HTTP
    def http(route, method, status_code):
        return value(fams, "resonance_http_requests_total", route=route, method=method,
                     status=str(status_code))
    assert http("/api/tasks", "POST", 201) == 5
    assert http("/api/tasks/{id}", "GET", 200) == 1
    assert http("/api/tasks/{id}/complete", "POST", 200) == 3
    assert http("/api/tasks/{id}/fail", "POST", 200) == 2
    assert http("unmatched", "GET", 404) == 1
    routes = {lab["route"] for _, lab, _ in fams["resonance_http_requests_total"]["samples"]}
    assert not any(re.search(r"/[0-9a-z]{13}(/|$)", r) for r in routes), \
        f"a task id leaked into a route label: {routes}"
    assert value(fams, "resonance_http_request_duration_seconds_count",
                 route="/api/tasks", method="POST") == 5

    # -- process and store
    build = series(fams, "resonance_build_info")
    assert len(build) == 1 and build[0][0].get("version") and build[0][1] == 1, build
    start = value(fams, "resonance_process_start_time_seconds")
    assert time.time() - 3600 < start <= time.time() + 5, start
    assert value(fams, "resonance_process_resident_memory_bytes") > 0
    assert value(fams, "resonance_process_open_fds") > 0
    assert value(fams, "resonance_store_commit_seconds_count") >= 1
    assert value(fams, "resonance_store_commit_batch_size_count") >= 1

    # -- the exposition against docs/metrics.md
    doc = documented_families()
    for name, fam in fams.items():
        assert name.startswith("resonance_"), f"family {name} lacks the resonance_ prefix"
        assert fam["help"], f"{name}: no # HELP (or an empty one)"
        assert fam["type"], f"{name}: no # TYPE"
        for n, _, _ in fam["samples"]:
            assert n.startswith("resonance_"), n
    undocumented = sorted(set(fams) - set(doc))
    missing = sorted(set(doc) - set(fams))
    assert not undocumented, f"families served but not in docs/metrics.md: {undocumented}"
    assert not missing, f"families in docs/metrics.md but not served: {missing}"
    for name, (kind, labels) in doc.items():
        assert fams[name]["type"] == kind, f"{name}: TYPE {fams[name]['type']}, docs say {kind}"
        for n, lab, _ in fams[name]["samples"]:
            want = set(labels) | ({"le"} if n.endswith("_bucket") and kind == "histogram" else set())
            assert set(lab) == want, f"{n}{lab}: labels {sorted(lab)}, docs say {sorted(want)}"
        if kind == "counter":
            assert name.endswith("_total"), f"counter {name} does not end in _total"
    check_histograms(fams)
    buckets = documented_buckets()
    for name, bounds in buckets.items():
        les = {}
        for n, lab, _ in fams[name]["samples"]:
            if n == name + "_bucket":
                key = tuple(sorted((k, x) for k, x in lab.items() if k != "le"))
                les.setdefault(key, []).append(_parse_value(lab["le"], n))
        assert les, f"{name}: no bucket series to compare with the docs"
        for key, got in les.items():
            assert got == bounds + [math.inf], f"{name}{dict(key)}: buckets {got}, docs say {bounds} and +Inf"


def test_metrics_counts_cancellation_and_idempotent_repeat(server):
    """Given a cancelled ready task and an idempotent repeat, then cancelled is 1 and the
    repeat does not count as enqueued."""
    t = server.enqueue("c", queue="cq", idempotency_key="k1")
    status, _, again = server.request("POST", "/api/tasks",
                                      {"action": "c", "queue": "cq", "idempotency_key": "k1"})
    assert status in (200, 201) and again["id"] == t["id"], (status, again)
    status, _, out = server.request("POST", f"/api/tasks/{t['id']}/cancel")
    assert status == 200 and out["state"] == "cancelled", out
    fams = scrape_parsed(server)
    assert value(fams, "resonance_tasks_enqueued_total", queue="cq", action="c") == 1
    assert value(fams, "resonance_tasks_finished_total", queue="cq", action="c", outcome="cancelled") == 1
    assert value(fams, "resonance_tasks_finished_total", queue="cq", action="c", outcome="succeeded") == 0
    depth = {lab["state"]: v for lab, v in series(fams, "resonance_queue_depth", queue="cq")}
    assert sum(depth.values()) == 0, depth


# --------------------------------------------------------------------------- (b) promtool


def test_promtool_check_metrics_passes(server):
    """Given some work (every family with series), then `promtool check metrics` exits 0."""
    if not os.access(PROMTOOL, os.X_OK):
        pytest.fail(f"{PROMTOOL} not found: run scripts/deps.sh (Debian package prometheus)")
    for i in range(3):
        server.enqueue("p", queue="pq")
    t = server.lease_one(["pq"])
    server.complete(t)
    t = server.lease_one(["pq"])
    server.fail(t, cls="rate_limited", message="slow down")
    server.request("GET", "/nothing/here")
    scrape(server)  # so the /metrics route itself is counted in the next one
    text = scrape(server)
    proc = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60 * SLOW)
    assert proc.returncode == 0, (f"promtool check metrics exited {proc.returncode}\n"
                                  f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    fams = parse_exposition(text)
    assert value(fams, "resonance_rate_limited_total", queue="pq", action="p") == 1
    assert value(fams, "resonance_http_requests_total", route="/metrics", method="GET", status="200") >= 1


# --------------------------------------------------------------------------- (c) cardinality


def test_action_label_is_bounded_by_max_actions(server_factory):
    """Given [metrics] max_actions = 2, when actions a, b, c, d are enqueued, then a and b
    keep their label and c and d count as "other"."""
    srv = server_factory({"sweep_interval_ms": 20, "metrics": {"max_actions": 2}})
    for action in ("a", "b", "c", "d"):
        srv.enqueue(action, queue="cardq")
    fams = scrape_parsed(srv)
    enq = {lab["action"]: v for lab, v in series(fams, "resonance_tasks_enqueued_total", queue="cardq")}
    assert enq == {"a": 1, "b": 1, "other": 2}, enq
    for name, fam in fams.items():
        for n, lab, _ in fam["samples"]:
            assert lab.get("action") not in ("c", "d"), f"{n}{lab}: action over the bound kept its name"


def test_queue_label_is_bounded_by_max_queues(server_factory):
    """Given [metrics] max_queues = 1, when tasks go to queues q1, q2, q3, then only q1 and
    "other" appear as queue labels, in counters and in the depth gauge."""
    srv = server_factory({"sweep_interval_ms": 20, "metrics": {"max_queues": 1}})
    for q in ("q1", "q2", "q3"):
        srv.enqueue("x", queue=q)
    fams = scrape_parsed(srv)
    enq = {lab["queue"]: v for lab, v in series(fams, "resonance_tasks_enqueued_total", action="x")}
    assert enq == {"q1": 1, "other": 2}, enq
    depth = {lab["queue"]: v for lab, v in series(fams, "resonance_queue_depth", state="ready")}
    assert depth == {"q1": 1, "other": 2}, depth
    for name, fam in fams.items():
        for n, lab, _ in fam["samples"]:
            assert lab.get("queue") not in ("q2", "q3"), f"{n}{lab}: queue over the bound kept its name"


# --------------------------------------------------------------------------- (d) disabled


def test_metrics_disabled_means_no_route(server_factory):
    """Given [metrics] enabled = false, then GET /metrics is 404 and the API still works."""
    srv = server_factory({"sweep_interval_ms": 20, "metrics": {"enabled": False}})
    status, headers, body = srv.request("GET", "/metrics")
    assert status == 404, (status, body)
    srv.enqueue("x", queue="offq")
    assert srv.lease_one(["offq"])["action"] == "x"


# --------------------------------------------------------------------------- (e) pools


POOLS_CONFIG = """\
sweep_interval_ms = 20

[[pools]]
name = "p1"
workers = 3
queues = ["default"]
concurrency = 2

[[pools]]
name = "p2"
workers = 0
"""


def test_pool_gauges_from_config_and_registrations(server_factory):
    """Given [[pools]] p1 (workers 3), then workers_target{p1} 3 and active 0; a
    registration with pool p1 makes active 1; deregister and register the same id again
    counts one restart."""
    srv = server_factory(POOLS_CONFIG)
    fams = scrape_parsed(srv)
    assert value(fams, "resonance_workers_target", pool="p1") == 3
    assert value(fams, "resonance_workers_target", pool="p2") == 0
    assert value(fams, "resonance_workers", pool="p1", state="active") == 0
    assert value(fams, "resonance_worker_restarts_total", pool="p1") == 0
    assert value(fams, "resonance_workers_lost_total", pool="p1") == 0
    assert value(fams, "resonance_worker_restarts_total", pool="p2") == 0

    register_worker(srv, "p1-0", pool="p1")
    fams = scrape_parsed(srv)
    assert value(fams, "resonance_workers", pool="p1", state="active") == 1
    assert value(fams, "resonance_worker_restarts_total", pool="p1") == 0

    status, _, out = srv.request("POST", "/api/workers/p1-0/deregister")
    assert status == 200, out
    fams = scrape_parsed(srv)
    assert value(fams, "resonance_workers", pool="p1", state="active") == 0, \
        "a deregistered worker still counts as active"

    register_worker(srv, "p1-0", pool="p1")
    fams = scrape_parsed(srv)
    assert value(fams, "resonance_workers", pool="p1", state="active") == 1
    assert value(fams, "resonance_worker_restarts_total", pool="p1") == 1
    assert value(fams, "resonance_workers_lost_total", pool="p1") == 0

    # A worker that names no pool is counted under pool "none".
    register_worker(srv, "loner")
    fams = scrape_parsed(srv)
    assert value(fams, "resonance_workers", pool="none", state="active") == 1
    assert value(fams, "resonance_workers", pool="p1", state="active") == 1


def test_lost_worker_is_counted(server_factory):
    """Given a registered worker in pool p1 that goes silent, then it is counted lost
    (workers_lost_total 1, workers{state=lost} 1) and coming back counts a restart."""
    srv = server_factory(POOLS_CONFIG.replace("sweep_interval_ms = 20",
                                              "sweep_interval_ms = 20\nworker_heartbeat_ms = 100\n"
                                              "worker_lost_after_ms = 400"))
    register_worker(srv, "p1-0", pool="p1")

    def lost():
        fams = scrape_parsed(srv)
        got = [v for lab, v in series(fams, "resonance_workers", pool="p1", state="lost")]
        return fams if got == [1] else None

    fams = wait_until(lost, 10 * SLOW, interval=0.1, what="worker p1-0 counted lost")
    assert value(fams, "resonance_workers_lost_total", pool="p1") == 1
    assert value(fams, "resonance_workers", pool="p1", state="active") == 0
    register_worker(srv, "p1-0", pool="p1")
    fams = scrape_parsed(srv)
    assert value(fams, "resonance_workers", pool="p1", state="active") == 1
    assert value(fams, "resonance_worker_restarts_total", pool="p1") == 1


# --------------------------------------------------------------------------- (f) Prometheus


def _prom_query(base, query):
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=5 * SLOW) as resp:
            body = json.loads(resp.read())
    except (OSError, ValueError) as e:
        return f"error: {e}"
    if body.get("status") != "success":
        return f"error: {body}"
    return body["data"]["result"]


def _prom_sum(base, query):
    """Sum of the instant vector's values, or None when it is empty or the query failed."""
    result = _prom_query(base, query)
    if not isinstance(result, list) or not result:
        return None
    return sum(float(r["value"][1]) for r in result)


def _stop_prometheus(workdir):
    proc = subprocess.run(["bash", str(PROMETHEUS_SH), "stop", str(workdir)],
                          capture_output=True, text=True, timeout=30 * SLOW)
    pid_file = workdir / "prometheus.pid"
    if proc.returncode != 0 and pid_file.exists():
        # The script refused or failed: kill the PID it recorded ourselves.
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
        except (ValueError, ProcessLookupError):
            pass
    return proc


def test_prometheus_scrapes_the_server(server, tmp_workdir):
    """Given a real Prometheus scraping the server every second, when 7 tasks are enqueued
    on promq and 4 completed, then Prometheus' query API shows 7 enqueued, 4 succeeded and
    up == 1."""
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.fail(f"{PROMETHEUS} not found: run scripts/deps.sh (Debian package prometheus)")
    if shutil.which("curl") is None:
        pytest.fail("curl not found (scripts/prometheus.sh needs it): run scripts/deps.sh")
    pdir = tmp_workdir / "prometheus"
    env = dict(os.environ, PROMETHEUS_READY_TIMEOUT_S=str(int(30 * SLOW)))
    try:
        proc = subprocess.run(["bash", str(PROMETHEUS_SH), "start", str(pdir), f"127.0.0.1:{server.port}"],
                              capture_output=True, text=True, env=env, timeout=60 * SLOW,
                              stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, (f"scripts/prometheus.sh start exited {proc.returncode}\n"
                                      f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        port = int((pdir / "prometheus.port").read_text().strip())
        base = f"http://127.0.0.1:{port}"
        assert proc.stdout.strip() == base, proc.stdout
        assert (pdir / "prometheus.pid").read_text().strip().isdigit()

        for _ in range(7):
            server.enqueue("scrape_me", queue="promq")
        for t in lease_n(server, "promq", 4):
            server.complete(t)

        def seen():
            enq = _prom_sum(base, 'resonance_tasks_enqueued_total{queue="promq"}')
            ok = _prom_sum(base, 'resonance_tasks_finished_total{queue="promq",outcome="succeeded"}')
            return (enq, ok) if (enq, ok) == (7, 4) else None

        try:
            wait_until(seen, 30 * SLOW, interval=0.5, what="Prometheus to see 7 enqueued and 4 succeeded")
        except BaseException:
            targets = _prom_query(base, "up")
            log = (pdir / "prometheus.log").read_text(errors="replace").splitlines()[-20:]
            print("up:", targets, "\nprometheus.log tail:\n" + "\n".join(log))
            raise
        up = _prom_query(base, 'up{job="resonance"}')
        assert isinstance(up, list) and len(up) == 1, up
        assert up[0]["metric"].get("instance") == f"127.0.0.1:{server.port}", up
        assert float(up[0]["value"][1]) == 1, up
        leased = _prom_sum(base, 'resonance_tasks_leased_total{queue="promq"}')
        assert leased == 4, leased
    finally:
        stop = _stop_prometheus(pdir)
    assert stop.returncode == 0, f"scripts/prometheus.sh stop exited {stop.returncode}: {stop.stderr}"
    assert not (pdir / "prometheus.pid").exists(), "stop left the pid file behind"
