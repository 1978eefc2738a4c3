"""PATCH of a service order that may revise it under way (docs/cancellation.md, "Revisions in
flight"): a change of its items once it has a plan (or once it has started) re-plans only what
changed, in the same change of the order as the rest of the patch.

An order not planned and not started, whose items keep their ids, is patched as before planning
(services/orders.patch_order's rules, domain/patching.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provtrack.domain.catalog import Catalog
from provtrack.domain.limits import DEFAULT_LIMITS, Limits
from provtrack.domain.model import ServiceOrder
from provtrack.domain.patching import apply_json_patch, apply_update, merge_patch
from provtrack.domain.plan import Plan
from provtrack.domain.revision import revise_items
from provtrack.domain.states import OrderState
from provtrack.services.ports import Context, Guard, Store, Transaction
from provtrack.services.provisioning import DISPATCH_JOB, POLL_JOB, hand_out
from provtrack.services.unit_of_work import change_order


def patch_order(
    store: Store,
    order_id: str,
    patch: Any,
    *,
    json_patch: bool,
    ctx: Context,
    catalog: Catalog | None,
    limits: Limits = DEFAULT_LIMITS,
    check: Callable[[dict[str, Any]], None] | None = None,
    guard: Guard | None = None,
) -> ServiceOrder:
    """A merge patch or a JSON patch; either way the attributes it changes are checked as they come
    out of it (`check`: the API's schema of ServiceOrder_Update, then the TMF641 rules). `guard`
    sees the order first, in the transaction (who may change it, If-Match)."""

    def change(tx: Transaction, order: ServiceOrder, plan: Plan | None) -> ServiceOrder:
        if guard is not None:
            guard(order)
        document = order.to_document()
        after = apply_json_patch(document, patch, limits) if json_patch else merge_patch(document, patch)
        if check is not None:
            check({k: v for k, v in after.items() if v is not None and document.get(k) != v})
        items = after.get("serviceOrderItem")
        if items != document["serviceOrderItem"] and _is_revision(order, plan, items):
            revised = revise_items(
                order, plan, items, catalog, now=ctx.now, actor=ctx.actor, new_id=ctx.new_id
            )
            rebased = _rebased(after, document, order.to_document())
            apply_update(order, rebased, now=ctx.now, actor=ctx.actor, limits=limits)
            if plan is not None:
                hand_out(tx, order, plan, revised.started, ctx)
            for activity_id in revised.dropped:
                tx.cancel_job(DISPATCH_JOB, activity_id)
                tx.cancel_job(POLL_JOB, activity_id)
        else:
            apply_update(order, after, now=ctx.now, actor=ctx.actor, limits=limits)
        return order

    return change_order(store, order_id, change, ctx=ctx, changes_plan=True, plan_optional=True)


def _is_revision(order: ServiceOrder, plan: Plan | None, items: Any) -> bool:
    """Items changed on an order that is planned or under way, or items added or removed (a finished
    order is left to the patch rules, which refuse it; so is a pending one, which takes only the
    information it asked for: docs/coordination.md)."""
    if order.is_terminal or order.state == OrderState.PENDING:
        return False
    if plan is not None or order.state != OrderState.ACKNOWLEDGED:
        return True
    ids = {str(i.get("id")) for i in items if isinstance(i, dict)} if isinstance(items, list) else set()
    return ids != {i.id for i in order.items}


def _rebased(after: dict[str, Any], before: dict[str, Any], revised: dict[str, Any]) -> dict[str, Any]:
    """The patched document on top of the revised order: what the patch left alone (the items, now
    revised; dates and milestones the revision moved) is taken as the revision left it."""
    rebased = {k: v for k, v in after.items() if before.get(k) != v}
    for name, value in revised.items():
        if name not in rebased and (name in after or name not in before):
            rebased[name] = value
    rebased["serviceOrderItem"] = revised["serviceOrderItem"]
    return rebased
