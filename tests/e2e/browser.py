"""Debian's Chromium, headless, driven by Playwright (never `playwright install`: the browser comes
from the system, `make test` installs it). One fresh profile per launch, no network of its own."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM = os.environ.get("PROVTRACK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_or_skip() -> str:
    """The browser's path; outside CI a missing one skips the browser tests (CI must have it)."""
    if shutil.which(CHROMIUM) is None and not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            raise AssertionError(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (make test installs it)")
    return CHROMIUM


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium with a fresh user-data dir; yields the Playwright BrowserContext."""
    from playwright.sync_api import sync_playwright

    path = chromium_or_skip()
    with (
        sync_playwright() as playwright,
        tempfile.TemporaryDirectory(prefix="provtrack-chromium-") as profile,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=path,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()
