"""The catalog's work groups, partners and manual-task terms, and what a plan takes from them."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from provtrack.adapters.catalog_file import parse_catalog_text
from provtrack.domain.catalog import InvalidCatalog, Progress
from provtrack.domain.model import ServiceOrder
from provtrack.domain.partners import Credentials, PartnerReport, Scheme, apply_report
from provtrack.domain.plan import build_plan, start, update_expected_completion
from provtrack.domain.work_groups import FieldType

T0 = "2026-11-27T09:00:00.000Z"  # a Friday
CATALOG = """\
workGroups:
  techs:
    members: [amelie, bruno]
    capacity: 2
    timeZone: Europe/Paris
    workingHours: {mon-fri: "08:00-12:00, 13:00-17:00"}
    holidays: ["12-25"]
partners:
  logistics:
    url: https://logistics.example.com/tmf-api/serviceOrdering/v4
    pollInterval: PT30M
    credentials: {type: basic, username: provtrack, password: {env: LOGISTICS_PASSWORD}}
services:
  fibre:
    add:
      - {id: ship, kind: partnerOrder, partner: logistics, serviceSpecification: ont-shipment,
         characteristics: {address: "{installationAddress:unknown}"}, expectedDuration: P2D}
      - id: install
        kind: manualTask
        workGroup: techs
        after: [ship]
        expectedDuration: PT3H
        checklist: [{name: ontSerial}, {name: outcome, type: choice, values: [ok, partial]}]
      - {id: report, kind: partnerOrder, partner: logistics, serviceSpecification: return-label,
         characteristics: {serial: "{ontSerial}"}, after: [install], expectedDuration: PT1H}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(InvalidCatalog) as refused:
        parse_catalog_text(text, source="c.yaml")
    return str(refused.value).splitlines()


def test_work_groups_partners_and_task_terms_are_read() -> None:
    catalog = parse_catalog_text(CATALOG, source="c.yaml")
    techs = catalog.work_groups["techs"]
    assert (techs.members, techs.capacity, techs.hours.zone_name) == (("amelie", "bruno"), 2, "Europe/Paris")
    logistics = catalog.partners["logistics"]
    assert (logistics.progress, logistics.poll_interval) == (Progress.HUB, timedelta(minutes=30))
    assert logistics.credentials == Credentials(Scheme.BASIC, "LOGISTICS_PASSWORD", "provtrack")
    install = catalog.services["fibre"].activities["add"][1]
    assert install.task is not None
    assert [(f.name, f.type) for f in install.task.checklist] == [
        ("ontSerial", FieldType.TEXT),
        ("outcome", FieldType.CHOICE),
    ]


def test_a_secret_written_in_the_catalog_is_refused_with_its_line() -> None:
    text = CATALOG.replace("password: {env: LOGISTICS_PASSWORD}", "password: hunter2")
    assert problems(text) == [
        "c.yaml:12: partners.logistics.credentials.password: give it by reference, {env: VARIABLE}; "
        "a secret is never written in the catalog"
    ]


def test_bad_hours_an_unknown_zone_and_misplaced_terms_are_refused() -> None:
    text = (
        CATALOG.replace("Europe/Paris", "Mars/Olympus")
        .replace("08:00-12:00, 13:00-17:00", "8 to 5")
        .replace("serviceSpecification: ont-shipment,", "checklist: [],")
    )
    assert problems(text) == [
        "c.yaml:6: workGroups.techs.workingHours: '8 to 5' is not a range of local times such as 08:00-17:00",
        "c.yaml:16: services.fibre.add.ship: a partnerOrder activity needs `serviceSpecification` (at the partner)",
    ]
    manual_terms_elsewhere = CATALOG.replace(
        "serviceSpecification: return-label,", "serviceSpecification: r, instructions: x,"
    )
    assert problems(manual_terms_elsewhere) == [
        "c.yaml:24: services.fibre.add.report.instructions: only a manualTask activity has `instructions`"
    ]
    assert problems(CATALOG.replace("Europe/Paris", "Mars/Olympus"))[0].endswith(
        "workGroups.techs: unknown time zone 'Mars/Olympus' (an IANA name such as Europe/Paris)"
    )


def test_a_plan_takes_the_groups_hours_and_leaves_checklist_fields_for_later() -> None:
    catalog = parse_catalog_text(CATALOG, source="c.yaml")
    item = {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "fibre"}}}
    order = ServiceOrder.accept({"serviceOrderItem": [item]}, order_id="so", now=T0, actor="t")
    ids = (f"a{n}" for n in itertools.count(1))
    plan = build_plan(order, catalog, now=T0, new_id=lambda: next(ids))

    ship, install, report = plan.activities
    assert ship.characteristics == {"address": "unknown"}
    assert install.working_hours == catalog.work_groups["techs"].hours
    assert (report.characteristics, report.deferred_characteristics) == ({}, {"serial": "{ontSerial}"})

    start(plan, order, now=T0, actor="t")
    # Two days of shipping end Sunday 09:00 UTC; three working hours end Monday 11:00 in Paris.
    assert install.planned_end == "2026-11-30T10:00:00.000Z"
    assert order.expected_completion_date == "2026-11-30T11:00:00.000Z"

    # The partner's own date takes the place of the expected two days.
    report_doc = {"id": "P-1", "state": "inProgress", "expectedCompletionDate": "2026-12-02T12:00:00Z",
                  "milestone": [{"id": "m1", "name": "shipped", "milestoneDate": T0}]}  # fmt: skip
    ship.external_id = "P-1"
    apply_report(plan, order, ship, PartnerReport.read(report_doc), now=T0, actor="t")
    apply_report(plan, order, ship, PartnerReport.read(report_doc), now=T0, actor="t")  # read twice
    update_expected_completion(plan, order, now=T0, actor="t")
    assert install.planned_start == "2026-12-02T12:00:00.000Z"
    assert [m["name"] for m in order.milestones] == ["ship: shipped"]


def test_a_partner_that_holds_blocks_the_activity_with_its_reason() -> None:
    catalog = parse_catalog_text(CATALOG, source="c.yaml")
    item = {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "fibre"}}}
    order = ServiceOrder.accept({"serviceOrderItem": [item]}, order_id="so", now=T0, actor="t")
    plan = build_plan(order, catalog, now=T0, new_id=iter(["a", "b", "c"]).__next__)
    start(plan, order, now=T0, actor="t")
    ship = plan.activities[0]
    held = {"id": "P-1", "state": "held", "note": [{"text": "address unknown to the carrier"}]}

    apply_report(plan, order, ship, PartnerReport.read(held), now=T0, actor="t")

    assert (ship.state.value, ship.reason) == ("blocked", "address unknown to the carrier")
