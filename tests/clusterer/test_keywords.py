"""Cluster keywords: class-based TF-IDF that names what a cluster's members share."""

from __future__ import annotations

import csv
from collections import defaultdict

from services.clusterer.keywords import CorpusTerms, cluster_keywords, term_counts, terms
from tests.support.paths import FIXTURES

FEEDBACK = {
    "export": [
        "CSV export gives an empty file",
        "The export to CSV button does nothing",
        "Exported CSV has broken columns",
    ],
    "theme": [
        "Please add a dark mode",
        "Dark mode makes the charts unreadable",
        "The dark mode toggle resets after login",
    ],
    "login": [
        "Login with SSO loops forever",
        "SSO login fails in Safari",
        "Cannot login since the update, the page reloads",
    ],
}


def banking77() -> dict[str, list[str]]:
    """Ten requests of each of the 77 Banking77 categories, grouped by their true category."""
    groups: dict[str, list[str]] = defaultdict(list)
    with (FIXTURES / "banking77" / "test_10_per_category.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            groups[row["category"]].append(row["text"])
    return groups


def names_its_category(category: str, keywords: list[str]) -> bool:
    """One keyword word starts like one word of the category's name (`card_arrival`: "arrived")."""
    names = [word for word in category.lower().strip("?").split("_") if len(word) >= 3]
    return any(
        word.startswith(name[:4]) for name in names for keyword in keywords for word in keyword.split()
    )


def test_keywords_of_a_true_banking77_category_name_it() -> None:
    keywords = cluster_keywords(banking77())
    named = [category for category, found in keywords.items() if names_its_category(category, found)]
    assert len(named) >= 70, sorted(set(keywords) - set(named))
    assert "visa" in " ".join(keywords["visa_or_mastercard"])
    assert "passcode" in keywords["passcode_forgotten"]
    assert all(len(found) == 5 for found in keywords.values())


def test_keywords_are_what_a_cluster_shares_and_others_lack() -> None:
    keywords = cluster_keywords(FEEDBACK, top_n=3)
    assert keywords["export"][0] == "csv"
    assert keywords["theme"][0] == "dark mode"
    assert "sso" in keywords["login"]
    # "login" is in the theme cluster once, but it is the login cluster's word.
    assert "login" in keywords["login"] and "login" not in keywords["theme"]


def test_a_chosen_bigram_replaces_its_words_and_plurals_are_not_repeated() -> None:
    found = cluster_keywords({"theme": FEEDBACK["theme"], "other": ["cards and rates"]}, top_n=5)["theme"]
    assert "dark mode" in found and "dark" not in found and "mode" not in found
    plural = cluster_keywords({"rates": ["exchange rate is wrong", "exchange rates are wrong"], "x": ["hi"]})
    assert sum(term.startswith("exchange rate") for term in plural["rates"]) == 1


def test_stop_words_short_tokens_and_numbers_never_become_terms() -> None:
    assert terms("I can't do it at 10:45, id 0x1f is 42") == set()
    assert terms("Dark mode, please!") == {"dark", "mode", "dark mode"}
    assert "mode export" not in terms("dark mode. export") and "mode export" in terms("mode export")


def test_a_term_counts_once_per_text() -> None:
    assert term_counts(["export export export", "export"])["export"] == 2


def test_incremental_corpus_gives_the_keywords_of_a_full_rebuild() -> None:
    corpus = CorpusTerms(clusters=len(FEEDBACK))
    for texts in FEEDBACK.values():
        corpus.add(texts)
    full = cluster_keywords(FEEDBACK, top_n=3)
    assert {name: corpus.keywords(texts, 3) for name, texts in FEEDBACK.items()} == full
    stored = CorpusTerms(dict(corpus.counts), clusters=corpus.clusters)
    assert stored.keywords(FEEDBACK["login"], 3) == full["login"]


def test_an_empty_cluster_or_one_without_content_words_has_no_keywords() -> None:
    assert cluster_keywords({"empty": [], "noise": ["it is what it is", "42"]}) == {"empty": [], "noise": []}
