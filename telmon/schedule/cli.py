"""``telmon stations ...`` and ``telmon schedule ...``: thin click wrappers over schedule.query.

``register(main)`` turns the existing ``telmon stations`` listing into a group (the bare command
still lists) and adds ``import``, ``show``, ``edit``, plus the ``schedule`` group.
"""

from __future__ import annotations

from typing import Any

import click

from telmon.cli import _config, config_options, emit, friendly_errors, span_options
from telmon.schedule import query as sq
from telmon.schedule.registry import FORMATS
from telmon.schedule.settings import ScheduleSettings


def _open(config_path: str | None, store: str | None) -> tuple[Any, ScheduleSettings]:
    from telmon.schedule.store import ensure_schema
    from telmon.store import open_store

    cfg = _config(config_path, store)
    st = open_store(cfg.store_url)
    try:
        ensure_schema(st)
    except BaseException:
        st.close()
        raise
    return st, ScheduleSettings.from_config(cfg)


def _json(data: dict[str, Any]) -> None:
    emit(data, True, "", [])


def register(main: click.Group) -> None:
    """Add the station registry and schedule commands to ``main``."""
    listing = main.commands.get("stations")

    @main.group("stations", invoke_without_command=True,
                context_settings={"help_option_names": ["-h", "--help"]})
    @click.pass_context
    def stations_group(ctx: click.Context, **kwargs: Any) -> None:
        """List stations (no subcommand), or import / show / edit them."""
        if ctx.invoked_subcommand is None:
            if listing is None or listing.callback is None:
                click.echo(ctx.get_help())
                return
            ctx.invoke(listing.callback, **kwargs)

    if listing is not None:
        # Keep `telmon stations --search X --json` working exactly as before.
        stations_group.params = list(listing.params)

    @stations_group.command("import")
    @config_options
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                  help="Registry format (default: recognised by content).")
    @click.option("--json", "as_json", is_flag=True)
    @friendly_errors
    def stations_import(config_path: str | None, store: str | None, file: str, fmt: str | None, as_json: bool) -> None:
        """Import stations and schedules from FILE (OpenDCS XML, NOAA PDT, HADS or CSV).

        Re-importing updates stations in place; bad lines are listed (file:line: reason) and skipped.
        """
        st, settings = _open(config_path, store)
        with st:
            out = sq.import_file(st, file, fmt, settings=settings)
        if as_json:
            _json(out)
        else:
            click.echo(f"{out['path']} ({out['format']}): {out['stations']} station(s) read, {out['created']} new, "
                       f"{out['updated']} updated, {out['schedules_changed']} schedule(s) changed")
        for p in out["problems"]:
            click.echo(f"skipped {p}", err=True)

    @stations_group.command("show")
    @config_options
    @click.argument("station")
    @click.option("--json", "as_json", is_flag=True)
    @friendly_errors
    def stations_show(config_path: str | None, store: str | None, station: str, as_json: bool) -> None:
        """A station's facts, schedule, status, completeness (24 h, 7 d) and missing slots."""
        st, settings = _open(config_path, store)
        with st:
            out = sq.station(st, station, settings=settings)
        if as_json:
            _json(out)
            return
        sch = out["schedule"]
        lines = [
            f"station   {out['station']}  {out['name'] or ''}  ({out['kind']}{'' if out['registered'] else ', unregistered'})",
            f"location  {out['lat']}, {out['lon']}",
            "schedule  " + ("none" if sch is None else
                            f"every {sch['interval_s']:g}s from {sch['first_s']:g}s of the day, window {sch['window_s']:g}s"
                            + (" (inferred)" if sch["inferred"] else f" ({sch['source']})")),
            f"status    {out['status']} (NOAA {out['noaa_status']})",
            f"last      arrival {out['last_arrival'] or '-'}, report {out['last_report'] or '-'}",
            f"next      {out['next_expected']['start'] if out['next_expected'] else '-'}",
        ]
        for label, span in (out["completeness"] or {}).items():
            if span and span.get("expected") is not None:
                lines.append(f"{label:9} {span['received']}/{span['expected']} received "
                             f"({span['completeness'] if span['completeness'] is not None else '-'} %), "
                             f"{span['late']} late, {span['missing']} missing")
        click.echo("\n".join(lines))
        week = (out["completeness"] or {}).get("7d") or {}
        if week.get("missing_runs"):
            click.echo(emit_table(week["missing_runs"], ["start", "end", "slots", "open"]))

    @stations_group.command("edit")
    @config_options
    @click.argument("station")
    @click.option("--name", default=None)
    @click.option("--lat", default=None, help="Decimal degrees.")
    @click.option("--lon", default=None, help="Decimal degrees.")
    @click.option("--interval", default=None, help="Seconds, HH:MM[:SS] or 15m / 1h.")
    @click.option("--first", default=None, help="First slot of the day: seconds or HH:MM:SS after 00:00 UTC.")
    @click.option("--window", default=None, help="Transmit window: seconds or HH:MM:SS.")
    @click.option("--no-schedule", is_flag=True, help="Remove the schedule (one may be inferred again).")
    @click.option("--json", "as_json", is_flag=True)
    @friendly_errors
    def stations_edit(config_path: str | None, store: str | None, station: str, name: str | None, lat: str | None,
                      lon: str | None, interval: str | None, first: str | None, window: str | None,
                      no_schedule: bool, as_json: bool) -> None:
        """Change a station's name, location or schedule by hand."""
        st, _ = _open(config_path, store)
        with st:
            out = sq.edit(st, station, name=name, lat=lat, lon=lon, interval=interval, first=first, window=window,
                          clear_schedule=no_schedule)
        if as_json:
            _json(out)
        else:
            click.echo(f"{out['station']}: schedule {out['schedule'] or 'none'}")

    @main.group("schedule")
    def schedule_group() -> None:
        """Slots, completeness and silence of scheduled stations."""

    @schedule_group.command("completeness")
    @span_options
    @click.argument("stations", nargs=-1, required=True)
    @friendly_errors
    def s_completeness(config_path: str | None, store: str | None, start: str | None, end: str | None,
                       as_json: bool, stations: tuple[str, ...]) -> None:
        """Expected / received / late / missing slots and completeness % of STATIONS (default: last day)."""
        st, settings = _open(config_path, store)
        with st:
            data = sq.completeness(st, list(stations), start, end, settings=settings)
        emit(data, as_json, "stations", ["station", "expected", "received", "on_time", "late", "missing", "completeness"])

    @schedule_group.command("missing")
    @span_options
    @click.option("--station", "stations", multiple=True, help="Limit to these stations.")
    @friendly_errors
    def s_missing(config_path: str | None, store: str | None, start: str | None, end: str | None, as_json: bool,
                  stations: tuple[str, ...]) -> None:
        """Scheduled stations with missing slots in the span (default: last day)."""
        st, settings = _open(config_path, store)
        with st:
            data = sq.missing(st, start, end, list(stations) or None, settings=settings, runs=True)
        if as_json:
            _json(data)
            return
        rows = [{"station": s["station"], "start": g["start"], "end": g["end"], "slots": g["slots"], "open": g["open"]}
                for s in data["stations"] for g in s["runs"]]
        emit({"missing": rows}, False, "missing", ["station", "start", "end", "slots", "open"])

    @schedule_group.command("slots")
    @span_options
    @click.argument("station")
    @friendly_errors
    def s_slots(config_path: str | None, store: str | None, start: str | None, end: str | None, as_json: bool,
                station: str) -> None:
        """One station's slot accounting: counts, missing slots, late slots (default: last day)."""
        st, settings = _open(config_path, store)
        with st:
            data = sq.slots(st, station, start, end, settings=settings)
        if as_json:
            _json(data)
            return
        click.echo(f"{station}: {data['received']}/{data['expected']} received ({data['completeness']} %), "
                   f"{data['on_time']} on time, {data['late']} late, {data['missing']} missing")
        if data["missing_runs"]:
            click.echo(emit_table(data["missing_runs"], ["start", "end", "slots", "open"]))
        if data["late_slots"]:
            click.echo(emit_table(data["late_slots"], ["slot", "code", "label", "message_time"]))

    @schedule_group.command("silent")
    @config_options
    @click.option("--since", default=None, help="Default: now minus status_active_within (2 days).")
    @click.option("--json", "as_json", is_flag=True)
    @friendly_errors
    def s_silent(config_path: str | None, store: str | None, since: str | None, as_json: bool) -> None:
        """Stations with no report since SINCE, and those never heard."""
        st, settings = _open(config_path, store)
        with st:
            data = sq.silent(st, since, settings=settings)
        emit(data, as_json, "stations", ["station", "name", "last_report", "last_received", "registered", "never"])

    @schedule_group.command("status")
    @config_options
    @click.option("--feed", default=None, help="Only stations last heard on these feeds (comma-separated).")
    @click.option("--status", "state", default=None, help="Only these statuses: on_time,late,missing,silent,never,unscheduled.")
    @click.option("--json", "as_json", is_flag=True)
    @friendly_errors
    def s_status(config_path: str | None, store: str | None, feed: str | None, state: str | None, as_json: bool) -> None:
        """Every station's status (NOAA A/D/U and on time / late / missing / silent / never)."""
        st, settings = _open(config_path, store)
        with st:
            data = sq.status(st, settings=settings, feed=feed, state=state)
        emit(data, as_json, "stations", ["station", "name", "status", "noaa", "schedule", "feed", "last_report"])
        if not as_json:
            click.echo("  ".join(f"{k}={v}" for k, v in data["counts"].items() if v) or "(no stations)", err=True)

    @schedule_group.command("rebuild")
    @config_options
    @click.argument("stations", nargs=-1)
    @friendly_errors
    def s_rebuild(config_path: str | None, store: str | None, stations: tuple[str, ...]) -> None:
        """Replay stored history into slots (all stations, or STATIONS): for data recorded before
        schedules were installed.  Reads each station's history once."""
        from telmon.schedule.store import rebuild_all

        st, _ = _open(config_path, store)
        with st:
            n = rebuild_all(st, list(stations) or None)
        click.echo(f"rebuilt the slots of {n} station(s)", err=True)


def emit_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    from telmon.cli import table

    return table(rows, columns)


__all__ = ["register"]
