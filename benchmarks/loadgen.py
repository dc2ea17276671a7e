"""A bounded open-loop HTTP load generator (loopback only) with a minimal keep-alive HTTP/1.1 client.

Requests are scheduled at fixed intervals; latency is measured from the *scheduled* send time, so
a slow server cannot hide its queueing (no coordinated omission). Runs in its own process.

The schedule is kept by a ticker thread sleeping with `time.sleep` (sub-100 µs precision on Linux)
that hands each request to the event loop. asyncio's own timers wake up late by up to a millisecond
(epoll rounds timeouts up to whole milliseconds), and measured from the scheduled time that lateness
was charged to the server: ~0.5 ms added to every percentile of every endpoint. The remaining client
lateness is reported per phase (`lag_p99_ms`) so that it stays visible.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

ALLOWED_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class PhaseResult:
    name: str
    latencies_ms: list[float]
    statuses: dict[int, int]
    errors: int
    seconds: float
    lags_ms: list[float] | None = None  # request start - scheduled time: the client's own lateness

    def summary(self) -> dict[str, float]:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        return {"requests": len(self.latencies_ms) + self.errors, "p50_ms": float(np.percentile(lat, 50)),
                "p90_ms": float(np.percentile(lat, 90)), "p99_ms": float(np.percentile(lat, 99)),
                "max_ms": float(lat.max()), "errors": self.errors,
                "rate": (len(self.latencies_ms) + self.errors) / max(self.seconds, 1e-9),
                "lag_p99_ms": float(np.percentile(self.lags_ms, 99)) if self.lags_ms else 0.0}


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
        if body:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        payload = await self.reader.readexactly(length) if length else b""
        return status, payload


class ConnectionPool:
    """Keep-alive connections to one loopback server, opened on demand up to `max_connections`."""

    def __init__(self, host: str, port: int, max_connections: int = 32) -> None:
        if host not in ALLOWED_HOSTS:
            raise ValueError("load tests target loopback only")
        self.host, self.port, self.max_connections = host, port, max_connections
        self._idle: asyncio.Queue[Connection] = asyncio.Queue()
        self._opened = 0

    async def get(self) -> Connection:
        if self._idle.empty() and self._opened < self.max_connections:
            self._opened += 1
            r, w = await asyncio.open_connection(self.host, self.port)
            return Connection(r, w, self.host)
        return await self._idle.get()

    def put(self, conn: Connection) -> None:
        self._idle.put_nowait(conn)

    def discard(self, conn: Connection) -> None:
        """A connection whose request failed: close it, a fresh one may be opened in its place."""
        conn.writer.close()
        self._opened -= 1

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().writer.close()


async def run_phase(host: str, port: int, name: str, paths: list[str], rate: float, seconds: float,
                    max_connections: int = 32) -> PhaseResult:
    pool = ConnectionPool(host, port, max_connections)
    lat: list[float] = []
    lags: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    n = int(rate * seconds)
    start = time.perf_counter() + 0.05
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    all_started = asyncio.Event()

    async def one(i: int, scheduled: float) -> None:
        nonlocal errors
        lags.append((time.perf_counter() - scheduled) * 1e3)
        conn = await pool.get()
        try:
            status, _ = await conn.request("GET", paths[i % len(paths)])
            lat.append((time.perf_counter() - scheduled) * 1e3)
            statuses[status] = statuses.get(status, 0) + 1
            pool.put(conn)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            errors += 1
            pool.discard(conn)

    def launch(i: int, scheduled: float) -> None:
        task = loop.create_task(one(i, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if i == n - 1:
            all_started.set()

    def ticker() -> None:
        for i in range(n):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            loop.call_soon_threadsafe(launch, i, scheduled)

    # The ticker needs the GIL right after its sleep: don't let the loop thread keep it for the
    # default 5 ms switch interval.
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    thread = threading.Thread(target=ticker, name=f"loadgen-{name}", daemon=True)
    thread.start()
    try:
        if n:
            await all_started.wait()
        while tasks:
            await asyncio.gather(*list(tasks))
    finally:
        thread.join()
        sys.setswitchinterval(previous_interval)
        pool.close()
    return PhaseResult(name, lat, statuses, errors, time.perf_counter() - start, lags)
