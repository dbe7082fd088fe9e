"""Run telmon as a process (Service, real watcher, sinks) until SIGTERM: what the crash test
kills with SIGKILL. ``python -m tests.jobs.run_service INBOX DATA_DIR SETTINGS_JSON [POLL]``."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

import orjson


def main(argv: list[str]) -> None:
    from telmon.config import WatchSpec, load_config
    from telmon.service import Service
    from telmon.sinks import SinkSettings, install
    from tests.jobs.support import register_jobarchive

    inbox, data_dir, settings = Path(argv[0]), argv[1], orjson.loads(argv[2])
    poll = float(argv[3]) if len(argv) > 3 else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    register_jobarchive()
    cfg = load_config(env={})
    cfg.set("data_dir", data_dir)
    cfg.set("settle", 0.1)
    service = Service(cfg)
    service.add_watch(WatchSpec(str(inbox), "nfs", poll))
    install(service, SinkSettings(**settings))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    service.start()
    try:
        stop.wait()
    finally:
        service.close()


if __name__ == "__main__":
    main(sys.argv[1:])
