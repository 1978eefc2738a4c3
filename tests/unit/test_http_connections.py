"""Where a URL sends a request: the origin a connection is kept for, and the target sent on it."""

from __future__ import annotations

import http.client

import pytest

from provtrack.adapters.http_connections import HttpAnswer, split_url

BASE = "tmf-api/resourceOrderingManagement/v4"


@pytest.mark.parametrize(
    ("url", "origin", "target"),
    [
        ("http://sim:8080/inventory/" + BASE, ("http", "sim", 8080), "/inventory/" + BASE),
        ("https://act.example.net/" + BASE, ("https", "act.example.net", 443), "/" + BASE),
        ("http://act.example.net", ("http", "act.example.net", 80), "/"),
        ("HTTP://Act.Example.NET:81/x", ("http", "act.example.net", 81), "/x"),
        ("http://[::1]:8080/x", ("http", "::1", 8080), "/x"),
        ("http://sim/resourceOrder/RO%2F1?state=held&f=id%2Cstate", ("http", "sim", 80),
         "/resourceOrder/RO%2F1?state=held&f=id%2Cstate"),
        ("http://sim/x#fragment", ("http", "sim", 80), "/x"),
    ],
)  # fmt: skip
def test_a_url_is_split_into_the_origin_and_the_target_kept_as_written(
    url: str, origin: tuple[str, str, int], target: str
) -> None:
    assert split_url(url) == (origin, target)


@pytest.mark.parametrize(
    "url",
    ["ftp://sim/x", "sim:8080/x", "/inventory/x", "http:///x", "http://sim:port/x", "http://sim:99999/"],
)
def test_a_url_that_names_no_http_server_is_invalid(url: str) -> None:
    with pytest.raises(http.client.InvalidURL):
        split_url(url)


def answer(body: bytes, content_type: str) -> HttpAnswer:
    headers = http.client.HTTPMessage()
    headers["Content-Type"] = content_type
    return HttpAnswer(400, body, headers)


def test_answer_text_is_decoded_with_its_charset_and_falls_back_to_utf_8() -> None:
    assert answer("déjà".encode("latin-1"), "text/plain; charset=iso-8859-1").text() == "déjà"
    assert answer("déjà".encode(), "text/plain").text() == "déjà"
    assert answer("déjà".encode(), "text/plain; charset=no-such-charset").text() == "déjà"
    assert answer(b"\xff ok", "text/plain; charset=utf-8").text() == "\ufffd ok"
