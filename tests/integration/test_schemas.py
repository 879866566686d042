"""The action registry: payload schemas checked at enqueue, strict and lenient unknown actions."""
from conftest import assert_error

SCHEMA = ('{"type":"object","required":["url"],'
          '"properties":{"url":{"type":"string","pattern":"^https?://"},'
          '"depth":{"type":"integer","minimum":0,"maximum":3}}}')


def config(strict):
    return "\n".join([f"[registry]\nstrict = {'true' if strict else 'false'}",
                      "[actions.crawl]", f"schema = '{SCHEMA}'",
                      "[actions.plain.retry.temporary]", "max_retries = 1", ""])


def test_invalid_payload_is_422_listing_every_violation_with_its_path(server_factory):
    srv = server_factory(config(strict=False))
    ok = srv.enqueue("crawl", payload={"url": "https://example.com", "depth": 2})
    assert ok["state"] == "ready"
    status, headers, body = srv.request("POST", "/api/tasks", {"action": "crawl",
                                                               "payload": {"url": "ftp://x", "depth": 7}})
    assert_error(status, headers, body, 422, "unprocessable", mentions="schema of action 'crawl'")
    assert body["error"]["violations"] == [
        {"path": "payload.depth", "message": "must be <= 3"},
        {"path": "payload.url", "message": "must match ^https?://"}], body
    status, _, body = srv.request("POST", "/api/tasks", {"action": "crawl", "payload": {}})
    assert status == 422 and body["error"]["violations"] == [
        {"path": "payload.url", "message": "is required"}], body
    # Batch: all or nothing, the item named in the paths.
    status, _, body = srv.request("POST", "/api/tasks/batch", {"tasks": [
        {"action": "crawl", "payload": {"url": "http://a"}},
        {"action": "crawl", "payload": {"url": 5}}]})
    assert status == 422, body
    assert body["error"]["violations"] == [{"path": "tasks[1].payload.url", "message": "must be string, is integer"}]
    assert srv.list_tasks(action="crawl")["tasks"] == [srv.get(ok["id"])]  # nothing else was created
    # Lenient: an action the registry does not name is accepted (a worker reports it).
    assert srv.enqueue("unheard_of")["state"] == "ready"


def test_strict_registry_refuses_unknown_actions(server_factory):
    srv = server_factory(config(strict=True))
    status, headers, body = srv.request("POST", "/api/tasks", {"action": "unheard_of"})
    assert_error(status, headers, body, 422, "unprocessable", mentions="unknown action 'unheard_of'")
    assert srv.enqueue("plain")["state"] == "ready"  # named by [actions.plain]: known
    assert srv.enqueue("crawl", payload={"url": "https://x"})["state"] == "ready"


def test_a_bad_schema_stops_the_server_at_start(tmp_workdir):
    from conftest import run_cli
    for schema, mentions in (("{\"oneOf\":[]}", "actions.crawl.oneOf: keyword not supported"),
                             ("{", "actions.crawl.schema: not valid JSON")):
        path = tmp_workdir / "bad.toml"
        path.write_text(f"[actions.crawl]\nschema = '{schema}'\n")
        r = run_cli("server", "--config", str(path), "--listen", "127.0.0.1:0", "--data-dir", str(tmp_workdir / "d"))
        assert r.returncode == 2 and mentions in r.stderr, (schema, r.stderr)
