"""Command-line wrappers over SeriesStore, to be registered into the main ``telmon`` group.

    telmon series NAME|PATTERN [--start T] [--end T] [--step S] [--stat p95 ...] [--agg sum|merge] [--json|--csv]
    telmon revert BATCH
    telmon rollup prune | reshape [--series P] | rebuild --series P [--since T] | list [P]
    telmon rollup policy list | set PATTERN SPEC [--position N] | remove PATTERN

Each command opens the store named by ``--store``, makes one library call and prints the
result; a TelmonError becomes a one-line ClickException (exit status 1).  ``register(main)``
adds them all.  Times: ISO 8601 (naive = UTC), epoch seconds, ``now``, or ``-30d`` (before now).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click
import orjson

from telmon.cli_common import friendly_errors
from telmon.rollup.params import stat_list, step_value, when
from telmon.rollup.store import SeriesStore
from telmon.store.sqlite import SQLiteStore
from telmon.timeutil import iso

DEFAULT_STORE = "telmon-data/telmon.db"
F = TypeVar("F", bound=Callable[..., Any])


_errors = friendly_errors


def _store_options(fn: F) -> F:
    fn = click.option("--now", "now", type=float, default=None, hidden=True,
                      help="Pretend the time is this (epoch seconds); for tests and replays.")(fn)
    fn = click.option("--store", "store_path", default=DEFAULT_STORE, show_default=True,
                      type=click.Path(dir_okay=False), help="SQLite store file.")(fn)
    return fn


@contextlib.contextmanager
def _open(path: str) -> Iterator[SeriesStore]:
    store = SQLiteStore(path)
    try:
        yield SeriesStore(store)
    finally:
        store.close()


def _dump(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode()


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


@click.command("series")
@click.argument("name")
@click.option("--start", default=None, help="Start of the span [default: 1 day before --end].")
@click.option("--end", default="now", show_default=True, help="End of the span (exclusive).")
@click.option("--step", default=None, help="Seconds or 1m/1h/1d per point; 'span' for one point; "
                                           "default: the step of the tier that answers.")
@click.option("--stat", "stats", multiple=True, help="count, sum, min, max, mean, median, pNN, first_ts, "
                                                     "last_ts, expected, completeness (repeat or comma-separate).")
@click.option("--agg", type=click.Choice(["sum", "merge"]), default=None,
              help="Across matching series: 'merge' their buckets (one distribution), 'sum' each stat.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@_store_options
@_errors
def series_command(name: str, start: str | None, end: str, step: str | None, stats: tuple[str, ...], agg: str | None,
                   as_json: bool, as_csv: bool, store_path: str, now: float | None) -> None:
    """Points of a series, or of every series matching a glob PATTERN (e.g. 'host*.cpu')."""
    now = time.time() if now is None else now
    t_end = when(end, now, field="end")
    t_start = when(start, now, field="start") if start else t_end - 86400
    with _open(store_path) as ss:
        answer = ss.series(name, t_start, t_end, step_value(step), stat_list(stats), agg, now=now)
    if as_json:
        click.echo(_dump(answer.to_json()))
    elif as_csv:
        click.echo(answer.to_csv(), nl=False)
    else:
        header = ["series", "time", *answer.stats]
        rows = [[s.name, iso(p["t"]) or "", *(_fmt(p.get(k)) for k in answer.stats)] for s in answer.series for p in s.points]
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
        for row in [header, *rows]:
            click.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
        for note in answer.notes:
            click.echo(f"note: {note}", err=True)
        if not answer.covered:
            click.echo("note: the span reaches back further than any tier keeps", err=True)


@click.command("revert")
@click.argument("batch", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_store_options
@_errors
def revert_command(batch: int, as_json: bool, store_path: str, now: float | None) -> None:
    """Take a series write (BATCH) back out and recompute exactly the buckets it touched."""
    with _open(store_path) as ss:
        result = ss.revert(batch, now=time.time() if now is None else now)
    if as_json:
        click.echo(_dump(result.to_json()))
        return
    click.echo(f"batch {batch}: {result.samples_removed} samples removed, {result.buckets_recomputed} buckets "
               f"recomputed from raw, {result.buckets_adjusted} adjusted")
    if result.samples_pruned:
        click.echo(f"note: {result.samples_pruned} samples were already pruned from raw storage; "
                   "their share of the tiers stays", err=True)


@click.group("rollup")
def rollup_group() -> None:
    """Maintain series rollups: retention, rebuilds, policies."""


@rollup_group.command("prune")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_store_options
@_errors
def prune_command(as_json: bool, store_path: str, now: float | None) -> None:
    """Delete what retention no longer keeps and compact blocks (run it e.g. hourly)."""
    with _open(store_path) as ss:
        result = ss.prune(now=time.time() if now is None else now)
    click.echo(_dump(result.to_json()) if as_json else
               ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in result.to_json().items()))


@rollup_group.command("reshape")
@click.option("--series", "pattern", default="*", show_default=True, help="Series name or glob pattern.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_store_options
@_errors
def reshape_command(pattern: str, as_json: bool, store_path: str, now: float | None) -> None:
    """Convert stored tiers to each series' current policy (after `rollup policy set`)."""
    with _open(store_path) as ss:
        result = ss.reshape(pattern, now=time.time() if now is None else now)
    click.echo(_dump(result.to_json()) if as_json else
               ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in result.to_json().items()))


@rollup_group.command("rebuild")
@click.option("--series", "pattern", required=True, help="Series name or glob pattern.")
@click.option("--since", default=None, help="Recompute buckets from here on [default: all raw samples].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_store_options
@_errors
def rebuild_command(pattern: str, since: str | None, as_json: bool, store_path: str, now: float | None) -> None:
    """Recompute buckets from raw samples (where raw retention still holds them all)."""
    now = time.time() if now is None else now
    with _open(store_path) as ss:
        result = ss.rebuild(pattern, when(since, now, field="since") if since else None, now=now)
    if as_json:
        click.echo(_dump(result.to_json()))
        return
    click.echo(f"{result.series} series, {result.buckets} buckets rebuilt")
    if result.skipped_before is not None:
        click.echo(f"note: raw samples start at {iso(result.skipped_before)}; older buckets were kept", err=True)


@rollup_group.command("list")
@click.argument("pattern", default="*")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_store_options
@_errors
def list_command(pattern: str, as_json: bool, store_path: str, now: float | None) -> None:
    """Series matching PATTERN, with their policy and newest sample time."""
    with _open(store_path) as ss:
        rows = [r.to_json() for r in ss.list_series(pattern)]
    if as_json:
        click.echo(_dump({"series": rows}))
        return
    for r in rows:
        pending = "  (reshape pending)" if r["reshape_pending"] else ""
        click.echo(f"{r['name']}  {r['policy']}  last {iso(r['last_ts']) or '-'}{pending}")


@rollup_group.group("policy")
def policy_group() -> None:
    """Retention policies per series-name pattern (first match wins)."""


@policy_group.command("list")
@_store_options
@_errors
def policy_list(store_path: str, now: float | None) -> None:
    """The rules in the order they are tried; the default applies after them."""
    from telmon.rollup.tiers import DEFAULT_SPEC

    with _open(store_path) as ss:
        for pattern, spec in ss.policies():
            click.echo(f"{pattern}  {spec}")
    click.echo(f"(default)  {DEFAULT_SPEC}")


@policy_group.command("set")
@click.argument("pattern")
@click.argument("spec")
@click.option("--position", type=int, default=None, help="Order among the rules (lower is tried first).")
@_store_options
@_errors
def policy_set(pattern: str, spec: str, position: int | None, store_path: str, now: float | None) -> None:
    """Give series matching PATTERN the policy SPEC, e.g. 'raw:48h,1m:14d,1h:2y,1d:10y'."""
    with _open(store_path) as ss:
        policy = ss.set_policy(pattern, spec, position=position)
    click.echo(f"{pattern}  {policy.spec}  (new data follows it now; `telmon rollup reshape` converts stored tiers)")


@policy_group.command("remove")
@click.argument("pattern")
@_store_options
@_errors
def policy_remove(pattern: str, store_path: str, now: float | None) -> None:
    """Remove the rule for PATTERN."""
    with _open(store_path) as ss:
        if not ss.remove_policy(pattern):
            raise click.ClickException(f"no policy rule for {pattern!r}")
    click.echo(f"removed {pattern}")


COMMANDS: tuple[click.Command, ...] = (series_command, revert_command, rollup_group)


def register(group: click.Group) -> None:
    """Add `series`, `revert` and `rollup` to the main telmon command group."""
    for command in COMMANDS:
        group.add_command(command)
