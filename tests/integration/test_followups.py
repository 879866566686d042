"""Follow-up tasks (docs/follow-ups.md): on_success and result "enqueue" lists, templates,
the depth limit, errors at enqueue, durability and the action registry."""
from conftest import SLOW, assert_error, run_cli, wait_until
from test_worker import handlers, script, worker_factory  # noqa: F401 (a fixture)


def kinds(srv, kind):
    return [e for e in srv.ledger() if e["kind"] == kind]


def test_chain_a_b_c_fills_in_results_with_their_types(server):
    """Given A with on_success B (using A's result) with on_success C (using B's), when
    each is leased and completed over HTTP, then B and C carry the filled-in values with
    their types, their parent, depth and A's trace."""
    a = server.enqueue("fetch", payload={"url": "https://e.x/v/1"}, on_success=[
        {"action": "learn", "priority": 3, "idempotency_key": "learn:{{result.video_id}}",
         "payload": {"x": "{{result.x}}", "first": "{{result.items.0}}",
                     "label": "video {{result.video_id}} n={{result.n}}", "src": "{{payload.url}}",
                     "keep": "{{ mustache }}"},
         "on_success": [{"action": "report",
                         "payload": {"summary": "{{result.summary}}", "from": "{{task.id}}",
                                     "act": "{{task.action}}", "depth": "{{task.depth}}"}}]}])
    assert a["on_success"][0]["action"] == "learn" and a["depth"] == 0 and a["parent_id"] is None
    la = server.lease_one()
    assert la["id"] == a["id"]
    server.complete(la, result={"video_id": "v1", "n": 2, "x": {"k": [1, 2.5], "ok": True},
                                "items": [7, 8]})

    b = server.lease_one()
    assert b["action"] == "learn"
    assert b["payload"] == {"x": {"k": [1, 2.5], "ok": True}, "first": 7, "label": "video v1 n=2",
                            "src": "https://e.x/v/1", "keep": "{{ mustache }}"}
    assert b["parent_id"] == a["id"] and b["depth"] == 1 and b["trace_id"] == a["trace_id"]
    assert b["priority"] == 3 and b["idempotency_key"] == "learn:v1"
    assert b["on_success"][0]["action"] == "report"  # kept as written, filled in later
    server.complete(b, result={"summary": {"words": 1234}})

    c = server.lease_one()
    assert c["action"] == "report"
    assert c["payload"] == {"summary": {"words": 1234}, "from": b["id"], "act": "learn", "depth": 1}
    assert c["parent_id"] == b["id"] and c["depth"] == 2 and c["trace_id"] == a["trace_id"]
    server.complete(c)
    assert server.lease(wait_ms=200) == []
    created = {e["task_id"]: e["data"] for e in kinds(server, "task.enqueued")}
    assert created[b["id"]]["parent_id"] == a["id"] and created[b["id"]]["depth"] == 1
    assert created[c["id"]]["parent_id"] == b["id"] and created[c["id"]]["depth"] == 2
    assert "parent_id" not in created[a["id"]]
    assert server.metric('resonance_followups_total{outcome="created"}') == 2


def test_result_enqueue_creates_follow_ups(server):
    """Given a result with an "enqueue" list, then those tasks are created, templates filled
    in, and a repeated idempotency key creates one task."""
    a = server.enqueue("scan", payload={"site": "s1"})
    server.complete(server.lease_one(), result={
        "found": ["p1", "p2"],
        "enqueue": [{"action": "page", "queue": "pages", "payload": {"p": "{{result.found.1}}",
                                                                    "site": "{{payload.site}}"}},
                    {"action": "page", "queue": "pages", "idempotency_key": "pg:{{result.found.0}}"},
                    {"action": "page", "queue": "pages", "idempotency_key": "pg:{{result.found.0}}"}]})
    got = server.get(a["id"])
    assert got["state"] == "succeeded" and got["result"]["enqueue"][0]["action"] == "page"
    pages = server.list_tasks(queue="pages")["tasks"]
    assert len(pages) == 2
    assert server.list_tasks(parent_id=a["id"])["tasks"] == pages
    assert server.list_tasks(parent_id=pages[0]["id"])["tasks"] == []
    assert pages[0]["payload"] == {"p": "p2", "site": "s1"} and pages[0]["parent_id"] == a["id"]
    assert pages[1]["idempotency_key"] == "pg:p1"
    assert server.metric('resonance_followups_total{outcome="duplicate"}') == 1


def test_self_enqueueing_loop_stops_at_max_depth(server_factory):
    """Given max_depth 3 and a handler that always enqueues itself, then tasks at depths
    0..3 run and the next is refused: ledger record, metric, no further task."""
    srv = server_factory({"sweep_interval_ms": 20, "followups": {"max_depth": 3}})
    srv.enqueue("loop", payload={"i": 0})
    depths = []
    while True:
        tasks = srv.lease(wait_ms=300)
        if not tasks:
            break
        t = tasks[0]
        depths.append(t["depth"])
        assert len(depths) <= 4, "the loop did not stop"
        srv.complete(t, result={"i": t["payload"]["i"] + 1,
                                "enqueue": [{"action": "loop", "payload": {"i": "{{result.i}}"}}]})
    assert depths == [0, 1, 2, 3]
    refused = kinds(srv, "task.followup_refused")
    assert len(refused) == 1, refused
    data = refused[0]["data"]
    assert data["action"] == "loop" and data["depth"] == 4 and data["max_depth"] == 3
    last = srv.list_tasks(action="loop")["tasks"][-1]
    assert refused[0]["task_id"] == last["id"] and last["state"] == "succeeded"
    assert srv.metric('resonance_followups_total{outcome="refused"}') == 1


def test_bad_on_success_specs_are_refused_naming_the_path(server):
    """Given malformed follow-up specs at enqueue, then 400 naming the path, nothing created."""
    cases = [
        ({"on_success": {"action": "b"}}, "on_success: must be an array"),
        ({"on_success": [{"queue": "q"}]}, "on_success[0].action: is required"),
        ({"on_success": [{"action": "b"}, {"action": 5}]}, "on_success[1].action: must be a string"),
        ({"on_success": [{"action": "b", "priority": "hi"}]}, "on_success[0].priority"),
        ({"on_success": [{"action": "b", "on_sucess": []}]}, "on_success[0].on_sucess: unknown field"),
        ({"on_success": [{"action": "b", "payload": "x"}]}, "on_success[0].payload: must be an object"),
        ({"on_success": [{"action": "b", "payload": {"u": ["{{result.a..b}}"]}}]},
         "on_success[0].payload.u[0]: malformed placeholder"),
        ({"on_success": [{"action": "b", "idempotency_key": "{{task.nope}}"}]},
         "on_success[0].idempotency_key"),
        ({"on_success": [{"action": "b", "on_success": [{"action": "c", "max_attempts": 0}]}]},
         "on_success[0].on_success[0].max_attempts"),
        ({"on_success": [{"action": "b"}] * 101}, "at most 100"),
    ]
    for extra, mention in cases:
        status, headers, body = server.request("POST", "/api/tasks", {"action": "a", **extra})
        assert_error(status, headers, body, 400, "invalid_argument", mentions=mention)
    deep = {"action": "z"}
    for _ in range(10):
        deep = {"action": "z", "on_success": [deep]}
    status, headers, body = server.request("POST", "/api/tasks", {"action": "a", "on_success": [deep]})
    assert_error(status, headers, body, 400, mentions="nest at most 10")
    status, headers, body = server.request("POST", "/api/tasks/batch", {"tasks": [
        {"action": "a"}, {"action": "a", "on_success": [{"action": "b"}, {}]}]})
    assert_error(status, headers, body, 400, mentions="tasks[1].on_success[1].action: is required")
    status, headers, body = server.request("POST", "/api/tasks", {
        "action": "a", "on_success": [{"action": "b", "requires_approval": True}]})
    assert_error(status, headers, body, 422, mentions="on_success[0].requires_approval")
    assert server.list_tasks()["tasks"] == []
    # null and [] mean none.
    assert server.enqueue("a", on_success=None)["on_success"] is None
    assert server.enqueue("a", on_success=[])["on_success"] is None


def test_missing_value_fails_the_follow_up_not_the_parent(server):
    """Given a placeholder the result does not have, then the parent succeeds, the
    follow-up is not created and the ledger says why."""
    a = server.enqueue("a", on_success=[{"action": "b", "payload": {"v": "{{result.missing.x}}"}},
                                        {"action": "c", "payload": {"v": "{{result.there}}"}}])
    server.complete(server.lease_one(), result={"there": None})
    assert server.get(a["id"])["state"] == "succeeded"
    assert [t["action"] for t in server.list_tasks()["tasks"]] == ["a", "c"]
    assert server.list_tasks(action="c")["tasks"][0]["payload"] == {"v": None}
    failed = kinds(server, "task.followup_failed")
    assert len(failed) == 1 and failed[0]["task_id"] == a["id"]
    assert failed[0]["data"]["path"] == "on_success[0]" and failed[0]["data"]["action"] == "b"
    assert "result has no field missing" in failed[0]["data"]["reason"], failed[0]
    assert server.metric('resonance_followups_total{outcome="failed"}') == 1


def test_child_survives_kill9_right_after_completion(server):
    """Given an acknowledged completion that created a follow-up, when the server is
    killed -9 at once and restarted, then the child is there and leasable."""
    a = server.enqueue("a", on_success=[{"action": "b", "payload": {"n": "{{result.n}}"},
                                         "on_success": [{"action": "c"}]}])
    server.complete(server.lease_one(), result={"n": 9})
    server.kill9()
    server.restart()
    assert server.get(a["id"])["state"] == "succeeded"
    b = server.lease_one()
    assert b["action"] == "b" and b["payload"] == {"n": 9} and b["parent_id"] == a["id"]
    # Its own on_success was recovered too.
    server.complete(b)
    c = server.lease_one()
    assert c["action"] == "c" and c["parent_id"] == b["id"] and c["depth"] == 2


SCHEMA = '{"type":"object","required":["n"],"properties":{"n":{"type":"integer","minimum":0}}}'


def test_registry_checks_follow_ups(server_factory):
    """Given a schema for 'learn' and a strict registry, then a literal bad payload or an
    unknown action in on_success is 422 at enqueue, and a filled-in payload that breaks
    the schema is not created (ledger says why)."""
    srv = server_factory("\n".join(["sweep_interval_ms = 20", "[registry]", "strict = true",
                                    "[actions.learn]", f"schema = '{SCHEMA}'", "[actions.fetch]", ""]))
    status, headers, body = srv.request("POST", "/api/tasks", {
        "action": "fetch", "on_success": [{"action": "learn", "payload": {"n": -1}}]})
    assert_error(status, headers, body, 422, "unprocessable", mentions="on_success[0].payload")
    assert body["error"]["violations"] == [{"path": "on_success[0].payload.n", "message": "must be >= 0"}]
    status, headers, body = srv.request("POST", "/api/tasks", {
        "action": "fetch", "on_success": [{"action": "learn", "payload": {"n": 1}},
                                          {"action": "nope"}]})
    assert_error(status, headers, body, 422, mentions="on_success[1].action: unknown action 'nope'")
    assert srv.list_tasks()["tasks"] == []

    a = srv.enqueue("fetch", on_success=[{"action": "learn", "payload": {"n": "{{result.n}}"}}])
    srv.complete(srv.lease_one(), result={"n": "many"})
    assert srv.get(a["id"])["state"] == "succeeded"
    assert srv.list_tasks(action="learn")["tasks"] == []
    failed = kinds(srv, "task.followup_failed")
    assert len(failed) == 1 and "schema of action 'learn'" in failed[0]["data"]["reason"], failed
    assert "on_success[0].payload.n" in failed[0]["data"]["reason"]
    # A result enqueue naming an unknown action is refused the same way.
    srv.enqueue("fetch")
    srv.complete(srv.lease_one(), result={"enqueue": [{"action": "ghost"}, {"action": "learn", "payload": {"n": 4}}]})
    failed = kinds(srv, "task.followup_failed")
    assert len(failed) == 2 and "unknown action 'ghost'" in failed[1]["data"]["reason"]
    learn = srv.list_tasks(action="learn")["tasks"]
    assert len(learn) == 1 and learn[0]["payload"] == {"n": 4}


def test_worker_handler_result_drives_a_learning_loop(server_factory, worker_factory, tmp_workdir):
    """Given a real worker whose exec handler's result enqueues the next round, then the
    rounds chain through the server with their values, until max_depth stops them."""
    srv = server_factory({"sweep_interval_ms": 20, "followups": {"max_depth": 3}})
    learn = script(tmp_workdir, "learn.py", "\n".join([
        "import json, sys",
        "p = json.load(sys.stdin)",
        "print(json.dumps({'n': p['n'] + 1, 'seen': p.get('seen', []) + [p['n']],",
        "                  'enqueue': [{'action': 'learn',",
        "                               'payload': {'n': '{{result.n}}', 'seen': '{{result.seen}}'}}]}))",
        ""]), interpreter="/usr/bin/python3")
    worker_factory(srv, handlers(learn={"type": "exec", "argv": [str(learn)]}))
    srv.enqueue("learn", payload={"n": 0})
    wait_until(lambda: kinds(srv, "task.followup_refused"), 20 * SLOW, what="the depth limit")
    rounds = srv.list_tasks(action="learn")["tasks"]
    assert [t["depth"] for t in rounds] == [0, 1, 2, 3]
    assert all(t["state"] == "succeeded" for t in rounds)
    assert rounds[-1]["payload"] == {"n": 3, "seen": [0, 1, 2]}
    assert rounds[-1]["result"]["seen"] == [0, 1, 2, 3]
    assert [t["parent_id"] for t in rounds[1:]] == [t["id"] for t in rounds[:-1]]


def test_bad_followups_config_stops_the_server(tmp_workdir):
    """Given a max_depth out of range or an unknown [followups] key, then the server exits 2
    naming the key."""
    for text, key in (("[followups]\nmax_depth = -1\n", "followups.max_depth"),
                      ("[followups]\nmax_depth = \"deep\"\n", "followups.max_depth"),
                      ("[followups]\nmax_depht = 3\n", "followups.max_depht")):
        path = tmp_workdir / "bad.toml"
        path.write_text(text)
        r = run_cli("server", "--config", str(path), "--listen", "127.0.0.1:0",
                    "--data-dir", str(tmp_workdir / "data"))
        assert r.returncode == 2, (text, r.returncode, r.stderr)
        assert key in r.stderr, (text, r.stderr)
