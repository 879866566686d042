"""`resonance up` and `resonance status` end to end (docs/supervisor.md): the real binary
supervising a real server and real `resonance worker` processes over a temp data dir, with
short [supervisor] backoffs so restarts happen within a second. Every process of the tree
is killed by pid at teardown.
"""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, SLOW, STARTUP_TIMEOUT_S, STOP_TIMEOUT_S, Server, parse_ts, run_cli, wait_until

FAST_SUPERVISOR = """
[supervisor]
backoff_base_s = 0.2
backoff_max_s = 0.5
stable_after_s = 30
restart_limit = {limit}
restart_window_s = 60
stop_grace_s = 10
"""


def config_text(data_dir, pools, limit=5, extra=""):
    out = [f'listen = "127.0.0.1:0"', f'data_dir = "{data_dir}"', "sweep_interval_ms = 20",
           "worker_heartbeat_ms = 500", "worker_lost_after_ms = 3000",
           FAST_SUPERVISOR.format(limit=limit),
           "[retry.temporary]\nbase_s = 0.2\nfactor = 1\n",
           '[handlers."sleep"]\ntype = "sleep"\n', extra]
    for name, workers in pools:
        out.append(f'[[pools]]\nname = "{name}"\nqueues = ["default"]\nworkers = {workers}\nconcurrency = 1\n')
    return "\n".join(out)


def alive(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class Up:
    """One `resonance up` over its own data dir; `api` speaks HTTP to the server it runs."""

    def __init__(self, workdir, pools, limit=5, extra=""):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.api = Server(self.workdir)  # not started: used for its data dir and request()
        self.data_dir = self.api.data_dir
        self.config_path = self.workdir / "resonance.toml"
        self.config_path.write_text(config_text(self.data_dir, pools, limit, extra))
        self.log_path = self.workdir / "up.log"
        self.proc = None
        self.seen_pids = set()

    def start(self, wait_workers=0):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([BIN, "up", "--config", str(self.config_path)], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, cwd=str(self.workdir))
        self.seen_pids.add(self.proc.pid)

        def ready():
            assert self.proc.poll() is None, f"up exited with {self.proc.returncode}\n" + self.log_tail()
            state = self.state()
            if not state or not state.get("server_url"):
                return None
            self.api.port = int(state["server_url"].rsplit(":", 1)[1])
            return len([w for w in self.registry() if w["state"] == "active"]) >= wait_workers
        wait_until(ready, STARTUP_TIMEOUT_S, interval=0.05, what="the server and workers of `up`")
        return self

    def state(self):
        try:
            state = json.loads((self.data_dir / "supervisor.json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        for p in state["processes"]:
            if p["pid"]:
                self.seen_pids.add(p["pid"])
        return state

    def procs(self, pool=None):
        return [p for p in (self.state() or {"processes": []})["processes"] if pool is None or p["pool"] == pool]

    def registry(self):
        status, _, body = self.api.request("GET", "/api/workers")
        assert status == 200, body
        return body["workers"]

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=40):
        return "----- up log (tail) -----\n" + "\n".join(self.log().splitlines()[-lines:])

    stderr_tail = log_tail

    def sanitizer_report(self):
        text = self.log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in text:
                i = text.index(marker)
                return text[max(0, i - 200):i + 3000]
        return None

    def tree_pids(self):
        """Every live process started from this config (up, server, workers)."""
        out = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(self.config_path).encode() in cmd and alive(int(d.name)):
                out.append(int(d.name))
        return out

    def cleanup(self):
        self.state()
        for pid in set(self.seen_pids) | set(self.tree_pids()):
            if pid == (self.proc.pid if self.proc else None) or pid in self.tree_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def up_factory(request, tmp_workdir):
    ups = []
    request.node._resonance_servers = ups  # conftest shows their logs on failure

    def start(pools, name="up", limit=5, extra="", wait_workers=None):
        u = Up(tmp_workdir / name, pools, limit=limit, extra=extra)
        ups.append(u)
        return u.start(wait_workers=sum(n for _, n in pools) if wait_workers is None else wait_workers)

    yield start
    for u in ups:
        u.cleanup()
    for u in ups:
        report = u.sanitizer_report()
        if report:
            pytest.fail(f"sanitizer report in up log:\n{report}")


def test_up_runs_the_server_and_every_pool_and_status_shows_them(up_factory):
    """Given pools a (2 workers) and b (1), then the registry lists a-0, a-1, b-0 with the pids `up` records, and `resonance status` prints the pools, ids and pids."""
    up = up_factory([("a", 2), ("b", 1)])
    procs = {p["id"]: p for p in up.procs()}
    assert set(procs) == {"server", "a-0", "a-1", "b-0"}
    assert all(p["state"] == "running" and p["restarts"] == 0 for p in procs.values()), procs
    registry = {w["worker"]: w for w in up.registry() if w["state"] == "active"}
    assert set(registry) == {"a-0", "a-1", "b-0"}
    for wid, w in registry.items():
        assert w["pid"] == procs[wid]["pid"], (w, procs[wid])
        assert w["pool"] == wid.split("-")[0]
    out = run_cli("status", "--config", str(up.config_path))
    assert out.returncode == 0, out.stderr
    assert f"pid {up.proc.pid}" in out.stdout, out.stdout
    for wid in ("a-0", "a-1", "b-0"):
        line = next((l for l in out.stdout.splitlines() if f" {wid} " in l and "running" in l), None)
        assert line and str(procs[wid]["pid"]) in line, out.stdout
    assert "server registry" in out.stdout and "active" in out.stdout, out.stdout


def test_second_up_on_the_same_data_dir_is_refused_naming_the_pid(up_factory):
    """Given a running `up`, then a second one on the same config exits non-zero naming the first one's pid, and the first keeps running."""
    up = up_factory([("a", 1)])
    out = run_cli("up", "--config", str(up.config_path), timeout=10 * SLOW)
    assert out.returncode != 0
    assert f"pid {up.proc.pid}" in out.stderr, out.stderr
    assert "supervisor.lock" in out.stderr
    assert up.proc.poll() is None
    assert [w["worker"] for w in up.registry() if w["state"] == "active"] == ["a-0"]


def test_killed_worker_is_restarted_with_its_id_and_its_task_succeeds_on_attempt_2(up_factory):
    """Given a worker running a 1.5 s sleep task, when it is killed with SIGKILL, then a new pid with the same id appears within seconds and the task succeeds on attempt 2."""
    up = up_factory([("a", 1)])
    old_pid = up.procs("a")[0]["pid"]
    task = up.api.enqueue("sleep", payload={"seconds": 1.5})
    wait_until(lambda: up.api.get(task["id"])["state"] == "running", 10 * SLOW, what="task running")
    os.kill(old_pid, signal.SIGKILL)
    t0 = time.monotonic()

    def restarted():
        p = up.procs("a")[0]
        return p if p["pid"] and p["pid"] != old_pid and p["state"] == "running" else None
    new = wait_until(restarted, 5 * SLOW, interval=0.05, what="a new pid for a-0")
    assert time.monotonic() - t0 < 5 * SLOW
    assert new["restarts"] == 1 and new["last_exit"] == {"signal": 9}, new
    wait_until(lambda: any(w["worker"] == "a-0" and w["pid"] == new["pid"] and w["state"] == "active"
                           for w in up.registry()), 5 * SLOW, what="a-0 registered with its new pid")
    done = wait_until(lambda: (lambda t: t if t["state"] in ("succeeded", "dead") else None)(up.api.get(task["id"])),
                      15 * SLOW, what="the task to finish")
    assert done["state"] == "succeeded", done
    assert done["attempt"] == 2, done
    # The restart is in the ledger (a-0 registered twice) and counted for the pool.
    status, _, body = up.api.request("GET", "/api/ledger?limit=1000")
    assert status == 200, body
    registered = [e for e in body["events"] if e["kind"] == "worker.registered" and e["data"]["worker"] == "a-0"]
    assert len(registered) >= 2 and registered[-1]["data"]["pid"] == new["pid"], registered
    status, _, text = up.api.request("GET", "/metrics")
    assert 'resonance_worker_restarts_total{pool="a"} 1' in (text if isinstance(text, str) else text.decode())
    # And in the report, with its time to heal.
    report = run_cli("report", "--data-dir", str(up.data_dir), "--hours", "1", "--format", "md")
    assert report.returncode == 0, report.stderr
    workers = report.stdout.split("8. Workers", 1)[1].split("9. Alerts", 1)[0]
    assert re.search(r"\| Restarts \| 1 \|", workers), workers
    assert re.search(r"\| a-0 \| restart \|", workers), workers


def test_a_worker_that_always_crashes_writes_the_alert_and_is_still_retried(up_factory):
    """Given a config the worker refuses (exit 2 at once) and restart_limit 2, then after 3 restarts alerts/a_alert.json names the pool, the restarts, the window and exit code 2; the supervisor keeps restarting it."""
    bad = '[handlers."broken"]\ntype = "no_such_type"\n'
    up = up_factory([("a", 1)], limit=2, extra=bad, wait_workers=0)
    alert_path = up.data_dir / "alerts" / "a_alert.json"
    wait_until(alert_path.exists, 10 * SLOW, interval=0.05, what="the alert file")
    alert = json.loads(alert_path.read_text())
    assert alert["pool"] == "a"
    assert alert["restarts"] >= 3
    assert alert["window_s"] == 60
    assert alert["last_exit"] == {"code": 2}
    assert abs(parse_ts(alert["time"]) - time.time()) < 30
    assert "restarts within" in up.log() and '"level":"error"' in up.log()
    seen = up.procs("a")[0]["restarts"]
    wait_until(lambda: up.procs("a")[0]["restarts"] > seen + 1, 5 * SLOW, what="more restarts after the alert")
    assert up.proc.poll() is None
    assert up.procs("server")[0]["restarts"] == 0


def test_sigterm_stops_workers_then_server_and_exits_0_leaving_nothing(up_factory):
    """Given a running tree, when `up` gets SIGTERM, then it exits 0, the workers stopped before the server, and no process of the tree is left."""
    up = up_factory([("a", 2)])
    pids = [p["pid"] for p in up.procs()]
    assert len(pids) == 3 and all(pids)
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(timeout=STOP_TIMEOUT_S) == 0, up.log_tail()
    assert not [pid for pid in pids if alive(pid)]
    assert up.tree_pids() == []
    log = up.log()
    assert log.index("a-0 stopped") < log.index("server stopped"), up.log_tail()
    assert log.index("a-1 stopped") < log.index("server stopped")
    state = up.state()
    assert state["state"] == "stopped" and all(p["state"] == "stopped" for p in state["processes"]), state
    out = run_cli("status", "--config", str(up.config_path))
    assert out.returncode == 1 and "not running" in out.stdout, out.stdout


def test_killed_server_is_restarted_and_workers_follow_it_to_its_new_port(up_factory):
    """Given listen port 0, when the server is killed with SIGKILL, then a new server pid serves on a (possibly) new port and both workers are active in its registry, with no worker restart counted as a crash."""
    up = up_factory([("a", 2)])
    old = up.procs("server")[0]
    os.kill(old["pid"], signal.SIGKILL)

    def back():
        s = up.procs("server")[0]
        if not (s["pid"] and s["pid"] != old["pid"] and up.state().get("server_url")):
            return None
        up.api.port = int(up.state()["server_url"].rsplit(":", 1)[1])
        try:
            active = {w["worker"] for w in up.registry() if w["state"] == "active"}
        except OSError:
            return None
        return s if active == {"a-0", "a-1"} else None
    s = wait_until(back, 15 * SLOW, interval=0.1, what="the new server with both workers registered")
    assert s["restarts"] == 1 and s["last_exit"] == {"signal": 9}, s
    assert all(p["restarts"] == 0 for p in up.procs("a")), up.procs("a")
    task = up.api.enqueue("sleep", payload={"seconds": 0.05})
    done = wait_until(lambda: (lambda t: t if t["state"] in ("succeeded", "dead") else None)(up.api.get(task["id"])),
                      10 * SLOW, what="a task through the new server")
    assert done["state"] == "succeeded", done
