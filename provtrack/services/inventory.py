"""Use cases of the TMF638 service inventory: what a completed item's inventory write is, and the
service id the inventory gave it."""

from __future__ import annotations

from typing import Any

from provtrack.domain import inventory
from provtrack.domain.inventory import InventoryUpdate
from provtrack.domain.model import ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.domain.states import OrderState
from provtrack.services.ports import Context, OrderNotFound, Store, Transaction
from provtrack.services.unit_of_work import change_order


def inventory_update(store: Store, order_id: str, item_id: str) -> InventoryUpdate | None:
    """The TMF638 call a completed item needs, or None (not completed, or nothing to write)."""
    with store.transaction(write=False) as tx:
        order = tx.get_order(order_id)
    if order is None or order.item(item_id).state != OrderState.COMPLETED:
        return None
    return inventory.inventory_update(order, item_id)


def record_inventory(
    store: Store, order_id: str, item_id: str, service: dict[str, Any], *, ctx: Context
) -> None:
    """The inventory holds the item's service: the item's `service` gets its id and href."""
    href = service.get("href")

    def change(_tx: Transaction, order: ServiceOrder, _plan: Plan | None) -> None:
        inventory.record_inventory_service(
            order, item_id, str(service["id"]), str(href) if href else None, now=ctx.now, actor=ctx.actor
        )

    try:
        change_order(store, order_id, change, ctx=ctx)
    except OrderNotFound:
        return  # deleted meanwhile: nothing to record
