"""Serving a stream to a browser as server-sent events, with any web framework.

:func:`sse_body` turns a :class:`~openai_ws.StreamResponse` (or any iterable of stream events)
into the bytes of a ``text/event-stream`` body; each event becomes ``event: <type>`` with a JSON
``data`` line (see :func:`event_to_dict`). With Flask::

    from flask import Response, stream_with_context
    from openai_ws.web import sse_body

    @app.get("/stream")
    def stream():
        events = client.stream("gpt-5.2", context, session_id=session["id"])
        return Response(stream_with_context(sse_body(events)), mimetype="text/event-stream")

When the browser goes away, the web server closes the body's generator; the stream is closed
with it, which abandons the response (no thread or socket is left behind). Nothing here imports
a web framework.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from .events import (
    Done,
    Error,
    HostedToolEvent,
    StreamEvent,
    TextDelta,
    TextEnd,
    TextStart,
    ThinkingDelta,
    ThinkingEnd,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)
from .messages import AssistantMessage, ToolCall

__all__ = ["EVENT_FIELDS", "event_to_dict", "sse_body", "sse_message"]


def _call(call: ToolCall) -> dict[str, Any]:
    out: dict[str, Any] = {"id": call.id, "name": call.name, "arguments": call.arguments}
    if call.kind != "function":
        out["kind"] = call.kind
        out["input"] = call.input
    return out


def _message(message: AssistantMessage) -> dict[str, Any]:
    return {
        "text": message.text,
        "stop_reason": message.stop_reason,
        "tool_calls": [_call(c) for c in message.tool_calls],
        "server_items": [
            {"type": i.type, "id": i.id, "status": i.status} for i in message.server_items
        ],
        "response_id": message.response_id,
        "usage": {
            "input": message.usage.input,
            "output": message.usage.output,
            "cache_read": message.usage.cache_read,
            "total_tokens": message.usage.total_tokens,
        },
    }


def _text(event: Any) -> dict[str, Any]:
    return {"commentary": event.commentary}


def _delta(event: Any) -> dict[str, Any]:
    return {"delta": event.delta}


def _content(event: Any) -> dict[str, Any]:
    return {"content": event.content}


def _tool_call(event: Any) -> dict[str, Any]:
    return {"tool_call": _call(event.tool_call)}


def _done(event: Done) -> dict[str, Any]:
    return {"reason": event.reason, "message": _message(event.message)}


def _error(event: Error) -> dict[str, Any]:
    return {
        "reason": event.reason,
        "message": event.error.error_message,
        "code": getattr(event.exception, "code", None),
    }


#: What each stream event type adds to its JSON view (beyond ``type`` and ``content_index``).
#: A new stream event type gets one entry here; types without one show only those two fields.
EVENT_FIELDS: Final[dict[Any, Callable[[Any], dict[str, Any]]]] = {
    TextStart: _text,
    TextDelta: lambda e: {**_text(e), **_delta(e)},
    TextEnd: lambda e: {**_text(e), **_content(e)},
    ThinkingDelta: _delta,
    ThinkingEnd: _content,
    ToolCallStart: _tool_call,
    ToolCallDelta: _delta,
    ToolCallEnd: _tool_call,
    HostedToolEvent: lambda e: {"item_type": e.item_type, "status": e.status},
    Done: _done,
    Error: _error,
}


def event_to_dict(event: StreamEvent) -> dict[str, Any]:
    """A JSON-ready view of a stream event: its ``type`` and the fields a page needs (deltas,
    contents, tool calls, the final message or error). ``partial`` and ``raw`` are left out."""
    out: dict[str, Any] = {"type": event.type}
    index = getattr(event, "content_index", None)
    if index is not None:
        out["content_index"] = index
    fields = EVENT_FIELDS.get(type(event))
    if fields is not None:
        out.update(fields(event))
    return out


def sse_message(event: str, data: Mapping[str, Any] | str) -> bytes:
    """One server-sent event: ``event: <event>`` and the data (JSON unless it is a string,
    split over several ``data:`` lines if it has line breaks)."""
    if "\n" in event or "\r" in event:
        raise ValueError("an event name cannot contain a line break")
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    lines = "".join(f"data: {line}\n" for line in text.replace("\r\n", "\n").split("\n"))
    return f"event: {event}\n{lines}\n".encode()


def sse_body(events: Iterable[StreamEvent]) -> Iterator[bytes]:
    """The ``text/event-stream`` body of *events*, one server-sent event per stream event.

    Closing the generator (the web server does it when the browser disconnects) closes
    *events* too, if it can be closed.
    """
    try:
        for event in events:
            yield sse_message(event.type, event_to_dict(event))
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
