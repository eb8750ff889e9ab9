"""Do a true group's keywords name it? Banking77's categories as clusters, keywords against all 77.

For 40, 10 and 5 requests per category, with and without bigrams: `named`, how many of the 77
keyword lists share a word with the category's name (`card_arrival`: "arrived" counts, words
compared on their first four letters), and `recall`, the mean share of the name's content words the
five keywords cover. The figures quoted in services/clusterer/keywords.py come from this.

    .venv/bin/python -m bench.keyword_quality
"""

from __future__ import annotations

import csv
from collections import defaultdict

from bench.labelled_sets import DATA
from services.clusterer.keywords import CorpusTerms
from services.clusterer.keywords import cluster_keywords as keywords_with_bigrams

TOP_N = 5
NAME_FILLER = {"not", "the", "for", "and", "via", "after", "why", "get"}


def categories(per_category: int) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    with (DATA / "banking77" / "test.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if len(groups[row["category"]]) < per_category:
                groups[row["category"]].append(row["text"])
    return groups


def keywords_of_words_alone(members: dict[str, list[str]]) -> dict[str, list[str]]:
    """The same weights with bigrams left out: what bigrams are measured against."""
    corpus = CorpusTerms(clusters=len(members))
    for texts in members.values():
        corpus.add(texts)
    found = {}
    for name, texts in members.items():
        weights = [(term, weight) for term, weight in corpus.weights(texts).items() if " " not in term]
        found[name] = [term for term, _ in sorted(weights, key=lambda pair: (-pair[1], pair[0]))[:TOP_N]]
    return found


def name_words(category: str) -> list[str]:
    words = category.lower().strip("?").split("_")
    return [word for word in words if len(word) >= 3 and word not in NAME_FILLER]


def score(found: dict[str, list[str]]) -> tuple[int, float]:
    named, recall = 0, 0.0
    for category, keywords in found.items():
        words = name_words(category)
        used = {word[:4] for keyword in keywords for word in keyword.split()}
        covered = [word for word in words if word[:4] in used]
        named += bool(covered)
        recall += len(covered) / len(words)
    return named, recall / len(found)


def main() -> None:
    print(f"{'per category':>12}  {'variant':<14}{'named':>7}{'recall':>8}")
    for per_category in (40, 10, 5):
        members = categories(per_category)
        for variant, found in (
            ("words alone", keywords_of_words_alone(members)),
            ("with bigrams", keywords_with_bigrams(members, TOP_N)),
        ):
            named, recall = score(found)
            print(f"{per_category:>12}  {variant:<14}{named:>4}/77{recall:>8.3f}")


if __name__ == "__main__":
    main()
