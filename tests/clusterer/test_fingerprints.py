"""Error fingerprints: the same error in other words of data groups together, anything else apart."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest
from sklearn.metrics import adjusted_rand_score

from services.clusterer.fingerprints import MAX_FINGERPRINT_CHARS, error_fingerprint, normalize_message
from services.ingest.normalized import EventContext
from services.ingest.normalizers.sentry import normalize_sentry
from shared.models import FeedbackItem
from tests.support.paths import FIXTURES

CONTEXT = EventContext("1767323045000-0", datetime(2026, 1, 2, tzinfo=UTC))


def sentry_item(name: str) -> FeedbackItem:
    return normalize_sentry(json.loads((FIXTURES / "sentry" / name).read_text()), CONTEXT).item


def fingerprint_of(item: FeedbackItem) -> str | None:
    return error_fingerprint(item.source, item.title, item.body, item.metadata)


def test_one_sentry_issue_has_one_fingerprint_whichever_webhook_brought_it() -> None:
    """The issue webhook (body: the culprit) and the error webhook (body: headline and frames) of
    the same ReferenceError agree; another error does not."""
    issue, error = sentry_item("issue_created.json"), sentry_item("error_created.json")
    other = sentry_item("event_alert.json")
    assert fingerprint_of(issue) == fingerprint_of(error) == "ReferenceError: blooopy is not defined"
    assert fingerprint_of(other) == "ReferenceError: heck is not defined"


def test_a_message_event_is_fingerprinted_by_its_message() -> None:
    legacy = sentry_item("legacy_webhook.json")
    assert fingerprint_of(legacy) == "This is an example Python exception"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            "KeyError: 'user_4411' missing in cache shard 7",
            "KeyError: 'user_9' missing in cache shard 12",
        ),
        (
            "ConnectionError: could not reach 10.0.3.7:6379 after 3 retries",
            "ConnectionError: could not reach 192.168.1.20:6380 after 5 retries",
        ),
        (
            "TimeoutError: GET https://api.example.com/v1/orders/991?page=2 took 30.5s",
            "TimeoutError: GET https://api.example.com/v1/orders/17 took 31.0s",
        ),
        (
            "FileNotFoundError: /var/data/exports/2026-01-02/report.csv",
            "FileNotFoundError: /var/data/exports/2026-02-11/summary.csv",
        ),
        (
            "ValueError: order 7c1811ed-e98f-4c9c-a9f9-58c757ff494f has no items at 2026-01-02T03:04:05Z",
            "ValueError: order 0a2e3b4c-1d2e-4f5a-8b9c-0d1e2f3a4b5c has no items at 2025-12-31T23:59:59Z",
        ),
        (
            "django.db.utils.OperationalError: deadlock at 0x7f3a",
            "django.db.utils.OperationalError: deadlock at 0x1",
        ),
    ],
)
def test_occurrences_differing_only_in_values_share_a_fingerprint(first: str, second: str) -> None:
    assert error_fingerprint("sentry", first, "", {}) == error_fingerprint("sentry", second, "", {})


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("KeyError: 'user_4411'", "IndexError: 'user_4411'"),
        ("TimeoutError: GET /v1/orders/1 took 3s", "TimeoutError: POST /v1/orders/1 took 3s"),
        ("ValueError: price must be positive", "ValueError: quantity must be positive"),
    ],
)
def test_different_errors_get_different_fingerprints(first: str, second: str) -> None:
    assert error_fingerprint("sentry", first, "", {}) != error_fingerprint("sentry", second, "", {})


def test_the_exception_type_is_kept_verbatim_even_with_digits() -> None:
    assert error_fingerprint("sentry", "Http404Error: page 12 not found", "", {}) == (
        "Http404Error: page <num> not found"
    )


def test_peoples_feedback_is_not_an_error_event_even_when_it_quotes_one() -> None:
    text = "TypeError: undefined is not a function when I click export"
    for source in ("reddit", "github", "manual"):
        assert error_fingerprint(source, text, text, {}) is None
    assert error_fingerprint("manual", text, "", {}, error_sources={"manual"}) is not None


def test_without_headline_or_message_the_culprit_frame_names_the_error() -> None:
    body = "\n\nStacktrace:\n  app/jobs.py:10 in run\n  app/export.py:212 in write_rows"
    moved = "\n\nStacktrace:\n  app/jobs.py:11 in run\n  app/export.py:230 in write_rows"
    assert error_fingerprint("sentry", "", body, {}) == "culprit: app/export.py in write_rows"
    assert error_fingerprint("sentry", "", moved, {}) == error_fingerprint("sentry", "", body, {})
    assert error_fingerprint("sentry", "", "", {}) is None


def test_the_events_own_fingerprint_overrides_or_extends_the_default() -> None:
    def with_fingerprint(value: object) -> str | None:
        return error_fingerprint("sentry", "KeyError: 'a'", "", {"fingerprint": value})

    assert with_fingerprint(["{{ default }}"]) == "KeyError: <quoted>" == with_fingerprint(None)
    assert with_fingerprint(["payments", "{{default}}"]) == "custom: payments | KeyError: <quoted>"
    assert with_fingerprint(["database-unavailable"]) == "custom: database-unavailable"
    assert with_fingerprint([3]) == with_fingerprint("oops") == "KeyError: <quoted>"


def test_a_sentry_event_keeps_its_fingerprint_through_normalizing() -> None:
    payload = json.loads((FIXTURES / "sentry" / "error_created.json").read_text())
    payload["data"]["error"]["fingerprint"] = ["checkout", "{{ default }}"]
    item = normalize_sentry(payload, CONTEXT).item
    assert fingerprint_of(item) == "custom: checkout | ReferenceError: blooopy is not defined"


def test_lists_of_values_of_any_length_count_as_one_value() -> None:
    assert normalize_message("from 10.0.0.1,10.0.0.2 ids 1 2 3") == normalize_message("from 10.0.0.9 ids 4")


def test_a_fingerprint_is_bounded() -> None:
    fingerprint = error_fingerprint("sentry", "RuntimeError: " + "overflow " * 200, "", {})
    assert fingerprint is not None and len(fingerprint) == MAX_FINGERPRINT_CHARS


def loghub(system: str) -> tuple[list[str], list[str]]:
    with (FIXTURES / "loghub" / f"{system}_300.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row["Content"] for row in rows], [row["EventId"] for row in rows]


def purity(groups: list[str], labels: list[str]) -> float:
    by_group: dict[str, Counter[str]] = defaultdict(Counter)
    for group, label in zip(groups, labels, strict=True):
        by_group[group][label] += 1
    return sum(counts.most_common(1)[0][1] for counts in by_group.values()) / len(labels)


@pytest.mark.parametrize("system", ["HDFS", "BGL", "Hadoop", "OpenStack"])
def test_log_lines_group_by_their_event_template(system: str) -> None:
    """Real log lines: no fingerprint mixes two event templates, and few templates are split."""
    texts, events = loghub(system)
    prints = [error_fingerprint("sentry", text, "", {}) or "" for text in texts]
    assert purity(prints, events) == 1.0
    assert purity(events, prints) >= 0.98
    assert adjusted_rand_score(events, prints) >= 0.95
