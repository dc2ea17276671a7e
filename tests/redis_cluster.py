"""A local Redis Cluster (3 masters + 3 replicas on loopback ports) for tests, CI and the failover benchmark.

    python -m tests.redis_cluster start --port 7101 --dir /tmp/ci-cluster   # 7101..7106, daemonised
    python -m tests.redis_cluster stop --port 7101

Started with `redis-server --cluster-enabled yes` and joined with `redis-cli --cluster create`, nothing
persisted (like the shared Redis of this machine). Each node also needs its bus port (port + 10000).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

NODES = 6  # 3 masters, each with one replica


def cluster_url(first_port: int, nodes: int = NODES) -> str:
    return "redis-cluster://" + ",".join(f"127.0.0.1:{first_port + i}" for i in range(nodes))


def free_port_block(nodes: int = NODES) -> int:
    """A first port such that port..port+nodes-1 and their bus ports (+10000) are free."""
    for start in range(20000, 40000, 50):
        if all(_free(start + i) and _free(start + i + 10000) for i in range(nodes)):
            return start
    raise RuntimeError("no free block of ports for a local Redis Cluster")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ok(first_port: int, timeout_s: float = 0.3) -> bool:
    client = redis.Redis(host="127.0.0.1", port=first_port, socket_timeout=timeout_s,
                         socket_connect_timeout=timeout_s)
    try:
        info = client.execute_command("CLUSTER", "INFO")
        text = info.decode() if isinstance(info, bytes) else str(info)
        return "cluster_state:ok" in text
    except redis.RedisError:
        return False
    finally:
        client.close()


class LocalRedisCluster:
    """Six `redis-server` processes on ports port..port+5 joined into one cluster (1 replica per master)."""

    def __init__(self, directory: Path, first_port: int | None = None) -> None:
        self.dir = directory
        self.first_port = first_port if first_port is not None else free_port_block()
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def ports(self) -> list[int]:
        return [self.first_port + i for i in range(NODES)]

    @property
    def url(self) -> str:
        return cluster_url(self.first_port)

    def start(self, timeout_s: float = 60.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for port in self.ports:
            self.start_node(port)
        for port in self.ports:
            _wait(lambda p=port: _ping(p), timeout_s, f"node {port} did not start")  # type: ignore[misc]
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
                        "--cluster-replicas", "1", "--cluster-yes"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=timeout_s)
        _wait(lambda: all(cluster_ok(p) for p in self.ports), timeout_s, "cluster did not reach state ok")
        _wait(self._replicas_in_sync, timeout_s, "replicas did not attach to their masters")

    def start_node(self, port: int) -> None:
        node_dir = self.dir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "2000",
             "--save", "", "--appendonly", "no", "--dir", str(node_dir), "--logfile", str(node_dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _replicas_in_sync(self) -> bool:
        client = redis.Redis(host="127.0.0.1", port=self.first_port, socket_timeout=1)
        try:
            raw = client.execute_command("CLUSTER", "NODES")
        except redis.RedisError:
            return False
        finally:
            client.close()
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        lines = [line.split() for line in text.strip().splitlines()]
        return sum("slave" in f[2] for f in lines) == NODES // 2 and all("fail" not in f[2] for f in lines)

    def masters(self) -> list[int]:
        """Ports of the masters that are up, as a running node sees the cluster."""
        alive = [p for p in self.ports if p in self.procs] or self.ports
        client = redis.Redis(host="127.0.0.1", port=alive[0], socket_timeout=1)
        try:
            raw = client.execute_command("CLUSTER", "NODES")
        finally:
            client.close()
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        out = []
        for fields in (line.split() for line in text.strip().splitlines()):
            if "master" in fields[2] and "fail" not in fields[2]:
                out.append(int(fields[1].split("@")[0].rsplit(":", 1)[1]))
        return sorted(out)

    def kill_node(self, port: int) -> None:
        """SIGKILL one node (a crashed master: its replica is promoted after the node timeout)."""
        proc = self.procs.pop(port, None)
        if proc is not None:
            proc.kill()
            proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


def _ping(port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.2, socket_connect_timeout=0.2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _wait(condition: object, timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(message)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "url"])
    parser.add_argument("--port", type=int, default=7101, help="first port (six consecutive ports are used)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/recsys-cluster"))
    args = parser.parse_args(argv)
    if args.action == "url":
        print(cluster_url(args.port))
        return 0
    if args.action == "stop":
        for port in range(args.port, args.port + NODES):
            try:
                redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).shutdown(nosave=True)
            except redis.RedisError:
                pass
        return 0
    if cluster_ok(args.port):
        print(cluster_url(args.port))
        return 0
    cluster = LocalRedisCluster(args.dir, args.port)
    cluster.start()
    for proc in cluster.procs.values():  # leave the nodes running after this process exits
        proc.send_signal(signal.SIGCONT)
    print(cluster.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
