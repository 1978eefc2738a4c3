"""After signing in, a browser goes back only to a path of this server (no open redirect)."""

from __future__ import annotations

import pytest

from provtrack.domain.access import return_path


@pytest.mark.parametrize("wanted", ["/", "/jeopardy", "/orders?state=held&limit=50", "/orders/1#plan"])
def test_a_path_of_this_server_is_kept(wanted: str) -> None:
    assert return_path(wanted) == wanted


@pytest.mark.parametrize(
    "wanted",
    ["//evil.example/", "/\\evil.example/", "https://evil.example/", "evil", "", "/a\\b", "/a\nb", None, 7],
)
def test_anything_a_browser_could_read_as_another_host_is_the_start_page(wanted: object) -> None:
    assert return_path(wanted) == "/"
