"""`resonance report`, black box: known work through the API, then the report's numbers.

The history is built by a real server (tasks, a worker restart and loss, a QueueDepth
alert that fires and resolves); after it stops, sqlite3 adds what a test server cannot
make quickly: an open task from 2.5 hours ago (queue depth over time) and two
canary.result ledger rows (their hash is a placeholder: the report does not verify the
chain, `resonance ledger verify` does).
"""
import os
import re
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import SLOW, run_cli, wait_until

CHROMIUM = "/usr/bin/chromium"
CONFIG = {
    "sweep_interval_ms": 20,
    "worker_heartbeat_ms": 200,
    "worker_lost_after_ms": 600,
    "alerts": {"interval_ms": 100, "hold_s": 0, "rules": {"QueueDepth": {"for_s": 0}}},
}


def register(srv, worker, pid):
    status, _, out = srv.request("POST", "/api/workers/register",
                                 {"worker": worker, "pool": "p", "pid": pid, "host": "box",
                                  "queues": ["rq"], "concurrency": 1})
    assert status == 200, out


def ledger(srv, kind):
    return [r for r in srv.ledger() if r["kind"] == kind]


def section(md, n):
    """The text of section n (from its heading to the next one)."""
    m = re.search(rf"^## {n}\. .*?(?=^## |\Z)", md, re.S | re.M)
    assert m, f"no section {n} in:\n{md}"
    return m.group(0)


@pytest.fixture
def history(server_factory):
    srv = server_factory(CONFIG)
    # Workers: w-a registers, deregisters and registers again (a restart); w-b registers,
    # goes silent until it is lost, and registers again (a loss, healed). Each then
    # deregisters, so no second loss follows.
    register(srv, "w-a", 1)
    assert srv.request("POST", "/api/workers/w-a/deregister")[0] == 200
    register(srv, "w-a", 2)
    assert srv.request("POST", "/api/workers/w-a/deregister")[0] == 200
    register(srv, "w-b", 3)
    wait_until(lambda: ledger(srv, "worker.lost"), 10 * SLOW, what="w-b lost")
    register(srv, "w-b", 4)
    assert srv.request("POST", "/api/workers/w-b/deregister")[0] == 200

    # Seven ready tasks on rq: QueueDepth fires (warning band 6-20).
    for _ in range(7):
        srv.enqueue("mail", queue="rq")
    wait_until(lambda: ledger(srv, "alert.firing"), 10 * SLOW, what="QueueDepth firing")
    tasks = srv.lease(["rq"], worker="w1", max=7)
    assert len(tasks) == 7
    for t in tasks[:4]:
        srv.complete(t)
    srv.fail(tasks[4], cls="validation", message="bad input")
    srv.fail(tasks[5], cls="validation", message="bad input")
    srv.fail(tasks[6], cls="temporary", message="flaky")  # retried later: stays open
    wait_until(lambda: ledger(srv, "alert.resolved"), 10 * SLOW, what="QueueDepth resolved")

    # rq2: one push succeeds, one is cancelled while ready.
    srv.enqueue("push", queue="rq2")
    t = srv.lease(["rq2"], worker="w1", max=1)[0]
    srv.complete(t)
    c = srv.enqueue("push", queue="rq2")
    assert srv.request("POST", f"/api/tasks/{c['id']}/cancel")[0] == 200

    # Read-only while the server runs (WAL).
    live = run_cli("report", "--data-dir", str(srv.data_dir), "--hours", "1")
    assert live.returncode == 0, live.stderr
    assert "## 1. Summary" in live.stdout
    srv.stop()

    db = sqlite3.connect(srv.data_dir / "resonance.db")
    db.row_factory = sqlite3.Row
    now_us = int(time.time() * 1e6)
    row = dict(db.execute("SELECT * FROM tasks LIMIT 1").fetchone())
    row.update(id="0000000000old", queue="old", state="ready", created_at=now_us - int(2.5 * 3600e6),
               finished_at=None, idempotency_key=None)
    db.execute(f"INSERT INTO tasks ({','.join(row)}) VALUES ({','.join('?' * len(row))})",
               list(row.values()))
    seq = db.execute("SELECT max(seq) FROM ledger").fetchone()[0]
    for i, (outcome, latency) in enumerate([("ok", 0.25), ("failed", 1.75)]):
        db.execute("INSERT INTO ledger (seq, ts, kind, task_id, data, hash) VALUES (?,?,?,?,?,?)",
                   (seq + 1 + i, now_us - 1000 + i, "canary.result", None,
                    f'{{"queue":"rq","task_id":"c{i}","outcome":"{outcome}","latency_s":{latency}}}',
                    "0" * 64))
    db.commit()
    db.close()
    return srv


def test_markdown_report_has_every_sections_numbers(history):
    """Given the known history, then each Markdown section shows its numbers."""
    out = run_cli("report", "--data-dir", str(history.data_dir), "--hours", "24", "--format", "md")
    assert out.returncode == 0, out.stderr
    md = out.stdout

    s1 = section(md, 1)
    assert re.search(r"Window: \S+ \S+Z to \S+ \S+Z \(24 h\)", s1), s1
    for row in ["| Success rate | 71.4% |", "| Finished | 8 |", "| Succeeded | 5 |", "| Dead | 2 |",
                "| Retried | 1 |", "| Cancelled | 1 |", "| Throughput | 0.33 finished per hour |"]:
        assert row in s1, s1
    assert re.search(r"\| Duration p50 / p95 / p99 \| \d+\.\d{3} s / \d+\.\d{3} s / \d+\.\d{3} s \|", s1)
    assert re.search(r"\| Wait p50 / p95 / p99 \| \d+\.\d{3} s / \d+\.\d{3} s / \d+\.\d{3} s \|", s1)

    s2 = section(md, 2)
    assert re.search(r"\| rq \| mail \| 6 \| 4 \| 1 \| 2 \| 0 \| 66\.7% \| \d+\.\d{3} s \|", s2), s2
    assert re.search(r"\| rq2 \| push \| 2 \| 1 \| 0 \| 0 \| 1 \| 100\.0% \| \d+\.\d{3} s \|", s2), s2

    s3 = section(md, 3)
    rows = re.findall(r"^\| \d{4}-\d\d-\d\d \d\d:\d\d \| (\d+) \| (\d+) \| (\d+) \| (\S+) \|$", s3, re.M)
    assert len(rows) == 24, s3
    assert [r for r in rows if r[0] != "0"] == [("8", "5", "2", "71.4%")], s3
    assert rows[-1] == ("8", "5", "2", "71.4%")

    s4 = section(md, 4)
    lat = re.findall(r"^\| \d{4}-\d\d-\d\d \d\d:\d\d \| (\S+ s|-) \| (\S+ s|-) \| (\S+ s|-) \|$", s4, re.M)
    assert len(lat) == 24 and all(r == ("-", "-", "-") for r in lat[:-1]) and lat[-1][0] != "-", s4

    s5 = section(md, 5)
    assert "| Time (UTC) | old | rq |" in s5, s5
    depth = re.findall(r"^\| \d{4}-\d\d-\d\d \d\d:\d\d \| (\d+) \| (\d+) \|$", s5, re.M)
    assert len(depth) == 25, s5
    # "old" opened 2.5 h ago: open at the last three points; rq's retried task only now.
    assert depth[-4:] == [("0", "0"), ("1", "0"), ("1", "0"), ("1", "1")], s5
    assert all(d == ("0", "0") for d in depth[:-3])

    s6 = section(md, 6)
    assert "| temporary | 1 | 1 |" in s6 and "| validation | 2 | 0 |" in s6, s6

    s7 = section(md, 7)
    assert "Dead letters: 2" in s7 and "| validation | bad input | 2 |" in s7, s7

    s8 = section(md, 8)
    for row in ["| Registrations | 4 |", "| Restarts | 2 |", "| Losses | 1 |", "| Deregistrations | 3 |"]:
        assert row in s8, s8
    assert len(re.findall(r"^\| w-\w \| (?:restart|lost) \|", s8, re.M)) == 2, s8
    assert re.search(r"\| w-a \| restart \| [^|]+ \| [^|]+Z \| \d+\.\d s \|", s8), s8
    assert re.search(r"\| w-b \| lost \| [^|]+ \| [^|]+Z \| \d+\.\d s \|", s8), s8
    assert re.search(r"\| Time to heal max \| \d+\.\d s \|", s8), s8

    s9 = section(md, 9)
    assert re.search(r"\| QueueDepth \| queue=rq \| warning \| \S+ \S+Z \| \S+ \S+Z \| \d+\.\d s \|", s9), s9

    s10 = section(md, 10)
    assert "| rq | 2 | 1 | 1 | 0 | failed | 0.250 s | 1.750 s |" in s10, s10

    s11 = section(md, 11)
    assert "| validation | bad input | 2 |\n| temporary | flaky | 1 |" in s11, s11


def test_html_report_opens_in_headless_chromium_without_errors(history, tmp_path):
    """Given the history, then the HTML file is self-contained, and Chromium renders its
    sections and SVG charts with no console message."""
    out_file = tmp_path / "report.html"
    r = run_cli("report", "--data-dir", str(history.data_dir), "--format", "html", "--out", str(out_file))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    html = out_file.read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "<td>Success rate</td><td>71.4%</td>" in html

    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing (scripts/deps.sh installs it)")
    profile = tempfile.mkdtemp(prefix="resonance-chromium-", dir=tmp_path)
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom",
         Path(out_file).as_uri()],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        start_new_session=True)
    try:
        dom, err = proc.communicate(timeout=60 * SLOW)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # its own session: the browser and its helpers
        proc.communicate()
        pytest.fail("chromium did not finish within 60 s")
    assert proc.returncode == 0, err[-2000:]
    # Chromium logs every console message (errors, uncaught exceptions, failed loads)
    # as "...:INFO:CONSOLE:<line>] "<text>", source: ..." with --enable-logging=stderr.
    bad = [line for line in err.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert not bad, bad
    for title in ["1. Summary", "2. Per action", "3. Hourly", "4. Latency", "5. Queue depth",
                  "6. Retries and failures by error class", "7. Dead letters", "8. Workers",
                  "9. Alerts", "10. Canary", "11. Top errors"]:
        assert f"<h2>{title}</h2>" in dom, title
    assert dom.count("<svg") == 4, dom.count("<svg")
