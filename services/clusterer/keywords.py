"""A few keywords per cluster: class-based TF-IDF of its members against the whole corpus, as BERTopic.

Why: a cluster's extractive title is one member's wording; a handful of terms that are frequent in
the cluster and rare elsewhere tells what all its members share, and scans faster in a table.

The weight of term t in cluster c (BERTopic's c-TF-IDF):

    W(t, c) = tf(t, c) / words(c) * log(1 + A / f(t))

tf(t, c): how many of c's members use t; words(c): the same summed over c's terms; A: the average
words per cluster in the corpus; f(t): how many texts of the whole corpus use t. Two departures
from BERTopic, both for short, noisy feedback: a term counts once per text (one long rant that
repeats "export" ten times must not outvote nine short reports), and a bigram of two adjacent
non-stop words ("dark mode", "credit card") competes with the words; once a bigram is chosen, its
words are not listed again. Measured with `bench/keyword_quality.py` (Banking77's test set, each
true category a cluster, keywords against all 77): the share of a category name's words that its
five keywords cover is 0.78 with bigrams against 0.69 with the top five words alone (40 requests
per category; 0.76 against 0.60 with 10, 0.66 against 0.50 with 5), and 74 of the 77 lists name
at least one word of their category (71 with words alone).

Tokens: lower-cased runs of letters (an apostrophe inside a word is kept, so "can't" stays one
token and is a stop word); shorter than 3 letters, or an English stop word, is dropped. Numbers
and ids never become keywords: they vary between members (fingerprints placeholder them).

How the clusterer should use it: corpus statistics (f(t), A) change slowly as items arrive, while
only the clusters a pass touched need new keywords. So keep one `CorpusTerms` (or its counts in a
Redis hash: `term_counts` gives what to HINCRBY per item, and `CorpusTerms(counts, clusters)`
rebuilds it from what was read), `add` each new item's text, and call `keywords` for the touched
clusters only; a full pass may rebuild everything with `cluster_keywords`. A member's text is its
title and body joined: a title alone is often too short to share words with the others. Keywords then lag the
corpus a little for untouched clusters, which a reader cannot tell apart from fresh ones.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

MIN_TOKEN_LETTERS = 3
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
# English function words (after sklearn's and NLTK's lists), plus the politeness and filler of
# support requests, which every cluster of feedback shares.
_STOP_WORD_TEXT = """
    a about above after again against all almost along already also although always am among an and
    another any anyone anything anyway anywhere are aren't around as at back be became because become
    been before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't done down during each either else enough etc even ever every everyone
    everything few for from further get gets getting got had hadn't has hasn't have haven't having he
    her here hers herself him himself his how however i i'd i'll i'm i've if in into is isn't it it's
    its itself just let let's like made make many may me might mine more most much must mustn't my
    myself need needs neither never no nobody none nor not nothing now of off often on once one only
    onto or other others otherwise our ours ourselves out over own per perhaps please quite rather
    really same see seem seems several shall she should shouldn't since so some someone something
    sometimes still such than that that's the their theirs them themselves then there there's these
    they they'd they'll they're they've this those though through thru thus till to together too
    toward towards under until up upon us use used using very via want wants was wasn't way we we'd
    we'll we're we've well were weren't what what's whatever when where whether which while who
    whoever whole whom whose why will with within without won't would wouldn't yet you you'd you'll
    you're you've your yours yourself yourselves
    anybody hello hey thank thanks thx pls hi guys folks know think tried trying try able
    dont didnt doesnt cant couldnt wont isnt wasnt arent ive whats thats theres
"""
STOP_WORDS = frozenset(_STOP_WORD_TEXT.split())


def terms(text: str) -> set[str]:
    """The text's distinct terms: its content words and the bigrams of adjacent content words.

    Adjacent means adjacent in the text: "dark mode" is a bigram, "dark, then mode" is not.
    """
    found: set[str] = set()
    for run in _content_runs(text):
        found.update(run)
        found.update(f"{first} {second}" for first, second in itertools.pairwise(run))
    return found


def _content_runs(text: str) -> Iterable[list[str]]:
    """Runs of content words not interrupted by a stop word, a short word or punctuation."""
    for chunk in re.split(r"[^\w\s']+", text.lower()):
        run: list[str] = []
        for word in chunk.split():
            if _WORD.fullmatch(word) and len(word) >= MIN_TOKEN_LETTERS and word not in STOP_WORDS:
                run.append(word)
            elif run:
                yield run
                run = []
        if run:
            yield run


def term_counts(texts: Iterable[str]) -> Counter[str]:
    """How many of the texts use each term (each text counts a term once)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(terms(text))
    return counts


class CorpusTerms:
    """How many texts of the corpus use each term, for c-TF-IDF of any cluster against the corpus.

    `clusters` is the number of clusters the corpus is split into; with the total term count it
    gives A, the average words per cluster. Build it from stored counts to share it across
    replicas, or empty and `add` texts as they arrive.
    """

    def __init__(self, counts: Mapping[str, int] | None = None, clusters: int = 1) -> None:
        self.counts: Counter[str] = Counter(counts or {})
        self.clusters = clusters

    def add(self, texts: Iterable[str]) -> None:
        self.counts.update(term_counts(texts))

    @property
    def average_cluster_words(self) -> float:
        """A in the weight: the corpus' term uses spread over its clusters."""
        return sum(self.counts.values()) / max(self.clusters, 1)

    def weights(self, cluster_texts: Sequence[str]) -> dict[str, float]:
        """Every term of the cluster with its c-TF-IDF weight against this corpus."""
        in_cluster = term_counts(cluster_texts)
        words = sum(in_cluster.values())
        average = self.average_cluster_words
        return {
            term: count / words * math.log(1 + average / max(self.counts[term], count))
            for term, count in in_cluster.items()
        }

    def keywords(self, cluster_texts: Sequence[str], top_n: int = 5) -> list[str]:
        """The cluster's `top_n` best terms, best first; a bigram stands in for its two words."""
        ranked = sorted(self.weights(cluster_texts).items(), key=lambda pair: (-pair[1], pair[0]))
        return _without_overlap((term for term, _ in ranked), top_n)


def _without_overlap(ranked: Iterable[str], top_n: int) -> list[str]:
    """The first `top_n` distinct terms, best first.

    A bigram takes the place of its words chosen before it; a word already in a chosen bigram is
    skipped, and so is a plural of a chosen term ("exchange rates" after "exchange rate").
    """
    chosen: list[str] = []
    for term in ranked:
        if len(chosen) >= top_n:
            break
        words = term.split()
        covered = [index for index, picked in enumerate(chosen) if picked in words]
        if len(words) > 1 and covered:
            chosen[covered[0]] = term
            chosen = [picked for picked in chosen if picked not in words]
        elif not any(_repeats(term, picked) for picked in chosen):
            chosen.append(term)
    return chosen


def _repeats(term: str, picked: str) -> bool:
    """The term says nothing `picked` does not: it is one of its words, or the same up to plurals."""
    return term in picked.split() or _singular(term) == _singular(picked)


def _singular(term: str) -> str:
    """A crude plural folding, only to compare terms (never shown): "rates" -> "rate"."""
    return " ".join(
        word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word
        for word in term.split()
    )


def cluster_keywords(members: Mapping[str, Sequence[str]], top_n: int = 5) -> dict[str, list[str]]:
    """Keywords of each cluster (cluster id -> its members' texts), against all the texts given."""
    corpus = CorpusTerms(clusters=len(members))
    for texts in members.values():
        corpus.add(texts)
    return {cluster_id: corpus.keywords(texts, top_n) for cluster_id, texts in members.items()}
