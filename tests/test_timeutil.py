import pytest

from telmon.errors import InvalidTime
from telmon.timeutil import iso, parse_span, parse_time


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2018-02-19T02:00:00Z", 1519005600.0),
        ("2018-02-19T02:00:00", 1519005600.0),  # naive means UTC
        ("2018-02-19 02:00", 1519005600.0),
        ("2018-02-18T21:00:00-05:00", 1519005600.0),
        ("1519005600", 1519005600.0),
        (1519005600, 1519005600.0),
        ("1519005600.5", 1519005600.5),
    ],
)
def test_parse_time_accepts_iso_and_epoch(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize("bad", ["", "yesterday", "2018-13-01", "nan", True, None, [], "1e400"])
def test_parse_time_refuses_with_a_message_that_says_what_to_use(bad):
    with pytest.raises(InvalidTime) as err:
        parse_time(bad, field="start")
    assert "ISO 8601" in str(err.value) and err.value.field == "start"


def test_iso_is_utc_with_z():
    assert iso(1519005600.0) == "2018-02-19T02:00:00Z"
    assert iso(1519005600.25) == "2018-02-19T02:00:00.250000Z"
    assert iso(None) is None


def test_parse_span():
    assert parse_span("15m") == 900
    assert parse_span("24h") == 86400
    assert parse_span("7d") == 7 * 86400
    assert parse_span(30) == 30
    with pytest.raises(InvalidTime):
        parse_span("-3h")
