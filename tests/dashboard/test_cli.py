"""``telmon graph``: one graph to a file, several clients in one image, and ``--all`` with a
pool of worker processes, on the sample store."""

from __future__ import annotations

import io
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from PIL import Image

from telmon.service import Service
from tests.dashboard.sample import NOW


@pytest.fixture(scope="module")
def cli() -> click.Group:
    # a group of its own: telmon.cli wires register() into the real `telmon` command
    from telmon.cli import main  # noqa: F401  (the helpers register() imports)
    from telmon.graphs.cli import register

    group = click.Group("telmon")
    register(group)
    return group


def _png(path: Path) -> tuple[int, int]:
    img = Image.open(io.BytesIO(path.read_bytes()))
    img.load()
    return img.size


def test_one_graph_to_a_file(cli: click.Group, sample: Service, tmp_path: Path):
    store = sample.store.url
    out = tmp_path / "amis.png"
    r = CliRunner().invoke(cli, ["graph", "--store", store, "--client", "tx/amis", "--client", "rx/cmc", "--span", "7d",
                                 "--now", str(NOW), "--width", "700", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == str(out) and _png(out)[0] == 700
    r = CliRunner().invoke(cli, ["graph", "--store", store, "--series", "host.*.cpu.total", "--span", "year",
                                 "--now", str(NOW), "-o", str(tmp_path / "cpu.png")])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("args, message", [
    (["--client", "tx/amis", "--host", "web1"], "give one of"),
    ([], "give one of"),
    (["--all", "--host", "web1", "--out", "x"], "leave out"),
    (["--all"], "--out"),
    (["--client", "tx/nobody"], "no transfer client 'tx/nobody'"),
    (["--host", "web1", "--span", "fortnight"], "span"),
])
def test_usage_errors(cli: click.Group, sample: Service, args: list[str], message: str):
    r = CliRunner().invoke(cli, ["graph", "--store", sample.store.url, "--now", str(NOW), *args])
    assert r.exit_code != 0 and message in r.output, r.output


def test_all_in_parallel(cli: click.Group, sample: Service, tmp_path: Path):
    out = tmp_path / "graphs"
    r = CliRunner().invoke(cli, ["graph", "--store", sample.store.url, "--all", "--span", "24h", "--now", str(NOW),
                                 "--out", str(out), "--jobs", "2", "--width", "500", "--progress"])
    assert r.exit_code == 0, r.output
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert files == ["clients/rx_cmc.png", "clients/tx_amis.png", "clients/tx_wxo-ice.png", "hosts/db2.png",
                     "hosts/web1.png", "stations/GAUGE1.png", "stations/GAUGE2.png", "stations/GAUGE3.png"]
    assert all(_png(out / f)[0] == 500 for f in files)
    assert "drew 8 graph(s)" in r.output and "with 2 process(es)" in r.output
    assert not list(out.rglob("*.tmp"))
    r = CliRunner().invoke(cli, ["graph", "--store", sample.store.url, "--all", "--only", "hosts", "--now", str(NOW),
                                 "--out", str(tmp_path / "hosts"), "--jobs", "1"])
    assert r.exit_code == 0 and sorted(p.name for p in (tmp_path / "hosts").rglob("*.png")) == ["db2.png", "web1.png"]


def test_all_on_an_empty_store(cli: click.Group, empty_service: Service, tmp_path: Path):
    r = CliRunner().invoke(cli, ["graph", "--store", empty_service.store.url, "--all", "--out", str(tmp_path / "g")])
    assert r.exit_code == 0 and "nothing to draw yet" in r.output
