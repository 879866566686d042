"""The `resonance` command line as a client of a running server, and `ledger verify` on its data dir."""

import json

import pytest

from conftest import free_port, run_cli


def cli_json(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    try:
        return json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"stdout is not JSON: {proc.stdout!r}")


def test_cli_enqueue_prints_task_json(server):
    """Given a running server, when `resonance enqueue ACTION --payload JSON --server URL`, then exit 0 and the task JSON with an id."""
    proc = run_cli("enqueue", "cli_action", "--payload", '{"a":1}', "--server", server.url)
    task = cli_json(proc)
    assert task["id"] and task["action"] == "cli_action"
    got = server.get(task["id"])
    assert got["payload"] == {"a": 1} and got["state"] == "ready"


def test_cli_enqueue_with_queue_priority_and_delay(server):
    """Given --queue, --priority and --delay, then the task has that queue and priority and is scheduled."""
    proc = run_cli("enqueue", "cli_opts", "--queue", "cliq", "--priority", "7", "--delay", "60", "--server", server.url)
    task = cli_json(proc)
    got = server.get(task["id"])
    assert (got["queue"], got["priority"], got["state"]) == ("cliq", 7, "scheduled")


def test_cli_uses_resonance_server_env(server):
    """Given $RESONANCE_SERVER and no --server, then the CLI talks to that server."""
    proc = run_cli("enqueue", "env_action", env={"RESONANCE_SERVER": server.url})
    task = cli_json(proc)
    assert server.get(task["id"])["action"] == "env_action"


def test_cli_task_get(server):
    """Given an existing task, when `resonance task get ID`, then exit 0 and JSON with that id."""
    task = server.enqueue("gettable", payload={"k": "v"})
    got = cli_json(run_cli("task", "get", task["id"], "--server", server.url))
    assert got["id"] == task["id"] and got["payload"] == {"k": "v"}


def test_cli_task_get_unknown_id_fails(server):
    """Given an id nobody created, when `resonance task get ID`, then non-zero exit and a message on stderr."""
    proc = run_cli("task", "get", "0000000000000", "--server", server.url)
    assert proc.returncode != 0
    assert proc.stderr.strip(), "error message expected on stderr"


def test_cli_enqueue_bad_payload_fails_and_creates_nothing(server):
    """Given --payload that is not JSON, then non-zero exit with a message and no task is created."""
    proc = run_cli("enqueue", "bad_payload", "--payload", "{not json", "--server", server.url)
    assert proc.returncode != 0
    assert proc.stderr.strip()
    assert server.list_tasks(action="bad_payload")["tasks"] == []


def test_cli_server_down_fails_with_message():
    """Given nothing listening at --server, then enqueue and task get exit non-zero with a message."""
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["enqueue", "x"], ["task", "get", "0000000000000"], ["results"], ["dlq", "list"]):
        proc = run_cli(*args, "--server", url, timeout=30)
        assert proc.returncode != 0, args
        assert proc.stderr.strip(), f"{args}: message expected on stderr"


def test_cli_results_lists_finished_tasks(server):
    """Given a succeeded task, when `resonance results --count 5`, then exit 0 and its id is printed."""
    task = server.enqueue("res")
    server.complete(server.lease_one(), result={"done": True})
    proc = run_cli("results", "--count", "5", "--server", server.url)
    assert proc.returncode == 0, proc.stderr
    assert task["id"] in proc.stdout


def test_cli_dlq_list_requeue_delete(server):
    """Given two dead tasks, then `dlq list` shows both, `dlq requeue` makes one ready, `dlq delete` removes the other."""
    a = server.enqueue("dl", queue="cdq")
    b = server.enqueue("dl", queue="cdq")
    for lt in server.lease(["cdq"], max=2):
        server.fail(lt, cls="validation", message="x")
    proc = run_cli("dlq", "list", "--server", server.url)
    assert proc.returncode == 0, proc.stderr
    assert a["id"] in proc.stdout and b["id"] in proc.stdout

    proc = run_cli("dlq", "requeue", a["id"], "--server", server.url)
    assert proc.returncode == 0, proc.stderr
    assert server.get(a["id"])["state"] == "ready"
    proc = run_cli("dlq", "delete", b["id"], "--server", server.url)
    assert proc.returncode == 0, proc.stderr
    status, _, _ = server.request("GET", f"/api/tasks/{b['id']}")
    assert status == 404
    proc = run_cli("dlq", "requeue", "0000000000000", "--server", server.url)
    assert proc.returncode != 0 and proc.stderr.strip()


def test_cli_ledger_verify_on_running_server_dir(server):
    """Given a running server that did some work, when `ledger verify --data-dir DIR`, then exit 0 and an ok line."""
    server.enqueue("v")
    server.complete(server.lease_one())
    proc = run_cli("ledger", "verify", "--data-dir", str(server.data_dir))
    assert proc.returncode == 0, f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert "ok" in proc.stdout.lower()


HELP_VERBS = [[], ["server"], ["enqueue"], ["task"], ["task", "get"], ["results"], ["dlq"], ["dlq", "list"],
              ["dlq", "requeue"], ["dlq", "delete"], ["ledger"], ["ledger", "verify"]]


@pytest.mark.parametrize("verb", HELP_VERBS, ids=["-".join(v) or "top" for v in HELP_VERBS])
def test_cli_help_exits_zero(verb):
    """Given --help on a verb, then exit 0 and usage text."""
    proc = run_cli(*verb, "--help", timeout=20)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    assert proc.stdout.strip(), "usage text expected on stdout"


def test_cli_unknown_verb_fails():
    """Given a verb that does not exist, then non-zero exit."""
    proc = run_cli("frobnicate", timeout=20)
    assert proc.returncode != 0
