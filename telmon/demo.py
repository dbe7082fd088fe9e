"""The demo feed of ``telmon serve --demo``: the bundled real sample files land in a watched
folder over the first minute, some written in place, some the rsync way (temp file, then
rename), so a newcomer sees arrivals, stations, gaps and a rejection at once.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from importlib import resources
from pathlib import Path

from telmon.config import Config, WatchSpec

log = logging.getLogger("telmon.demo")

# The order files land in; OKVI4's three days arrive apart so its gap closes while you watch.
DEMO_FILES = (
    "nwiswa.telemetry.f3671554b79d4af69b26cb2ea3b0da98.20180303T071510.grfilt.edl",
    "OKVI4.day1.lrgs",
    "ShefSample1.input_shef",
    "Example.dat",
    "OKVI4.day3.lrgs",
    "a.shef",
    "operator-notes.txt",
    "TestLogger_Hourly_1.dat",
    "Nos6MinAirGap.input_goes",
    "e.shef",
    "nwiswa.telemetry.f3671554b79d4af69b26cb2ea3b0da98.20180304T071510.grfilt.edl",
    "OKVI4.day2.lrgs",
)


def demo_file(name: str) -> Path:
    return Path(str(resources.files("telmon") / "demo_data" / name))


def prepare_demo(cfg: Config) -> None:
    """Point the config at the demo folder and the OKVI4 platform record."""
    inbox = Path(cfg.data_dir) / "demo-inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    cfg.watch.append(WatchSpec(str(inbox), "demo"))
    cfg.platforms.append(str(demo_file("OKVI4-decodes.xml")))
    cfg.stations.setdefault("12113390", {"name": "USGS 12113390 (nwiswa EDL)"})
    cfg.set("quarantine", True)


class DemoFeed:
    def __init__(self, inbox: Path, *, interval: float = 5.0) -> None:
        # Each run lands in its own folder so every run shows fresh arrivals.
        self.target = inbox / time.strftime("run-%Y%m%dT%H%M%S", time.gmtime())
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="telmon-demo", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        self.target.mkdir(parents=True, exist_ok=True)
        log.info("demo feed: dropping %d sample files into %s, one every %.0fs", len(DEMO_FILES), self.target,
                 self.interval)
        for i, name in enumerate(DEMO_FILES):
            if self._stop.wait(self.interval if i else 0.5):
                return
            src, dest = demo_file(name), self.target / name
            if i % 2:
                # the rsync way: a hidden temp file, renamed into place when complete
                tmp = self.target / f".{name}.tmp"
                shutil.copyfile(src, tmp)
                os.replace(tmp, dest)
            else:
                shutil.copyfile(src, dest)
        log.info("demo feed: all sample files delivered")
