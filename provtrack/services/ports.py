"""What the use cases need from a store. The SQL store implements it; tests may fake it."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from provtrack.domain.cancellation import CancelServiceOrder
from provtrack.domain.model import Change, ServiceOrder
from provtrack.domain.query import Query


class ConcurrentUpdate(Exception):
    """The order changed between load and save; the use case may retry."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: the documents as stored JSON text, and how many match in all."""

    total: int
    documents: list[str]


class Transaction(Protocol):
    def get_order(self, order_id: str) -> ServiceOrder | None: ...
    def get_order_json(self, order_id: str) -> str | None: ...
    def add_order(self, order: ServiceOrder) -> None: ...
    def save_order(self, order: ServiceOrder) -> None: ...
    def delete_order(self, order_id: str) -> bool: ...
    def list_orders(self, query: Query) -> Page: ...
    def add_task(self, task: CancelServiceOrder, *, created_at: str) -> None: ...
    def get_task_json(self, task_id: str) -> str | None: ...
    def list_tasks(self, query: Query) -> Page: ...
    def audit_trail(self, order_id: str) -> list[Change]: ...
    def record_changes(self, order_id: str, changes: list[Change]) -> None: ...


class Store(Protocol):
    def transaction(self, *, write: bool) -> AbstractContextManager[Transaction]: ...
