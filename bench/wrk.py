"""Load from Debian's `wrk` (a C client, far cheaper per request than the servers it measures).

`run_wrk` drives one server with a Lua script that cycles through prepared requests (POST bodies or
GET paths, written to a file, one a line), and returns req/s, latency percentiles and error counts;
`ServerCpu` reads the server process's CPU from /proc around it. `ensure_wrk` installs wrk with
apt-get when it is missing, as the Makefile installs Chromium.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from auth import auth_headers

# Each wrk thread cycles through the lines of REQUESTS, starting at its own offset, so the threads
# do not send the same bodies at once. Error statuses are counted by wrk ("Non-2xx or 3xx").
_SCRIPT = """
local method = "{method}"
local headers = {headers}
local lines = {{}}
for line in io.lines("{requests}") do lines[#lines + 1] = line end
local counter = 0
local thread_offset = 0
local next_id = 0

function setup(thread)
  thread:set("thread_offset", next_id * 7919)
  next_id = next_id + 1
end

function request()
  counter = counter + 1
  local line = lines[(thread_offset + counter) % #lines + 1]
  if method == "POST" then
    return wrk.format("POST", "{path}", headers, line)
  end
  return wrk.format("GET", line, headers, nil)
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers, socket errors and timeouts
    server_cpu: float | None = None  # seconds of server CPU over the run (all threads)

    @property
    def cpu_per_request_us(self) -> float | None:
        return None if self.server_cpu is None else self.server_cpu / self.requests * 1e6


def ensure_wrk() -> str:
    """The path of wrk; installed with apt-get (Debian's package) when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, env=env, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return found


def wrk_version() -> str:
    result = subprocess.run([ensure_wrk(), "-v"], check=False, capture_output=True, text=True)
    return (result.stdout + result.stderr).strip().splitlines()[0]


def write_script(
    directory: Path,
    name: str,
    *,
    method: str,
    lines: Sequence[str],
    path: str = "",
    content_type: bool = True,
) -> Path:
    """A Lua script sending `lines` in turn: POST bodies to `path`, or GET paths."""
    requests = directory / f"{name}.requests"
    requests.write_text("\n".join(lines) + "\n")
    headers = dict(auth_headers())
    if method == "POST" and content_type:
        headers["Content-Type"] = "application/json"
    lua_headers = "{" + ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items()) + "}"
    script = directory / f"{name}.lua"
    script.write_text(_SCRIPT.format(method=method, headers=lua_headers, requests=requests, path=path))
    return script


def process_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of a process, all threads (Linux /proc); None elsewhere."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(
    base_url: str,
    script: Path,
    *,
    seconds: float,
    connections: int,
    threads: int = 2,
    server_pid: int | None = None,
) -> WrkResult:
    """Run wrk for `seconds` against `base_url` (connections kept alive); the server's CPU beside it."""
    command = [
        ensure_wrk(),
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(script),
        base_url,
    ]
    before = process_cpu(server_pid)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    after = process_cpu(server_pid)
    cpu = None if before is None or after is None else after - before
    return parse(output, server_cpu=cpu)


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * _UNIT[unit]


def parse(output: str, *, server_cpu: float | None = None) -> WrkResult:
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if total is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    requests = int(total.group(1))
    seconds = _ms(total.group(2) + total.group(3)) / 1e3
    # A latency in seconds is padded with a space ("99%    1.14s ").
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    if "50" not in percentiles or "99" not in percentiles:
        raise RuntimeError(f"wrk gave no latency percentiles ({requests} requests):\n{output}")
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkResult(
        requests=requests,
        seconds=seconds,
        rate=requests / seconds,
        p50_ms=_ms(percentiles["50"]),
        p99_ms=_ms(percentiles["99"]),
        errors=errors,
        server_cpu=server_cpu,
    )
