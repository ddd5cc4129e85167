"""Pieces both transports share: deadlines, proxy resolution, error bodies."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeAlias, TypeVar

import attrs

from .._redact import register_secret
from ..exceptions import APIError, ConfigurationError, api_error_from_fields
from ..protocol import parse_retry_after, retry_after_from_headers

#: An API key, or a function returning it (called again for every connection or request).
KeySource: TypeAlias = "str | Callable[[], str | None] | None"

__all__ = [
    "Deadline",
    "KeySource",
    "ProxySettings",
    "api_error_from_response",
    "auth_headers",
    "error_body",
    "parse_retry_after",
    "queue_get",
    "requests_proxies",
    "resolve_proxy",
]


class Deadline:
    """How long a wait that spans several steps may still last, and a way to cut it short.

    One ``Deadline`` is made per turn and handed down to every step that waits (connecting,
    backoff sleeps, waiting for response headers, for the first event, for the next one), so a
    retry or a fallback is paid out of the same budget instead of getting a fresh one.
    :meth:`restart` gives the budget back after progress (an event arrived). :meth:`cancel`,
    safe from any thread, wakes every wait that registered with :meth:`on_cancel` or sleeps in
    :meth:`sleep`.

    Args:
        seconds: the budget; None means no limit (cancellation still works).
    """

    __slots__ = ("_callbacks", "_cancelled", "_end", "_lock", "_sleeper", "seconds")

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = seconds
        self._end = None if seconds is None else time.monotonic() + seconds
        self._cancelled = False
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], object]] = []
        self._sleeper: threading.Event | None = None  # made by the first sleep (most never do)

    def __repr__(self) -> str:
        return f"<Deadline remaining={self.remaining()!r} cancelled={self.cancelled}>"

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None for no deadline."""
        if self._end is None:
            return None
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end

    def limit(self, seconds: float | None) -> float | None:
        """The shorter of *seconds* and what is left (None when neither limits)."""
        left = self.remaining()
        if seconds is None:
            return left
        return seconds if left is None or seconds < left else left

    def restart(self) -> None:
        """Give the whole budget back (call it when progress was made)."""
        if self.seconds is not None:
            self._end = time.monotonic() + self.seconds

    # -- cancellation ----------------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """Cut every wait short, now and later. Idempotent; safe from any thread."""
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            callbacks, self._callbacks = self._callbacks, []
            sleeper = self._sleeper
        if sleeper is not None:
            sleeper.set()
        for callback in callbacks:
            with contextlib.suppress(Exception):
                callback()

    def on_cancel(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Run *callback* when :meth:`cancel` is called (at once if it was). Returns a function
        that unregisters it."""
        with self._lock:
            if not self._cancelled:
                self._callbacks.append(callback)
                registered = True
            else:
                registered = False
        if not registered:
            callback()

        def unregister() -> None:
            with self._lock:
                callbacks = self._callbacks
                if callback in callbacks:  # not if it ran (cancelled) or went before
                    callbacks.remove(callback)

        return unregister

    def sleep(self, seconds: float) -> bool:
        """Wait *seconds* (no longer than what is left); True if cancelled meanwhile."""
        wait = self.limit(seconds)
        with self._lock:
            if self._cancelled:
                return True
            if self._sleeper is None:
                self._sleeper = threading.Event()
            sleeper = self._sleeper
        return sleeper.wait(wait if wait is not None else seconds)


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


#: Whether urllib's proxy_bypass is proxy_bypass_environment here (as on Linux).
_BYPASS_FROM_ENVIRONMENT: Final = sys.platform != "darwin" and os.name == "posix"


def environment_proxies() -> dict[str, str]:
    """``urllib.request.getproxies_environment()``, without decoding the whole environment:
    on POSIX only the variables whose name ends in ``_proxy`` (any case) are decoded, then
    chosen by urllib's rules (lowercase names win; ``HTTP_PROXY`` is ignored in a CGI
    process). Every new session reads it, and a large environment made that the dearest step
    of opening a connection."""
    data = getattr(os.environ, "_data", None)
    if os.name != "posix" or not isinstance(data, dict):
        return urllib.request.getproxies_environment()
    decode_key, decode_value = os.environ.decodekey, os.environ.decodevalue
    environment: list[tuple[str, str, str]] = []
    proxies: dict[str, str] = {}
    for key, raw in data.items():
        if len(key) > 5 and key[-6:-5] == b"_" and key[-5:].lower() == b"proxy":
            name, value = decode_key(key), decode_value(raw)
            proxy_name = name[:-6].lower()
            environment.append((name, value, proxy_name))
            if value:
                proxies[proxy_name] = value
    if b"REQUEST_METHOD" in data:  # a CGI process: HTTP_PROXY may come from a request header
        proxies.pop("http", None)
    for name, value, proxy_name in environment:  # lowercase names last: they win
        if name[-6:] == "_proxy":
            if value:
                proxies[proxy_name] = value
            else:
                proxies.pop(proxy_name, None)
    return proxies


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
        found = environment_proxies()
        if _BYPASS_FROM_ENVIRONMENT:
            # (in urllib on every platform; not in typeshed)
            bypassed = urllib.request.proxy_bypass_environment(host, found)  # type: ignore[attr-defined]
        else:  # macOS and Windows also ask the system's settings
            bypassed = urllib.request.proxy_bypass(host)
        if bypassed:
            return ProxySettings()
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


def requests_proxies(proxy: str | bool | None) -> dict[str, str | None] | None:
    """The ``proxies`` argument for requests that means *proxy* (see :func:`resolve_proxy`).

    A URL: that proxy for ``http`` and ``https`` (requests tunnels ``https`` with CONNECT),
    whatever the environment says. False (or ``""``): no proxy even if the environment names
    one (requests drops the keys set to None after merging the environment's proxies in, so
    they hide them; the rest of the environment still counts). None (or True): None, so that
    requests follows the environment and the session as usual.
    """
    if proxy is None or proxy is True:
        return None
    if proxy is False or proxy == "":
        return {"http": None, "https": None, "all": None}
    url = proxy if "://" in proxy else f"http://{proxy}"
    return {"http": url, "https": url}


def error_body(body: bytes) -> tuple[Mapping[str, Any], str | None]:
    """The ``error`` object of an error response's body (``{"error": {...}}``, a bare object,
    or ``{"error": "text"}``), and its message; ``({}, None)`` when the body has none."""
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
    return error, message if isinstance(message, str) and message else None


def api_error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, *, fallback: str
) -> APIError:
    """The typed :class:`~openai_ws.exceptions.APIError` for an HTTP error response."""
    error, message = error_body(body)
    if message is None:
        text = body.decode("utf-8", "replace").strip()[:200]
        message = f"{fallback} (HTTP {status})" + (f": {text}" if text and not error else "")
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


_T = TypeVar("_T")


def queue_get(q: queue.SimpleQueue[_T], timeout: float | None) -> _T:
    """``q.get(timeout=timeout)`` for the queue's only consumer, without CPython 3.10's hang.

    On 3.10, ``SimpleQueue.get`` with a timeout can block forever. On an empty queue whose
    internal lock is free, its first pass takes that lock and then recomputes the time left;
    when more than a microsecond of the timeout has already gone (always so for a timeout
    of 0, and for any timeout if the thread is descheduled between the two clock reads), the
    time left is negative, and a lock wait with a negative timeout has no limit. Only a
    ``put`` ends it. (3.11 to 3.13 did not hang in the same test.)

    Taking without waiting first leaves that lock held whenever the queue is empty, so the
    timed wait that follows ends either at its timeout or at a ``put``, which leaves the
    queue non-empty. Also the fast path: most takes find an item waiting.

    Raises:
        queue.Empty: nothing arrived within *timeout* (at once when it is 0 or negative).
    """
    try:
        return q.get_nowait()
    except queue.Empty:
        if timeout is not None and timeout <= 0:
            raise
    return q.get(timeout=timeout)
