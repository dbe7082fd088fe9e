"""Every push route through the real app on a real store: good bodies, and each bad body
with its 4xx status and message."""

from __future__ import annotations

import re

import orjson
import pytest

from tests.push.conftest import NOW, App, lines

H = "web1"


def post_native(app: App, body: bytes, **headers: str):
    return app.client.post("/api/v1/samples", content=body, headers={"content-type": "application/json", **headers})


# --- native ingest ---------------------------------------------------------------------------
def test_native_json_array_and_ndjson(open_app: App) -> None:
    items = [{"series": "pump.7.pressure", "time": NOW - 10 + i, "value": float(i)} for i in range(5)]
    items.append({"host": H, "time": NOW - 5, "values": {"cpu.total": 4.5, "mem.percent": 61.0}})
    r = post_native(open_app, orjson.dumps(items))
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 7, "rejected": 0, "reasons": {}}
    nd = b"\n".join(orjson.dumps({"series": "pump.7.flow", "time": NOW - 3 + i, "value": i}) for i in range(3)) + b"\n"
    r = open_app.client.post("/api/v1/samples", content=nd, headers={"content-type": "application/x-ndjson"})
    assert r.json() == {"accepted": 3, "rejected": 0, "reasons": {}}
    open_app.push.writer.settle()
    ts, values = open_app.push.series.samples("pump.7.pressure", NOW - 60, NOW)
    assert values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    open_app.push.writer.settle()
    ts, values = open_app.push.series.samples(f"host.{H}.cpu.total", NOW - 60, NOW)
    assert ts.tolist() == [NOW - 5] and values.tolist() == [4.5]
    # a time left out means "when it arrived"
    r = post_native(open_app, b'{"series": "pump.7.flow", "value": 9}')
    assert r.json()["accepted"] == 1
    open_app.push.writer.settle()
    assert open_app.push.series.samples("pump.7.flow", NOW, NOW + 1)[1].tolist() == [9.0]


def test_native_counts_rejections_per_request(open_app: App) -> None:
    body = orjson.dumps([{"series": "a.b", "time": NOW - 20 * 365 * 86400, "value": 1},
                         {"series": "a.b", "time": NOW + 86400, "value": 2},
                         {"series": "a.b", "time": NOW - 1, "value": 3}])
    r = post_native(open_app, body)
    assert r.status_code == 200
    assert r.json() == {"accepted": 1, "rejected": 2,
                        "reasons": {"older than retention": 1, "too far in the future": 1}}


@pytest.mark.parametrize("body, message", [
    (b"", "empty body"),
    (b"[]", "no samples in the body"),
    (b"[1,", "body is not valid JSON"),
    (b'{"series": "a"}\n{oops}', "line 2: not valid JSON"),
    (b"[1]", "item 1: expected a JSON object, got 1"),
    (b'[{"value": 1}]', "item 1: give 'series' (with 'value') or 'host' (with 'values')"),
    (b'[{"series": 5, "value": 1}]', "item 1: 'series' must be a string, got 5"),
    (b'[{"series": "a.b", "value": "x"}]', "item 1: 'value' must be a number, got \"x\""),
    (b'[{"series": "a.b", "value": true}]', "item 1: 'value' must be a number, got true"),
    (b'[{"series": "a.b"}]', "item 1: missing 'value'"),
    (b'[{"series": "a.b", "value": 1, "time": "yesterday"}]', "item 1: 'time' must be a number of epoch seconds"),
    (b'[{"series": "a.b", "value": 1, "vlaue": 2}]', "item 1: unknown key(s) ['vlaue']"),
    (b'[{"series": "a*b", "value": 1}]', "item 1: 'a*b' cannot name a series"),
    (b'[{"host": "h/1", "values": {"x": 1}}]', "item 1: bad host name 'h/1'"),
    (b'[{"host": "h1", "values": {}}]', "item 1: 'values' must be a non-empty object"),
    (b'[{"host": "h1", "values": {"x": null}}]', "item 1: value of 'x' must be a number, got null"),
    (b'[{"host": "h1", "values": {"x": 1}, "extra": 1}]', "item 1: unknown key(s) ['extra']"),
])
def test_native_bad_bodies(open_app: App, body: bytes, message: str) -> None:
    r = post_native(open_app, body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def test_body_limit_413(app_factory) -> None:
    app = app_factory(push_auth="open", push_max_body=1000)
    big = orjson.dumps([{"series": "a.b", "time": NOW, "value": i} for i in range(100)])
    r = post_native(app, big)
    assert r.status_code == 413
    assert r.json()["error"] == f"request body of {len(big)} bytes exceeds the limit of 1000 bytes (setting push_max_body)"

    def chunks():  # no Content-Length: refused while reading
        yield big[:600]
        yield big[600:]

    r = app.client.post("/api/v1/samples", content=chunks())
    assert r.status_code == 413
    assert r.json()["error"] == "request body exceeds the limit of 1000 bytes (setting push_max_body)"
    for path in ("/api/perf/h/1700000000", "/log/store", "/log/parse"):
        assert app.client.post(path, content=b"x" * 1001).status_code == 413


# --- Lizmon ----------------------------------------------------------------------------------
def test_lizmon_post_and_get_shape(open_app: App) -> None:
    t = int(NOW) - 100
    assert open_app.client.post(f"/api/perf/{H}/{t}", json={"cpu": 4.9, "mem": 62.3}).json()["accepted"] == 2
    assert open_app.client.post(f"/api/perf/{H}/{t + 5}", json={"cpu": "5.1"}).status_code == 200  # numeric text
    body = open_app.client.get(f"/api/perf/{H}").json()
    assert sorted(body) == ["summary:by-hour:cpu", "summary:by-hour:mem", "summary:by-minute:cpu",
                            "summary:by-minute:mem"]
    cpu = body["summary:by-minute:cpu"]
    start = (t // 60) * 60 if t % 60 else t - 60
    assert cpu == {
        "averages": [{"start-sec": start, "end-sec": start + 60, "interval-size-sec": 60, "avg": 5.0,
                      "num-samples": 2, "min": 4.9, "max": 5.1, "p95": cpu["averages"][0]["p95"]}],
        "start": int((NOW - 3600) // 60 * 60), "end": int(NOW), "timeslice-size-sec": 60, "average-count": 1,
    }
    assert 4.9 <= cpu["averages"][0]["p95"] <= 5.1
    hour = body["summary:by-hour:cpu"]
    assert hour["timeslice-size-sec"] == 3600 and hour["start"] == int((NOW - 86400) // 3600 * 3600)
    assert hour["averages"][0]["num-samples"] == 2


def test_lizmon_label_match_is_case_insensitive_and_digits_work(open_app: App) -> None:
    t = int(NOW) - 30
    r = open_app.client.post(f"/api/perf/{H}/{t}", json={"CPU": 1.0, "mem": 2.0, "2024": 3.0})
    assert r.status_code == 200
    assert sorted(open_app.client.get(f"/api/perf/{H}/by-minute:cpu").json()) == ["summary:by-minute:CPU"]
    assert sorted(open_app.client.get(f"/api/perf/{H}/Cpu").json()) == ["summary:by-hour:CPU", "summary:by-minute:CPU"]
    # an all-digit label is a GET filter, not an epoch (Lizmon sent it to its POST handler)
    digits = open_app.client.get(f"/api/perf/{H}/2024").json()
    assert sorted(digits) == ["summary:by-hour:2024", "summary:by-minute:2024"]
    assert digits["summary:by-minute:2024"]["averages"][0]["avg"] == 3.0
    assert open_app.client.get(f"/api/perf/{H}/nothing-like-this").json() == {}


def test_lizmon_unknown_host_404(open_app: App) -> None:
    r = open_app.client.get("/api/perf/ghost")
    assert r.status_code == 404
    assert r.json() == {"error": "no data for host 'ghost': it never posted (or its series were deleted)",
                        "kind": "UnknownHost"}
    assert open_app.client.get("/api/perf/ghost/cpu").status_code == 404


def test_lizmon_dotted_host_names_do_not_mix(open_app: App) -> None:
    t = int(NOW) - 30
    open_app.client.post(f"/api/perf/a/{t}", json={"cpu": 1})
    open_app.client.post(f"/api/perf/a.b/{t}", json={"cpu": 2})
    assert sorted(open_app.client.get("/api/perf/a").json()) == ["summary:by-hour:cpu", "summary:by-minute:cpu"]
    assert open_app.client.get("/api/perf/a.b/by-minute").json()["summary:by-minute:cpu"]["averages"][0]["avg"] == 2


@pytest.mark.parametrize("path, body, message", [
    ("/api/perf/web1/12ab", b'{"cpu": 1}', "epoch must be whole seconds since 1970, got '12ab'"),
    ("/api/perf/web1/1700000000", b"[1, 2]", "body must be a JSON object of label -> number, got [1,2]"),
    ("/api/perf/web1/1700000000", b"{", "body is not valid JSON"),
    ("/api/perf/web1/1700000000", b"{}", "empty object: no labels to store"),
    ("/api/perf/web1/1700000000", b'{"cpu": "high"}', "label 'cpu': \"high\" is not a number"),
    ("/api/perf/web1/1700000000", b'{"cpu": null}', "label 'cpu': null is not a number"),
    ("/api/perf/web1/1700000000", b'{"c*u": 1}', "label 'c*u': 'host.web1.c*u' cannot name a series"),
    ("/api/perf/we%5Bb/1700000000", b'{"cpu": 1}', "bad host name 'we[b'"),
])
def test_lizmon_bad_posts(open_app: App, path: str, body: bytes, message: str) -> None:
    r = open_app.client.post(path, content=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


# --- energy sensors ---------------------------------------------------------------------------
def test_log_store_text_json_charset_and_double_encoded(open_app: App) -> None:
    line = lines()[0]
    real = open_app.client
    clock = open_app.clock

    class Ticking:
        """Each post a millisecond later: series samples are keyed by arrival time."""

        def post(self, *args, **kwargs):
            clock.t += 0.001
            return real.post(*args, **kwargs)

    c = Ticking()
    assert c.post("/log/store", content=line + "\n", headers={"content-type": "text/plain"}).json() == {}
    assert c.post("/log/store", content=line.encode("latin-1"),
                  headers={"content-type": "text/plain; charset=ISO-8859-1"}).json() == {}
    parsed = c.post("/log/parse", content=line, headers={"content-type": "text/plain"}).json()
    assert parsed["Power"] == {"Active": 1753, "Reactive": 279, "Appearent": 403}
    assert parsed["Line"]["Phase"] == -43.841 and parsed["Alarms"] == {"CoilRevesed": False}
    for ctype in ("application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8"):
        r = c.post("/log/store", content=orjson.dumps(parsed), headers={"content-type": ctype})
        assert (r.status_code, r.json()) == (200, {}), ctype
    # the old distributed client: json=<the text /log/parse returned>, a JSON string holding JSON
    r = c.post("/log/store", content=orjson.dumps(orjson.dumps(parsed).decode()),
               headers={"content-type": "application/json"})
    assert (r.status_code, r.json()) == (200, {})
    # the old parse service's all-string form (units still on)
    old = {"Device": {"ID": "1", "Fw": "16071801", "Evt": "2"}, "Alarms": {"CoilRevesed": "OFF"},
           "Power": {"Active": "1753W", "Reactive": "279var", "Appearent": "403VA"},
           "Line": {"Current": "7.35", "Voltage": "230.08V", "Phase": "-43,841rad"},
           "Peaks": ["7.3", "7.3", "7.5"], "FFT Re": ["1", "2"], "FFT Img": ["3", "4"],
           "UTC Time": ["2016-10-4 16:47:50"], "hz": ["49.87"], "WiFi Strength": ["-62"], "Dummy": ["20"]}
    assert c.post("/log/store", json=old).json() == {}
    open_app.push.writer.settle()
    with open_app.service.store._read() as conn:
        assert conn.execute("SELECT count(*) FROM push_sensor_events").fetchone()[0] == 7
        assert conn.execute("SELECT DISTINCT line_phase_rad FROM push_sensor_events").fetchall() == [(-43.841,)]
    open_app.push.writer.settle()
    ts, values = open_app.push.series.samples("sensor.1.power.active", NOW - 1, NOW + 1)
    assert values.tolist() == [1753.0] * 7
    assert ts.tolist() == pytest.approx([NOW + 0.001 * i for i in (1, 2, 4, 5, 6, 7, 8)])
    for name in ("power.reactive", "power.apparent", "line.current", "line.voltage", "line.frequency", "wifi.strength"):
        assert len(open_app.push.series.samples(f"sensor.1.{name}", NOW - 1, NOW + 1)[0]) == 7


def _without(line: str, part: str, replacement: str = "") -> str:
    assert part in line
    return line.replace(part, replacement)


@pytest.mark.parametrize("edit, message", [
    (lambda ln: "", "empty event: the body holds no text"),
    (lambda ln: ln + "\n" + ln, "one event per request: the body holds 2 lines"),
    (lambda ln: "Dead=Beef", "expected 'Section: ...' at the start, found 'Dead=Beef'"),
    (lambda ln: _without(ln, "Active=1753W", "Active=17x3W"), "Power.Active: \"17x3W\" is not a number"),
    (lambda ln: _without(ln, " Appearent=403VA;"), "missing Power.Appearent"),
    (lambda ln: _without(ln, "Alarms: CoilRevesed=OFF; "), "missing section 'Alarms'"),
    (lambda ln: _without(ln, "CoilRevesed=OFF", "CoilRevesed=MAYBE"), "Alarms.CoilRevesed: \"MAYBE\" is not ON or OFF"),
    (lambda ln: re.sub(r"Peaks: [0-9.;]*", "Peaks: 1;2; ", ln), "Peaks: need at least 3 values"),
    (lambda ln: _without(ln, "Peaks: 7.33199978;", "Peaks: 7.3x;"), "Peaks[0]: \"7.3x\" is not a number"),
    (lambda ln: _without(ln, "FFT Img: 2712;", "FFT Img: "), "FFT Re has 9 values but FFT Img has 8"),
    (lambda ln: _without(ln, "2016-10-4 16:47:50", "2016-13-4 16:47:50"), "UTC Time: '2016-13-4 16:47:50' is not a real date"),
    (lambda ln: _without(ln, "2016-10-4 16:47:50", "yesterday"), "UTC Time: cannot read \"yesterday\""),
    (lambda ln: _without(ln, "ID=1", "ID=1.5"), "Device.ID: 1.5 is not a whole number"),
    (lambda ln: _without(ln, "hz: 49.87", "hz: 49.87; hz: 50"), "section 'hz' appears twice"),
    (lambda ln: _without(ln, "Evt=2", "Evt=2;Evt"), "section 'Device': 'Evt' is not key=value"),
    (lambda ln: _without(ln, "Voltage=230.08V", "Voltage=230:08"), "':' is not allowed in the value of 'Voltage'"),
    (lambda ln: "Foo:", "section 'Foo' is empty"),
])
def test_log_store_bad_lines(open_app: App, edit, message: str) -> None:
    body = edit(lines()[0])
    r = open_app.client.post("/log/store", content=body, headers={"content-type": "text/plain"})
    assert r.status_code == 400, r.text
    assert message in r.json()["error"], r.json()


@pytest.mark.parametrize("body, ctype, message", [
    (b"{", "application/json", "body is not valid JSON"),
    (b'"{oops"', "application/json", "body is a JSON string that does not hold JSON (double encoding)"),
    (b"[1, 2]", "application/json", "an event is a JSON object of sections, got [1,2]"),
    (b'{"Device": [1]}', "application/json", "section 'Device' must hold key=value pairs"),
    (b"x", "application/xml", "unsupported Content-Type 'application/xml'"),
    (b"\xff\xfe", "text/plain", "body is not utf-8 text"),
    (b"Device: ID=1", "text/plain; charset=klingon", "unknown charset 'klingon'"),
])
def test_log_store_bad_bodies(open_app: App, body: bytes, ctype: str, message: str) -> None:
    r = open_app.client.post("/log/store", content=body, headers={"content-type": ctype})
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def test_log_store_never_500_on_any_line_prefix(open_app: App) -> None:
    """Every prefix of a real line, and every line with one character dropped, answers 200 or 400."""
    line = lines()[1]
    bodies = [line[:i] for i in range(0, len(line), 7)] + [line[:i] + line[i + 1:] for i in range(0, len(line), 11)]
    for body in bodies:
        r = open_app.client.post("/log/store", content=body.encode(), headers={"content-type": "text/plain"})
        assert r.status_code in (200, 400), (body, r.text)
        assert r.json() == {} or r.json()["error"]


def test_log_parse_route(open_app: App) -> None:
    r = open_app.client.post("/log/parse", content="Foo: 1; 2,5; Bar: A=ON; B=3V")
    assert r.json() == {"Foo": [1, 2.5], "Bar": {"A": True, "B": 3}}
    r = open_app.client.post("/log/parse", content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "/log/parse takes the event line as text/plain" in r.json()["error"]
    r = open_app.client.post("/log/parse", content="Foo: Bar=:")
    assert (r.status_code, r.json()["error"]) == (400, "section 'Foo': ':' is not allowed in the value of 'Bar' ('Bar=:')")


def test_parse_service_app_alone() -> None:
    from starlette.testclient import TestClient

    from telmon.push.cli import parse_app

    with TestClient(parse_app()) as c:
        assert c.post("/log/parse", content=lines()[0])  .json()["Device"] == {"ID": 1, "Fw": 16071801, "Evt": 2}
        r = c.post("/log/parse", content="nonsense")
        assert (r.status_code, r.json()["error"]) == (400, "expected 'Section: ...' at the start, found 'nonsense'")


def test_status_route(open_app: App) -> None:
    open_app.client.post(f"/api/perf/{H}/{int(NOW)}", json={"cpu": 1})
    open_app.push.writer.settle()
    body = open_app.client.get("/api/v1/push/status").json()
    assert body["writer"]["samples"] == 1 and body["writer"]["jobs"] == 1 and body["writer"]["backlog"] == 0
    assert body["auth"]["writes_need_token"] is False


def test_front_answers_like_the_app(open_app: App) -> None:
    from starlette.testclient import TestClient

    from telmon.push import front

    asgi = front(open_app.client.app, open_app.service)
    with TestClient(asgi, raise_server_exceptions=False) as fast:
        cases = [
            ("/api/v1/samples", orjson.dumps([{"series": "a.b", "time": NOW, "value": 1}]), {}),
            ("/api/v1/samples", b"[1]", {}),
            (f"/api/perf/{H}/{int(NOW)}", b'{"cpu": 2}', {}),
            (f"/api/perf/{H}/12ab", b'{"cpu": 2}', {}),
            ("/log/store", lines()[0].encode(), {"content-type": "text/plain"}),
            ("/log/store", b"Dead=Beef", {"content-type": "text/plain"}),
        ]
        for path, body, headers in cases:
            a = open_app.client.post(path, content=body, headers=headers)
            open_app.clock.t += 0.001
            b = fast.post(path, content=body, headers=headers)
            open_app.clock.t += 0.001
            assert (a.status_code, a.json()) == (b.status_code, b.json()), path
        # everything else is the app's
        assert fast.get(f"/api/perf/{H}").json() == open_app.client.get(f"/api/perf/{H}").json()
        assert fast.get("/healthz").json()["ok"] is True
        assert fast.get("/nowhere").status_code == 404
