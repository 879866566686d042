"""Credentials (docs/credentials.md): named secrets with an expiry, renewed by a refresh
task the server schedules before expiry, handed to handlers in their env, and never shown
anywhere else: not in logs, the ledger, metrics, events or any API answer but a lease.
"""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import BIN, SLOW, STARTUP_TIMEOUT_S, assert_error, fmt_ts, parse_ts, wait_until
from test_worker import handlers, script, wait_state, worker_factory  # noqa: F401 (fixture)


def secret(tag):
    return f"tok-{tag}-{secrets.token_hex(12)}"


def sse_text(server, seconds=1.0):
    """What GET /api/events sends in `seconds` when resumed from the start."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 0\r\n\r\n")
        s.settimeout(0.2)
        out = b""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            out += chunk
    return out.decode(errors="replace")


def everything_shown(server, extra_answers=(), workers=()):
    """Every place a value must never appear, as (where, text) pairs."""
    shown = [("server stderr", server.stderr_path.read_text(errors="replace")),
             ("server stdout", server.stdout_path.read_text(errors="replace")),
             ("ledger", json.dumps(server.ledger())),
             ("events", sse_text(server))]
    status, _, metrics = server.request("GET", "/metrics")
    assert status == 200
    shown.append(("/metrics", metrics.decode() if isinstance(metrics, bytes) else str(metrics)))
    tasks = server.list_tasks(limit=1000)["tasks"]
    paths = ["/api/credentials", "/api/tasks?limit=1000", "/api/results?count=100", "/api/dlq",
             "/api/stats", "/api/health", "/api/queues", "/api/workers", "/api/ledger?limit=1000",
             "/api/alerts"]
    paths += [f"/api/tasks/{t['id']}" for t in tasks]
    status, _, creds = server.request("GET", "/api/credentials")
    paths += [f"/api/credentials/{c['name']}" for c in creds["credentials"]]
    for p in paths:
        status, _, body = server.request("GET", p)
        assert status == 200, f"{p} -> {status} {body}"
        shown.append((p, body if isinstance(body, str) else json.dumps(body)
                      if not isinstance(body, bytes) else body.decode(errors="replace")))
    for w in workers:
        shown.append((f"worker {w.name} log", w.log()))
    for where, answer in extra_answers:
        shown.append((where, json.dumps(answer)))
    assert len(shown) > 14
    return shown


def assert_never_shown(shown, values):
    for where, text in shown:
        for v in values:
            assert v not in text, f"a credential value appears in {where}"


TOKEN_HANDLER = """
printf '%s' "$RESONANCE_CREDENTIAL_API_TOKEN" > "$OUT_DIR/$RESONANCE_TASK_ID.tok"
echo '{"used": true}'
"""

RENEW_HANDLER = """
import json, os, sys, urllib.request
task = json.load(sys.stdin)
new = open(os.environ["NEW_TOKEN_FILE"]).read()
req = urllib.request.Request(
    os.environ["RESONANCE_SERVER_URL"] + "/api/credentials/" + task["credential"],
    data=json.dumps({"value": new, "expires_in_s": 3600}).encode(), method="PUT",
    headers={"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(req))
print(json.dumps({"renewed": task["credential"], "version": answer["version"]}))
"""


def test_delivered_refreshed_and_never_shown(server_factory, worker_factory, tmp_workdir):
    """Given a credential that expires in a few seconds with a refresh action, and an action
    that declares it, when a worker runs both, then the handler gets the value in its env,
    the server enqueues one refresh task before expiry, the refresh handler's PUT bumps the
    version, the next task gets the new value; and neither value appears in any log line,
    ledger record, metric, event or API answer."""
    old, new, third = secret("OLD"), secret("NEW"), secret("THIRD")
    expires = time.time() + 8
    srv = server_factory(f"""
sweep_interval_ms = 20
[logging]
level = "debug"
[credentials.api_token]
value = "{old}"
expires_at = "{fmt_ts(expires)}"
refresh_action = "renew_token"
refresh_queue = "auth"
refresh_before = "5s"
[actions."use_token"]
credentials = ["api_token"]
[actions."renew_token"]
""")
    out_dir = tmp_workdir / "out"
    out_dir.mkdir()
    new_file = tmp_workdir / "new_token"
    new_file.write_text(new)
    use = script(tmp_workdir, "use.sh", TOKEN_HANDLER)
    renew = script(tmp_workdir, "renew.py", RENEW_HANDLER, interpreter=sys.executable)
    env = {"OUT_DIR": str(out_dir), "NEW_TOKEN_FILE": str(new_file)}
    w = worker_factory(srv, handlers(use_token={"type": "exec", "argv": [str(use)], "env": env},
                                     renew_token={"type": "exec", "argv": [str(renew)], "env": env}),
                       args=("--queues", "default,auth", "--log-level", "debug"))
    answers = []

    # Given the config's value, the credential is at version 1 and valid (or expiring).
    status, _, info = srv.request("GET", "/api/credentials/api_token")
    assert status == 200, info
    assert info["version"] == 1 and info["refresh_action"] == "renew_token"
    assert info["refresh_queue"] == "auth" and info["refresh_before_s"] == 5
    assert abs(parse_ts(info["expires_at"]) - expires) < 1
    # An 8 s life is shorter than 2 x refresh_before: due at half of it, not 5 s ahead.
    updated = parse_ts(info["updated_at"])
    due = max(parse_ts(info["expires_at"]) - 5, (updated + parse_ts(info["expires_at"])) / 2)
    assert abs(parse_ts(info["next_refresh_at"]) - due) < 0.001
    assert info["state"] in ("valid", "expiring")
    assert "value" not in info
    answers.append(("GET credential", info))

    first = srv.enqueue("use_token", payload={"n": 1})
    wait_state(srv, first["id"], "succeeded")
    assert (out_dir / f"{first['id']}.tok").read_text() == old

    # The refresh: due at expiry - 5 s, enqueued once with the credential's name.
    ledger = wait_until(lambda: (lambda l: l if any(e["kind"] == "credential.refresh_scheduled"
                                                    for e in l) else None)(srv.ledger()),
                        timeout=15 * SLOW, what="the refresh to be scheduled")
    sched = [e for e in ledger if e["kind"] == "credential.refresh_scheduled"]
    assert len(sched) == 1
    assert sched[0]["data"]["credential"] == "api_token" and sched[0]["data"]["version"] == 1
    refresh = srv.get(sched[0]["data"]["task_id"])
    assert refresh["action"] == "renew_token" and refresh["queue"] == "auth"
    assert refresh["payload"]["credential"] == "api_token"
    assert refresh["idempotency_key"] == "credential:api_token:1"
    assert time.time() < expires, "the refresh came after the expiry"
    done = wait_state(srv, refresh["id"], "succeeded")
    assert done["result"] == {"renewed": "api_token", "version": 2}

    status, _, info = srv.request("GET", "/api/credentials/api_token")
    assert info["version"] == 2 and info["state"] == "valid"
    assert abs(parse_ts(info["expires_at"]) - (time.time() + 3600)) < 30
    answers.append(("GET credential after refresh", info))

    second = srv.enqueue("use_token", payload={"n": 2})
    wait_state(srv, second["id"], "succeeded")
    assert (out_dir / f"{second['id']}.tok").read_text() == new

    # Only the action that declares it gets it.
    lease_check = srv.enqueue("renew_token", queue="other", payload={"credential": "none"})
    status, _, leased = srv.request("POST", "/api/lease", {"worker": "probe", "queues": ["other"]})
    assert status == 200 and leased["tasks"][0]["id"] == lease_check["id"]
    assert "credentials" not in leased["tasks"][0]
    srv.complete(leased["tasks"][0])

    # An operator sets and deletes another one; the answers carry metadata only.
    status, _, put = srv.request("PUT", "/api/credentials/scratch.key", {"value": third})
    assert status == 200, put
    assert put["name"] == "scratch.key" and put["version"] == 1 and put["expires_at"] is None
    assert put["refresh_action"] is None and put["state"] == "valid"
    status, _, deleted = srv.request("DELETE", "/api/credentials/scratch.key")
    assert status == 200 and deleted["deleted"] is True
    assert deleted["credential"]["name"] == "scratch.key"
    answers += [("PUT", put), ("DELETE", deleted)]
    status, _, _ = srv.request("GET", "/api/credentials/scratch.key")
    assert status == 404

    kinds = [e["kind"] for e in srv.ledger() if e["kind"].startswith("credential.")]
    assert kinds == ["credential.updated", "credential.refresh_scheduled", "credential.updated",
                     "credential.updated", "credential.deleted"]
    expiry = srv.metric('resonance_credential_expiry_seconds{name="api_token"}')
    assert expiry is not None and abs(expiry - (time.time() + 3600)) < 30
    assert srv.metric('resonance_credential_version{name="api_token"}') == 2

    w.stop()
    assert_never_shown(everything_shown(srv, answers, workers=[w]), [old, new, third])


def test_config_value_vs_renewed_value_across_restarts(server_factory, tmp_workdir):
    """Given a config value A renewed to B through the API, when the server restarts with the
    same config, then B stays (version 2); when the config's value changes to C, then C wins
    with version 3. The lease of a declaring action carries the current value."""
    a, b, c = secret("A"), secret("B"), secret("C")

    def config(value):
        return f"""
sweep_interval_ms = 20
[credentials.db]
value = "{value}"
[actions."query"]
credentials = ["db"]
"""

    def leased_value(srv):
        task = srv.enqueue("query")
        status, _, body = srv.request("POST", "/api/lease", {"worker": "probe", "queues": ["default"]})
        assert status == 200 and body["tasks"][0]["id"] == task["id"]
        srv.complete(body["tasks"][0])
        return body["tasks"][0]["credentials"]["db"]

    srv = server_factory(config(a))
    assert leased_value(srv) == a
    status, _, put = srv.request("PUT", "/api/credentials/db", {"value": b, "expires_in_s": 600})
    assert status == 200 and put["version"] == 2
    assert leased_value(srv) == b

    srv.restart()
    status, _, info = srv.request("GET", "/api/credentials/db")
    assert info["version"] == 2
    assert abs(parse_ts(info["expires_at"]) - (time.time() + 600)) < 30
    assert leased_value(srv) == b

    srv.config_path.write_text(config(c))
    srv.restart()
    status, _, info = srv.request("GET", "/api/credentials/db")
    assert info["version"] == 3 and info["expires_at"] is None
    assert leased_value(srv) == c
    sources = [e["data"].get("source") for e in srv.ledger() if e["kind"] == "credential.updated"]
    assert sources == ["config", "api", "config"]
    assert_never_shown(everything_shown(srv), [a, b, c])


def test_one_refresh_per_version_across_restarts_and_expired_warning(server_factory):
    """Given a credential whose short life makes its refresh due at half of it, and one
    already expired, then one refresh task is enqueued for the version, and a restart does
    not enqueue another; the expired one is still listed (state expired), logged by name
    only, and raises CredentialExpired."""
    v1, v2 = secret("R"), secret("X")
    srv = server_factory(f"""
sweep_interval_ms = 20
[alerts]
interval_ms = 100
[credentials.soon]
value = "{v1}"
expires_at = "{fmt_ts(time.time() + 12)}"
refresh_action = "renew"
refresh_before = "1h"
[credentials.stale]
value = "{v2}"
expires_at = "2020-01-01T00:00:00Z"
""")
    wait_until(lambda: srv.list_tasks(action="renew")["tasks"], timeout=15 * SLOW,
               what="the refresh task")
    srv.restart()
    time.sleep(2.5 * SLOW)
    tasks = srv.list_tasks(action="renew")["tasks"]
    assert len(tasks) == 1 and tasks[0]["idempotency_key"] == "credential:soon:1"
    scheduled = [e for e in srv.ledger() if e["kind"] == "credential.refresh_scheduled"]
    assert len(scheduled) == 1
    status, _, body = srv.request("GET", "/api/credentials")
    states = {c["name"]: c for c in body["credentials"]}
    assert states["stale"]["state"] == "expired" and states["stale"]["next_refresh_at"] is None
    assert states["soon"]["state"] in ("expiring", "expired")
    assert states["soon"]["refresh_scheduled"] is True
    log = srv.stderr_path.read_text()
    assert "credential stale expired" in log
    # The built-in alert fires for the expired one only.
    firing = wait_until(lambda: [a for a in srv.request("GET", "/api/alerts")[2]["firing"]
                                 if a["name"] == "CredentialExpired"], timeout=5 * SLOW,
                        what="CredentialExpired to fire")
    names = {a["labels"]["credential"] for a in firing}
    assert "stale" in names and all(a["severity"] == "critical" for a in firing)
    # "soon" may have expired by now too on a slow machine; an alert needs an expiry.
    status, _, body = srv.request("GET", "/api/credentials")
    expired = {c["name"] for c in body["credentials"] if c["state"] == "expired"}
    assert names <= expired, f"CredentialExpired for {names - expired}, which did not expire"
    assert_never_shown(everything_shown(srv), [v1, v2])


def test_bad_inputs_are_refused_without_echoing_the_value(server):
    """Given bad PUT bodies, names and unknown credentials, then 400/404/422 with clear
    messages, none of which repeats the value sent."""
    v = secret("BAD")
    cases = [
        ("PUT", "/api/credentials/bad%20name", {"value": v}, 400, "credential name"),
        ("PUT", "/api/credentials/ok", {}, 400, "value: is required"),
        ("PUT", "/api/credentials/ok", {"value": 5}, 400, "value"),
        ("PUT", "/api/credentials/ok", {"value": ""}, 422, "value"),
        ("PUT", "/api/credentials/ok", {"value": v + "\u0000"}, 422, "NUL"),
        ("PUT", "/api/credentials/ok", {"value": "x" * 70000}, 422, "64 KiB"),
        ("PUT", "/api/credentials/ok", {"value": v, "expires_at": "tomorrow"}, 400, "expires_at"),
        ("PUT", "/api/credentials/ok", {"value": v, "expires_at": "2020-01-01T00:00:00Z"}, 422,
         "future"),
        ("PUT", "/api/credentials/ok", {"value": v, "expires_in_s": 0}, 400, "expires_in_s"),
        ("PUT", "/api/credentials/ok", {"value": v, "expires_in_s": 5,
                                        "expires_at": fmt_ts(time.time() + 60)}, 400, "not both"),
        ("PUT", "/api/credentials/ok", {"value": v, v: 1}, 400, "unknown field"),
        ("PUT", "/api/credentials/ok", '{"value": "' + v + '"', 400, "malformed"),
        ("GET", "/api/credentials/nope", None, 404, "nope"),
        ("DELETE", "/api/credentials/nope", None, 404, "nope"),
        ("GET", "/api/credentials/bad%21", None, 400, "credential name"),
    ]
    for method, path, body, want, mention in cases:
        status, headers, answer = server.request(method, path, body)
        assert_error(status, headers, answer, want, mentions=mention)
        assert v not in json.dumps(answer), f"{method} {path} echoes the value"
    status, _, body = server.request("GET", "/api/credentials")
    assert status == 200 and body == {"credentials": []}
    assert_never_shown([("server stderr", server.stderr_path.read_text(errors="replace")),
                        ("ledger", json.dumps(server.ledger()))], [v])


def test_bad_config_is_refused_without_echoing_the_value(tmp_workdir):
    """Given a config with a bad credentials table, then the server exits 2 naming the key,
    never the value."""
    v = secret("CFG")
    cases = [
        (f'[credentials."bad name"]\nvalue = "{v}"\n', "credentials.bad name"),
        (f'[credentials.a]\nvalue = "{v}"\nvalue_env = "HOME"\n', "one of value"),
        ('[credentials.a]\nvalue_env = "RESONANCE_NO_SUCH_VARIABLE"\n', "RESONANCE_NO_SUCH_VARIABLE"),
        ('[credentials.a]\nvalue_file = "/nonexistent/token"\n', "value_file"),
        (f'[credentials.a]\nvalue = "{v}"\nexpires_at = "soon"\n', "expires_at"),
        (f'[credentials.a]\nvalue = "{v}"\nrefresh_before = "5 minutes"\n', "refresh_before"),
        (f'[credentials.a]\nvalue = "{v}"\ncolour = "red"\n', "colour"),
        (f'[credentials.a]\nvalue = "{v}"\nrefresh_action = "x"\nrefresh_queue = "{"q" * 201}"\n',
         "refresh_queue"),
        (f'[credentials.a]\nvalue = "{v}"\n[actions."x"]\ncredentials = ["b"]\n', "credentials.b"),
        (f'[credentials.a]\nvalue = "{v}"\n[actions."x"]\ncredentials = "a"\n', "actions.x.credentials"),
    ]
    for i, (text, mention) in enumerate(cases):
        path = tmp_workdir / f"bad{i}.toml"
        path.write_text(text)
        proc = subprocess.run([BIN, "server", "--config", str(path), "--listen", "127.0.0.1:0",
                               "--data-dir", str(tmp_workdir / f"data{i}")],
                              capture_output=True, text=True, timeout=STARTUP_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
        assert proc.returncode == 2, f"case {i}: exit {proc.returncode}: {proc.stderr}"
        assert mention in proc.stderr, f"case {i}: {proc.stderr}"
        assert v not in proc.stderr + proc.stdout, f"case {i} echoes the value"


def test_value_from_env_and_file(server_factory, tmp_workdir):
    """Given value_env and value_file, then the server reads them (one trailing newline of a
    file is dropped) and a lease carries them."""
    from_env, from_file = secret("ENV"), secret("FILE")
    token_file = tmp_workdir / "token.txt"
    token_file.write_text(from_file + "\n")
    os.environ["RESONANCE_TEST_CREDENTIAL"] = from_env
    try:
        srv = server_factory(f"""
[credentials.e]
value_env = "RESONANCE_TEST_CREDENTIAL"
[credentials.f]
value_file = "{token_file}"
[actions."both"]
credentials = ["e", "f"]
""")
    finally:
        del os.environ["RESONANCE_TEST_CREDENTIAL"]
    srv.enqueue("both")
    status, _, body = srv.request("POST", "/api/lease", {"worker": "probe", "queues": ["default"]})
    assert status == 200
    assert body["tasks"][0]["credentials"] == {"e": from_env, "f": from_file}
    srv.complete(body["tasks"][0])
    assert_never_shown(everything_shown(srv), [from_env, from_file])
