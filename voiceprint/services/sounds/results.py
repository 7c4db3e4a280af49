"""What the sound service returns: per-file insert outcomes, insert and search results."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ItemOutcome:
    """What happened to one uploaded file: ``inserted``, ``duplicate`` or ``rejected``."""

    index: int
    filename: str | None
    status: str = "rejected"
    id: int | None = None
    name: str | None = None
    duplicate_of: dict[str, Any] | None = None
    #: closest stored sound (or earlier file: ``index``) at or above the near-duplicate threshold
    near_duplicate_of: dict[str, Any] | None = None
    duration_s: float | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class InsertResult:
    library: str
    items: list[ItemOutcome]

    def _with(self, status: str) -> list[ItemOutcome]:
        return [i for i in self.items if i.status == status]

    @property
    def inserted(self) -> list[ItemOutcome]:
        return self._with("inserted")

    @property
    def duplicates(self) -> list[ItemOutcome]:
        return self._with("duplicate")

    @property
    def rejected(self) -> list[ItemOutcome]:
        return self._with("rejected")


@dataclass
class SearchResult:
    library: str
    top_k: int
    results: list[dict[str, Any]]
    query: dict[str, Any]
    filter: dict[str, str]
    strategy: str  # "ann", "exact" (filtered, few matches) or "ann+filter"
