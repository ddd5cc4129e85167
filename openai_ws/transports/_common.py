"""Pieces both transports share: deadlines, proxy resolution, error bodies."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .._redact import register_secret
from ..exceptions import APIError, ConfigurationError, api_error_from_fields
from ..protocol import parse_retry_after, retry_after_from_headers

__all__ = [
    "Deadline",
    "ProxySettings",
    "api_error_from_response",
    "auth_headers",
    "parse_retry_after",
    "resolve_proxy",
]


class Deadline:
    """A point in time after which waiting has to stop; ``None`` means never."""

    __slots__ = ("_end",)

    def __init__(self, seconds: float | None) -> None:
        self._end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None for no deadline."""
        if self._end is None:
            return None
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end


def auth_headers(
    api_key: str | None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    *,
    organization: str | None = None,
    project: str | None = None,
) -> dict[str, str]:
    """The request headers: user headers, then organization/project, then Authorization.

    The key is registered with the redactor, so it never shows in messages or logs.
    """
    out: dict[str, str] = {}
    if headers:
        items = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in items:
            if not isinstance(name, str) or not isinstance(value, str):
                raise ConfigurationError("header names and values must be strings")
            if "\r" in name + value or "\n" in name + value:
                raise ConfigurationError(f"header {name!r} contains a line break")
            out[name] = value
    if organization:
        out["OpenAI-Organization"] = organization
    if project:
        out["OpenAI-Project"] = project
    if api_key:
        if any(c in api_key for c in "\r\n"):
            raise ConfigurationError("the API key contains a line break")
        register_secret(api_key)
        out["Authorization"] = f"Bearer {api_key}"
    return out


@attrs.frozen
class ProxySettings:
    """An HTTP proxy to tunnel through (CONNECT), or none."""

    host: str | None = None
    port: int = 0
    auth: tuple[str, str] | None = attrs.field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        return self.host is not None


def resolve_proxy(url: str, proxy: str | bool | None) -> ProxySettings:
    """The proxy for *url*, as requests would choose it.

    Args:
        url: the ``ws://``/``wss://`` URL to reach.
        proxy: an ``http://[user:pass@]host:port`` URL; ``False`` (or ``""``) for no proxy even
            if the environment names one; None to use ``HTTPS_PROXY`` (for ``wss``) or
            ``HTTP_PROXY`` (for ``ws``), unless ``NO_PROXY`` covers the host.
    """
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or ""
    if proxy is False or proxy == "":
        return ProxySettings()
    if proxy is None or proxy is True:
        if urllib.request.proxy_bypass(host):
            return ProxySettings()
        found = urllib.request.getproxies_environment()
        proxy = found.get("https" if parsed.scheme in ("wss", "https") else "http")
        if not proxy:
            return ProxySettings()
    target = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if target.scheme not in ("http", ""):
        raise ConfigurationError(
            f"only http:// proxies (HTTP CONNECT) are supported for WebSocket, got {target.scheme}://"
        )
    if not target.hostname:
        raise ConfigurationError("the proxy URL has no host")
    auth = None
    if target.username:
        auth = (
            urllib.parse.unquote(target.username),
            urllib.parse.unquote(target.password or ""),
        )
    return ProxySettings(target.hostname, target.port or 80, auth)


def api_error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, *, fallback: str
) -> APIError:
    """The typed :class:`~openai_ws.exceptions.APIError` for an HTTP error response."""
    error: Mapping[str, Any] = {}
    try:
        decoded = json.loads(body) if body else None
    except ValueError:
        decoded = None
    if isinstance(decoded, dict):
        inner = decoded.get("error", decoded)
        if isinstance(inner, dict):
            error = inner
        elif isinstance(inner, str):
            error = {"message": inner}
    message = error.get("message")
    if not isinstance(message, str) or not message:
        text = body.decode("utf-8", "replace").strip()[:200]
        message = f"{fallback} (HTTP {status})" + (f": {text}" if text and not decoded else "")
    retry_after = retry_after_from_headers(headers)

    def text_or_none(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    return api_error_from_fields(
        message=message,
        code=text_or_none(error.get("code")),
        type=text_or_none(error.get("type")),
        param=text_or_none(error.get("param")),
        status_code=status,
        request_id=headers.get("x-request-id"),
        headers=dict(headers),
        retry_after=retry_after,
    )
