"""Write deploy/k8s/components/keda-cluster/ for a Redis Cluster with N ingest partitions.

On a cluster every partition has its own ingest and new-item stream, and KEDA's
`redis-cluster-streams` scaler reads one stream per trigger. So each ScaledObject of
components/keda (the single-node source of every tuning figure) becomes one lag trigger and one
pending trigger per partition stream, each with the single-node target divided by N.

Why per-partition triggers rather than one summed metric: the HPA takes the largest replica count
its metrics ask for, so with targets T/N the replicas are max_i ceil(N * lag_i / T). With the
publisher's even routing (crc32 of the item id) every lag_i is about lag/N, which is ceil(lag / T),
the single-node figure; a hot partition asks for more, never fewer, and every worker reads every
partition, so more replicas do drain it. A sum would need KEDA's `scalingModifiers` formula, an
expression engine this repository cannot test offline. KEDA polls 2N streams per group: XINFO and
XPENDING on each, a few milliseconds a poll.

tests/deploy/test_deploy.py fails when the committed files are not what this renders for the
`INGEST_PARTITIONS` in cluster.env, so the streams always match shared/keys.py.

Usage: python -m deploy.k8s.render_keda_cluster [--partitions 6] [--prefix ""]  (from the repository root)
"""

from __future__ import annotations

import argparse
import copy
import math
from pathlib import Path
from typing import Any

import yaml

from shared.keys import Keys
from shared.partitions import Partitioning

HERE = Path(__file__).resolve().parent
SINGLE_NODE = HERE / "components" / "keda" / "scaled-objects.yaml"
COMPONENT = HERE / "components" / "keda-cluster"
SCALED_OBJECTS = COMPONENT / "scaled-objects.yaml"
CLUSTER_ENV = COMPONENT / "cluster.env"
AUTHENTICATION = "redis-cluster"
COUNTS = ("lagCount", "pendingEntriesCount")
HEADER = """\
# Generated from components/keda/scaled-objects.yaml by deploy/k8s/render_keda_cluster.py for
# {partitions} partitions: edit the single-node file (the tuning) or rerun the script with
# --partitions (tests/deploy/test_deploy.py fails when this is stale). One lag and one pending
# trigger per partition stream, each with the single-node target / {partitions}: see the script.
"""


def partition_streams(keys: Keys, target: str) -> list[str]:
    return list(keys.ingest_streams if target == "ingest-worker" else keys.new_item_streams)


def cluster_trigger(trigger: dict[str, Any], stream: str, partition: int, count: int) -> dict[str, Any]:
    metadata = dict(trigger["metadata"], stream=stream)
    for name in COUNTS:
        if name in metadata:
            metadata[name] = str(max(1, math.ceil(int(metadata[name]) / count)))
    return {
        "type": "redis-cluster-streams",
        "name": f"{trigger['name']}-p{partition}",
        "metadata": metadata,
        "authenticationRef": {"name": AUTHENTICATION},
    }


def scaled_objects(count: int, prefix: str = "") -> list[dict[str, Any]]:
    keys = Keys(prefix, Partitioning(count, tagged=True))
    rendered = []
    for scaled in yaml.safe_load_all(SINGLE_NODE.read_text()):
        cluster = copy.deepcopy(scaled)
        streams = partition_streams(keys, scaled["spec"]["scaleTargetRef"]["name"])
        cluster["spec"]["triggers"] = [
            cluster_trigger(trigger, stream, partition, count)
            for partition, stream in enumerate(streams)
            for trigger in scaled["spec"]["triggers"]
        ]
        rendered.append(cluster)
    return rendered


def render(count: int, prefix: str = "") -> tuple[str, str]:
    """The scaled objects' YAML and the settings every pod gets with them."""
    documents = yaml.safe_dump_all(scaled_objects(count, prefix), sort_keys=False)
    settings = f"REDIS_CLUSTER=true\nINGEST_PARTITIONS={count}\n"
    return HEADER.format(partitions=count) + documents, settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--prefix", default="", help="SOULCASTER_KEY_PREFIX of the deployment")
    args = parser.parse_args()
    objects, settings = render(args.partitions, args.prefix)
    SCALED_OBJECTS.write_text(objects)
    CLUSTER_ENV.write_text(settings)


if __name__ == "__main__":
    main()
