"""The service order aggregate: an order, its items, and every change made to them.

Every state change of the order or of an item goes through `ServiceOrder._apply_state`, which checks
the transition table, stamps the dates the change implies and records an audit `Change` and the TMF641
event it causes. The use case that loaded the order persists both in the transaction that saves it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from provtrack.domain.states import (
    TERMINAL_STATES,
    IllegalTransition,
    OrderState,
    check_transition,
    roll_up,
)

S = OrderState

# Order-level states the operator or the cancellation flow sets; item progress does not override them.
ORDER_LEVEL_STATES = frozenset({S.PENDING, S.HELD, S.ASSESSING_CANCELLATION, S.PENDING_CANCELLATION})

# When the order itself is moved to a terminal state, its open items follow.
CASCADE_TO_OPEN_ITEMS: dict[OrderState, OrderState] = {
    S.COMPLETED: S.COMPLETED,
    S.FAILED: S.FAILED,
    S.PARTIAL: S.FAILED,
    S.CANCELLED: S.CANCELLED,
    S.REJECTED: S.REJECTED,
}


class EventType:
    """TMF641 v4.1 notification types."""

    ORDER_CREATE = "ServiceOrderCreateEvent"
    ORDER_ATTRIBUTE_VALUE_CHANGE = "ServiceOrderAttributeValueChangeEvent"
    ORDER_STATE_CHANGE = "ServiceOrderStateChangeEvent"
    ORDER_DELETE = "ServiceOrderDeleteEvent"
    ORDER_INFORMATION_REQUIRED = "ServiceOrderInformationRequiredEvent"
    ORDER_MILESTONE = "ServiceOrderMilestoneEvent"
    ORDER_JEOPARDY = "ServiceOrderJeopardyEvent"
    CANCEL_CREATE = "CancelServiceOrderCreateEvent"
    CANCEL_STATE_CHANGE = "CancelServiceOrderStateChangeEvent"
    CANCEL_INFORMATION_REQUIRED = "CancelServiceOrderInformationRequiredEvent"


@dataclass(frozen=True, slots=True)
class Change:
    """One audit record: what changed on which part of the order, from what to what, by whom, when."""

    subject: str  # "serviceOrder" or "serviceOrderItem[<id>]"
    attribute: str
    old: Any
    new: Any
    at: str
    actor: str


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """A TMF641 event the change causes; its payload is the order as saved."""

    event_type: str
    at: str


@dataclass(eq=False, slots=True)
class ServiceOrderItem:
    id: str
    action: str
    state: OrderState
    attributes: dict[str, Any]  # client-supplied fields: service, quantity, relationships, ...
    children: list[ServiceOrderItem] = field(default_factory=list)
    error_messages: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> ServiceOrderItem:
        attributes = {
            k: v
            for k, v in doc.items()
            if k not in ("id", "action", "state", "serviceOrderItem", "errorMessage")
        }
        return cls(
            id=str(doc["id"]),
            action=doc["action"],
            state=OrderState(doc.get("state", S.ACKNOWLEDGED)),
            attributes=attributes,
            children=[cls.from_document(c) for c in doc.get("serviceOrderItem") or []],
            error_messages=list(doc.get("errorMessage") or []),
        )

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id, "action": self.action, "state": self.state.value}
        doc.update(self.attributes)
        if self.children:
            doc["serviceOrderItem"] = [c.to_document() for c in self.children]
        if self.error_messages:
            doc["errorMessage"] = self.error_messages
        return doc

    def walk(self) -> Iterator[ServiceOrderItem]:
        yield self
        for child in self.children:
            yield from child.walk()


class ItemNotFound(LookupError):
    """No item with that id in the order."""


@dataclass(eq=False, slots=True)
class ServiceOrder:
    id: str
    state: OrderState
    order_date: str
    items: list[ServiceOrderItem]
    attributes: dict[str, Any]  # client-supplied first-level fields other than the items
    start_date: str | None = None
    completion_date: str | None = None
    expected_completion_date: str | None = None
    jeopardy_alerts: list[dict[str, Any]] = field(default_factory=list)
    milestones: list[dict[str, Any]] = field(default_factory=list)
    error_messages: list[dict[str, Any]] = field(default_factory=list)
    # Where a cancellation assessment returns to when the cancellation is denied.
    state_before_cancellation: OrderState | None = None
    version: int = 0
    changes: list[Change] = field(default_factory=list)
    events: list[OrderEvent] = field(default_factory=list)

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def accept(cls, body: dict[str, Any], *, order_id: str, now: str, actor: str) -> ServiceOrder:
        """A new order from a validated create body: acknowledged, every item acknowledged."""
        body = copy.deepcopy(body)
        items = body.pop("serviceOrderItem")
        body.setdefault("@type", "ServiceOrder")
        order = cls(
            id=order_id,
            state=S.ACKNOWLEDGED,
            order_date=now,
            items=[ServiceOrderItem.from_document(_acknowledged(i)) for i in items],
            attributes=body,
        )
        order.changes.append(Change("serviceOrder", "state", None, S.ACKNOWLEDGED.value, now, actor))
        order.events.append(OrderEvent(EventType.ORDER_CREATE, now))
        return order

    @classmethod
    def from_document(
        cls,
        doc: dict[str, Any],
        *,
        version: int = 0,
        state_before_cancellation: str | None = None,
    ) -> ServiceOrder:
        reserved = {
            "id", "href", "state", "orderDate", "startDate", "completionDate",
            "expectedCompletionDate", "jeopardyAlert", "milestone", "errorMessage",
            "serviceOrderItem",
        }  # fmt: skip
        return cls(
            id=doc["id"],
            state=OrderState(doc["state"]),
            order_date=doc["orderDate"],
            items=[ServiceOrderItem.from_document(i) for i in doc["serviceOrderItem"]],
            attributes={k: v for k, v in doc.items() if k not in reserved},
            start_date=doc.get("startDate"),
            completion_date=doc.get("completionDate"),
            expected_completion_date=doc.get("expectedCompletionDate"),
            jeopardy_alerts=list(doc.get("jeopardyAlert") or []),
            milestones=list(doc.get("milestone") or []),
            error_messages=list(doc.get("errorMessage") or []),
            state_before_cancellation=(
                OrderState(state_before_cancellation) if state_before_cancellation else None
            ),
            version=version,
        )

    def to_document(self) -> dict[str, Any]:
        """The TMF641 representation, without `href` (the API adds it: it depends on the host)."""
        doc: dict[str, Any] = {"id": self.id}
        doc.update(self.attributes)
        doc["state"] = self.state.value
        doc["orderDate"] = self.order_date
        for name, value in (
            ("startDate", self.start_date),
            ("completionDate", self.completion_date),
            ("expectedCompletionDate", self.expected_completion_date),
        ):
            if value is not None:
                doc[name] = value
        doc["serviceOrderItem"] = [i.to_document() for i in self.items]
        for name, values in (
            ("jeopardyAlert", self.jeopardy_alerts),
            ("milestone", self.milestones),
            ("errorMessage", self.error_messages),
        ):
            if values:
                doc[name] = values
        return doc

    # --- queries ------------------------------------------------------------------------------

    def all_items(self) -> Iterator[ServiceOrderItem]:
        for item in self.items:
            yield from item.walk()

    def item(self, item_id: str) -> ServiceOrderItem:
        for item in self.all_items():
            if item.id == item_id:
                return item
        raise ItemNotFound(f"service order {self.id} has no item {item_id!r}")

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    # --- state changes ------------------------------------------------------------------------

    def move_to(self, target: OrderState, *, now: str, actor: str) -> None:
        """Move the order itself (operator, API or engine); a terminal move closes its open items."""
        self._apply_state(self, "serviceOrder", target, now=now, actor=actor)
        if target == S.ASSESSING_CANCELLATION:
            return
        cascade = CASCADE_TO_OPEN_ITEMS.get(target)
        if cascade is not None:
            for item in self.all_items():
                if item.state not in TERMINAL_STATES:
                    self._force_item_state(item, cascade, now=now, actor=actor)

    def move_item(self, item_id: str, target: OrderState, *, now: str, actor: str) -> None:
        """Move one item and roll the order state up from its items."""
        item = self.item(item_id)
        self._apply_state(item, f"serviceOrderItem[{item.id}]", target, now=now, actor=actor)
        self.events.append(OrderEvent(EventType.ORDER_ATTRIBUTE_VALUE_CHANGE, now))
        self._roll_up(now=now, actor=actor)

    def _roll_up(self, *, now: str, actor: str) -> None:
        derived = roll_up(i.state for i in self.all_items())
        if derived == self.state:
            return
        if self.state in ORDER_LEVEL_STATES and derived not in TERMINAL_STATES:
            return
        if self.state == S.ACKNOWLEDGED and derived in TERMINAL_STATES - {S.REJECTED, S.CANCELLED}:
            # acknowledged -> completed is not in the table: the order was in progress in between.
            self._apply_state(self, "serviceOrder", S.IN_PROGRESS, now=now, actor=actor)
        self._apply_state(self, "serviceOrder", derived, now=now, actor=actor)

    def _force_item_state(self, item: ServiceOrderItem, target: OrderState, *, now: str, actor: str) -> None:
        if item.state == S.ACKNOWLEDGED and target in (S.COMPLETED, S.FAILED):
            self._apply_state(item, f"serviceOrderItem[{item.id}]", S.IN_PROGRESS, now=now, actor=actor)
        if item.state in (S.PENDING, S.HELD) and target in (S.COMPLETED, S.FAILED):
            self._apply_state(item, f"serviceOrderItem[{item.id}]", S.IN_PROGRESS, now=now, actor=actor)
        self._apply_state(item, f"serviceOrderItem[{item.id}]", target, now=now, actor=actor)

    def _apply_state(
        self,
        subject: ServiceOrder | ServiceOrderItem,
        label: str,
        target: OrderState,
        *,
        now: str,
        actor: str,
    ) -> None:
        """The one place a state changes: check the table, stamp dates, record change and event."""
        current = subject.state
        if target == current:
            return
        if isinstance(subject, ServiceOrder) and current == S.ASSESSING_CANCELLATION:
            # A denied cancellation returns to the state the order came from, and only there.
            allowed = {S.PENDING_CANCELLATION}
            if self.state_before_cancellation is not None:
                allowed.add(self.state_before_cancellation)
            if target not in allowed:
                raise IllegalTransition(label, current, target, allowed=allowed)
        check_transition(label, current, target)
        subject.state = target
        self.changes.append(Change(label, "state", current.value, target.value, now, actor))
        if isinstance(subject, ServiceOrder):
            if target == S.ASSESSING_CANCELLATION:
                self.state_before_cancellation = current
            elif current == S.ASSESSING_CANCELLATION:
                self.state_before_cancellation = None
            if target == S.IN_PROGRESS and self.start_date is None:
                self._set_server_date("startDate", "start_date", now, now=now, actor=actor)
            if target == S.COMPLETED:
                self._set_server_date("completionDate", "completion_date", now, now=now, actor=actor)
            if target == S.CANCELLED and "cancellationDate" not in self.attributes:
                self.attributes["cancellationDate"] = now
            self.events.append(OrderEvent(EventType.ORDER_STATE_CHANGE, now))

    def _set_server_date(self, name: str, attr: str, value: str, *, now: str, actor: str) -> None:
        old = getattr(self, attr)
        setattr(self, attr, value)
        self.changes.append(Change("serviceOrder", name, old, value, now, actor))

    # --- attribute changes --------------------------------------------------------------------

    def set_attribute(self, name: str, value: Any, *, now: str, actor: str) -> None:
        """Set (or with None remove) a client-owned first-level attribute."""
        old = self.attributes.get(name)
        if old == value:
            return
        if value is None:
            self.attributes.pop(name, None)
        else:
            self.attributes[name] = value
        self.changes.append(Change("serviceOrder", name, old, value, now, actor))
        self.events.append(OrderEvent(EventType.ORDER_ATTRIBUTE_VALUE_CHANGE, now))

    def replace_item_attributes(
        self, item_id: str, attributes: dict[str, Any], *, now: str, actor: str
    ) -> None:
        item = self.item(item_id)
        if item.attributes == attributes:
            return
        old = item.attributes
        item.attributes = attributes
        self.changes.append(Change(f"serviceOrderItem[{item.id}]", "attributes", old, attributes, now, actor))
        self.events.append(OrderEvent(EventType.ORDER_ATTRIBUTE_VALUE_CHANGE, now))

    def record_deletion(self, *, now: str, actor: str) -> None:
        self.changes.append(Change("serviceOrder", "deleted", False, True, now, actor))
        self.events.append(OrderEvent(EventType.ORDER_DELETE, now))


def _acknowledged(item: dict[str, Any]) -> dict[str, Any]:
    item = dict(item)
    item["state"] = S.ACKNOWLEDGED.value
    item.setdefault("@type", "ServiceOrderItem")
    item["serviceOrderItem"] = [_acknowledged(c) for c in item.get("serviceOrderItem") or []]
    if not item["serviceOrderItem"]:
        del item["serviceOrderItem"]
    return item
