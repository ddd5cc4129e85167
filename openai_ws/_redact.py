"""Keeping API keys out of every message, repr and log line.

Two layers, because neither alone is enough:

* every key a :class:`~openai_ws.Client` or transport is given is registered here, so its exact
  text is replaced wherever it would appear;
* anything shaped like an OpenAI key (``sk-...``) or a bearer credential is masked too, which
  covers keys this process never registered (e.g. one echoed back by a proxy).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "redact", "redact_headers", "register_secret"]

REDACTED = "<redacted>"

_KEY_SHAPES = re.compile(
    r"(?:\bsk-[A-Za-z0-9_\-]{6,}|(?i:\bbearer\s+)[A-Za-z0-9_\-.=:+/]{6,})",
)
_SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "openai-api-key", "x-api-key", "cookie"}
)

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()


def register_secret(secret: str | None) -> None:
    """Remember *secret* so that :func:`redact` replaces it wherever it appears.

    Short strings are ignored: masking them would mangle ordinary text.
    """
    global _secrets
    if not secret or len(secret) < 8:
        return
    with _lock:
        if secret not in _secrets:
            _secrets = _secrets | {secret}


def redact(text: str) -> str:
    """Return *text* with every registered secret and key-shaped token masked."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "sk-" in text or "earer" in text or "EARER" in text:
        text = _KEY_SHAPES.sub(_mask, text)
    return text


def _mask(match: re.Match[str]) -> str:
    token = match.group(0)
    if token[:1] in "bB":
        return token.split(None, 1)[0] + " " + REDACTED
    return REDACTED


def redact_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Copy *headers* with credential-bearing values masked (names compared case-insensitively)."""
    if not headers:
        return {}
    return {
        name: (REDACTED if name.lower() in _SENSITIVE_HEADERS else redact(str(value)))
        for name, value in headers.items()
    }
