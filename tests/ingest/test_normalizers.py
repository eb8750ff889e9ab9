"""Every normalizer on the real payload fixtures, plus the edge cases that must dead-letter with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from services.ingest.normalized import EventContext, Ignored, InvalidPayload, Normalized
from services.ingest.normalizers import NORMALIZERS
from shared.models import FeedbackItem
from tests.support.paths import FIXTURES

RECEIVED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CONTEXT = EventContext("1767323045000-0", RECEIVED)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def normalized(source: str, payload: Any, context: EventContext = CONTEXT) -> Normalized:
    result = NORMALIZERS[source](payload, context)
    assert isinstance(result, Normalized), result
    return result


def item(source: str, payload: Any, context: EventContext = CONTEXT) -> FeedbackItem:
    return normalized(source, payload, context).item


def test_every_endpoint_kind_has_a_normalizer() -> None:
    assert set(NORMALIZERS) == {"reddit", "sentry", "github", "manual", "feedback"}


# reddit


def reddit_child(index: int = 0) -> dict[str, Any]:
    child: dict[str, Any] = fixture("reddit/listing_hot.json")["data"]["children"][index]
    return child


def test_reddit_listing_child_maps_like_the_original_poller() -> None:
    post = item("reddit", reddit_child(0))
    assert post.external_id == "58hakw"
    assert post.title == "Red Dead Redemption 2 Official Trailer"
    assert post.body == post.title  # no selftext: the title stands in
    assert post.created_at == datetime.fromtimestamp(1476975628, UTC)
    assert post.metadata == {
        "subreddit": "gaming",
        "permalink": "https://www.reddit.com/r/gaming/comments/58hakw/red_dead_redemption_2_official_trailer/",
        "author": "temtam",
        "created_utc": 1476975628.0,
        "score": 6967,
        "num_comments": 2757,
        "url": "https://www.youtube.com/watch?v=gmA6MrX81z4",
    }


def test_reddit_every_fixture_child_normalizes_with_a_deterministic_id() -> None:
    for child in fixture("reddit/listing_new.json")["data"]["children"]:
        first = item("reddit", child)
        again = item("reddit", child, EventContext("1-0", RECEIVED))
        assert first.id == again.id, "the id depends on the post, not on the stream entry"
        assert first.external_id == child["data"]["id"]


def test_reddit_limits_defaults_and_fullname_prefix() -> None:
    child = reddit_child(0)
    child["data"].update(
        id="t3_58hakw", title="t" * 300, selftext="s" * 20_000, author=None, permalink="/r/x/1/"
    )
    post = item("reddit", child)
    assert post.external_id == "58hakw"
    assert len(post.title) == 200
    assert len(post.body) == 10_000
    assert post.metadata["author"] == "[deleted]"


def test_reddit_poller_shape_and_raw_child_are_the_same_item() -> None:
    poller = {
        "id": "ignored-uuid",
        "project_id": "ignored",
        "source": "reddit",
        "external_id": "t3_58hakw",
        "title": "Red Dead Redemption 2 Official Trailer",
        "body": "trailer",
        "metadata": {"subreddit": "gaming"},
        "created_at": "2016-10-20T15:00:28+00:00",
    }
    post = item("reddit", poller)
    assert post.id == item("reddit", reddit_child(0)).id
    assert post.body == "trailer"
    assert post.created_at == datetime(2016, 10, 20, 15, 0, 28, tzinfo=UTC)
    del poller["created_at"]
    assert item("reddit", poller).created_at == RECEIVED


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"kind": "t1", "data": {}}, "kind"),
        ({"kind": "t3", "data": {"id": "x", "title": "t"}}, "created_utc"),
        ({"title": "no external id"}, "external_id"),
        ({"external_id": "x", "title": 5}, "title"),
        ({"external_id": "x", "title": "t", "source": "github"}, "source"),
        ([1, 2], "payload"),
    ],
)
def test_reddit_invalid_payloads_name_the_field(payload: Any, reason: str) -> None:
    with pytest.raises(InvalidPayload, match=reason):
        NORMALIZERS["reddit"](payload, CONTEXT)


# sentry


def test_sentry_issue_webhook() -> None:
    issue = item("sentry", fixture("sentry/issue_created.json"))
    assert issue.external_id == "1170820242"
    assert issue.title == "ReferenceError: blooopy is not defined"
    assert issue.body == "?(runner)"
    assert issue.created_at == datetime(2019, 8, 19, 20, 58, 37, 391000, tzinfo=UTC)
    assert issue.metadata == {
        "resource": "issue",
        "issue_id": "1170820242",
        "level": "error",
        "platform": "javascript",
    }


def test_sentry_event_alert_uses_exception_and_every_frame() -> None:
    event = item("sentry", fixture("sentry/event_alert.json"))
    assert event.external_id == "1117540176"
    assert event.title == "ReferenceError: heck is not defined"
    assert event.body == (
        "ReferenceError: heck is not defined\n\nStacktrace:\n"
        "  /js/prod/runner-4.1.7.min.js:1\n  /js/prod/runner-4.1.7.min.js:1\n  <anonymous>:3"
    )
    assert event.created_at == datetime.fromtimestamp(1566248777.677, UTC)
    assert event.metadata["event_id"] == "e4874d664c3540c1a32eab185f12c5ab"
    assert event.metadata["web_url"].startswith("https://sentry.io/organizations/test-org/issues/1117540176/")
    assert ["browser.name", "Chrome"] in event.metadata["tags"]
    assert "release" not in event.metadata, "None values are dropped"


def test_sentry_error_webhook() -> None:
    error = item("sentry", fixture("sentry/error_created.json"))
    assert error.external_id == "1170820242"
    assert error.id == item("sentry", fixture("sentry/issue_created.json")).id, "one Sentry issue, one item"
    assert error.title == "ReferenceError: blooopy is not defined"
    assert error.body == "ReferenceError: blooopy is not defined\n\nStacktrace:\n  /runner:3"
    assert error.metadata["resource"] == "error"


def test_sentry_legacy_plugin_message_event_keeps_its_stacktrace() -> None:
    legacy = item("sentry", fixture("sentry/legacy_webhook.json"))
    assert legacy.external_id == "541485531"
    assert legacy.title == "This is an example Python exception"
    assert legacy.body.startswith("This is an example Python exception\n\nStacktrace:\n")
    assert "  raven/base.py:303 in build_msg" in legacy.body.splitlines()
    assert legacy.created_at == datetime.fromtimestamp(1525248430, UTC)
    assert legacy.metadata["event_id"] == "0476467adf8f499ea795a48fcc4bf290"


def test_sentry_title_falls_back_to_exception_then_message_never_a_placeholder() -> None:
    payload = {
        "event_id": "abc",
        "exception": {
            "values": [{"type": "KeyError", "value": "'x'", "stacktrace": {"frames": [{"filename": "a.py"}]}}]
        },
    }
    event = item("sentry", payload)
    assert event.title == "KeyError: 'x'"
    assert event.body == "KeyError: 'x'\n\nStacktrace:\n  a.py:?"
    assert event.external_id == "abc"
    assert event.created_at == RECEIVED
    assert item("sentry", {"event_id": "abc", "message": "boom"}).title == "boom"
    assert item("sentry", {"event_id": "abc"}).title == "Sentry event abc"


def test_sentry_issue_short_id_in_snake_case_and_issue_grouping() -> None:
    first = item("sentry", {"issue": {"short_id": "APP-1"}, "event_id": "e1", "message": "m"})
    second = item("sentry", {"issue": {"short_id": "APP-1"}, "event_id": "e2", "message": "m"})
    assert first.external_id == "APP-1"
    assert first.id == second.id


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"message": "no ids at all"}, "no issue short id, issue id or event id"),
        ({"data": {"issue": {"title": "x"}}}, "no issue short id"),
        ({"data": {"event": {"event_id": "e", "exception": "boom"}}}, "data.event.exception"),
        ({"event_id": "e", "timestamp": "yesterday"}, "timestamp"),
        ("just text", "payload"),
    ],
)
def test_sentry_invalid_payloads(payload: Any, reason: str) -> None:
    with pytest.raises(InvalidPayload, match=reason):
        NORMALIZERS["sentry"](payload, CONTEXT)


# github


def test_github_opened_delivery_maps_like_the_original_sync() -> None:
    result = normalized("github", fixture("github/issues_opened.json"))
    assert (result.update_existing, result.create_if_new) == (False, True)
    issue = result.item
    assert issue.external_id == "444500041"
    assert issue.title == "Spelling error in the README file"
    assert issue.raw_text == issue.body
    assert issue.repo == "Codertocat/Hello-World"
    assert issue.github_issue_number == 1
    assert issue.github_issue_url == "https://github.com/Codertocat/Hello-World/issues/1"
    assert issue.status == "open"
    assert issue.created_at == datetime(2019, 5, 15, 15, 20, 18, tzinfo=UTC)
    assert issue.metadata == {
        "labels": ["bug"],
        "state": "open",
        "comments": 0,
        "created_at": "2019-05-15T15:20:18+00:00",
        "updated_at": "2019-05-15T15:20:18+00:00",
        "author": "Codertocat",
        "assignees": ["Codertocat"],
        "milestone": "v1.0",
    }


@pytest.mark.parametrize("action", ["edited", "reopened"])
def test_github_edits_and_reopens_update_in_place(action: str) -> None:
    result = normalized("github", fixture(f"github/issues_{action}.json"))
    assert (result.update_existing, result.create_if_new) == (True, True)
    opened = item("github", fixture("github/issues_opened.json"))
    assert result.item.id == opened.id, "the same issue maps to the same item"
    updated_at = fixture(f"github/issues_{action}.json")["issue"]["updated_at"]
    assert result.revision == datetime.fromisoformat(updated_at).timestamp(), (
        "stale updates are refused by it"
    )


def test_github_closed_delivery_only_updates_a_known_item() -> None:
    result = normalized("github", fixture("github/issues_closed.json"))
    assert (result.update_existing, result.create_if_new) == (True, False)
    assert result.item.status == "closed"
    assert result.item.repo == "C-Saunders/flynn_env_test"


def test_github_other_actions_refresh_and_removals_are_ignored() -> None:
    delivery = fixture("github/issues_opened.json")
    delivery["action"] = "labeled"
    assert normalized("github", delivery).update_existing
    delivery["action"] = "deleted"
    assert NORMALIZERS["github"](delivery, CONTEXT) == Ignored("issue deleted")


def test_github_rest_issues_parse_repo_from_urls_and_skip_pull_requests() -> None:
    issues = fixture("github/rest_issues_page1.json")
    results = [NORMALIZERS["github"](issue, CONTEXT) for issue in issues]
    assert [r for r in results if isinstance(r, Ignored)] == [Ignored("pull request")]
    stored = [r for r in results if isinstance(r, Normalized)]
    assert len(stored) == 4
    assert all(r.update_existing and r.create_if_new for r in stored)
    assert {r.item.repo for r in stored} == {"bkeepers/PRobot"}


def test_github_rest_closed_issue_is_never_created() -> None:
    result = normalized("github", fixture("github/rest_issue_closed.json"))
    assert (result.update_existing, result.create_if_new) == (True, False)
    assert result.item.repo == "globalbioticinteractions/nomer"


def test_github_title_fallback_and_repo_from_html_url() -> None:
    issue = fixture("github/rest_issue_closed.json")
    issue.update(title="", body=None, repository_url=None)
    mapped = item("github", issue)
    assert mapped.title == "globalbioticinteractions/nomer issue #1"
    assert mapped.body == ""
    assert mapped.raw_text == mapped.title


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"state": "merged"}, "state"),
        ({"id": None}, "id"),
        ({"created_at": "not a date"}, "created_at"),
        ({"labels": "bug"}, "labels"),
    ],
)
def test_github_invalid_issues(change: dict[str, Any], reason: str) -> None:
    issue = fixture("github/rest_issue_closed.json") | change
    with pytest.raises(InvalidPayload, match=reason):
        NORMALIZERS["github"](issue, CONTEXT)


def test_github_delivery_without_issue_fields_is_invalid() -> None:
    with pytest.raises(InvalidPayload, match=r"issue\.number"):
        NORMALIZERS["github"]({"action": "opened", "issue": {"id": 1}}, CONTEXT)


# manual and feedback


def test_manual_defaults_title_and_has_no_external_id() -> None:
    text = "The export button does nothing when the report has more than 10,000 rows in it."
    manual = item("manual", {"text": text, "github_repo_url": "dropped"})
    assert manual.title == text[:80]
    assert manual.body == text
    assert manual.external_id is None
    assert manual.created_at == RECEIVED
    assert manual.id == item("manual", {"text": "other"}).id, "one entry, one item"
    assert manual.id != item("manual", {"text": text}, EventContext("2-0", RECEIVED)).id
    titled = item("manual", {"text": text, "title": "Export", "metadata": {"from": "dash"}})
    assert (titled.title, titled.metadata) == ("Export", {"from": "dash"})


@pytest.mark.parametrize(
    ("payload", "reason"),
    [({}, "text"), ({"text": "  "}, "text must not be empty"), ({"text": 3}, "text"), ([], "payload")],
)
def test_manual_invalid(payload: Any, reason: str) -> None:
    with pytest.raises(InvalidPayload, match=reason):
        NORMALIZERS["manual"](payload, CONTEXT)


def test_feedback_takes_its_source_from_the_payload() -> None:
    payload = {
        "id": "ignored",
        "source": "posthog",
        "external_id": 42,
        "title": "Crash on save",
        "body": "TypeError",
        "metadata": {"k": "v"},
        "created_at": "2025-12-01T10:00:00Z",
        "clustered": True,
    }
    feedback = item("feedback", payload)
    assert (feedback.source, feedback.external_id) == ("posthog", "42")
    assert feedback.created_at == datetime(2025, 12, 1, 10, tzinfo=UTC)
    assert feedback.clustered is False
    assert feedback.id == item("feedback", payload, EventContext("9-9", RECEIVED)).id
    untitled = item("feedback", {"source": "datadog", "body": "disk full on db-1"})
    assert (untitled.title, untitled.created_at) == ("disk full on db-1", RECEIVED)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"source": "Bad Source!", "title": "t"}, "source"),
        ({"source": "x", "title": " ", "body": ""}, "title or body must not be empty"),
        ({"source": "x", "title": "t", "status": "archived"}, "status"),
        ({"title": "t"}, "source"),
    ],
)
def test_feedback_invalid(payload: Any, reason: str) -> None:
    with pytest.raises(InvalidPayload, match=reason):
        NORMALIZERS["feedback"](payload, CONTEXT)


def test_item_ids_are_the_standard_uuid5_of_the_name() -> None:
    """`uuid5_text` formats the digest itself; it must equal `uuid.uuid5` for any name."""
    import uuid

    from shared.models import ITEM_NAMESPACE, item_id_for, uuid5_text

    names = ["", "reddit:58hakw", "manual:é✓", "x" * 500, *[f"github:o/r#{i}" for i in range(2000)]]
    for name in names:
        assert uuid5_text(name) == str(uuid.uuid5(ITEM_NAMESPACE, name))
    assert item_id_for("reddit", None, "5-0") == str(uuid.uuid5(ITEM_NAMESPACE, "entry:5-0"))


def test_an_item_hash_has_the_dashboard_layout() -> None:
    item = FeedbackItem(
        id="i",
        source="github",
        title="t",
        metadata={"n": 1},
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        github_issue_number=7,
    )
    assert item.to_hash() == {
        "id": "i",
        "source": "github",
        "title": "t",
        "body": "",
        "metadata": '{"n":1}',
        "created_at": "2026-01-01T00:00:00+00:00",
        "github_issue_number": "7",
        "clustered": "false",
    }
    assert (
        FeedbackItem(id="i", source="manual", title="t", created_at=item.created_at).to_hash()["metadata"]
        == "{}"
    )
