"""The two transports: WebSocket mode and HTTP streaming (SSE).

Both take a request body and yield the response's typed server events, ending with the terminal
one; API errors are events, transport failures are exceptions.
"""

from __future__ import annotations

from .http import HTTPResponseEvents, SSETransport
from .websocket import (
    DEFAULT_BACKOFF,
    InsecureTransportWarning,
    ResponseEvents,
    WebSocketConnection,
    WebSocketState,
)

__all__ = [
    "DEFAULT_BACKOFF",
    "HTTPResponseEvents",
    "InsecureTransportWarning",
    "ResponseEvents",
    "SSETransport",
    "WebSocketConnection",
    "WebSocketState",
]
