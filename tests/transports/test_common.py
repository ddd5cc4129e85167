"""The helpers both transports share: retry-after, proxies, headers, error bodies."""

from __future__ import annotations

import email.utils
import threading
import time
import urllib.parse
import urllib.request

import pytest

from openai_ws.exceptions import AuthenticationError, ConfigurationError, RateLimitError
from openai_ws.transports._common import (
    Deadline,
    ProxySettings,
    api_error_from_response,
    auth_headers,
    environment_proxies,
    parse_retry_after,
    resolve_proxy,
)
from tests.transports.servers import env

CLEAR = {
    name: None
    for upper in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")
    for name in (upper, upper.lower())
}


def test_deadline() -> None:
    assert Deadline(None).remaining() is None
    assert not Deadline(None).expired()
    assert Deadline(0).expired()
    remaining = Deadline(10).remaining()
    assert remaining is not None
    assert 9 < remaining <= 10


def test_deadline_cancel_wakes_a_sleep_and_runs_each_callback_once() -> None:
    deadline = Deadline(30)
    calls: list[str] = []
    deadline.on_cancel(lambda: calls.append("a"))
    unregister = deadline.on_cancel(lambda: calls.append("gone"))
    unregister()
    unregister()  # twice: nothing to remove, no error
    timer = threading.Timer(0.1, deadline.cancel)
    started = time.monotonic()
    timer.start()
    assert deadline.sleep(10) is True  # woken by the cancel, not by the 10 s
    assert time.monotonic() - started < 5
    deadline.cancel()  # idempotent: the callbacks ran once
    assert deadline.cancelled
    assert calls == ["a"]
    deadline.on_cancel(lambda: calls.append("late"))  # after the cancel: runs at once
    assert calls == ["a", "late"]
    assert deadline.sleep(10) is True  # a sleep after the cancel returns at once
    timer.join()


def test_deadline_sleep_without_cancel_runs_out() -> None:
    deadline = Deadline(None)
    started = time.monotonic()
    assert deadline.sleep(0.05) is False
    assert time.monotonic() - started >= 0.04
    assert not deadline.cancelled


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2", 2.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None), ("", None), (None, None)],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = parse_retry_after(when)
    assert seconds is not None
    assert 25 < seconds <= 30


def test_error_body_shapes() -> None:
    error = api_error_from_response(
        429,
        {"retry-after-ms": "1500", "x-request-id": "req_1"},
        b'{"error": {"message": "slow", "code": "rate_limit_exceeded"}}',
        fallback="f",
    )
    assert isinstance(error, RateLimitError)
    assert (error.retry_after, error.request_id, error.code) == (
        1.5,
        "req_1",
        "rate_limit_exceeded",
    )
    plain = api_error_from_response(401, {}, b'{"error": "bad key"}', fallback="f")
    assert isinstance(plain, AuthenticationError)
    assert plain.message == "bad key"
    empty = api_error_from_response(500, {}, b"", fallback="the request failed")
    assert empty.message == "the request failed (HTTP 500)"
    assert api_error_from_response(400, {}, b'{"message": "flat"}', fallback="f").message == "flat"


def test_auth_headers() -> None:
    headers = auth_headers("sk-abcdefgh12345", [("X-A", "1")], organization="org", project="proj")
    assert headers == {
        "X-A": "1",
        "OpenAI-Organization": "org",
        "OpenAI-Project": "proj",
        "Authorization": "Bearer sk-abcdefgh12345",
    }
    assert auth_headers(None, None) == {}
    with pytest.raises(ConfigurationError, match="strings"):
        auth_headers("k", {"X": 1})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="line break"):
        auth_headers("sk-bad\nkey", None)


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2"},
        {"HTTP_PROXY": "http://p:3", "REQUEST_METHOD": "GET"},  # CGI: HTTP_PROXY is ignored
        {"http_proxy": "http://p:4", "REQUEST_METHOD": "GET"},  # lowercase still counts
        {"HTTPS_PROXY": "http://upper:1", "https_proxy": ""},  # lowercase empty: removed
        {"Ftp_Proxy": "http://mixed:5", "NO_PROXY": "example.com,.internal", "X_PROXYZ": "no"},
        {"ALL_PROXY": "http://all:6", "no_proxy": "*"},
    ],
    ids=["none", "both-cases", "cgi", "cgi-lowercase", "empty-lowercase", "mixed", "all"],
)
def test_environment_proxies_are_urllibs(variables: dict[str, str]) -> None:
    """The environment's proxies, read without decoding every variable, are the ones urllib
    finds (its rules: lowercase names win, an empty one removes, CGI drops HTTP_PROXY)."""
    with env(**{**CLEAR, "REQUEST_METHOD": None, **variables}):
        assert environment_proxies() == urllib.request.getproxies_environment()
        for url in ("ws://example.com/v1", "wss://api.internal/v1", "ws://127.0.0.1:9/v1"):
            assert resolve_proxy(url, None) == _urllib_resolution(url)


def _urllib_resolution(url: str) -> ProxySettings:
    """resolve_proxy as urllib alone decides it (the reference for the test above)."""
    parsed = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parsed.hostname or ""):
        return ProxySettings()
    found = urllib.request.getproxies_environment()
    chosen = found.get("https" if parsed.scheme == "wss" else "http")
    return resolve_proxy(url, chosen) if chosen else ProxySettings()


def test_proxy_resolution() -> None:
    with env(**CLEAR):
        assert not resolve_proxy("wss://api.example/v1/responses", None).enabled
        explicit = resolve_proxy("wss://api.example/v1/responses", "proxy.local:3128")
        assert (explicit.host, explicit.port, explicit.auth) == ("proxy.local", 3128, None)
        assert resolve_proxy("ws://x/v1", "http://u%40x:p%3A@proxy.local").auth == ("u@x", "p:")
        assert resolve_proxy("ws://x/v1", "http://proxy.local").port == 80
        with pytest.raises(ConfigurationError, match="no host"):
            resolve_proxy("ws://x/v1", "http://:8080")
    with env(
        **{
            **CLEAR,
            "HTTPS_PROXY": "http://secure-proxy:8443",
            "HTTP_PROXY": "http://plain-proxy:8080",
        }
    ):
        assert resolve_proxy("wss://api.example/v1", None).host == "secure-proxy"
        assert resolve_proxy("ws://api.example/v1", None).host == "plain-proxy"
        assert not resolve_proxy("wss://api.example/v1", False).enabled
        assert not resolve_proxy("wss://api.example/v1", "").enabled
    with env(
        **{**CLEAR, "HTTPS_PROXY": "http://secure-proxy:8443", "NO_PROXY": ".example,localhost"}
    ):
        assert not resolve_proxy("wss://api.example/v1", None).enabled
        assert resolve_proxy("wss://api.other/v1", None).enabled
