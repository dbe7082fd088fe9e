from pathlib import Path

import pytest

from telmon.config import SETTINGS, load_config
from telmon.errors import ConfigError

DOCS = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


def test_every_setting_is_documented():
    text = DOCS.read_text()
    for s in SETTINGS:
        assert f"`{s.name}`" in text, f"setting {s.name} is missing from docs/settings.md"


def test_file_then_environment(tmp_path):
    f = tmp_path / "t.toml"
    f.write_text('port = 9000\nquarantine = true\n[[watch]]\npath = "/in"\nfeed = "GOES"\n'
                 '[stations.S1]\ninterval = "15m"\n')
    cfg = load_config(f, env={"TELMON_PORT": "9100"})
    assert cfg.port == 9100 and cfg.quarantine is True
    assert cfg.watch[0].path == "/in" and cfg.watch[0].feed == "GOES"
    assert cfg.stations["S1"]["interval"] == "15m"


@pytest.mark.parametrize("text,needle", [
    ("prot = 9000\n", "unknown setting 'prot'"),
    ("port = 'x'\n", "expected int"),
    ("port = \n", "not valid TOML"),
    ("[[watch]]\nfeed = 'x'\n", "needs a path"),
])
def test_bad_config_says_what_and_where(tmp_path, text, needle):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(f, env={})
    assert needle in str(err.value) and str(f) in str(err.value)
