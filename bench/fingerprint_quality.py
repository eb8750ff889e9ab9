"""How well error fingerprints alone group the loghub sets: each line's fingerprint against its EventId.

Lines go in as source "sentry" with the line as the title, as the clustering benchmark feeds them.
Printed per set: the true group count, the fingerprint group count, purity (share of lines whose
fingerprint group's majority EventId is their own: 1.0 means no group mixes two events), inverse
purity (the same from the EventId side: 1.0 means no event is split), ARI and NMI. A fingerprint
should be near-pure; splitting an event is cheaper, as the embeddings may still join the pieces.
The baseline beside it groups identical raw lines, which is what exact grouping is without
normalising.

    .venv/bin/python -m bench.fingerprint_quality
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from bench.labelled_sets import LOG_SYSTEMS, loghub
from services.clusterer.fingerprints import error_fingerprint


def purity(groups: Sequence[str], labels: Sequence[str]) -> float:
    """Share of items whose group's most common label is theirs."""
    by_group: dict[str, Counter[str]] = defaultdict(Counter)
    for group, label in zip(groups, labels, strict=True):
        by_group[group][label] += 1
    return sum(counts.most_common(1)[0][1] for counts in by_group.values()) / len(labels)


def main() -> None:
    print(
        f"{'set':<18}{'grouping':<13}{'true':>5}{'groups':>8}{'purity':>8}{'inverse':>9}{'ARI':>7}{'NMI':>7}"
    )
    for system in LOG_SYSTEMS:
        dataset = loghub(system)
        fingerprints = [error_fingerprint("sentry", text, "", {}) or "" for text in dataset.texts]
        for grouping, groups in (("raw text", dataset.texts), ("fingerprint", fingerprints)):
            print(
                f"{dataset.name:<18}{grouping:<13}{len(set(dataset.labels)):>5}{len(set(groups)):>8}"
                f"{purity(groups, dataset.labels):>8.3f}{purity(dataset.labels, groups):>9.3f}"
                f"{adjusted_rand_score(dataset.labels, groups):>7.3f}"
                f"{normalized_mutual_info_score(dataset.labels, groups):>7.3f}"
            )


if __name__ == "__main__":
    main()
