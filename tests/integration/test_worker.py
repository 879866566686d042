"""`resonance worker` end to end: the real binary leasing from a real server and running
real handler processes (docs/workers.md). Handlers are small scripts written per test;
pids they record show that no process outlives a timeout, a cancel or a drain.
"""

import json
import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import (BIN, FAST_RETRY_CONFIG, REPO, SLOW, STARTUP_TIMEOUT_S, STOP_TIMEOUT_S, Server,
                      ServerError, free_port, parse_ts, wait_until)

EXAMPLES = REPO / "examples"


# --------------------------------------------------------------------------- helpers


class Worker:
    """One `resonance worker` process with its own handler config and log file."""

    def __init__(self, workdir, server_url, handlers, name="w1", args=()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.config_path = self.workdir / f"{name}.toml"
        self.config_path.write_text(handlers)
        self.log_path = self.workdir / f"{name}.log"
        self.cmd = [BIN, "worker", "--server", server_url, "--config", str(self.config_path), "--id", name,
                    *args]
        if "--lease-wait-ms" not in args:
            self.cmd += ["--lease-wait-ms", "500"]
        if "--drain-grace" not in args:
            self.cmd += ["--drain-grace", "2"]  # bounds the drain at teardown
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         cwd=str(self.workdir))
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Sends sig and returns the exit code."""
        os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout=timeout or STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"worker did not exit after {sig!r}\n" + self.log_tail())

    def wait(self, timeout):
        return self.proc.wait(timeout=timeout)

    def cleanup(self):
        """Drains a still running worker (so it removes its temp dirs), kills it if it hangs."""
        if not self.running():
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=40):
        return f"----- worker {self.name} log (tail) -----\n" + "\n".join(self.log().splitlines()[-lines:])

    # conftest's server_factory reports (on failure) and checks (always) every process
    # listed on the test item; a worker takes part.
    stderr_tail = log_tail

    def sanitizer_report(self):
        text = self.log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in text:
                i = text.index(marker)
                return text[max(0, i - 200):i + 3000]
        return None


@pytest.fixture
def worker_factory(request, tmp_workdir):
    """start(server, handlers_toml, name=, args=) -> a running Worker; killed (by pid) at teardown."""
    workers = []
    own_list = not hasattr(request.node, "_resonance_servers")  # no server_factory to check them

    def start(server, handlers, name="w1", args=()):
        w = Worker(tmp_workdir / f"worker-{name}-{len(workers)}", server.url, handlers, name=name, args=args)
        workers.append(w)
        if not hasattr(request.node, "_resonance_servers"):
            request.node._resonance_servers = []
        request.node._resonance_servers.append(w)
        return w.start()

    yield start
    for w in workers:
        w.cleanup()
    for w in workers:
        report = w.sanitizer_report()
        if own_list and report:
            pytest.fail(f"sanitizer report in worker {w.name} log:\n{report}")


def script(workdir, name, body, interpreter="/bin/sh"):
    """Writes an executable handler script and returns its path."""
    path = Path(workdir) / name
    path.write_text(f"#!{interpreter}\n{body}")
    path.chmod(0o755)
    return path


def handlers(**tables):
    """[handlers."ACTION"] tables from dicts: handlers(echo={"type": "exec", "argv": [...]})."""
    out = []
    for action, keys in tables.items():
        out.append(f'[handlers."{action}"]')
        for k, v in keys.items():
            if isinstance(v, dict):
                v = "{ " + ", ".join(f"{ek} = {json.dumps(ev)}" for ek, ev in v.items()) + " }"
            else:
                v = json.dumps(v)
            out.append(f"{k} = {v}")
        out.append("")
    return "\n".join(out)


def wait_state(server, task_id, states, timeout=10.0):
    states = (states,) if isinstance(states, str) else states
    return wait_until(lambda: (lambda t: t if t["state"] in states else None)(server.get(task_id)),
                      timeout=timeout * SLOW, what=f"task {task_id} to reach {states}")


def process_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"  # a zombie runs nothing


def read_pids(path):
    try:
        return [int(x) for x in Path(path).read_text().split()]
    except FileNotFoundError:
        return []


# A handler that records its pid and a background child's pid, then sleeps.
SLEEPER = 'sleep 100 & echo $! >> "{pids}"; echo $$ >> "{pids}"; sleep 100\n'


# --------------------------------------------------------------------------- exec


def test_exec_handler_gets_payload_and_env_and_its_stdout_is_the_result(server, worker_factory):
    """Given the shipped examples/echo.py, then the task succeeds with the payload, task id, attempt and a traceparent of the task's trace."""
    worker_factory(server, handlers(echo={"type": "exec", "argv": [str(EXAMPLES / "echo.py")]}))
    task = server.enqueue("echo", payload={"greeting": "hi", "n": [1, 2]})
    done = wait_state(server, task["id"], ("succeeded", "dead"))
    assert done["state"] == "succeeded", done
    result = done["result"]
    assert result["echo"] == {"greeting": "hi", "n": [1, 2]}
    assert result["task_id"] == task["id"]
    assert result["attempt"] == 1
    assert result["traceparent"].startswith(f"00-{task['trace_id']}-"), result
    assert result["traceparent"].endswith("-01")


def test_exit_75_is_retried_and_the_next_attempt_succeeds(fast_server, worker_factory, tmp_workdir):
    """Given a handler that exits 75 on attempt 1, then the server retries it and attempt 2 succeeds."""
    flaky = script(tmp_workdir, "flaky.sh",
                   'cat >/dev/null\n'
                   'if [ "$RESONANCE_ATTEMPT" = 1 ]; then echo "not yet" >&2; exit 75; fi\n'
                   'echo "{\\"attempt\\": $RESONANCE_ATTEMPT}"\n')
    worker_factory(fast_server, handlers(flaky={"argv": [str(flaky)]}))
    task = fast_server.enqueue("flaky")
    done = wait_state(fast_server, task["id"], ("succeeded", "dead"))
    assert done["state"] == "succeeded", done
    assert done["attempt"] == 2
    assert done["result"] == {"attempt": 2}


def test_exit_65_goes_dead_as_validation_and_unknown_actions_too(server, worker_factory, tmp_workdir):
    """Given exit 65 with a stderr line, then the task is dead at once with class validation naming the line; an action without handler is dead as validation too."""
    bad = script(tmp_workdir, "bad.sh", 'echo "field x is missing" >&2\nexit 65\n')
    worker_factory(server, handlers(bad={"argv": [str(bad)]}))
    task = server.enqueue("bad")
    unknown = server.enqueue("no_such_action")
    dead = wait_state(server, task["id"], ("dead", "succeeded", "scheduled"))
    assert dead["state"] == "dead" and dead["attempt"] == 1, dead
    assert dead["error"]["class"] == "validation"
    assert "status 65" in dead["error"]["message"] and "field x is missing" in dead["error"]["message"]
    other = wait_state(server, unknown["id"], ("dead", "succeeded", "scheduled"))
    assert other["state"] == "dead" and other["error"]["class"] == "validation", other
    assert "no_such_action" in other["error"]["message"]


def test_stdout_error_object_sets_the_class(server, worker_factory, tmp_workdir):
    """Given exit 0 but {"error":{"class":"validation",...}} on stdout, then the error object wins: dead as validation with its message."""
    err = script(tmp_workdir, "err.sh",
                 'echo \'{"error": {"class": "validation", "message": "payload lacks url"}}\'\n')
    worker_factory(server, handlers(err={"argv": [str(err)]}))
    task = server.enqueue("err")
    dead = wait_state(server, task["id"], ("dead", "succeeded", "scheduled"))
    assert dead["state"] == "dead", dead
    assert dead["error"] == {"class": "validation", "message": "payload lacks url"}


def test_non_json_and_oversized_stdout_are_wrapped_and_bounded(server, worker_factory, tmp_workdir):
    """Given plain text on stdout, then the result is {"output": text}; given 3 MB, then it is cut and marked truncated."""
    text = script(tmp_workdir, "text.sh", 'echo "plain words"\n')
    big = script(tmp_workdir, "big.sh", "head -c 3000000 /dev/zero | tr '\\0' 'a'\n")
    worker_factory(server, handlers(text={"argv": [str(text)]}, big={"argv": [str(big)]}))
    t1 = server.enqueue("text")
    t2 = server.enqueue("big")
    r1 = wait_state(server, t1["id"], ("succeeded", "dead"))
    assert r1["result"] == {"output": "plain words\n"}, r1
    r2 = wait_state(server, t2["id"], ("succeeded", "dead"))
    assert r2["state"] == "succeeded", r2
    assert r2["result"]["truncated"] is True and r2["result"]["output_bytes"] == 3000000
    assert 0 < len(r2["result"]["output"]) <= 64 * 1024


def test_timeout_kills_the_whole_process_group(server, worker_factory, tmp_workdir):
    """Given a handler timeout of 0.5 s and a handler with a background child, then the task fails with class timeout and neither process is left."""
    pids = tmp_workdir / "timeout.pids"
    slow = script(tmp_workdir, "slow.sh", SLEEPER.format(pids=pids))
    worker_factory(server, handlers(slow={"argv": [str(slow)], "timeout_s": 0.5, "kill_grace_s": 2}))
    task = server.enqueue("slow", max_attempts=1)
    dead = wait_state(server, task["id"], ("dead", "succeeded"))
    assert dead["error"]["class"] == "timeout", dead
    assert "timed out after 0.5 s" in dead["error"]["message"]
    started = read_pids(pids)
    assert len(started) == 2, started
    wait_until(lambda: all(process_gone(p) for p in started), timeout=2 * SLOW,
               what=f"handler processes {started} to be gone")


def test_cancel_of_a_running_task_stops_its_handler(server, worker_factory, tmp_workdir):
    """Given a running handler (lease 2 s, so heartbeats every ~0.7 s), when the task is cancelled, then the next heartbeat stops its process group and the task ends cancelled."""
    pids = tmp_workdir / "cancel.pids"
    slow = script(tmp_workdir, "slow.sh", SLEEPER.format(pids=pids))
    worker_factory(server, handlers(slow={"argv": [str(slow)], "timeout_s": 60}))
    task = server.enqueue("slow", timeout_s=2)
    wait_until(lambda: len(read_pids(pids)) == 2, timeout=5 * SLOW, what="handler to start")
    status, _, body = server.request("POST", f"/api/tasks/{task['id']}/cancel")
    assert status == 200, body
    t0 = time.monotonic()
    done = wait_state(server, task["id"], ("cancelled", "dead", "succeeded"), timeout=5)
    assert done["state"] == "cancelled", done
    assert time.monotonic() - t0 < 2 * SLOW + 1
    started = read_pids(pids)
    wait_until(lambda: all(process_gone(p) for p in started), timeout=2 * SLOW,
               what=f"handler processes {started} to be gone")


def test_progress_on_fd3_shows_in_the_task_while_it_runs(server, worker_factory, tmp_workdir):
    """Given a handler that writes {"progress":0.4,...} on fd 3 and keeps running, then GET /api/tasks/{id} shows that progress while the task is running."""
    prog = script(tmp_workdir, "prog.sh",
                  'echo \'{"progress": 0.4, "message": "working"}\' >&3\nsleep 3\necho \'{"done": true}\'\n')
    worker_factory(server, handlers(prog={"argv": [str(prog)]}))
    task = server.enqueue("prog", timeout_s=6)
    seen = wait_until(lambda: (lambda t: t if t["progress"] is not None else None)(server.get(task["id"])),
                      timeout=2.5 * SLOW, what="progress to show")
    assert seen["state"] == "running", seen
    assert seen["progress"] == {"progress": 0.4, "message": "working"}
    done = wait_state(server, task["id"], ("succeeded", "dead"))
    assert done["result"] == {"done": True}


class _Target(BaseHTTPRequestHandler):
    """Answers GET /status/N with status N (429 carries Retry-After: 7); POST echoes."""

    def do_GET(self):
        code = int(self.path.rsplit("/", 1)[-1])
        self.send_response(code)
        if code == 429:
            self.send_header("Retry-After", "7")
        body = json.dumps({"code": code}).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_http_builtin_maps_statuses_to_classes(server, worker_factory):
    """Given the http built-in, then 200 completes with status and body, 429 fails as rate_limited with Retry-After, 503 as temporary, 404 as validation."""
    target = ThreadingHTTPServer(("127.0.0.1", 0), _Target)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{target.server_address[1]}"
        worker_factory(server, handlers(get={"type": "http", "timeout_s": 5}))
        ok = server.enqueue("get", payload={"url": base + "/status/200"})
        post = server.enqueue("get", payload={"url": base + "/echo", "body": {"k": [1, 2]}})
        limited = server.enqueue("get", payload={"url": base + "/status/429"})
        broken = server.enqueue("get", payload={"url": base + "/status/503"})
        missing = server.enqueue("get", payload={"url": base + "/status/404"})
        assert wait_state(server, ok["id"], ("succeeded", "dead"))["result"] == {"status": 200, "body": {"code": 200}}
        assert wait_state(server, post["id"], ("succeeded", "dead"))["result"] == {"status": 200, "body": {"k": [1, 2]}}
        t = wait_until(lambda: (lambda t: t if t["error"] else None)(server.get(limited["id"])), timeout=5 * SLOW)
        assert t["error"]["class"] == "rate_limited" and t["state"] == "scheduled", t
        assert parse_ts(t["run_at"]) - time.time() > 5, "Retry-After: 7 was not passed on"
        t = wait_until(lambda: (lambda t: t if t["error"] else None)(server.get(broken["id"])), timeout=5 * SLOW)
        assert t["error"]["class"] == "temporary", t
        t = wait_state(server, missing["id"], ("dead", "succeeded"))
        assert t["error"]["class"] == "validation" and "404" in t["error"]["message"], t
    finally:
        target.shutdown()


# --------------------------------------------------------------------------- persistent


def test_persistent_handler_serves_a_thousand_tasks_with_one_process(server, worker_factory):
    """Given the shipped examples/persistent_echo.py and one slot, then 1,000 tasks all succeed and every result names the same pid."""
    worker_factory(server, handlers(pecho={"type": "persistent", "argv": [str(EXAMPLES / "persistent_echo.py")]}),
                   args=("--concurrency", "1"))
    ids = []
    for chunk in range(2):
        status, _, body = server.request("POST", "/api/tasks/batch",
                                         {"tasks": [{"action": "pecho", "payload": {"n": chunk * 500 + i}}
                                                    for i in range(500)]})
        assert status == 201, body
        ids += [t["id"] for t in body["tasks"]]
    wait_until(lambda: server.list_tasks(state="succeeded", limit=1000)["tasks"].__len__() == 1000,
               timeout=30 * SLOW, interval=0.2, what="1000 tasks to succeed")
    results = server.list_tasks(state="succeeded", limit=1000)["tasks"]
    pids = {t["result"]["pid"] for t in results}
    assert len(pids) == 1, pids
    assert max(t["result"]["served"] for t in results) == 1000
    assert sorted(t["result"]["echo"]["n"] for t in results) == list(range(1000))


# --------------------------------------------------------------------------- drain, restarts, registry


def test_sigterm_drain_hands_back_an_unfinished_task_and_exits_0(server, worker_factory, tmp_workdir):
    """Given a task that would run 100 s and --drain-grace 0.5, when the worker gets SIGTERM, then it exits 0 within a few seconds, the task is back for redelivery with class temporary, and its processes are gone."""
    pids = tmp_workdir / "drain.pids"
    slow = script(tmp_workdir, "slow.sh", SLEEPER.format(pids=pids))
    w = worker_factory(server, handlers(slow={"argv": [str(slow)], "timeout_s": 60}),
                       args=("--drain-grace", "0.5"))
    task = server.enqueue("slow", timeout_s=30)
    wait_until(lambda: len(read_pids(pids)) == 2, timeout=5 * SLOW, what="handler to start")
    t0 = time.monotonic()
    code = w.stop(signal.SIGTERM)
    assert code == 0, w.log_tail()
    assert time.monotonic() - t0 < 4 * SLOW
    back = server.get(task["id"])
    assert back["state"] in ("scheduled", "ready"), back
    assert back["error"] == {"class": "temporary", "message": "worker stopping"}
    assert back["attempt"] == 1
    started = read_pids(pids)
    wait_until(lambda: all(process_gone(p) for p in started), timeout=2 * SLOW,
               what=f"handler processes {started} to be gone")


def test_idle_worker_exits_at_once_on_sigterm(server, worker_factory):
    w = worker_factory(server, handlers(noop={"type": "noop"}), args=("--lease-wait-ms", "5000"))
    wait_until(lambda: "leasing from queues" in w.log(), timeout=5 * SLOW, what="worker to start leasing")
    t0 = time.monotonic()
    assert w.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 1.5 * SLOW, "the lease long-poll held up the exit"


class FixedPortServer(Server):
    """A server that comes back on the same port after a restart (workers keep their URL)."""

    def __init__(self, workdir, port, config=None):
        super().__init__(workdir, config=config, name="fixed")
        self.port = port

    def start(self):
        assert not self.running()
        try:
            self.addr_file.unlink()
        except FileNotFoundError:
            pass
        cmd = [BIN, "server", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir)]
        if self.config_path:
            cmd += ["--config", str(self.config_path)]
        self.starts += 1
        with open(self.stderr_path, "ab") as err, open(self.stdout_path, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         cwd=str(self.workdir))
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"server exited with {self.proc.returncode}\n" + self.stderr_tail())
            try:
                if self.request("GET", "/readyz", timeout=2 * SLOW)[0] == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerError("server not ready\n" + self.stderr_tail())
            time.sleep(0.02)


def test_server_restart_while_a_task_runs_the_result_still_lands(tmp_workdir, worker_factory):
    """Given a task running when the server stops, when the handler finishes while the server is down and the server comes back on the same port, then the worker delivers the result and the task succeeds on attempt 1."""
    srv = FixedPortServer(tmp_workdir / "fixed", free_port(), config={"sweep_interval_ms": 20})
    try:
        srv.start()
        started = tmp_workdir / "started"
        job = script(tmp_workdir, "job.sh", f'touch "{started}"\nsleep 1.5\necho \'{{"made_it": true}}\'\n')
        w = worker_factory(srv, handlers(job={"argv": [str(job)]}))
        task = srv.enqueue("job", timeout_s=20)
        wait_until(started.exists, timeout=5 * SLOW, what="handler to start")
        srv.stop()
        time.sleep(2.0)  # the handler finishes while the server is down
        srv.start()
        done = wait_state(srv, task["id"], ("succeeded", "dead", "scheduled", "ready"), timeout=10)
        assert done["state"] == "succeeded", (done, w.log_tail())
        assert done["attempt"] == 1
        assert done["result"] == {"made_it": True}
        assert w.running(), "the worker should ride out the outage"
    finally:
        srv.cleanup()


def test_worker_registers_refuses_a_duplicate_id_and_deregisters(server, worker_factory):
    """Given a registered worker, then GET /api/workers lists it active with its pool; a second worker with its id exits 3 naming the conflict; after SIGTERM it is gone."""
    w = worker_factory(server, handlers(noop={"type": "noop"}), name="solo", args=("--pool", "p1"))

    def listed():
        status, _, body = server.request("GET", "/api/workers")
        assert status == 200, body
        return next((x for x in body["workers"] if x.get("worker") == "solo"), None)

    entry = wait_until(listed, timeout=5 * SLOW, what="worker to register")
    assert entry["pool"] == "p1" and entry["state"] == "active", entry
    assert entry["pid"] == w.proc.pid
    dup = worker_factory(server, handlers(noop={"type": "noop"}), name="solo")
    assert dup.wait(timeout=10 * SLOW) == 3, dup.log_tail()
    assert "held by another live worker" in dup.log()
    assert w.stop() == 0
    assert listed()["state"] == "gone"


def test_bad_config_exits_2_naming_the_key(server, tmp_workdir):
    cfg = tmp_workdir / "bad.toml"
    cfg.write_text('[handlers."x"]\ntype = "shell"\n')
    r = subprocess.run([BIN, "worker", "--server", server.url, "--config", str(cfg)],
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 2, r
    assert 'handlers."x".type' in r.stderr
