"""Run one benchmark in two trees of provtrack alternately, and compare their medians.

A change is "no worse" when its median is within the spread of the old one on the same machine, in
the same run: alternating the trees spreads whatever else the machine does over both. Each tree runs
its own copy of the benchmark script with its own `provtrack` package first on the path (the same
virtual environment serves both, as long as the dependencies agree).

    python bench/alternate.py --old ../provtrack-old --rounds 5 -- bench/engine_cpu.py --orders 500
    python bench/alternate.py --old ../provtrack-old --figure 'create.*?(\\d+) req/s' -- bench/create_orders.py

The figure is the first number the regular expression `--figure` captures in the script's output
(by default engine_cpu.py's "ms CPU per order").
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
DEFAULT_FIGURE = r"([\d.]+) ms CPU per order"


def run(tree: Path, script: list[str], figure: re.Pattern[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, *script], cwd=tree, env=env, capture_output=True, text=True, check=False
    )
    found = figure.search(done.stdout + done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(
            f"{tree}: {' '.join(script)} failed or printed no figure:\n{done.stdout}{done.stderr}"
        )
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--old", type=Path, required=True, help="the other tree (e.g. a git worktree of main)"
    )
    parser.add_argument("--new", type=Path, default=HERE, help="this tree by default")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--figure", default=DEFAULT_FIGURE, help="regular expression capturing the figure")
    parser.add_argument("script", nargs=argparse.REMAINDER, help="-- the benchmark and its arguments")
    args = parser.parse_args()
    script = args.script[1:] if args.script[:1] == ["--"] else args.script
    figure = re.compile(args.figure, re.S)
    figures: dict[str, list[float]] = {"old": [], "new": []}
    for round_number in range(1, args.rounds + 1):
        for name, tree in (("old", args.old), ("new", args.new)):
            figures[name].append(run(tree.resolve(), script, figure))
        print(
            f"round {round_number}/{args.rounds}: old {figures['old'][-1]:g}, new {figures['new'][-1]:g}",
            flush=True,
        )
    for name, values in figures.items():
        print(
            f"{name}: median {statistics.median(values):g} (min {min(values):g}, max {max(values):g}) of {values}"
        )
    print(f"new / old (medians): {statistics.median(figures['new']) / statistics.median(figures['old']):.3f}")


if __name__ == "__main__":
    main()
