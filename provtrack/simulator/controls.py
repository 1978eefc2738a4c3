"""What every simulator has besides its API: its behaviour, read and changed at run time
(`GET/PUT /simulator/behaviour`), and the background tasks that announce its orders."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from provtrack.simulator.documents import json_response


class SimulatorControls:
    """A base for the simulators: they set `behaviour` (a dataclass) and `_tasks` in `__init__`."""

    behaviour: Any
    _tasks: set[asyncio.Task[None]]

    async def get_behaviour(self) -> Response:
        return json_response(asdict(self.behaviour))

    async def set_behaviour(self, request: Request) -> Response:
        """Change the named fields of the behaviour; unknown names are ignored."""
        changes = orjson.loads(await request.body())
        for key, value in changes.items():
            if hasattr(self.behaviour, key):
                setattr(self.behaviour, key, value)
        return json_response(asdict(self.behaviour))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
