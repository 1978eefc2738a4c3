"""The operations dashboard in a real browser (Debian's Chromium through Playwright) against a real
server on loopback with seeded orders (tests/e2e/dashboard_site.py). Time is the injected clock:
the tests move it and run the worker; nothing waits for time to pass."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from provtrack.domain.clock import parse_datetime
from tests.e2e.browser import chromium
from tests.e2e.dashboard_site import Site, eline, fibre, site

__all__ = ["site"]

PAGES = ["/", "/jeopardy", "/fallout", "/queues", "/events", "/performance"]
TASKS = "/provtrack/v1/task"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as context:
        yield context


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page()
    page.problems = []
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    yield page
    page.close()


def test_each_page_renders_without_console_errors_at_desktop_and_narrow_widths(site: Site, page: Any) -> None:
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        orders = [f"/orders/{site.ids[name]}" for name in ("BSS-FIBRE-1", "BSS-FALL-1", "BSS-BIZ-1")]
        for path in [*PAGES, *orders, f"/orders/{site.ids['BSS-FALL-1']}/cancel"]:
            response = page.goto(site.page(path))
            assert response.status == 200, path
            assert page.locator("h1").first.is_visible()
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is wider than the screen at {width} px"
    assert page.problems == []


def test_filtering_by_state_narrows_the_list_and_the_url_holds_the_filter(site: Site, page: Any) -> None:
    page.goto(site.page("/"))
    assert page.locator("table.orders tbody tr").count() == 5

    page.check("input[name=state][value=held]")
    page.click("form.filters button[type=submit]")

    assert re.search(r"[?&]state=held", page.url)
    rows = page.locator("table.orders tbody tr")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-order") == site.ids["BSS-FALL-1"]
    assert page.locator(".count.chosen[data-state=held] b").inner_text() == "1"

    page.goto(site.page("/?externalId=BSS-FIBRE-2"))
    assert [r.get_attribute("data-order") for r in page.locator("table.orders tbody tr").all()] == [
        site.ids["BSS-FIBRE-2"]
    ]
    assert page.locator("input[name=externalId]").input_value() == "BSS-FIBRE-2"


def test_the_order_page_draws_the_plan_as_a_gantt_with_its_critical_path(site: Site, page: Any) -> None:
    plan = site.plan("BSS-FIBRE-3")
    page.goto(site.page(f"/orders/{site.ids['BSS-FIBRE-3']}"))

    gantt = page.locator("svg.gantt")
    assert gantt.is_visible()
    assert gantt.locator(".bar-row").count() == len(plan["activity"])
    critical = [g.get_attribute("data-activity") for g in gantt.locator(".bar-row.critical").all()]
    assert critical == [a["id"] for a in plan["activity"] if a["id"] in plan["criticalPath"]]
    assert [a["name"] for a in plan["activity"] if a["id"] in critical] == [
        "reserve-port",
        "configure-port",
        "activate-line",
    ]
    # Three dependencies, two of them on the critical path; a line at now.
    assert gantt.locator("path.dependency").count() == 3
    assert gantt.locator("path.dependency.critical").count() == 2
    assert gantt.locator(".now line").count() == 1


def test_retrying_a_fallen_out_activity_from_its_page_moves_the_order_on(site: Site, page: Any) -> None:
    assert site.order("BSS-FALL-1")["state"] == "held"
    page.goto(site.page(f"/orders/{site.ids['BSS-FALL-1']}"))

    page.click("[data-action=retry]")

    assert "Sent again" in page.locator(".notice").inner_text()
    site.run()
    page.reload()
    assert site.order("BSS-FALL-1")["state"] == "completed"
    assert page.locator(".order-head .state").first.inner_text() == "completed"
    assert page.locator("[data-action=retry]").count() == 0


def test_a_refused_action_is_explained_on_the_page(site: Site, page: Any) -> None:
    page.goto(site.page(f"/orders/{site.ids['BSS-FALL-1']}"))
    page.click("[data-action=retry]")
    site.run()
    activity = next(a for a in site.plan("BSS-FALL-1")["activity"] if a["name"] == "reserve-port")

    response = site.api.post(f"/provtrack/v1/activity/{activity['id']}/retry")
    page.goto(site.page("/fallout"))
    page.evaluate(
        """id => { const f = document.createElement('form'); f.method = 'post';
        f.action = '/activities/' + id + '/retry'; document.body.appendChild(f); f.submit(); }""",
        activity["id"],
    )
    page.wait_for_load_state()

    assert response.status_code == 409
    notice = page.locator(".notice.error").inner_text()
    assert "cannot retry activity" in notice
    assert "retry is allowed from fallout" in notice


def test_the_jeopardy_board_lists_an_order_once_its_threshold_has_passed(site: Site, page: Any) -> None:
    page.goto(site.page("/jeopardy"))
    assert page.locator(f"tr[data-order='{site.ids['BSS-BIZ-1']}']").count() == 0

    # The survey was expected to take 1 h; the order is committed at t0 + 2 h.
    site.at(site.t0 + timedelta(hours=1, minutes=55))
    page.reload()

    row = page.locator(f"#level-inJeopardy tr[data-order='{site.ids['BSS-BIZ-1']}']")
    assert row.count() == 1
    why = row.locator(".why").inner_text()
    assert "site-survey (field-engineering) has run 1h 55min, expected 1h: 55min over" in why
    assert "after the commitment" in why
    assert "business-order-in-jeopardy" in row.inner_text()
    assert "raisePriority 0" in row.inner_text()  # the ladder's next step


def test_acknowledging_an_escalation_from_the_board_stops_its_ladder(site: Site, page: Any) -> None:
    site.at(site.t0 + timedelta(hours=1, minutes=55))
    page.goto(site.page("/jeopardy"))

    page.click(f"tr[data-order='{site.ids['BSS-BIZ-1']}'] [data-action=acknowledge]")

    assert "acknowledged" in page.locator(".notice").inner_text()
    assert (
        "Acknowledged by test-admin" in page.locator(f"tr[data-order='{site.ids['BSS-BIZ-1']}']").inner_text()
    )
    site.at(site.t0 + timedelta(hours=4))  # the second step was due at +2 h 55 min
    order = site.order("BSS-BIZ-1")
    assert order["priority"] == "3"
    jeopardy = site.api.get(f"/provtrack/v1/serviceOrder/{order['id']}/jeopardy").json()
    assert [(e["stepsFired"], e["acknowledgedBy"]) for e in jeopardy["escalation"]] == [(1, "test-admin")]


def test_the_metrics_page_shows_what_the_seeded_orders_say(site: Site, page: Any) -> None:
    site.at(site.t0 + timedelta(hours=3))  # BSS-BIZ-1 is late now; BSS-FIBRE-3's poll found it done
    [port] = [a for a in site.plan("BSS-FALL-1")["activity"] if a["name"] == "reserve-port"]
    site.api.post(f"/provtrack/v1/activity/{port['id']}/retry")
    [survey] = [a for a in site.plan("BSS-BIZ-1")["activity"] if a["name"] == "site-survey"]
    site.api.post(f"/provtrack/v1/activity/{survey['id']}/skip", json={"reason": "surveyed by the partner"})
    site.run()
    orders = site.api.get("/tmf-api/serviceOrdering/v4/serviceOrder").json()
    expected = independent_figures(orders, [site.plan(o["externalId"]) for o in orders])

    page.goto(site.page("/performance?period=7d"))
    figures = site.api.get(
        "/provtrack/v1/metrics", params={"from": "2026-11-20T09:00:00Z", "to": "2026-11-27T12:00:01Z"}
    ).json()

    shown = {
        r.get_attribute("data-spec"): int(r.locator("td").nth(1).inner_text())
        for r in page.locator("#cycle-table tbody tr").all()
    }
    assert shown == {spec: len(c) for spec, c in expected["cycles"].items()}
    for c in figures["cycleTime"]:
        exact = expected["cycles"][c["serviceSpecification"]]
        assert c["completed"] == len(exact)
        assert c["p50Seconds"] == pytest.approx(nearest_rank(exact, 50), rel=0.025)
        assert c["p90Seconds"] == pytest.approx(nearest_rank(exact, 90), rel=0.025)
    assert figures["onTime"] == expected["onTime"]
    assert figures["jeopardy"] == expected["jeopardy"]
    assert figures["jeopardy"]["jeopardized"] == 1  # BSS-BIZ-1, completed late
    assert (
        page.locator("#tile-jeopardy .figure").inner_text() == f"{expected['jeopardy']['rate'] * 100:.1f} %"
    )
    fallout = {(f["system"], f["activity"]): (f["activities"], f["fellOut"]) for f in figures["fallout"]}
    assert fallout == expected["fallout"]
    assert fallout[("inventory", "reserve-port")] == (4, 1)  # four fibre orders, one fell out
    assert figures["throughput"] == [{"day": "2026-11-27", "completed": len(orders)}]


def independent_figures(orders: list[dict[str, Any]], plans: list[dict[str, Any]]) -> dict[str, Any]:
    """What the metrics should say, from the orders' and plans' own documents."""
    cycles: dict[str, list[float]] = {}
    for o in orders:
        if o["state"] == "completed":
            spec = o["serviceOrderItem"][0]["service"]["serviceSpecification"]["id"]
            took = parse_datetime(o["completionDate"]) - parse_datetime(o["orderDate"])
            cycles.setdefault(spec, []).append(took.total_seconds())
    completed = [o for o in orders if o["state"] == "completed"]
    requested = [o for o in completed if o.get("requestedCompletionDate")]
    in_time = [o for o in requested if o["completionDate"] <= o["requestedCompletionDate"]]
    jeopardized = [
        o
        for o in completed
        if any(a["jeopardyType"] in ("inJeopardy", "late") for a in o.get("jeopardyAlert", []))
    ]
    fallout: dict[tuple[str, str], tuple[int, int]] = {}
    for plan in plans:
        for a in plan["activity"]:
            if a["state"] in ("done", "skipped", "failed", "cancelled"):
                n, fell = fallout.get((a["owner"], a["name"]), (0, 0))
                fallout[(a["owner"], a["name"])] = (n + 1, fell + int(a.get("fallouts", 0) > 0))
    return {
        "cycles": cycles,
        "onTime": {
            "completed": len(completed),
            "withRequestedCompletionDate": len(requested),
            "onTime": len(in_time),
            "rate": len(in_time) / len(requested),
        },
        "jeopardy": {
            "completed": len(completed),
            "jeopardized": len(jeopardized),
            "rate": len(jeopardized) / len(completed),
        },
        "fallout": fallout,
    }


def nearest_rank(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def test_the_order_page_follows_changes_without_a_reload(site: Site, page: Any) -> None:
    order_id = site.ids["BSS-BIZ-1"]
    page.goto(site.page(f"/orders/{order_id}"))
    page.evaluate("window.__loaded = true")  # gone if the page reloads

    site.api.patch(
        f"{'/tmf-api/serviceOrdering/v4/serviceOrder'}/{order_id}",
        json={"note": [{"text": "Survey moved to Thursday", "author": "desk"}]},
        headers={"Content-Type": "application/merge-patch+json"},
    )

    page.locator(".notes", has_text="Survey moved to Thursday").wait_for(timeout=10_000)
    assert page.evaluate("window.__loaded") is True


def told(page: Any, text: str, *, tone: str = "ok") -> str:
    """The page's notice once it says `text` (a button's answer replaces the page without a load)."""
    notice = page.locator(f".notice.{tone}", has_text=text)
    notice.wait_for(timeout=10_000)
    return str(notice.inner_text())


def task_of(site: Site, external_id: str) -> dict[str, Any]:
    [task] = site.api.get(TASKS, params={"serviceOrderId": site.ids[external_id]}).json()
    return dict(task)


def test_claiming_starting_and_completing_a_task_from_its_queue_moves_the_order_on(
    site: Site, page: Any
) -> None:
    task = task_of(site, "BSS-BIZ-1")
    page.goto(site.page(f"/orders/{site.ids['BSS-BIZ-1']}"))
    page.click("[data-link=order-tasks]")  # the order's tasks, in the work queues
    row = page.locator(f"tr[data-task='{task['id']}']")
    assert row.locator(".state").inner_text() == "queued"

    page.goto(site.page("/queues?workGroup=field-engineering"))
    with page.expect_request(lambda r: r.method == "POST") as posted:
        row.locator("[data-action=claim]").click()
    told(page, "Claimed by test-admin")
    assert "x-csrf-token" in posted.value.headers  # where a session's token will go (post_form)
    assert "workGroup=field-engineering" in page.url  # back to the same view
    row.locator("[data-action=start]").click()
    told(page, "Started by test-admin")

    checklist = page.locator(f"#complete-{task['id']}")
    ready = checklist.locator("input[name='check:siteReady']")
    checklist.locator("input[name='check:cableRunMetres']").fill("35")
    checklist.locator("[data-action=complete]").click()  # the browser asks for the box first
    assert ready.evaluate("box => box.validity.valueMissing") is True
    checklist.locator("form").evaluate("form => { form.noValidate = true; form.requestSubmit(); }")
    refusal = told(page, "Checklist not filled in", tone="error")  # the use case's own wording
    assert "siteReady: required" in refusal
    assert site.api.get(f"{TASKS}/{task['id']}").json()["state"] == "inProgress"

    ready.check()
    checklist.locator("input[name='check:cableRunMetres']").fill("35")
    checklist.locator("input[name='check:remarks']").fill("riser shaft on the left")
    checklist.locator("[data-action=complete]").click()
    told(page, "Completed")
    site.run()

    done = site.api.get(f"{TASKS}/{task['id']}").json()
    assert done["state"] == "completed"
    assert done["checklistValues"] == {
        "siteReady": True,
        "cableRunMetres": 35,
        "remarks": "riser shaft on the left",
    }
    assert site.order("BSS-BIZ-1")["state"] == "completed"  # the VLAN was configured after the survey
    page.goto(site.page(f"/orders/{site.ids['BSS-BIZ-1']}"))
    assert page.locator(f".tasks tr[data-task='{task['id']}'] .state").inner_text() == "completed"
    assert page.locator(".order-head .state").first.inner_text() == "completed"


def test_the_work_queue_follows_changes_made_elsewhere_and_keeps_a_checklist_being_filled_in(
    site: Site, page: Any
) -> None:
    site.create(eline("BSS-BIZ-2"))
    mine, other = task_of(site, "BSS-BIZ-1"), task_of(site, "BSS-BIZ-2")
    for action in ("claim", "start"):
        site.api.post(f"{TASKS}/{mine['id']}/{action}", headers={"X-Actor": "test-admin"})
    page.goto(site.page("/queues"))
    page.evaluate("window.__loaded = true")  # gone if the page reloads
    page.locator(f"#complete-{mine['id']} input[name='check:cableRunMetres']").fill("42")

    site.api.post(f"{TASKS}/{other['id']}/claim", headers={"X-Actor": "farid"})

    page.locator(f"tr[data-task='{other['id']}'] td", has_text="farid").wait_for(timeout=10_000)
    assert page.evaluate("window.__loaded") is True
    assert page.locator(f"tr[data-task='{other['id']}'] [data-action=claim]").count() == 0
    field = page.locator(f"#complete-{mine['id']} input[name='check:cableRunMetres']")
    assert field.input_value() == "42"


def test_cancelling_from_the_order_page_previews_what_is_undone_then_cancels_the_order(
    site: Site, page: Any
) -> None:
    site.simulator.behaviour.refuse_specs = ["olt-config"]
    order_id = site.create(fibre("BSS-MOVE-1"))  # port reserved, line registered, configuration refused
    site.simulator.behaviour.refuse_specs = []
    plan = {a["name"]: a["id"] for a in site.plan("BSS-MOVE-1")["activity"]}
    page.goto(site.page(f"/orders/{site.ids['BSS-FIBRE-1']}"))
    assert page.locator("[data-action=cancel]").count() == 0  # completed: nothing to cancel

    page.goto(site.page(f"/orders/{order_id}"))
    page.click("[data-action=cancel]")

    assert page.url.split("?")[0].endswith(f"/orders/{order_id}/cancel")
    undone = page.locator("#impact-undo li")
    assert [li.get_attribute("data-activity") for li in undone.all()] == [
        plan["register-line"],  # undone before the port it was registered on
        plan["reserve-port"],
    ]
    assert "undone by unregister-line at activation" in undone.first.inner_text()
    assert "undone by release-port at inventory" in undone.last.inner_text()
    never = [li.get_attribute("data-activity") for li in page.locator("#impact-cancel li").all()]
    assert never == [plan["configure-port"], plan["activate-line"]]
    assert site.order("BSS-MOVE-1")["state"] == "held"  # the preview changed nothing

    page.fill("#cancel-reason", "Customer moved house")
    page.click("[data-action=confirm-cancel]")
    told(page, "Cancellation under way")
    assert page.locator(".cancellation").get_attribute("data-cancel-state") == "inProgress"
    site.run()  # the undo steps run downstream

    page.reload()
    order = site.order("BSS-MOVE-1")
    assert order["state"] == "cancelled"
    assert order["cancellationReason"] == "Customer moved house"
    assert page.locator(".cancellation").get_attribute("data-cancel-state") == "done"
    steps = page.locator(".cancel-steps tbody tr")
    assert [s.locator("td").first.inner_text() for s in steps.all()] == ["unregister-line", "release-port"]
    assert [s.locator(".state").inner_text() for s in steps.all()] == ["done", "done"]
    assert page.locator("[data-action=cancel]").count() == 0
