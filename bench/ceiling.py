"""The framework ceiling: bare FastAPI endpoints that do only what any handler must.

POST parses the body the way provtrack does (orjson, then the same Pydantic type check) and answers
201 with it; GET answers a stored order document of the same size from memory. Served by uvicorn
with the settings `provtrack serve` uses, so the difference to provtrack is provtrack's own work.

    python bench/ceiling.py --port 8642 --document order.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import Response

from provtrack.api.http import check_types, read_json
from provtrack.api.schemas import ServiceOrderCreate
from provtrack.domain.limits import DEFAULT_LIMITS

BASE_PATH = "/tmf-api/serviceOrdering/v4"
JSON = "application/json;charset=utf-8"


def create_ceiling_app(document: bytes) -> FastAPI:
    app = FastAPI()
    app.state.limits = DEFAULT_LIMITS  # read_json checks the body against them, as the API does

    @app.post(f"{BASE_PATH}/serviceOrder", status_code=201)
    async def create(request: Request) -> Response:
        body = await read_json(request)
        check_types(ServiceOrderCreate, body)
        return Response(await request.body(), status_code=201, media_type=JSON)

    @app.get(BASE_PATH + "/serviceOrder/{id}")
    async def retrieve(id: str) -> Response:
        return Response(document, media_type=JSON)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--document", type=Path, required=True, help="JSON document GET answers")
    args = parser.parse_args()
    app = create_ceiling_app(args.document.read_bytes())
    # The same settings as `provtrack serve` (provtrack/cli.py): one process, defaults otherwise.
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
