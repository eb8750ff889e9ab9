"""One normalizer per ingest endpoint kind, keyed by the `source` field of a `stream:ingest` entry."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from services.ingest.normalized import Normalizer
from services.ingest.normalizers.feedback import normalize_feedback
from services.ingest.normalizers.github import normalize_github
from services.ingest.normalizers.manual import normalize_manual
from services.ingest.normalizers.reddit import normalize_reddit
from services.ingest.normalizers.sentry import normalize_sentry

NORMALIZERS: Mapping[str, Normalizer] = MappingProxyType(
    {
        "reddit": normalize_reddit,
        "sentry": normalize_sentry,
        "github": normalize_github,
        "manual": normalize_manual,
        "feedback": normalize_feedback,
    }
)

__all__ = ["NORMALIZERS"]
