"""The one place the benchmarks take their credentials from.

Every bench sends `auth_headers()` with every request, so when the API asks for a bearer token
(issue 13) setting `PROVTRACK_BENCH_TOKEN` is all a run needs; without it nothing is sent.
"""

from __future__ import annotations

import os

TOKEN_VARIABLE = "PROVTRACK_BENCH_TOKEN"


def auth_headers() -> dict[str, str]:
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}
