"""The hash-chained ledger: GET /api/ledger, `resonance ledger verify`, tamper detection."""

import re
import subprocess

from conftest import run_cli

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def do_some_work(server, n=3):
    ids = []
    for i in range(n):
        ids.append(server.enqueue("ledgered", queue="lg", payload={"i": i})["id"])
    for lt in server.lease(["lg"], max=n):
        server.complete(lt, result={"ok": lt["id"]})
    return ids


def names_seq(output, seq):
    """True if the output names that record, e.g. "seq 3", "seq=3", "record #3"."""
    return re.search(rf"(seq|record|row|event|entry)\W{{0,3}}{seq}(?!\d)", output, re.I) is not None


def sqlite(db, sql):
    proc = subprocess.run(["sqlite3", str(db), sql], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_ledger_api_lists_events_in_seq_order_from_one(server):
    """Given enqueue, lease and complete, then GET /api/ledger lists events seq 1,2,3... with kinds, task ids and hashes."""
    ids = do_some_work(server)
    status, _, body = server.request("GET", "/api/ledger?after=0&limit=1000")
    assert status == 200, body
    events = body["events"]
    assert len(events) >= 9, "3 tasks x (enqueue, lease, complete) at least"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    for e in events:
        assert isinstance(e["kind"], str) and e["kind"]
        assert HEX64.match(e["hash"]), e
        assert e["ts"]
    assert len({e["hash"] for e in events}) == len(events)
    for tid in ids:
        assert sum(1 for e in events if e["task_id"] == tid) >= 3, tid

    status, _, page = server.request("GET", "/api/ledger?after=3&limit=2")
    assert status == 200
    assert [e["seq"] for e in page["events"]] == [4, 5]
    assert page["events"][0]["hash"] == events[3]["hash"]


def test_ledger_verify_passes_after_work_and_restart(server):
    """Given work done across a kill -9 and a SIGTERM, when `ledger verify` runs on the stopped dir, then exit 0."""
    do_some_work(server)
    server.kill9()
    server.restart()
    do_some_work(server)
    server.stop()
    proc = run_cli("ledger", "verify", "--data-dir", str(server.data_dir))
    assert proc.returncode == 0, f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert "ok" in proc.stdout.lower()


def test_ledger_verify_detects_tampered_row(server):
    """Given a stopped server whose ledger row seq 3 was edited with sqlite3, then `ledger verify` exits non-zero naming seq 3."""
    do_some_work(server)
    server.stop()
    db = server.data_dir / "resonance.db"
    assert db.exists()
    proc = run_cli("ledger", "verify", "--data-dir", str(server.data_dir))
    assert proc.returncode == 0, f"untampered ledger must verify: {proc.stdout} {proc.stderr}"

    sqlite(db, "UPDATE ledger SET data='{\"x\":1}' WHERE seq=3")
    assert sqlite(db, "SELECT data FROM ledger WHERE seq=3").strip() == '{"x":1}'
    proc = run_cli("ledger", "verify", "--data-dir", str(server.data_dir))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"tampered ledger verified: {out}"
    assert names_seq(out, 3), f"verify should name seq 3: {out!r}"


def test_ledger_verify_detects_missing_row(server):
    """Given a stopped server whose ledger row seq 2 was deleted, then `ledger verify` exits non-zero naming seq 2."""
    do_some_work(server)
    server.stop()
    db = server.data_dir / "resonance.db"
    sqlite(db, "DELETE FROM ledger WHERE seq=2")
    proc = run_cli("ledger", "verify", "--data-dir", str(server.data_dir))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"gap not detected: {out}"
    assert names_seq(out, 2), f"verify should name seq 2: {out!r}"


def test_ledger_verify_detects_tampered_hash(server):
    """Given the hash of seq 4 overwritten, then `ledger verify` exits non-zero naming seq 4."""
    do_some_work(server)
    server.stop()
    db = server.data_dir / "resonance.db"
    sqlite(db, "UPDATE ledger SET hash='" + "a" * 64 + "' WHERE seq=4")
    proc = run_cli("ledger", "verify", "--data-dir", str(server.data_dir))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"forged hash not detected: {out}"
    assert names_seq(out, 4), f"verify should name seq 4: {out!r}"


def test_ledger_verify_on_missing_dir_fails(tmp_workdir):
    """Given a data dir with no database, then `ledger verify` exits non-zero."""
    proc = run_cli("ledger", "verify", "--data-dir", str(tmp_workdir / "nothing-here"))
    assert proc.returncode != 0
