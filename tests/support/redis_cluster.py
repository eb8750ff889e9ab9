"""The Redis Cluster tests start: `services/dev/local_cluster.py`, shared with the benches.

Kept under this name so tests import their cluster from tests/support like every other fixture.
"""

from services.dev.local_cluster import ClusterNode, LocalRedisCluster, NodeExited

__all__ = ["ClusterNode", "LocalRedisCluster", "NodeExited"]
