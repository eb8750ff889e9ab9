"""Reddit posts: the poller's item-shaped payload, or a raw listing child as Reddit's JSON API returns it.

Both shapes map to the same item (title cut to 200 characters, body to 10,000; a link post without
text takes its title, then its URL, as body), keyed by the bare post id, so a post seen through
either path dedupes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

from services.ingest.normalized import EventContext, Normalized
from services.ingest.normalizers.payload_shape import (
    EXPECTED_OBJECT,
    EpochSeconds,
    IdText,
    Moment,
    parse_payload,
)
from shared.models import FeedbackItem

SOURCE = "reddit"
REDDIT_ORIGIN = "https://www.reddit.com"
TITLE_LIMIT = 200
BODY_LIMIT = 10_000


class RedditPostData(BaseModel):
    """The `data` of a `t3` listing child; only the fields the item keeps."""

    model_config = ConfigDict(extra="ignore")

    id: IdText = Field(min_length=1)
    title: str
    selftext: str | None = None
    url: str | None = None
    subreddit: str = ""
    permalink: str = ""
    author: str | None = None
    created_utc: EpochSeconds
    score: int = 0
    num_comments: int = 0


class RedditListingChild(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: Literal["t3"]
    data: RedditPostData


class RedditPollerPost(BaseModel):
    """What the poller sends: a FeedbackItem without a trustworthy id (the item id is derived here)."""

    model_config = ConfigDict(extra="ignore")

    source: Literal["reddit"] = "reddit"
    external_id: IdText = Field(min_length=1)
    title: str
    body: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: Moment | None = None


def _shape_of(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    return "listing child" if "kind" in value else "poller post"


RedditPost = Annotated[
    Annotated[RedditListingChild, Tag("listing child")] | Annotated[RedditPollerPost, Tag("poller post")],
    Discriminator(_shape_of, custom_error_type="not_an_object", custom_error_message=EXPECTED_OBJECT),
]
REDDIT_POST: TypeAdapter[RedditListingChild | RedditPollerPost] = TypeAdapter(RedditPost)


def bare_post_id(post_id: str) -> str:
    """Reddit's fullname `t3_abc` and the bare `abc` name the same post."""
    return post_id.removeprefix("t3_")


def normalize_reddit(payload: Any, context: EventContext) -> Normalized:
    post = parse_payload(REDDIT_POST, payload)
    if isinstance(post, RedditListingChild):
        return Normalized(_from_listing(post.data, context))
    return Normalized(
        _item(
            context,
            external_id=bare_post_id(post.external_id),
            title=post.title,
            body=post.body,
            metadata=post.metadata,
            created_at=post.created_at or context.received_at,
        )
    )


def _from_listing(data: RedditPostData, context: EventContext) -> FeedbackItem:
    metadata = {
        "subreddit": data.subreddit,
        "permalink": f"{REDDIT_ORIGIN}{data.permalink}",
        "author": data.author or "[deleted]",
        "created_utc": data.created_utc,
        "score": data.score,
        "num_comments": data.num_comments,
        "url": data.url,
    }
    return _item(
        context,
        external_id=bare_post_id(data.id),
        title=data.title,
        body=data.selftext or data.title or data.url or "",
        metadata=metadata,
        created_at=datetime.fromtimestamp(data.created_utc, UTC),
    )


def _item(
    context: EventContext,
    *,
    external_id: str,
    title: str,
    body: str,
    metadata: dict[str, Any],
    created_at: datetime,
) -> FeedbackItem:
    return FeedbackItem(
        id=context.item_id(SOURCE, external_id),
        source=SOURCE,
        external_id=external_id,
        title=title[:TITLE_LIMIT],
        body=body[:BODY_LIMIT],
        metadata=metadata,
        created_at=created_at,
    )
