"""Tokens: the auth matrix on every write route (no token, wrong token, another host's token,
expired, revoked), read protection by config, the auto mode, and the CLI."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from telmon.push.tokens import TokenStore
from tests.push.conftest import NOW, App, lines

DAY = 86400.0


@pytest.fixture
def secured(app_factory) -> tuple[App, dict[str, str]]:
    app = app_factory(push_auth="tokens")
    tokens = app.push.tokens
    made = {}
    _, made["web1"] = tokens.add("web1-agent", hosts=["web1"], now=NOW)
    _, made["web2"] = tokens.add("web2-agent", hosts=["web2"], now=NOW)
    _, made["sensor1"] = tokens.add("sensor-1", stations=["1"], now=NOW)
    _, made["expired"] = tokens.add("old", hosts=["web1"], expires_at=NOW - 10, now=NOW - DAY)
    _, made["revoked"] = tokens.add("leaked", hosts=["*"], stations=["*"], now=NOW)
    tokens.revoke("leaked", now=NOW)
    return app, made


def _auth(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


WRITES = {
    "lizmon": lambda c, h: c.post(f"/api/perf/web1/{int(NOW)}", json={"cpu": 1.0}, headers=h),
    "native": lambda c, h: c.post("/api/v1/samples", content=orjson.dumps(
        [{"host": "web1", "time": NOW, "values": {"cpu.total": 1.0}}]), headers=h),
    "native-series": lambda c, h: c.post("/api/v1/samples", content=orjson.dumps(
        [{"series": "host.web1.cpu.total", "time": NOW, "value": 1.0}]), headers=h),
}


@pytest.mark.parametrize("route", sorted(WRITES))
def test_auth_matrix_hosts(secured, route: str) -> None:
    app, tok = secured
    send = WRITES[route]
    c = app.client
    cases = [
        (None, 401, "this server requires a bearer token: send 'Authorization: Bearer <token>'"),
        ("tmk_deadbeef0000_" + "x" * 43, 401, "unknown token: it was never issued here"),
        (tok["web1"][:-3] + "AAA", 401, "unknown token"),  # right id, wrong secret
        ("hunter2", 401, "malformed token: expected tmk_<id>_<secret>"),
        (tok["web2"], 403, "token 'web2-agent' may not write host 'web1' (it may write: host web2)"),
        (tok["sensor1"], 403, "token 'sensor-1' may not write host 'web1' (it may write: station 1)"),
        (tok["expired"], 401, "token 'old' expired at 2023-11-15T00:20:24.500000Z"),
        (tok["revoked"], 401, "token 'leaked' was revoked at 2023-11-15T00:20:34.500000Z"),
    ]
    for token, status, message in cases:
        r = send(c, _auth(token))
        assert r.status_code == status, (token, r.text)
        assert r.json()["error"].startswith(message), (token, r.json())
    r = send(c, _auth(tok["web1"]))
    assert r.status_code == 200 and r.json()["accepted"] == 1
    r = c.post("/api/v1/samples", content=b"[]", headers={"Authorization": "Basic abc"})
    assert (r.status_code, r.json()["error"]) == (401, "the Authorization header must read 'Bearer <token>'")


def test_auth_matrix_stations(secured) -> None:
    app, tok = secured
    line = lines()[0]  # Device ID=1
    c = app.client

    def store(token: str | None, body: str = line):
        return c.post("/log/store", content=body, headers={"content-type": "text/plain", **_auth(token)})

    assert store(None).status_code == 401
    r = store(tok["web1"])
    assert (r.status_code, r.json()["error"]) == (403, "token 'web1-agent' may not write station '1' (it may write: host web1)")
    assert store(tok["revoked"]).status_code == 401
    assert store(tok["sensor1"]).json() == {}
    r = store(tok["sensor1"], line.replace("ID=1;", "ID=2;"))
    assert r.status_code == 403 and "may not write station '2'" in r.json()["error"]


def test_native_series_outside_any_host_needs_a_wildcard(secured) -> None:
    app, tok = secured
    body = orjson.dumps([{"series": "pump.7.pressure", "time": NOW, "value": 1.0}])
    r = app.client.post("/api/v1/samples", content=body, headers=_auth(tok["web1"]))
    assert r.status_code == 403
    assert r.json()["error"].startswith("token 'web1-agent' may only write series under host.<host>. or sensor.<station>.")
    _, anything = app.push.tokens.add("admin", hosts=["*"], stations=["*"], now=NOW)
    assert app.client.post("/api/v1/samples", content=body, headers=_auth(anything)).status_code == 200


def test_reads_open_or_protected_by_config(app_factory) -> None:
    open_reads = app_factory(push_auth="tokens", push_read_auth=False)
    assert open_reads.client.get("/clusters/summary").status_code == 200
    closed = app_factory(push_auth="tokens", push_read_auth=True)
    _, token = closed.push.tokens.add("reader", hosts=["web1"], now=NOW)
    for path in ("/clusters/summary", "/api/perf/web1", "/api/v1/push/status"):
        r = closed.client.get(path)
        assert r.status_code == 401 and "requires a bearer token" in r.json()["error"], path
    assert closed.client.post("/log/parse", content=lines()[0]).status_code == 401
    assert closed.client.get("/clusters/summary", headers=_auth(token)).status_code == 200
    closed.client.post(f"/api/perf/web1/{int(NOW)}", json={"cpu": 1}, headers=_auth(token))
    assert closed.client.get("/api/perf/web1", headers=_auth(token)).status_code == 200


def test_auto_mode_is_open_only_for_the_demo(app_factory) -> None:
    app = app_factory(push_auth="auto")
    assert app.client.post(f"/api/perf/web1/{int(NOW)}", json={"cpu": 1}).status_code == 401
    class DemoFeed:  # what `serve --demo` sets
        def start(self) -> None: ...
        def stop(self) -> None: ...

    app.service.demo = DemoFeed()
    assert app.client.post(f"/api/perf/web1/{int(NOW)}", json={"cpu": 1}).status_code == 200


def test_revocation_from_another_process_applies_after_the_cache(store) -> None:
    ticks = [0.0]
    server_side = TokenStore(store, cache_seconds=2.0, clock=lambda: ticks[0])
    other = TokenStore(store)  # e.g. `telmon token revoke` in another process
    _, text = other.add("t", hosts=["h"], now=NOW)
    assert server_side.verify(text, now=NOW).name == "t"
    other.revoke("t", now=NOW)
    assert server_side.verify(text, now=NOW).name == "t"  # still cached
    ticks[0] = 2.5
    with pytest.raises(Exception, match="was revoked"):
        server_side.verify(text, now=NOW)


def test_tokens_are_stored_hashed(store) -> None:
    tokens = TokenStore(store)
    _, text = tokens.add("t", hosts=["h"], now=NOW)
    secret = text.rsplit("_", 1)[1]
    with store._read() as conn:
        dump = "\n".join(str(r) for r in conn.execute("SELECT * FROM push_tokens"))
    assert secret not in dump and text not in dump


def test_token_add_refuses_bad_requests(store) -> None:
    tokens = TokenStore(store)
    with pytest.raises(Exception, match="give the hosts and/or stations"):
        tokens.add("t", now=NOW)
    tokens.add("t", hosts=["h"], now=NOW)
    with pytest.raises(Exception, match="a token named 't' exists already"):
        tokens.add("t", hosts=["h"], now=NOW)
    with pytest.raises(Exception, match="the expiry is in the past"):
        tokens.add("u", hosts=["h"], expires_at=NOW - 1, now=NOW)


def test_token_cli(tmp_path) -> None:
    import click

    from telmon.push.cli import register

    @click.group()
    def main() -> None:
        pass

    register(main)
    db = str(tmp_path / "t.db")
    runner = CliRunner()
    r = runner.invoke(main, ["token", "add", "agent-1", "--host", "web*", "--expires", "30d", "--store", db])
    assert r.exit_code == 0, r.output
    text = r.stdout.strip().splitlines()[0]
    assert text.startswith("tmk_")
    r = runner.invoke(main, ["token", "list", "--json", "--store", db])
    row = orjson.loads(r.stdout)["tokens"][0]
    assert (row["name"], row["hosts"], row["state"]) == ("agent-1", ["web*"], "active")
    assert text not in r.stdout
    assert runner.invoke(main, ["token", "revoke", "agent-1", "--store", db]).exit_code == 0
    r = runner.invoke(main, ["token", "list", "--store", db])
    assert "revoked" in r.stdout
    r = runner.invoke(main, ["token", "revoke", "nobody", "--store", db])
    assert r.exit_code == 1 and "no token 'nobody'" in r.output
    r = runner.invoke(main, ["token", "add", "x", "--store", db])
    assert r.exit_code == 1 and "give the hosts and/or stations" in r.output
