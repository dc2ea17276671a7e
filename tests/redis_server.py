"""A private redis-server on a free loopback port, for tests and benchmarks that stop, freeze or kill it.

Never the shared Redis: outage tests need a server of their own to take down.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_available() -> bool:
    return shutil.which("redis-server") is not None


class PrivateRedis:
    """A redis-server of our own on a free port, so a test can stop, freeze and restart it.

    `persist=False` (default): a restart comes back empty, like a cache node replaced after a crash.
    `persist=True`: append-only file in `tmp`, a clean restart comes back with the data.
    """

    def __init__(self, tmp: Path, *, persist: bool = False, password: str | None = None) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.persist = persist
        self.password = password  # requirepass: clients must authenticate (the secrets test)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def _ping(self) -> bool:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2,
                             password=self.password)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "yes" if self.persist else "no", "--dir", str(self.tmp),
                                      *(["--requirepass", self.password] if self.password else [])],
                                     stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._ping():
                return
            time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def freeze(self) -> None:
        """SIGSTOP: the port stays open but nothing answers (a hung host, a network black hole)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM (clean shutdown); a frozen server is killed instead."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a frozen server cannot act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None

    def kill(self) -> None:
        """SIGKILL: a crash; connections are reset, new ones refused."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
