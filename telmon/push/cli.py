"""``telmon agent``, ``telmon token add|list|revoke`` and ``telmon parse-service``: thin click
wrappers added by ``register(main)``.

The shared helpers of telmon.cli (``config_options``, ``friendly_errors``, ``emit``) are
imported when ``register`` runs, not at import time, so the two modules import in any order.
"""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

import click


def register(main: click.Group) -> None:
    """Add ``agent``, the ``token`` group and ``parse-service`` to the ``telmon`` command."""
    from telmon.cli import _config, _setup_logging, config_options, emit, friendly_errors

    @main.command()
    @click.option("--this-host", "host", required=True, help="What this host is called in the receiver.")
    @click.option("--publish", "url", required=True,
                  help="Receiver URL: http://host:8321 (native ingest) or .../api/perf (a Lizmon receiver).")
    @click.option("--interval", default="10s", show_default=True, help="Time between snapshots (e.g. 10s, 1m).")
    @click.option("--token", default=None, envvar="TELMON_AGENT_TOKEN",
                  help="Bearer token (also $TELMON_AGENT_TOKEN, which keeps it out of `ps`).")
    @click.option("--spool", "spool_dir", default=None, type=click.Path(file_okay=False),
                  help="Folder for snapshots waiting for the receiver (default ~/.local/state/telmon/agent-<host>).")
    @click.option("--spool-max-mb", default=64.0, show_default=True, help="Spool bound; past it the oldest are dropped.")
    @click.option("--batch", default=60, show_default=True, help="Most snapshots sent in one request.")
    @click.option("--count", type=int, default=None, help="Stop after this many snapshots (default: run on).")
    @click.option("--log-level", default="INFO", show_default=True)
    @friendly_errors
    def agent(host: str, url: str, interval: str, token: str | None, spool_dir: str | None, spool_max_mb: float,
              batch: int, count: int | None, log_level: str) -> None:
        """Collect this host's metrics (psutil) and post them in batches; SIGTERM/SIGINT stop it."""
        from telmon.push.agent import Agent, HttpSender, default_spool_dir
        from telmon.push.spool import Spool
        from telmon.timeutil import parse_span

        _setup_logging(log_level)
        try:
            sender = HttpSender(url, token=token, timeout=min(10.0, max(1.0, parse_span(interval))))
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        spool = Spool(spool_dir or default_spool_dir(host), max_bytes=int(spool_max_mb * 1024 * 1024))
        the_agent = Agent(host, sender, spool, interval=parse_span(interval), batch=batch)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: the_agent.stop())
        click.echo(f"agent {host}: every {interval} to {sender.url}; spool {spool.dir} "
                   f"({len(spool)} waiting, {spool.dropped} dropped so far)", err=True)
        stats = the_agent.run(max_snapshots=count)
        click.echo(f"agent {host}: {stats.collected} snapshot(s) taken, {stats.sent} sent, {len(spool)} left in "
                   f"the spool, {spool.dropped} dropped", err=True)

    @main.group("token")
    def token_group() -> None:
        """Bearer tokens for agents and sensors (stored hashed)."""

    @token_group.command("add")
    @config_options
    @click.argument("name")
    @click.option("--host", "hosts", multiple=True, help="Host (glob) the token may write; repeat. '*': any.")
    @click.option("--station", "stations", multiple=True,
                  help="Station / sensor id (glob) the token may write; repeat. '*': any.")
    @click.option("--expires", default=None, help="Lifetime (e.g. 30d, 12h) or an ISO 8601 / epoch time.")
    @click.option("--note", default=None, help="Free text shown by `token list`.")
    @friendly_errors
    def token_add(config_path: str | None, store: str | None, name: str, hosts: tuple[str, ...],
                  stations: tuple[str, ...], expires: str | None, note: str | None) -> None:
        """Create a token; it is printed once (only its hash is kept)."""
        now = time.time()
        with _tokens(_config(config_path, store)) as tokens:
            tok, text = tokens.add(name, hosts=hosts, stations=stations, expires_at=expiry(expires, now=now),
                                   note=note, now=now)
        click.echo(text)
        click.echo(f"token {tok.name!r} may write {tok.scopes()}"
                   + (f" until {tok.to_json(now)['expires_at']}" if tok.expires_at else "")
                   + "; send it as 'Authorization: Bearer <token>'", err=True)

    @token_group.command("list")
    @config_options
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @friendly_errors
    def token_list(config_path: str | None, store: str | None, as_json: bool) -> None:
        """Tokens with their scopes, expiry and state (never their secrets)."""
        now = time.time()
        with _tokens(_config(config_path, store)) as tokens:
            rows = [t.to_json(now) for t in tokens.list()]
        emit({"tokens": rows}, as_json, "tokens", ["name", "id", "state", "hosts", "stations", "expires_at",
                                                   "revoked_at", "note"])

    @token_group.command("revoke")
    @config_options
    @click.argument("name")
    @friendly_errors
    def token_revoke(config_path: str | None, store: str | None, name: str) -> None:
        """Revoke a token by name (a running server stops taking it within push_token_cache seconds)."""
        with _tokens(_config(config_path, store)) as tokens:
            tok = tokens.revoke(name, now=time.time())
        click.echo(f"token {tok.name!r} revoked", err=True)

    @main.command("parse-service")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", type=int, default=5001, show_default=True)
    def parse_service(host: str, port: int) -> None:
        """Serve POST /log/parse alone: stateless, no store, run as many as needed."""
        import uvicorn

        click.echo(f"parse service on http://{host}:{port}/log/parse", err=True)
        uvicorn.run(parse_app(), host=host, port=port, log_level="warning")


def expiry(text: str | None, *, now: float) -> float | None:
    """'30d' -> now + 30 days; an ISO 8601 or epoch time as is; None stays None."""
    if not text:
        return None
    from telmon.errors import InvalidTime
    from telmon.timeutil import parse_span, parse_time

    try:
        return now + parse_span(text)
    except InvalidTime:
        return parse_time(text, field="expires")


class _tokens:
    """A TokenStore on the configured store, closed on exit."""

    def __init__(self, cfg: Any) -> None:
        from telmon.push.tokens import TokenStore
        from telmon.store import open_store

        self.store = open_store(cfg.store_url)
        try:
            self.tokens = TokenStore(self.store)
        except BaseException:
            self.store.close()
            raise

    def __enter__(self) -> Any:
        return self.tokens

    def __exit__(self, *exc: object) -> None:
        self.store.close()


def parse_app() -> Any:
    """A Starlette app with /log/parse only, answering errors as ``{"error": ...}``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from telmon.errors import TelmonError
    from telmon.push.routes import parse_route

    async def telmon_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TelmonError)
        return JSONResponse(exc.to_json(), status_code=exc.status)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "internal error", "kind": "InternalError"}, status_code=500)

    return Starlette(routes=[parse_route()], exception_handlers={TelmonError: telmon_error, Exception: unexpected})


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `telmon agent`, `telmon token` or `telmon parse-service`")
