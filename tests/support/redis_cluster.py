"""A throwaway local Redis Cluster for tests: real redis-server nodes on free loopback ports.

Issue 13's cluster mode must be tested on a real cluster (multi-key scripts, CROSSSLOT, MOVED), and
one is quick to make here: N masters with `--cluster-enabled yes`, joined by `redis-cli --cluster
create`, ready once every node reports `cluster_state:ok`. Each node's cluster bus port is chosen
free too (`--cluster-port`, Redis 7): the default, port + 10000, may be taken or past 65535.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from tests.support.redis_server import free_port


class ClusterNode:
    """One cluster-enabled redis-server with its own folder (its nodes.conf lives there)."""

    def __init__(self, executable: str, data_dir: Path) -> None:
        self.executable = executable
        self.data_dir = data_dir
        self.port = free_port()
        self.bus_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            self.executable,
            "--port",
            str(self.port),
            "--cluster-port",
            str(self.bus_port),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(self.data_dir / "nodes.conf"),
            "--cluster-node-timeout",
            "5000",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.data_dir),
            "--loglevel",
            "warning",
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
        self._process = None

    def client(self) -> redis.Redis:
        """A plain client on this node alone: it sees MOVED and CROSSSLOT as the server sends them."""
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

    def info(self) -> dict[str, str] | None:
        """This node's `CLUSTER INFO`, or None while it does not answer yet."""
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"redis-server on {self.address} exited with {self._process.returncode}")
        client = self.client()
        try:
            info = client.cluster("INFO")  # redis-py parses the reply into a dict
        except redis.ConnectionError:
            return None
        finally:
            client.close()
        return {str(name): str(value) for name, value in info.items()}


class LocalRedisCluster:
    """`masters` masters and no replicas, every slot assigned; `stop()` ends every node."""

    def __init__(self, data_dir: Path, masters: int = 3) -> None:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            raise RuntimeError("redis-server and redis-cli are needed (run `make setup`)")
        self.cli = cli
        self.nodes = [ClusterNode(server, data_dir / f"node-{index}") for index in range(masters)]

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", node.port) for node in self.nodes]

    @property
    def url(self) -> str:
        """`REDIS_URL` of one node: a cluster client finds the others from it."""
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def start(self, timeout: float = 60.0) -> LocalRedisCluster:
        try:
            for node in self.nodes:
                node.start()
            self._wait(lambda info: info is not None, timeout)
            addresses = [node.address for node in self.nodes]
            subprocess.run(
                [self.cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=timeout,
            )
            self._wait(self._formed, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def _formed(self, info: dict[str, str] | None) -> bool:
        """Every slot served and every node known: a client may start from any node's slot map."""
        return (
            info is not None
            and info.get("cluster_state") == "ok"
            and info.get("cluster_slots_assigned") == "16384"
            and info.get("cluster_known_nodes") == str(len(self.nodes))
        )

    def _wait(self, ready: Callable[[dict[str, str] | None], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(ready(node.info()) for node in self.nodes):
            if time.monotonic() > deadline:
                states = {node.address: node.info() for node in self.nodes}
                raise TimeoutError(f"the cluster did not form within {timeout} s: {states}")
            time.sleep(0.1)
