"""Push ingest benchmark: a bounded load generator (async httpx) against `telmon serve` on localhost.

    .venv/bin/python bench/push.py [--seconds 15] [--concurrency 128] [--clients 1] [--hosts 20]

Phases, each bounded in time (and by --max-requests):
  native  POST /api/v1/samples, 100 samples a request (one host snapshot of 100 labels)
  lizmon  POST /api/perf/<host>/<epoch>, one sample a request
Prints samples/s, requests/s, p50/p99 latency and the server's peak RSS per phase; writes
bench/out/push.json.  The server runs in a subprocess on a fresh store in a temporary folder:
`telmon serve` when it has the push routes, else this file's `--serve` mode, which builds the
same thing (Service, create_app, push.install, push.install_routes, uvicorn.run(push.front(...))).  A token is
made first, so the numbers include token checks.  Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "push.json"
LABELS = [f"m{i:03d}" for i in range(100)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the server ----------------------------------------------------------------------------
def serve(store: str, port: int) -> None:
    """What `telmon serve --store STORE --port PORT` does once the push package is wired in."""
    import uvicorn

    sys.path.insert(0, str(ROOT))
    from telmon import push
    from telmon.api.app import create_app
    from telmon.config import load_config
    from telmon.service import Service

    cfg = load_config(None)
    cfg.set("store", store)
    service = Service(cfg)
    app = create_app(service)
    push.install(service, cfg)
    push.install_routes(app, service)
    service.start()
    try:
        uvicorn.run(push.front(app, service), host="127.0.0.1", port=port, log_level="warning")
    finally:
        service.close()


def start_server(store: str, port: int, how: str) -> tuple[subprocess.Popen[bytes], str]:
    telmon = shutil.which("telmon", path=str(Path(sys.executable).parent)) or shutil.which("telmon")
    if how in ("auto", "telmon") and telmon:
        proc = subprocess.Popen([telmon, "serve", "--store", store, "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if _wait_up(port, proc) and _has_push(port):
            return proc, "telmon serve"
        _stop(proc)
        if how == "telmon":
            raise SystemExit("`telmon serve` does not answer POST /api/v1/samples: wire telmon.push into it first")
    proc = subprocess.Popen([sys.executable, __file__, "--serve", store, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(ROOT))
    if not _wait_up(port, proc):
        raise SystemExit(f"the server did not start: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return proc, "bench/push.py --serve (telmon serve + push.install/install_routes/front)"


def _wait_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            time.sleep(0.1)
    return False


def _has_push(port: int) -> bool:
    import httpx

    r = httpx.post(f"http://127.0.0.1:{port}/api/v1/samples", content=b"[]", timeout=5.0)
    return r.status_code != 404


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def make_token(store: str) -> str:
    sys.path.insert(0, str(ROOT))
    from telmon.push.tokens import TokenStore
    from telmon.store import open_store

    st = open_store(store)
    try:
        _, text = TokenStore(st).add("bench", hosts=["*"], now=time.time())
    finally:
        st.close()
    return text


# --- the load --------------------------------------------------------------------------------
class RawClient:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams (--client raw): a few tens of
    microseconds a request where httpx spends a millisecond or more, so on a 2-core machine the
    load generator leaves the CPU to the server.  Reads status, headers and a Content-Length body
    (what uvicorn sends); anything else is an error."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.head = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawClient:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()

    async def post(self, url: str, content: bytes) -> Any:
        assert self.reader is not None and self.writer is not None
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n%s\r\n%s"
                          % (url.encode(), len(content), self.head, content))
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return _Status(status)


class _Status:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


async def _load(kind: str, port: int, token: str, seconds: float, concurrency: int, hosts: int, worker: int,
                max_requests: int, t0: float, client_kind: str) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    samples = 0
    sent = 0
    hosts = max(hosts, concurrency)
    counters = [0] * hosts
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    deadline = time.monotonic() + seconds
    base = t0 - 3000.0
    cpu0 = time.process_time()

    async def one(slot: int) -> None:
        # each coroutine owns its hosts and posts them in time order, as one agent per host
        # does; several coroutines on one host would make out-of-order writes, a slower path.
        # One client (one connection) per coroutine: httpx's shared pool costs O(connections)
        # per request, which made the client, not the server, the bottleneck.
        nonlocal samples, sent
        mine = list(range(slot, hosts, concurrency)) or [slot]
        turn = 0
        if client_kind == "raw":
            client_cm: Any = RawClient(port, headers)
        else:
            client_cm = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60.0,
                                          limits=httpx.Limits(max_connections=1))
        async with client_cm as client:
            while time.monotonic() < deadline and sent < max_requests:
                sent += 1
                h = mine[turn % len(mine)]
                turn += 1
                host = f"w{worker}-h{h:03d}"
                k = counters[h] = counters[h] + 1
                if kind == "native":
                    # each host's snapshots 10 ms apart: distinct times, all inside the last hour
                    body = orjson.dumps({"host": host, "time": base + k * 0.01,
                                         "values": {label: float((k + i) % 97) for i, label in enumerate(LABELS)}})
                    url, n = "/api/v1/samples", len(LABELS)
                else:
                    body = orjson.dumps({"cpu": float(k % 97)})
                    url, n = f"/api/perf/{host}/{int(base) + k}", 1
                started = time.perf_counter()
                try:
                    r = await client.post(url, content=body)
                except (httpx.HTTPError, OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                latencies.append(time.perf_counter() - started)
                if r.status_code == 200:
                    samples += n
                else:
                    errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(concurrency)))
    elapsed = time.monotonic() - started
    return {"latencies": latencies, "errors": errors, "samples": samples, "elapsed": elapsed,
            "client_cpu": time.process_time() - cpu0}


def _client(args: tuple[Any, ...], queue: Any) -> None:
    queue.put(asyncio.run(_load(*args)))


def run_phase(kind: str, port: int, token: str, opts: argparse.Namespace, server_pid: int) -> dict[str, Any]:
    import numpy as np
    import psutil

    server = psutil.Process(server_pid)
    procs = [server, *server.children(recursive=True)]
    per_client = max(1, opts.concurrency // opts.clients)
    hosts = max(1, opts.hosts // opts.clients)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    t0 = time.time()
    workers = [ctx.Process(target=_client, args=((kind, port, token, opts.seconds, per_client, hosts, w,
                                                  opts.max_requests // opts.clients, t0, opts.client), queue))
               for w in range(opts.clients)]
    cpu_before = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
    loop_before = _loop_cpu(server)
    for w in workers:
        w.start()
    rss = 0
    results = []
    while len(results) < len(workers):
        rss = max(rss, sum(p.memory_info().rss for p in procs if p.is_running()))
        try:
            results.append(queue.get(timeout=0.25))
        except Exception:
            continue
    for w in workers:
        w.join()
    cpu = sum(p.cpu_times().user + p.cpu_times().system for p in procs) - cpu_before
    loop_cpu = _loop_cpu(server) - loop_before
    lat = np.array([x for r in results for x in r["latencies"]]) * 1000
    elapsed = max(r["elapsed"] for r in results)
    requests = len(lat)
    samples = sum(r["samples"] for r in results)
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    return {
        "kind": kind, "client": opts.client, "seconds": round(elapsed, 2), "concurrency": opts.concurrency,
        "clients": opts.clients,
        "requests": requests, "samples": samples, "requests_per_s": round(requests / elapsed, 1),
        "samples_per_s": round(samples / elapsed, 1),
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 2) if requests else None,
                       "p99": round(float(np.percentile(lat, 99)), 2) if requests else None,
                       "max": round(float(lat.max()), 2) if requests else None},
        "errors": errors, "server_rss_mb": round(rss / 2**20, 1), "server_cpu_s": round(cpu, 2),
        "client_cpu_s": round(sum(r["client_cpu"] for r in results), 2),
        # the main thread runs the event loop (HTTP, parsing, tokens); the rest is mostly the
        # writer's staging and feed threads
        "server_loop_thread_cpu_s": round(loop_cpu, 2),
    }


def _loop_cpu(server: Any) -> float:
    for t in server.threads():
        if t.id == server.pid:
            return float(t.user_time + t.system_time)
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", metavar="STORE", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    ap.add_argument("--concurrency", type=int, default=128, help="requests in flight (over all clients)")
    ap.add_argument("--clients", type=int, default=1, help="client processes")
    ap.add_argument("--hosts", type=int, default=0,
                    help="distinct hosts posting, 100 series each (at least --concurrency: one poster per host)")
    ap.add_argument("--max-requests", type=int, default=1_000_000, help="bound on requests per phase")
    ap.add_argument("--phases", default="native,lizmon")
    ap.add_argument("--client", choices=("httpx", "raw"), default="httpx",
                    help="load generator: async httpx, or a minimal asyncio HTTP/1.1 client that uses less CPU")
    ap.add_argument("--server", choices=("auto", "telmon", "bench"), default="auto",
                    help="`telmon serve` (when wired), this file's serve mode, or whichever works")
    opts = ap.parse_args()
    if opts.serve:
        serve(opts.serve, opts.port)
        return
    tmp = Path(tempfile.mkdtemp(prefix="telmon-bench-push-"))
    store = str(tmp / "telmon.db")
    token = make_token(store)
    port = opts.port or free_port()
    proc, how = start_server(store, port, "bench" if opts.server == "bench" else opts.server)
    # the machine may be shared: say how busy it was, so the figures can be read for what they are
    report: dict[str, Any] = {"server": how, "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                                                         "load_avg_before": [round(x, 2) for x in os.getloadavg()]},
                              "command": " ".join(["bench/push.py", *sys.argv[1:]]), "phases": []}
    try:
        for kind in opts.phases.split(","):
            res = run_phase(kind.strip(), port, token, opts, proc.pid)
            report["phases"].append(res)
            print(f"{res['kind']:7} {res['requests_per_s']:9.1f} req/s {res['samples_per_s']:11.1f} samples/s  "
                  f"p50 {res['latency_ms']['p50']} ms  p99 {res['latency_ms']['p99']} ms  "
                  f"server RSS {res['server_rss_mb']} MB  CPU server {res['server_cpu_s']} s (event loop "
                  f"{res['server_loop_thread_cpu_s']} s) client {res['client_cpu_s']} s  "
                  f"errors {res['errors'] or 0}",
                  flush=True)
        import httpx

        report["server_status"] = httpx.get(f"http://127.0.0.1:{port}/api/v1/push/status",
                                            headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    report["machine"]["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average before {report['machine']['load_avg_before']}, after {report['machine']['load_avg_after']} "
          f"({os.cpu_count()} CPUs)")
    native = next((p for p in report["phases"] if p["kind"] == "native"), None)
    if native:
        report["targets"] = {"samples_per_s>=150000": native["samples_per_s"] >= 150_000,
                             "requests_per_s>=1500": native["requests_per_s"] >= 1500}
        print(f"targets (100-sample posts): samples/s >= 150k: {report['targets']['samples_per_s>=150000']}, "
              f"requests/s >= 1,500: {report['targets']['requests_per_s>=1500']}")
    print(f"server: {how}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
