"""A GitHub repository named `owner/repo`, validated once wherever a name comes in (CLI, env, API)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


@dataclass(frozen=True, order=True)
class Repository:
    owner: str
    name: str

    def __post_init__(self) -> None:
        if not _OWNER.match(self.owner) or not _NAME.match(self.name) or self.name in {".", ".."}:
            raise ValueError(f"not a GitHub repository name: {self.owner}/{self.name}")

    @classmethod
    def parse(cls, text: str) -> Repository:
        owner, slash, name = text.strip().partition("/")
        if not slash:
            raise ValueError(f"a repository is written owner/repo, got {text!r}")
        return cls(owner, name)

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}"
