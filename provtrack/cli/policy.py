"""`provtrack policy check | simulate`: validate an escalation policy, and dry-run it on live orders."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from provtrack.cli.options import (
    DatabaseOption,
    JsonOption,
    checked,
    console,
    out,
    print_rows,
    settings_from,
    stderr_console,
)

if TYPE_CHECKING:
    from provtrack.services.escalation import Firing

policy_app = typer.Typer(help="Escalation policy (docs/policy.md).", no_args_is_help=True)


@policy_app.command("check")
def policy_check(file: Annotated[str, typer.Argument(help="policy YAML file, or `demo`")]) -> None:
    """Validate a policy; every problem is listed as FILE: line N: message (exit status 1)."""
    from provtrack.adapters.policy_file import load_policy

    policy = checked(lambda: load_policy(file))
    steps = sum(len(r.ladder) for r in policy.rules)
    console.print(
        f"{file}: ok: {len(policy.rules)} rules, {steps} steps, {len(policy.contacts)} contacts",
        soft_wrap=True,
        highlight=False,
    )


@policy_app.command("simulate")
def policy_simulate(  # noqa: PLR0917 - Typer maps each parameter to an option
    file: Annotated[str, typer.Argument(help="policy YAML file, or `demo`")],
    database: DatabaseOption = None,
    at: Annotated[
        str | None, typer.Option("--at", help="simulate at this instant (ISO 8601); default now")
    ] = None,
    show: Annotated[int, typer.Option("--show", help="list at most this many firings")] = 20,
    batch: Annotated[int, typer.Option(help="orders read per query")] = 2000,
    as_json: JsonOption = False,
) -> None:
    """What the policy would do now for the live orders, and for whom, without doing it."""
    from provtrack.adapters.policy_file import load_policy
    from provtrack.adapters.store.escalation import count_open_orders, open_order_snapshots
    from provtrack.bootstrap import Assembly
    from provtrack.domain.clock import parse_datetime
    from provtrack.services.escalation import OrderSnapshot, simulate

    policy = checked(lambda: load_policy(file))
    now = parse_datetime(at) if at else datetime.now(UTC)
    store = checked(lambda: Assembly.build(settings_from(database_url=database))).store
    per_step: Counter[tuple[str, int, str]] = Counter()
    per_recipient: Counter[str] = Counter()
    listed: list[Firing] = []
    orders = 0
    try:
        with store.engine.connect() as conn:
            total = count_open_orders(conn)
            columns = (
                TextColumn("simulating"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=stderr_console(), transient=True) as progress:
                task = progress.add_task("orders", total=total)

                def batches() -> Iterator[list[OrderSnapshot]]:
                    nonlocal orders
                    for snapshots in open_order_snapshots(conn, batch=batch):
                        yield snapshots
                        orders += len(snapshots)
                        progress.advance(task, len(snapshots))

                # Millions of short-lived, acyclic objects: the cycle collector would only rescan them.
                gc.disable()
                for firing in simulate(policy, batches(), now=now):
                    per_step[(firing.rule, firing.step, "; ".join(firing.actions))] += 1
                    for recipient in firing.recipients:
                        per_recipient[recipient] += 1
                    if len(listed) < show:
                        listed.append(firing)
    finally:
        gc.enable()
        store.dispose()
    _report(orders, now, per_step, per_recipient, listed, as_json=as_json)


def _report(
    orders: int,
    now: datetime,
    per_step: Counter[tuple[str, int, str]],
    per_recipient: Counter[str],
    listed: Sequence[Firing],
    *,
    as_json: bool,
) -> None:
    """Totals per step and per recipient, then the first firings; with --json the firings alone,
    one object per line on stdout, and the totals line on stderr."""
    from provtrack.domain.clock import format_datetime

    rows = [
        {
            "serviceOrder": f.order_id,
            "rule": f.rule,
            "step": f.step,
            "actions": "; ".join(f.actions),
            "recipients": ", ".join(f.recipients),
        }
        for f in listed
    ]
    totals = f"{orders} open orders at {format_datetime(now)}: {sum(per_step.values())} steps would fire"
    if as_json:
        console.print(totals)
        print_rows({}, rows, keys=[], as_json=True)
        return
    out.print(totals)
    if per_step:
        table = Table("rule", "step", "actions", "orders")
        for (rule, step, actions), count in sorted(per_step.items()):
            table.add_row(rule, str(step), actions, str(count))
        out.print(table)
    if per_recipient:
        table = Table("told", "notifications")
        for recipient, count in per_recipient.most_common():
            table.add_row(recipient, str(count))
        out.print(table)
    if rows:
        columns = {"serviceOrder": "order", "rule": "rule", "step": "step", "actions": "actions"}
        print_rows({**columns, "recipients": "told"}, rows, keys=["serviceOrder"], as_json=False)
