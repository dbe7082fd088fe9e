"""The running telmon: store, ingest worker, watchers (and demo feed), wired from a Config.

``telmon serve`` and ``telmon watch`` build one Service; tests build one on tmp_path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from telmon import __version__
from telmon.config import Config, WatchSpec
from telmon.ingest.pipeline import Ingestor, IngestWorker
from telmon.ingest.watch import Watcher
from telmon.model import IngestResult, ParseOptions
from telmon.store import open_store
from telmon.store.base import StationInfo, Store

log = logging.getLogger("telmon")


class Service:
    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        now: Callable[[], float] = time.time,
        on_commit: Callable[[list[IngestResult]], None] | None = None,
    ) -> None:
        self.config = config
        self.now = now
        self.started_at = now()
        self.store = store if store is not None else open_store(config.store_url)
        from telmon.rollup.store import SeriesStore

        # numeric series (rollup tiers with quantile sketches) live in the same store file
        self.series = SeriesStore(self.store)  # type: ignore[arg-type]
        self.options = ParseOptions(
            default_tz=config.default_tz,
            tz={code: str(st["tz"]) for code, st in config.stations.items() if st.get("tz")},
        )
        self._load_platforms(config.platforms)
        self._register_config_stations()
        self.ingestor = Ingestor(self.store, options=self.options, quarantine_dir=config.quarantine_dir, now=now)
        self.worker = IngestWorker(self.ingestor, batch_max=int(config.batch_max), on_commit=on_commit)
        from telmon import sinks
        from telmon.schedule.service import install as install_schedule

        # Hooks that must change in the same transaction as each arrival, installed for every
        # ingest (watch, ingest, serve): schedule slots, and the outbox (whose relays run only
        # in start()).
        self.slots = install_schedule(self)
        self.sinks = sinks.install(self, config, start=False)
        self.watchers: list[tuple[WatchSpec, Watcher]] = []
        self.demo: Any = None
        self._started = False
        self._stop_maintenance = threading.Event()
        self._maintenance: threading.Thread | None = None

    # --- set-up -------------------------------------------------------------------
    def _load_platforms(self, paths: list[str]) -> None:
        """Decoding scripts and site facts from OpenDCS platform XML files."""
        if not paths:
            return
        from telmon.formats import decodes

        stations = []
        for p in paths:
            self.options.decoders.update(decodes.load_platform_xml(Path(p)))
            for addr, info in decodes.load_platform_infos(Path(p)).items():
                stations.append(StationInfo(
                    code=addr, kind="goes-dcp", name=info.description or info.site_name,
                    lat=info.latitude, lon=info.longitude,
                    interval_s=float(info.transmit_interval) if info.transmit_interval else None,
                    meta={"platform_file": str(p), "channel": info.channel},
                ))
        if stations:
            self.store.upsert_stations(stations, now=self.now())

    def _register_config_stations(self) -> None:
        infos = []
        for code, st in self.config.stations.items():
            interval = st.get("interval")
            if isinstance(interval, str):
                from telmon.timeutil import parse_span

                interval = parse_span(interval)
            infos.append(StationInfo(code=code, name=st.get("name"), lat=st.get("lat"), lon=st.get("lon"),
                                     interval_s=float(interval) if interval else None))
        if infos:
            self.store.upsert_stations(infos, now=self.now())

    def add_watch(self, spec: WatchSpec) -> Watcher:
        feed = spec.feed

        def on_file(path: Path) -> None:
            self.worker.submit(path, feed)

        reconcile = float(self.config.reconcile_interval) or None
        watcher = Watcher(
            [spec.path], on_file,
            ignore=tuple(self.config.ignore), recursive=spec.recursive, poll_interval=spec.poll,
            settle=float(self.config.settle), reconcile_interval=reconcile, is_known=self.ingestor.is_known,
        )
        self.watchers.append((spec, watcher))
        if self._started:
            watcher.start()
        return watcher

    # --- life -----------------------------------------------------------------------
    def start(self) -> None:
        self.worker.start()
        if self.sinks is not None:
            self.sinks.start()
        for spec in self.config.watch:
            if all(s is not spec for s, _ in self.watchers):
                self.add_watch(spec)
        for _, w in self.watchers:
            w.start()
        self._started = True
        if self.demo is not None:
            self.demo.start()
        interval = float(self.config.prune_interval)
        if interval > 0:
            self._stop_maintenance.clear()
            self._maintenance = threading.Thread(target=self._maintain, args=(interval,), name="telmon-maintenance",
                                                 daemon=True)
            self._maintenance.start()
        log.info("telmon %s started: store %s, %d watched folder(s)", __version__, self.store.url, len(self.watchers))

    def _maintain(self, interval: float) -> None:
        """Retention: prune and compact the series tiers so a series' storage stops growing."""
        while not self._stop_maintenance.wait(interval):
            try:
                result = self.series.prune(now=self.now())
                log.debug("series retention pass: %s", result)
            except Exception:  # noqa: BLE001 - the next pass tries again; the log says why
                log.exception("series retention pass failed")

    def stop(self) -> None:
        self._stop_maintenance.set()
        if self._maintenance is not None:
            self._maintenance.join(10)
            self._maintenance = None
        if self.demo is not None:
            self.demo.stop()
        for _, w in self.watchers:
            w.stop()
        self.worker.stop()
        if self.sinks is not None:
            self.sinks.stop()
        self._started = False

    def close(self) -> None:
        self.stop()
        self.store.close()

    def status(self) -> dict[str, Any]:
        ws = self.worker.stats
        return {
            "version": __version__,
            "store": self.store.url,
            "uptime_s": round(self.now() - self.started_at, 1),
            "counts": self.store.counts(),
            "ingest": {
                "queued": self.worker.depth,
                "submitted": ws.submitted,
                "committed_files": ws.committed_files,
                "arrivals": ws.arrivals,
                "rejected": ws.rejected,
                "duplicates": ws.duplicates,
                "batches": ws.batches,
                "last_commit_at": ws.last_commit_at,
                "last_error": ws.last_error,
            },
            "sinks": self.sinks.status()["sinks"] if self.sinks is not None else [],
            "watchers": [
                {"path": spec.path, "feed": spec.feed, "mode": w.stats.mode, "events": w.stats.events,
                 "files": w.stats.files_emitted, "overflows": w.stats.overflows, "rescans": w.stats.rescans,
                 "folders": w.stats.dirs_watched, "fallback": w.stats.fallback_reason, "last_error": w.stats.last_error}
                for spec, w in self.watchers
            ],
        }
