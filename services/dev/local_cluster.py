"""A throwaway local Redis Cluster for tests and benches: real redis-server nodes on free loopback ports.

Issue 13's cluster mode must be tested on a real cluster (multi-key scripts, CROSSSLOT, MOVED), and
measured on one with 1, 2 or 3 masters, and one is quick to make here: M masters with
`--cluster-enabled yes`, each given the M-th share of the slots (`CLUSTER ADDSLOTSRANGE`) and
introduced to the first (`CLUSTER MEET`), ready once every node reports `cluster_state:ok`.
`redis-cli --cluster create` would refuse fewer than 3 masters, and splits the slots one off from
`shared.partitions`, which puts partition i of N in the i-th of N equal slot ranges: with the same
split here, N / M partitions land on each master whenever N is a multiple of M.

Each node's cluster bus port is chosen free too (`--cluster-port`, Redis 7): the default,
port + 10000, may be taken or past 65535.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.retry import Retry

from services.dev.local_redis import free_port, stop_with_parent

NO_RETRY = Retry(NoBackoff(), 0)


class NodeExited(RuntimeError):
    pass


class ClusterNode:
    """One cluster-enabled redis-server with its own folder (its nodes.conf lives there), serving `slots`."""

    def __init__(self, executable: str, data_dir: Path, port: int, bus_port: int, slots: range) -> None:
        self.executable = executable
        self.data_dir = data_dir
        self.port = port
        self.bus_port = bus_port
        self.slots = slots
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
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, preexec_fn=stop_with_parent())

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
            raise NodeExited(f"redis-server on {self.address} exited with {self._process.returncode}")
        # A timeout, because something else may hold the port and accept without ever answering.
        client = redis.Redis(
            host="127.0.0.1",
            port=self.port,
            decode_responses=True,
            socket_timeout=1,
            socket_connect_timeout=1,
            retry=NO_RETRY,  # the caller polls; redis-py's own backoff would only slow that down
        )
        try:
            info = client.cluster("INFO")  # redis-py parses the reply into a dict
        except (redis.ConnectionError, redis.TimeoutError):
            return None
        finally:
            client.close()
        return {str(name): str(value) for name, value in info.items()}


class LocalRedisCluster:
    """`masters` masters and no replicas, every slot assigned; `stop()` ends every node."""

    ATTEMPTS = 3

    def __init__(self, data_dir: Path, masters: int = 3) -> None:
        if not 1 <= masters <= REDIS_CLUSTER_HASH_SLOTS:
            raise ValueError(f"a cluster has 1 to {REDIS_CLUSTER_HASH_SLOTS} masters, not {masters}")
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("redis-server is needed (run `make setup`)")
        self.server = server
        self.data_dir = data_dir
        self.masters = masters
        self.nodes: list[ClusterNode] = []

    @property
    def url(self) -> str:
        """`REDIS_URL` of one node: a cluster client finds the others from it."""
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def node_for(self, key: str) -> ClusterNode:
        """The master serving `key`'s slot, as this launcher assigned the slots."""
        slot = key_slot(key.encode())
        return next(node for node in self.nodes if slot in node.slots)

    def start(self, timeout: float = 60.0) -> LocalRedisCluster:
        """Form the cluster; on new ports again when a node dies at start (a port taken meanwhile)."""
        for attempt in range(1, self.ATTEMPTS + 1):
            self.nodes = self._new_nodes(self.data_dir / f"attempt-{attempt}")
            try:
                self._form(timeout)
                return self
            except NodeExited:
                self.stop()
                if attempt == self.ATTEMPTS:
                    raise
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _new_nodes(self, folder: Path) -> list[ClusterNode]:
        """Distinct free ports for every node and its cluster bus (free_port alone may repeat one)."""
        ports: list[int] = []
        while len(ports) < 2 * self.masters:
            port = free_port()
            if port not in ports:
                ports.append(port)
        return [
            ClusterNode(
                self.server,
                folder / f"node-{index}",
                ports[2 * index],
                ports[2 * index + 1],
                range(self._first_slot(index), self._first_slot(index + 1)),
            )
            for index in range(self.masters)
        ]

    def _first_slot(self, index: int) -> int:
        """Master i's share starts where partition tags put the i-th of M equal ranges."""
        return index * int(REDIS_CLUSTER_HASH_SLOTS) // self.masters

    def _form(self, timeout: float) -> None:
        for node in self.nodes:
            node.start()
        self._wait(lambda info: info is not None, timeout)
        first = self.nodes[0]
        for epoch, node in enumerate(self.nodes, start=1):
            with node.client() as plain:
                # Distinct epochs, as redis-cli sets them: no node need win a collision first.
                plain.execute_command("CLUSTER SET-CONFIG-EPOCH", epoch)
                plain.execute_command("CLUSTER ADDSLOTSRANGE", node.slots.start, node.slots.stop - 1)
                if node is not first:
                    plain.execute_command("CLUSTER MEET", "127.0.0.1", first.port, first.bus_port)
        self._wait(self._formed, timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def flush(self) -> None:
        """Empty every node (FLUSHALL is per node): one cluster serves many tests."""
        for node in self.nodes:
            with node.client() as plain:
                plain.flushall()

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
