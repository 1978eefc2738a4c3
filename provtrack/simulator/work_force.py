"""The demo's simulated work force: technicians, engineers and the NOC working their queues through
the work API (`/provtrack/v1/task`), at a pace a person can watch.

A member claims the most urgent task of their group's queue after a short while, starts it (once
the appointment has come and the group has room), and completes it some seconds later with its
checklist filled in. Now and then a task fails with a reason code, is handed back, or asks the
customer for a missing detail, which the simulated customer supplies by a PATCH of the order a
few seconds later.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

TASKS = "/provtrack/v1/task"
ORDERS = "/tmf-api/serviceOrdering/v4/serviceOrder"
OPEN = "queued,assigned,inProgress,waitingForInformation"
log = structlog.get_logger("provtrack.demo.work_force")


@dataclass
class Pace:
    """Seconds, drawn between the bounds: how the simulated people take their time."""

    claim: tuple[float, float] = (2.0, 6.0)  # a queued task waits this long for somebody
    work: tuple[float, float] = (6.0, 15.0)  # a started task takes this long
    answer: tuple[float, float] = (4.0, 8.0)  # the customer supplies missing information after this
    failure_rate: float = 0.04
    hand_back_rate: float = 0.03
    information_rate: float = 0.05


@dataclass
class WorkForce:
    """Works the queues of a running provtrack; `step()` is one look at them."""

    client: httpx.Client
    pace: Pace = field(default_factory=Pace)
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic
    _due: dict[str, float] = field(default_factory=dict)  # task id -> when its next step may happen
    _members: dict[str, list[str]] = field(default_factory=dict)

    def step(self) -> int:
        """Look at every open task and take the steps that are due; returns how many were taken."""
        response = self.client.get(TASKS, params={"state": OPEN, "limit": 1000})
        response.raise_for_status()
        taken = 0
        for task in response.json():
            due = self._due.setdefault(task["id"], self.clock() + self._draw(self._wait_for(task)))
            if self.clock() >= due and self._act(task):
                taken += 1
        return taken

    def _wait_for(self, task: dict[str, Any]) -> tuple[float, float]:
        return {"inProgress": self.pace.work, "waitingForInformation": self.pace.answer}.get(
            task["state"], self.pace.claim
        )

    def _draw(self, bounds: tuple[float, float]) -> float:
        return self.rng.uniform(*bounds)

    def _again(self, task: dict[str, Any], state: str) -> None:
        self._due[task["id"]] = self.clock() + self._draw(self._wait_for({"state": state}))

    def _act(self, task: dict[str, Any]) -> bool:
        state = task["state"]
        if state == "queued":
            return self._claim(task)
        if state == "assigned":
            return self._post(task, "start", task["assignee"], next_state="inProgress")
        if state == "inProgress":
            return self._finish(task)
        return self._answer(task)

    def _claim(self, task: dict[str, Any]) -> bool:
        members = self._members_of(task["workGroup"]) or ["demo-worker"]
        return self._post(task, "claim", self.rng.choice(members), next_state="assigned")

    def _finish(self, task: dict[str, Any]) -> bool:
        person, roll = task["assignee"], self.rng.random()
        p = self.pace
        if roll < p.failure_rate:
            code = self.rng.choice(task["failureCodes"])
            return self._post(
                task, "fail", person, {"reasonCode": code, "reason": "simulated"}, next_state=""
            )
        if roll < p.failure_rate + p.hand_back_rate:
            return self._post(
                task, "handBack", person, {"reason": "called to another site"}, next_state="queued"
            )
        if roll < p.failure_rate + p.hand_back_rate + p.information_rate and not task.get(
            "informationRequired"
        ):
            body = {
                "informationRequired": [
                    {"name": "accessCode", "description": "the door code of the building"}
                ]
            }
            return self._post(task, "requestInformation", person, body, next_state="waitingForInformation")
        checklist = {
            f["name"]: self._value(f) for f in task["checklist"] if f["required"] or self.rng.random() < 0.5
        }
        return self._post(task, "complete", person, {"checklist": checklist}, next_state="")

    def _answer(self, task: dict[str, Any]) -> bool:
        """The customer supplies what a task asked for, by a JSON patch of the order."""
        order_id = task["serviceOrder"]["id"]
        order = self.client.get(f"{ORDERS}/{order_id}").json()
        asked = [
            e["informationRequired"] for e in order.get("errorMessage") or [] if e.get("informationRequired")
        ]
        patch = [
            {"op": "add", "path": a["path"], "value": self._answer_value(a)}
            for a in asked[-1:]
            if a.get("path")
        ]
        if not patch:
            return False
        response = self.client.patch(
            f"{ORDERS}/{order_id}", json=patch, headers={"Content-Type": "application/json-patch+json"}
        )
        self._again(task, "inProgress")
        return response.status_code == 200

    def _answer_value(self, asked: dict[str, Any]) -> Any:
        characteristic = {"name": asked["characteristic"], "value": f"{self.rng.randint(1000, 9999)}B"}
        return characteristic if asked["path"].endswith("/-") else [characteristic]

    def _post(
        self,
        task: dict[str, Any],
        action: str,
        person: str,
        body: dict[str, Any] | None = None,
        *,
        next_state: str,
    ) -> bool:
        response = self.client.post(f"{TASKS}/{task['id']}/{action}", json=body, headers={"X-Actor": person})
        if response.status_code == 200:
            log.info("task " + action, task=task["id"][:8], group=task["workGroup"], person=person)
            if next_state:
                self._again(task, next_state)
            return True
        # 409: the appointment has not come, the group is busy, someone else took it: later.
        self._again(task, task["state"])
        return False

    def _members_of(self, group: str) -> list[str]:
        if group not in self._members:
            response = self.client.get(f"/provtrack/v1/workGroup/{group}")
            self._members[group] = (
                list(response.json().get("members") or []) if response.status_code == 200 else []
            )
        return self._members[group]

    def _value(self, checklist_field: dict[str, Any]) -> Any:
        kind = checklist_field["type"]
        values: dict[str, Any] = {
            "number": round(self.rng.uniform(-24.0, -12.0), 1),
            "integer": self.rng.randint(1, 100),
            "boolean": True,
            "date": datetime.now(UTC).date().isoformat(),
            "choice": (checklist_field.get("values") or [""])[0],
        }
        return values.get(kind, f"SN-{self.rng.randint(100000, 999999)}")


def run_work_force(
    base_url: str,
    *,
    stop: threading.Event,
    every: float = 1.0,
    seed: int | None = None,
    token: str | None = None,
) -> None:
    """Work the queues of the server at `base_url` until `stop` is set, with the bearer `token`
    (tasks:work and orders:read)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=base_url, timeout=10, headers=headers) as client:
        force = WorkForce(client, rng=random.Random(seed))
        while not stop.wait(every):
            try:
                force.step()
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                log.warning("work force step failed; next one in a moment", error=str(exc))
