"""The service order aggregate: an order, its items, and every change made to them.

Every state change of the order or of an item goes through `ServiceOrder._apply_state`, which checks
the transition table, stamps the dates the change implies and records an audit `Change` and the TMF641
event it causes. The use case that loaded the order persists both in the transaction that saves it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from provtrack.domain.states import (
    TERMINAL_STATES,
    IllegalTransition,
    OrderState,
    check_transition,
    roll_up,
    route,
)

# Order-level states the operator, the engine or the cancellation flow sets; item progress neither
# sets nor overrides them.
ORDER_LEVEL_STATES = frozenset(
    {OrderState.PENDING, OrderState.HELD, OrderState.ASSESSING_CANCELLATION, OrderState.PENDING_CANCELLATION}
)

# Once the order has ended, expectedCompletionDate says what happened: it ended then, for an order
# that ran to an end (completed, partial, failed); none for one that will never complete (cancelled,
# rejected), whose end cancellationDate or the errorMessage records.
RAN_TO_AN_END = frozenset({OrderState.COMPLETED, OrderState.PARTIAL, OrderState.FAILED})

# When the order ends, its open items follow: to the first of these states they can reach.
CASCADE_TO_OPEN_ITEMS: dict[OrderState, tuple[OrderState, ...]] = {
    OrderState.COMPLETED: (OrderState.COMPLETED,),
    OrderState.FAILED: (OrderState.FAILED,),
    OrderState.PARTIAL: (OrderState.FAILED,),
    OrderState.CANCELLED: (OrderState.CANCELLED,),
    # Only an acknowledged item can be rejected (§3); one that has moved on is cancelled instead.
    OrderState.REJECTED: (OrderState.REJECTED, OrderState.CANCELLED),
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
            state=OrderState(doc.get("state", OrderState.ACKNOWLEDGED)),
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
    # The API client that placed the order (not part of the TMF641 document); None: placed before
    # access control. Only that client, or an administrator, sees the order (domain/access.py).
    client: str | None = None
    deleted: bool = False  # record_deletion: the unit of work removes it instead of saving it
    changes: list[Change] = field(default_factory=list)
    events: list[OrderEvent] = field(default_factory=list)

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def accept(
        cls, body: dict[str, Any], *, order_id: str, now: str, actor: str, client: str | None = None
    ) -> ServiceOrder:
        """A new order from a validated create body: acknowledged, every item acknowledged."""
        body = copy_json(body)
        items = body.pop("serviceOrderItem")
        body.setdefault("@type", "ServiceOrder")
        order = cls(
            id=order_id,
            state=OrderState.ACKNOWLEDGED,
            order_date=now,
            items=[ServiceOrderItem.from_document(_acknowledged(i)) for i in items],
            attributes=body,
            client=client,
        )
        order.changes.append(Change("serviceOrder", "state", None, OrderState.ACKNOWLEDGED.value, now, actor))
        order.events.append(OrderEvent(EventType.ORDER_CREATE, now))
        return order

    @classmethod
    def from_document(
        cls,
        doc: dict[str, Any],
        *,
        version: int = 0,
        state_before_cancellation: str | None = None,
        client: str | None = None,
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
            client=client,
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
        """Move the order itself (operator, API or engine); a terminal move closes its open items.

        Checked whole before anything changes: a move its open items cannot follow is refused.
        """
        self._check_move(self, "serviceOrder", target)
        closing = self._closing_moves(target)
        self._apply_state(self, "serviceOrder", target, now=now, actor=actor)
        self._apply_item_moves(closing, now=now, actor=actor)

    def move_item(self, item_id: str, target: OrderState, *, now: str, actor: str) -> None:
        """Move one item and roll the order state up from its items.

        Checked whole before anything changes: an item move the order cannot follow is refused.
        """
        item = self.item(item_id)
        self._check_move(item, _label(item), target)
        if target == item.state:
            return
        order_steps = self._roll_up_route(item, target)
        # One rejected item rejects the order, and with it the items still open.
        closing = self._closing_moves(order_steps[-1], skip=item) if order_steps else []
        self._apply_state(item, _label(item), target, now=now, actor=actor)
        self.events.append(OrderEvent(EventType.ORDER_ATTRIBUTE_VALUE_CHANGE, now))
        for step in order_steps:
            self._apply_state(self, "serviceOrder", step, now=now, actor=actor)
        self._apply_item_moves(closing, now=now, actor=actor)

    def _closing_moves(
        self, target: OrderState, *, skip: ServiceOrderItem | None = None
    ) -> list[tuple[ServiceOrderItem, tuple[OrderState, ...]]]:
        """The moves that close the open items of an order going to `target` (none if it stays open)."""
        ends = CASCADE_TO_OPEN_ITEMS.get(target, ())
        moves = []
        for item in self.all_items():
            if not ends or item is skip or item.state in TERMINAL_STATES:
                continue
            routes = (route(item.state, end) for end in ends)
            steps = next((r for r in routes if r is not None), None)
            if steps is None:
                raise IllegalTransition(_label(item), item.state, ends[0])
            moves.append((item, steps))
        return moves

    def _apply_item_moves(
        self, moves: list[tuple[ServiceOrderItem, tuple[OrderState, ...]]], *, now: str, actor: str
    ) -> None:
        for item, steps in moves:
            for step in steps:
                self._apply_state(item, _label(item), step, now=now, actor=actor)

    def _roll_up_route(self, moved: ServiceOrderItem, target: OrderState) -> tuple[OrderState, ...]:
        """The order moves that follow `moved` going to `target` (roll-up, TMF641-NOTES §3).

        The order starts when an item does and finishes when they all have. The states in between
        (held, pending, the cancellation states) are the order's own, set by the operator, the engine
        or the cancellation flow: item progress neither sets nor overrides them.
        """
        derived = roll_up(target if i is moved else i.state for i in self.all_items())
        if derived in TERMINAL_STATES:
            first_steps = self._first_steps(self)
            steps = route(self.state, derived, first_steps=first_steps)
            if steps is None:
                raise IllegalTransition("serviceOrder", self.state, derived, allowed=first_steps)
            return steps
        if self.state == OrderState.ACKNOWLEDGED and derived == OrderState.IN_PROGRESS:
            return (OrderState.IN_PROGRESS,)
        return ()

    def _first_steps(self, subject: ServiceOrder | ServiceOrderItem) -> frozenset[OrderState] | None:
        """Where the order may go out of a cancellation assessment: back to its origin, or on."""
        if subject is not self or self.state != OrderState.ASSESSING_CANCELLATION:
            return None
        allowed = {OrderState.PENDING_CANCELLATION}
        if self.state_before_cancellation is not None:
            allowed.add(self.state_before_cancellation)
        return frozenset(allowed)

    def _check_move(self, subject: ServiceOrder | ServiceOrderItem, label: str, target: OrderState) -> None:
        if target == subject.state:
            return
        first_steps = self._first_steps(subject)
        if first_steps is not None and target not in first_steps:
            # A denied cancellation returns to the state the order came from, and only there.
            raise IllegalTransition(label, subject.state, target, allowed=first_steps)
        check_transition(label, subject.state, target)

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
        self._check_move(subject, label, target)
        subject.state = target
        self.changes.append(Change(label, "state", current.value, target.value, now, actor))
        if isinstance(subject, ServiceOrder):
            if target == OrderState.ASSESSING_CANCELLATION:
                self.state_before_cancellation = current
            elif current == OrderState.ASSESSING_CANCELLATION:
                self.state_before_cancellation = None
            if target == OrderState.IN_PROGRESS and self.start_date is None:
                self._set_server_date("startDate", "start_date", now, now=now, actor=actor)
            if target == OrderState.COMPLETED:
                self._set_server_date("completionDate", "completion_date", now, now=now, actor=actor)
            if target == OrderState.CANCELLED and "cancellationDate" not in self.attributes:
                self.attributes["cancellationDate"] = now
                self.changes.append(Change("serviceOrder", "cancellationDate", None, now, now, actor))
            if target in TERMINAL_STATES:
                self._settle_expected_completion(
                    now if target in RAN_TO_AN_END else None, now=now, actor=actor
                )
            self.events.append(OrderEvent(EventType.ORDER_STATE_CHANGE, now))
            if target == OrderState.PENDING:
                # TMF641: an order waiting for information says so to whoever must supply it.
                self.events.append(OrderEvent(EventType.ORDER_INFORMATION_REQUIRED, now))

    def _settle_expected_completion(self, value: str | None, *, now: str, actor: str) -> None:
        """The projection gives way to what happened (RAN_TO_AN_END): the plan and the jeopardy refresh
        project it only while the order is open."""
        if value != self.expected_completion_date:
            self._set_server_date(
                "expectedCompletionDate", "expected_completion_date", value, now=now, actor=actor
            )

    def _set_server_date(self, name: str, attr: str, value: str | None, *, now: str, actor: str) -> None:
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

    def add_item(self, document: dict[str, Any], *, now: str, actor: str) -> ServiceOrderItem:
        """A top-level item added to the order (a revision under way): acknowledged, announced."""
        item = ServiceOrderItem.from_document(_acknowledged(document))
        self.items.append(item)
        self.changes.append(Change(_label(item), "added", None, item.to_document(), now, actor))
        self.events.append(OrderEvent(EventType.ORDER_ATTRIBUTE_VALUE_CHANGE, now))
        return item

    def remove_item(self, item_id: str, *, now: str, actor: str) -> None:
        """A top-level item taken out of the order (a revision under way), recorded and announced."""
        item = next(i for i in self.items if i.id == item_id)
        self.items.remove(item)
        self.changes.append(Change(_label(item), "removed", item.to_document(), None, now, actor))
        self.events.append(OrderEvent(EventType.ORDER_ATTRIBUTE_VALUE_CHANGE, now))

    @property
    def jeopardy_level(self) -> str:
        """The level of the last jeopardy alert (`onTrack` when none was ever raised)."""
        if not self.jeopardy_alerts:
            return "onTrack"
        return str(self.jeopardy_alerts[-1].get("jeopardyType", "onTrack"))

    def record_jeopardy(self, level: str, *, name: str, message: str, now: str, actor: str) -> bool:
        """Append a TMF641 jeopardyAlert when the level changed (recovery included); True if it did."""
        if level == self.jeopardy_level:
            return False
        alert = {
            "id": str(len(self.jeopardy_alerts) + 1),
            "alertDate": now,
            "jeopardyType": level,
            "name": name,
            "message": message,
            "@type": "JeopardyAlert",
        }
        self.jeopardy_alerts.append(alert)
        self.changes.append(Change("serviceOrder", "jeopardyAlert", None, alert, now, actor))
        self.events.append(OrderEvent(EventType.ORDER_JEOPARDY, now))
        return True

    def set_expected_completion(self, value: str, *, now: str, actor: str) -> None:
        if value != self.expected_completion_date:
            self._set_server_date(
                "expectedCompletionDate", "expected_completion_date", value, now=now, actor=actor
            )

    def record_deletion(self, *, now: str, actor: str) -> None:
        self.deleted = True
        self.changes.append(Change("serviceOrder", "deleted", False, True, now, actor))
        self.events.append(OrderEvent(EventType.ORDER_DELETE, now))


def _label(item: ServiceOrderItem) -> str:
    return f"serviceOrderItem[{item.id}]"


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists, immutable scalars): several times faster than deepcopy."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def _acknowledged(item: dict[str, Any]) -> dict[str, Any]:
    item = dict(item)
    item["state"] = OrderState.ACKNOWLEDGED.value
    item.setdefault("@type", "ServiceOrderItem")
    item["serviceOrderItem"] = [_acknowledged(c) for c in item.get("serviceOrderItem") or []]
    if not item["serviceOrderItem"]:
        del item["serviceOrderItem"]
    return item
