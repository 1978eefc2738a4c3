"""The order list's form controls as TMF630 filters: what the coordinator picks becomes the same
query the API takes, and the page's URL holds the form, so a view can be shared."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import quote, urlencode

from provtrack.domain.query import Query, parse_query
from provtrack.domain.states import OrderState

STATES = tuple(s.value for s in OrderState)
LEVELS = ("onTrack", "atRisk", "inJeopardy", "late")
PAGE_SIZES = (25, 50, 100)
SORTS = {
    "-orderDate": "newest first",
    "orderDate": "oldest first",
    "requestedCompletionDate": "requested completion, soonest first",
    "priority": "priority, highest first",
    "-priority": "priority, lowest first",
}


class InvalidFilter(ValueError):
    """A form value that cannot be used (a date that is not one); the message names the field."""


@dataclass(frozen=True, slots=True)
class OrderFilter:
    states: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    category: str = ""
    priority: str = ""
    ordered_from: str = ""  # YYYY-MM-DD, inclusive
    ordered_to: str = ""  # YYYY-MM-DD, inclusive
    due_before: str = ""  # requestedCompletionDate before this day (inclusive)
    external_id: str = ""
    sort: str = "-orderDate"
    page: int = 1
    size: int = 25

    @classmethod
    def from_params(cls, params: Mapping[str, str] | object) -> OrderFilter:
        get_list = getattr(params, "getlist", None)

        def many(name: str, allowed: Sequence[str]) -> tuple[str, ...]:
            values = get_list(name) if get_list else [getattr(params, "get", lambda _n: None)(name)]
            return tuple(str(v) for v in values if v in allowed)

        get = getattr(params, "get", lambda _n, _d=None: None)

        def one(name: str) -> str:
            return str(get(name) or "").strip()

        sort = one("sort")
        size = one("size")
        page = one("page")
        return cls(
            states=many("state", STATES),
            levels=many("jeopardyLevel", LEVELS),
            category=one("category"),
            priority=one("priority"),
            ordered_from=_day(one("orderedFrom"), "orderedFrom"),
            ordered_to=_day(one("orderedTo"), "orderedTo"),
            due_before=_day(one("dueBefore"), "dueBefore"),
            external_id=one("externalId"),
            sort=sort if sort in SORTS else "-orderDate",
            page=max(1, int(page)) if page.isdigit() else 1,
            size=int(size) if size.isdigit() and int(size) in PAGE_SIZES else 25,
        )

    def conditions(self, *, with_state: bool = True) -> list[str]:
        """The TMF630 filter parameters (`state=held,pending`, `orderDate.gte=...`)."""
        parts = []
        if with_state and self.states:
            parts.append("state=" + ",".join(self.states))
        if self.levels:
            parts.append("jeopardyLevel=" + ",".join(self.levels))
        for name, value in (
            ("category", self.category),
            ("priority", self.priority),
            ("externalId", self.external_id),
        ):
            if value:
                parts.append(f"{name}={quote(_quoted(value), safe='')}")
        if self.ordered_from:
            parts.append(f"orderDate.gte={self.ordered_from}T00:00:00Z")
        if self.ordered_to:
            parts.append(f"orderDate.lt={_next_day(self.ordered_to)}T00:00:00Z")
        if self.due_before:
            parts.append(f"requestedCompletionDate.lt={_next_day(self.due_before)}T00:00:00Z")
        return parts

    def query(self, *, max_limit: int) -> Query:
        paging = [f"sort={self.sort}", f"offset={(self.page - 1) * self.size}", f"limit={self.size}"]
        return parse_query("&".join(self.conditions() + paging), default_limit=self.size, max_limit=max_limit)

    def counts_query(self, *, max_limit: int) -> Query:
        """The same filter but for the state: the counts by state say where the rest stand."""
        return parse_query("&".join(self.conditions(with_state=False)), default_limit=1, max_limit=max_limit)

    def api_query(self) -> str:
        """The same view as a TMF641 API query (shown, for integration engineers)."""
        return "&".join(
            [p for p in self.conditions() if not p.startswith("jeopardyLevel=")] + [f"sort={self.sort}"]
        )

    def params(self, **override: object) -> str:
        """This filter as the page's query string, with some values replaced (links, paging)."""
        values: dict[str, object] = {
            "state": list(self.states),
            "jeopardyLevel": list(self.levels),
            "category": self.category,
            "priority": self.priority,
            "orderedFrom": self.ordered_from,
            "orderedTo": self.ordered_to,
            "dueBefore": self.due_before,
            "externalId": self.external_id,
            "sort": self.sort if self.sort != "-orderDate" else "",
            "size": self.size if self.size != 25 else "",
            "page": self.page if self.page != 1 else "",
        }
        values.update(override)
        pairs = [
            (k, v)
            for k, value in values.items()
            for v in (value if isinstance(value, list) else [value])
            if v not in ("", None) and not (k == "page" and v == 1)
        ]
        return urlencode(pairs)

    @property
    def active(self) -> bool:
        return bool(self.conditions())


def _day(value: str, name: str) -> str:
    if not value:
        return ""
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise InvalidFilter(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def _quoted(value: str) -> str:
    """A text value as one TMF630 value: quoted when it holds a comma."""
    return f'"{value}"' if "," in value else value
