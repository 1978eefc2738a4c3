"""Who may do what: the principal a request acts as, its scopes, and API keys (docs/security.md).

A principal is a client (the owner of the orders and subscriptions it creates) with scopes. `admin`
implies every scope and sees every client's orders; any other client sees only its own, and
another client's order answers as if it did not exist (no probing of ids).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    """What a token may do; `admin` may do everything, to every client's records."""

    ORDERS_READ = "orders:read"  # read orders, cancel tasks, plans, timelines, jeopardy
    ORDERS_WRITE = "orders:write"  # create and patch orders
    ORDERS_CANCEL = "orders:cancel"  # ask for a cancellation (cancelServiceOrder)
    TASKS_WORK = "tasks:work"  # operator work: retry, skip, fail activities; acknowledge escalations
    EVENTS_MANAGE = "events:manage"  # hub subscriptions, secrets, dead letters and replays
    METRICS_READ = "metrics:read"  # /metrics and /ready, for monitoring
    ADMIN = "admin"  # delete orders, policy, other clients' orders and subscriptions


SCOPES = tuple(s.value for s in Scope)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a client, its scopes, and what it proved it with (for the log)."""

    client: str
    scopes: frozenset[str]
    via: str = ""

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN in self.scopes

    def allows(self, scope: Scope) -> bool:
        return self.is_admin or scope in self.scopes

    def sees(self, owner: str | None) -> bool:
        """Whether a record owned by `owner` exists for this principal (None: provtrack's own, or
        from before access control: admin only)."""
        return self.is_admin or (owner is not None and owner == self.client)

    @property
    def owner(self) -> str | None:
        """The owner recorded on what this principal creates where ownership also limits what the
        record sees (a hub subscription): None for an admin, whose subscriptions see every order."""
        return None if self.is_admin else self.client


class Unauthenticated(Exception):
    """No credentials, or credentials that do not prove who is calling (HTTP 401)."""

    def __init__(self, message: str, *, error: str | None = None) -> None:
        self.error = error  # RFC 6750: "invalid_token" when a token was given and refused
        super().__init__(message)


class MissingScope(Exception):
    """The caller is known but its token does not allow this (HTTP 403)."""

    def __init__(self, scope: Scope, principal: Principal) -> None:
        self.scope = scope
        super().__init__(f"this needs the scope {scope.value}; the token of {principal.client!r} lacks it")


class CsrfRefused(Exception):
    """A change sent with a session cookie but without the session's CSRF token (HTTP 403)."""


class InvalidScopes(ValueError):
    """Scopes that are not provtrack's."""


def parse_scopes(text: str | list[str] | tuple[str, ...]) -> frozenset[str]:
    """`orders:read orders:write` (space or comma separated, as OAuth writes them) -> the set; an
    unknown scope is refused."""
    parts = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    unknown = sorted(p for p in parts if p not in SCOPES)
    if unknown:
        raise InvalidScopes(f"unknown scope {', '.join(unknown)}; the scopes are {', '.join(SCOPES)}")
    return frozenset(parts)


# --- API keys ------------------------------------------------------------------------------------

TOKEN_PREFIX = "pt_"  # provtrack API keys: pt_<key id>_<secret>; JWTs never start with it


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A static API key as the store keeps it: its hash, never the token."""

    id: str
    client: str
    name: str
    scopes: frozenset[str]
    token_hash: str
    created_at: str
    expires_at: str | None = None
    revoked_at: str | None = None

    def usable(self, now: str) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def principal(self) -> Principal:
        return Principal(self.client, self.scopes, via=f"api key {self.id}")


def new_token() -> tuple[str, str]:
    """A new API key: (its id, the token to hand out once). 256 random bits: a hash of it is safe to
    keep (no slow hashing needed, nothing to guess)."""
    key_id = secrets.token_hex(6)
    return key_id, f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_listener_token() -> str:
    """The unguessable part of a listener callback URL (one per notifying source)."""
    return secrets.token_urlsafe(24)


def return_path(wanted: object) -> str:
    """Where a browser goes back to after signing in: a path of this server, or `/`. Anything a
    browser could read as another host (`//host`, `/\\host`, control characters) is `/`."""
    if not isinstance(wanted, str) or not wanted.startswith("/") or wanted.startswith("//"):
        return "/"
    return "/" if any(ord(c) < 0x20 or c == "\\" for c in wanted) else wanted
