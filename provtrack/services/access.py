"""Use cases of access control: API keys, who may see which order, listener tokens (docs/security.md).

A client sees only what it owns unless it is an administrator: an order, cancel task or activity of
another client is not found, exactly as one that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from provtrack.domain.access import (
    ApiKey,
    Principal,
    new_listener_token,
    new_token,
    parse_scopes,
    token_hash,
)
from provtrack.domain.clock import format_datetime
from provtrack.services.ports import ActivityNotFound, OrderNotFound, Store, TaskNotFound


class ApiKeyNotFound(LookupError):
    """No API key with that id (or it was revoked already)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no active API key with id {key_id!r}")


def create_api_key(
    store: Store,
    *,
    client: str,
    scopes: str | list[str],
    name: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new API key for `client`: the key as kept (a hash), and the token, to be shown once."""
    if not client.strip():
        raise ValueError("a client name is required")
    key_id, token = new_token()
    key = ApiKey(
        id=key_id,
        client=client.strip(),
        name=name,
        scopes=parse_scopes(scopes),
        token_hash=token_hash(token),
        created_at=format_datetime(now),
        expires_at=format_datetime(expires_at) if expires_at else None,
    )
    with store.transaction(write=True) as tx:
        tx.access.add_key(key)
    return key, token


def list_api_keys(store: Store) -> list[ApiKey]:
    with store.transaction(write=False) as tx:
        return tx.access.api_keys()


def revoke_api_key(store: Store, key_id: str, *, now: datetime) -> None:
    with store.transaction(write=True) as tx:
        if not tx.access.revoke_key(key_id, at=format_datetime(now)):
            raise ApiKeyNotFound(key_id)


def revoke_keys_named(store: Store, name: str, *, now: datetime) -> int:
    """Revoke every active key of that name (the demo's, replaced at each start)."""
    with store.transaction(write=True) as tx:
        named = [k for k in tx.access.api_keys() if k.name == name and k.revoked_at is None]
        for key in named:
            tx.access.revoke_key(key.id, at=format_datetime(now))
    return len(named)


def principal_of_token(store: Store, token: str, *, now: datetime) -> Principal | None:
    """The principal of a usable API key, or None (unknown, revoked or expired)."""
    with store.transaction(write=False) as tx:
        key = tx.access.key_by_hash(token_hash(token))
    if key is None or not key.usable(format_datetime(now)):
        return None
    return key.principal()


# --- what a principal sees ------------------------------------------------------------------------


def check_order(store: Store, principal: Principal, order_id: str) -> None:
    """OrderNotFound unless the order exists for this principal."""
    if principal.is_admin:
        return
    with store.transaction(write=False) as tx:
        found = tx.access.order_client(order_id)
    if found is None or not principal.sees(found[0]):
        raise OrderNotFound(order_id)


def check_task(store: Store, principal: Principal, task_id: str) -> None:
    if principal.is_admin:
        return
    with store.transaction(write=False) as tx:
        order_id = tx.access.task_order(task_id)
        found = None if order_id is None else tx.access.order_client(order_id)
    if found is None or not principal.sees(found[0]):
        raise TaskNotFound(task_id)


def check_activity(store: Store, principal: Principal, activity_id: str) -> None:
    if principal.is_admin:
        return
    with store.transaction(write=False) as tx:
        order_id = tx.plans.order_of_activity(activity_id)
        found = None if order_id is None else tx.access.order_client(order_id)
    if found is None or not principal.sees(found[0]):
        raise ActivityNotFound(activity_id)


# --- listener tokens -------------------------------------------------------------------------------


def listener_token(store: Store, source: str, *, now: datetime) -> str:
    """The token of a notifying source's callback URL, made the first time it is asked for and kept,
    so that the callback stays the same across restarts (its subscription is reused)."""
    with store.transaction(write=False) as tx:
        token = tx.access.listener_token(source)
    if token is not None:
        return token
    with store.transaction(write=True) as tx:
        token = tx.access.listener_token(source)
        if token is None:
            token = new_listener_token()
            tx.access.put_listener_token(source, token, at=format_datetime(now))
    return token


def listener_token_matches(store: Store, source: str, given: str) -> bool:
    """Whether `given` is the source's token (compared in constant time)."""
    with store.transaction(write=False) as tx:
        token = tx.access.listener_token(source)
    return token is not None and hmac.compare_digest(token.encode(), given.encode())
