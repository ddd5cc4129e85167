"""Server events of the Responses API, parsed into typed objects, and folded into a response.

Sans-I/O: nothing here touches a socket. The same events arrive as WebSocket text frames and as
the ``data`` of SSE events, so both transports share this module.

* :func:`parse_server_event` turns one frame (``str``/``bytes``) or one decoded ``dict`` into a
  typed event. Every event keeps the dict it came from as ``.raw``, so fields this version does
  not model stay observable. Unknown event types become :class:`UnknownEvent`, never an error.
  Anything malformed raises :class:`~openai_ws.exceptions.ProtocolError` and nothing else.
* :class:`ResponseAccumulator` folds the events of one response into the response object the
  server would return, and reports how the response ended.
"""

from __future__ import annotations

import copy
import email.utils
import importlib
import itertools
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

import attrs

from ._json import MAPPING
from ._redact import redact
from .exceptions import APIError, ProtocolError, api_error_from_fields

__all__ = [
    "TERMINAL_EVENT_TYPES",
    "AudioDelta",
    "AudioDone",
    "AudioTranscriptDelta",
    "AudioTranscriptDone",
    "CodeInterpreterCodeDelta",
    "CodeInterpreterCodeDone",
    "ContentPartAdded",
    "ContentPartDone",
    "CustomToolCallInputDelta",
    "CustomToolCallInputDone",
    "ErrorEvent",
    "FunctionCallArgumentsDelta",
    "FunctionCallArgumentsDone",
    "ImageGenerationPartialImage",
    "McpCallArgumentsDelta",
    "McpCallArgumentsDone",
    "OutputItemAdded",
    "OutputItemDone",
    "OutputTextAnnotationAdded",
    "OutputTextDelta",
    "OutputTextDone",
    "ReasoningSummaryPartAdded",
    "ReasoningSummaryPartDone",
    "ReasoningSummaryTextDelta",
    "ReasoningSummaryTextDone",
    "ReasoningTextDelta",
    "ReasoningTextDone",
    "RefusalDelta",
    "RefusalDone",
    "ResponseAccumulator",
    "ResponseCompleted",
    "ResponseCreated",
    "ResponseEvent",
    "ResponseFailed",
    "ResponseInProgress",
    "ResponseIncomplete",
    "ResponseQueued",
    "ServerEvent",
    "ShellCallCommandAdded",
    "ShellCallCommandDelta",
    "ShellCallCommandDone",
    "ShellCallOutputContentDelta",
    "ShellCallOutputContentDone",
    "TerminalState",
    "ToolCallProgress",
    "UnknownEvent",
    "event_types",
    "join_split_surrogates",
    "parse_retry_after",
    "parse_server_event",
    "replace_lone_surrogates",
    "retry_after_from_headers",
]

JSONDict = dict[str, Any]

_MISSING: Final = object()

logger = logging.getLogger("openai_ws")


# -- lone surrogates ----------------------------------------------------------------------------
#
# JSON may escape a lone UTF-16 surrogate ("\ud800"); json.loads turns it into a str that no
# UTF-8 encoder accepts, so one such character in a reply would make the NEXT request (which
# replays the reply) raise UnicodeEncodeError. Parsing therefore replaces lone surrogates with
# U+FFFD. One exception: a delta may end with the high half of a pair whose low half starts
# the next delta (a server that cuts text by UTF-16 code units). Those halves are kept at the
# edges of ``delta`` and joined by join_split_surrogates (MessageBuilder) and by the
# accumulator when it joins its chunks.

# the JSON escape of a surrogate (a pair's halves too: telling lone ones apart with lookarounds
# makes the search many times slower on every frame, while pairs are rare enough to pay the walk)
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")

# The optional speedups extra (``openai-ws[speedups]``): orjson decodes a frame several times
# faster than json. It is asked only where its answer is known to be json's; everywhere else
# (lone surrogates, NaN and Infinity, numbers beyond 64 bits, invalid input...) json decides,
# so behaviour is the same with or without it. OPENAI_WS_NO_SPEEDUPS=1 turns it off.
try:
    _orjson_module: Any = importlib.import_module("orjson")
except ImportError:  # pragma: no cover - depends on the installation
    _orjson_module = None
_orjson: Any = None if os.environ.get("OPENAI_WS_NO_SPEEDUPS") else _orjson_module
_NOT_DECODED: Final = object()
_ZERO_DIGITS: Final = bytes.maketrans(b"123456789", b"000000000")
# orjson turns an integer beyond 64 bits into a float, where json keeps it exact: any run of
# 19 digits (a number that might be one) is left to json
_LONG_NUMBER: Final = b"0" * 19


def _fast_loads(data: str | bytes | bytearray) -> Any:
    """*data* decoded by orjson when its answer is json's, else ``_NOT_DECODED``."""
    try:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if _LONG_NUMBER in raw.translate(_ZERO_DIGITS):
            return _NOT_DECODED
        return _orjson.loads(raw)
    except Exception:  # invalid for orjson (or a str with lone surrogates): json decides
        return _NOT_DECODED


# next() on a count is atomic in CPython: exactly one caller gets 0, with no lock (and no
# threading import in this sans-I/O module)
_replacements = itertools.count()


def _log_replaced() -> None:
    """WARNING the first time in this process, DEBUG afterwards (a hostile or buggy server
    could otherwise fill the log)."""
    if next(_replacements) == 0:
        logger.warning(
            "the server sent text with a lone UTF-16 surrogate; replaced with U+FFFD "
            "(logged once per process, later ones at DEBUG)"
        )
    else:
        logger.debug("replaced a lone UTF-16 surrogate with U+FFFD")


def replace_lone_surrogates(text: str) -> str:
    """*text* with every surrogate pair joined into its character and every lone surrogate
    replaced by U+FFFD, so that it encodes to UTF-8. Text without surrogates is returned as is.

    The first replacement in a process is logged at WARNING on the ``openai_ws`` logger, the
    later ones at DEBUG. Thread-safe.
    """
    if _SURROGATE.search(text) is None:
        return text
    fixed = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if "\ufffd" in fixed and fixed.count("\ufffd") != text.count("\ufffd"):
        _log_replaced()
    return fixed


def join_split_surrogates(held: str, delta: str) -> tuple[str, str]:
    """Join the halves of a surrogate pair split across two deltas of one text.

    Args:
        held: what the previous call returned to hold back ("" or one high surrogate).
        delta: the next delta of the same text.

    Returns:
        ``(text, hold)``: the text to hand on now, free of surrogates (pairs joined, lone
        halves replaced with U+FFFD), and a trailing high surrogate to hold until the next
        delta ("" when none). At the text's end, pass a non-empty *hold* through
        :func:`replace_lone_surrogates` (it becomes U+FFFD).
    """
    text = held + delta
    hold = ""
    if text and "\ud800" <= text[-1] <= "\udbff":
        text, hold = text[:-1], text[-1]
    return replace_lone_surrogates(text), hold


def _clean_delta(text: str) -> str:
    """A ``delta`` with its lone surrogates replaced, except the halves of a pair split with
    the neighbouring deltas: a leading low surrogate and a trailing high one."""
    head = tail = ""
    if text and "\udc00" <= text[0] <= "\udfff":
        head, text = text[0], text[1:]
    if text and "\ud800" <= text[-1] <= "\udbff":
        text, tail = text[:-1], text[-1]
    return head + replace_lone_surrogates(text) + tail


def _clean(value: Any) -> Any:
    """*value* (decoded JSON) with lone surrogates replaced in every string, keys included;
    containers are copied only where something changed."""
    if isinstance(value, str):
        return replace_lone_surrogates(value)
    if isinstance(value, dict):
        cleaned = {_clean(k): _clean(v) for k, v in value.items()}
        same = len(cleaned) == len(value) and all(
            k in value and value[k] is v for k, v in cleaned.items()
        )
        return value if same else cleaned
    if isinstance(value, list):
        items = [_clean(v) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def _clean_event(decoded: dict[str, Any]) -> dict[str, Any]:
    """A decoded event with lone surrogates replaced (``delta`` keeps its split-pair halves);
    the same dict when nothing changed."""
    out: dict[str, Any] = {}
    changed = False
    for key, value in decoded.items():
        new = _clean_delta(value) if key == "delta" and isinstance(value, str) else _clean(value)
        new_key = _clean(key)
        changed = changed or new is not value or new_key is not key
        out[new_key] = new
    return out if changed else decoded


def _shown(value: Any) -> str:
    """An event attribute as its event's repr shows it: key-shaped text masked, since a server
    or proxy may echo the key back ("Incorrect API key provided: sk-...")."""
    return redact(repr(value))


def _field(key: str | None = None, *, types: tuple[type, ...], default: Any) -> Any:
    """An event attribute read from the JSON key *key* (the attribute name by default).

    A present value of another type than *types* is a protocol error; an absent or null one
    takes *default* (a callable makes a fresh default, e.g. ``dict``).
    """
    meta = {"key": key, "types": types}
    if callable(default):
        return attrs.field(factory=default, metadata=meta, repr=_shown)
    return attrs.field(default=default, metadata=meta, repr=_shown)


def _str(key: str | None = None, default: str = "") -> Any:
    return _field(key, types=(str,), default=default)


def _opt_str(key: str | None = None) -> Any:
    return _field(key, types=(str,), default=None)


def _int(key: str | None = None, default: int = 0) -> Any:
    return _field(key, types=(int,), default=default)


def _dict(key: str | None = None) -> Any:
    return _field(key, types=(dict,), default=dict)


def _list(key: str | None = None) -> Any:
    return _field(key, types=(list,), default=list)


@attrs.frozen(kw_only=True)
class ServerEvent:
    """Base of every parsed server event.

    Attributes:
        type: the event type string, as sent.
        sequence_number: the event's ``sequence_number``, when the server sent one.
        raw: the decoded JSON object the event was parsed from (all fields, known or not).
    """

    type: str
    sequence_number: int | None = None
    raw: JSONDict = attrs.field(factory=dict, repr=False, eq=False)

    #: the event types this class parses; filled by the registry below
    TYPES: ClassVar[tuple[str, ...]] = ()

    @property
    def is_terminal(self) -> bool:
        """Whether this event ends its response."""
        return self.type in TERMINAL_EVENT_TYPES


@attrs.frozen(kw_only=True)
class UnknownEvent(ServerEvent):
    """An event type this version does not model. Its fields are all in ``raw``."""


@attrs.frozen(kw_only=True)
class ResponseEvent(ServerEvent):
    """A lifecycle event carrying the response object as it stands."""

    response: JSONDict = _dict()

    @property
    def response_id(self) -> str | None:
        value = self.response.get("id")
        return value if isinstance(value, str) else None

    @property
    def status(self) -> str | None:
        value = self.response.get("status")
        return value if isinstance(value, str) else None


@attrs.frozen(kw_only=True)
class ResponseCreated(ResponseEvent):
    """``response.created``: the server accepted the request and assigned the response id."""


@attrs.frozen(kw_only=True)
class ResponseInProgress(ResponseEvent):
    """``response.in_progress``."""


@attrs.frozen(kw_only=True)
class ResponseQueued(ResponseEvent):
    """``response.queued``."""


@attrs.frozen(kw_only=True)
class ResponseCompleted(ResponseEvent):
    """``response.completed`` (also ``response.done``, which some servers send instead)."""


@attrs.frozen(kw_only=True)
class ResponseFailed(ResponseEvent):
    """``response.failed``: a terminal response whose ``error`` says why."""


@attrs.frozen(kw_only=True)
class ResponseIncomplete(ResponseEvent):
    """``response.incomplete``: ended early, ``incomplete_details.reason`` says why."""


@attrs.frozen(kw_only=True)
class ErrorEvent(ServerEvent):
    """``error``, normalised from both shapes the API uses.

    Nested: ``{"type": "error", "status": 400, "error": {"type", "code", "message", "param"}}``;
    flat: ``{"type": "error", "code", "message", "param"}``.

    Attributes:
        code: the error code, or None (the API sends ``null`` for some server errors).
        message: the message ("" when absent).
        error_type: the error's own ``type`` (``invalid_request_error``...), or None.
        param: the parameter at fault, or None.
        status: the HTTP-like status the event carries, or None.
        headers: ``error.headers`` (e.g. rate-limit headers), possibly empty.
    """

    code: str | None = attrs.field(default=None, repr=_shown)
    message: str = attrs.field(default="", repr=_shown)
    error_type: str | None = None
    param: str | None = attrs.field(default=None, repr=_shown)
    status: int | None = None
    headers: JSONDict = attrs.field(factory=dict, repr=_shown)

    def to_exception(self, *, request_id: str | None = None) -> APIError:
        """The typed exception this error stands for (e.g. ``PreviousResponseNotFound``)."""
        return api_error_from_fields(
            message=self.message,
            code=self.code,
            type=self.error_type,
            param=self.param,
            status_code=self.status,
            request_id=request_id,
            headers=self.headers,
            retry_after=retry_after_from_headers(self.headers),
        )


def parse_retry_after(value: Any) -> float | None:
    """Seconds to wait, from one ``Retry-After`` value: a number of seconds or an HTTP date.

    Args:
        value: the header's value (``str``; a JSON number is accepted too, as an ``error``
            event's ``headers`` may carry one).

    Returns:
        The seconds (0 for a date in the past or a negative number), or None when *value* is
        absent or neither a finite number nor an HTTP date.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(str(value))
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def retry_after_from_headers(headers: Mapping[str, Any]) -> float | None:
    """Seconds to wait, from response headers: ``retry-after-ms`` (milliseconds) when it is
    valid, else ``Retry-After`` (seconds or an HTTP date). Header names match in any case.

    The one rule for both transports: HTTP error responses and the ``headers`` of a WebSocket
    ``error`` event.

    Returns:
        The seconds, or None when neither header holds a usable value.
    """
    values: dict[str, Any] = {}
    for name, value in headers.items():
        if isinstance(name, str):
            lowered = name.lower()
            if lowered in ("retry-after-ms", "retry-after"):
                values[lowered] = value
    milliseconds = parse_retry_after(values.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    return parse_retry_after(values.get("retry-after"))


@attrs.frozen(kw_only=True)
class OutputItemAdded(ServerEvent):
    """``response.output_item.added``: a new output item (message, function call...) begins."""

    output_index: int = _int()
    item: JSONDict = _dict()


@attrs.frozen(kw_only=True)
class OutputItemDone(ServerEvent):
    """``response.output_item.done``: the item in its final form."""

    output_index: int = _int()
    item: JSONDict = _dict()


@attrs.frozen(kw_only=True)
class ContentPartAdded(ServerEvent):
    """``response.content_part.added``."""

    item_id: str = _str()
    output_index: int = _int()
    content_index: int = _int()
    part: JSONDict = _dict()


@attrs.frozen(kw_only=True)
class ContentPartDone(ServerEvent):
    """``response.content_part.done``."""

    item_id: str = _str()
    output_index: int = _int()
    content_index: int = _int()
    part: JSONDict = _dict()


@attrs.frozen(kw_only=True)
class OutputTextDelta(ServerEvent):
    """``response.output_text.delta``: more text of an ``output_text`` part."""

    item_id: str = _str()
    output_index: int = _int()
    content_index: int = _int()
    delta: str = _str()


@attrs.frozen(kw_only=True)
class OutputTextDone(ServerEvent):
    """``response.output_text.done``: the part's whole text."""

    item_id: str = _str()
    output_index: int = _int()
    content_index: int = _int()
    text: str = _str()


@attrs.frozen(kw_only=True)
class OutputTextAnnotationAdded(ServerEvent):
    """``response.output_text.annotation.added`` (e.g. a URL citation)."""

    item_id: str = _str()
    output_index: int = _int()
    content_index: int = _int()
    annotation_index: int = _int()
    annotation: JSONDict = _dict()


@attrs.frozen(kw_only=True)
class RefusalDelta(ServerEvent):
    """``response.refusal.delta``."""

    item_id: str = _str()
    output_index: int = _int()
    content_index: int = _int()
    delta: str = _str()


@attrs.frozen(kw_only=True)
class RefusalDone(ServerEvent):
    """``response.refusal.done``."""

    item_id: str = _str()
    output_index: int = _int()
    content_index: int = _int()
    refusal: str = _str()


@attrs.frozen(kw_only=True)
class FunctionCallArgumentsDelta(ServerEvent):
    """``response.function_call_arguments.delta``: more of the JSON arguments string."""

    item_id: str = _str()
    output_index: int = _int()
    delta: str = _str()


@attrs.frozen(kw_only=True)
class FunctionCallArgumentsDone(ServerEvent):
    """``response.function_call_arguments.done``: the whole arguments string."""

    item_id: str = _str()
    output_index: int = _int()
    arguments: str = _str()
    name: str | None = _opt_str()


@attrs.frozen(kw_only=True)
class CustomToolCallInputDelta(ServerEvent):
    """``response.custom_tool_call_input.delta``."""

    item_id: str = _str()
    output_index: int = _int()
    delta: str = _str()


@attrs.frozen(kw_only=True)
class CustomToolCallInputDone(ServerEvent):
    """``response.custom_tool_call_input.done``."""

    item_id: str = _str()
    output_index: int = _int()
    input: str = _str()


@attrs.frozen(kw_only=True)
class ReasoningSummaryPartAdded(ServerEvent):
    """``response.reasoning_summary_part.added``."""

    item_id: str = _str()
    output_index: int = _int()
    summary_index: int = _int()
    part: JSONDict = _dict()


@attrs.frozen(kw_only=True)
class ReasoningSummaryPartDone(ServerEvent):
    """``response.reasoning_summary_part.done``."""

    item_id: str = _str()
    output_index: int = _int()
    summary_index: int = _int()
    part: JSONDict = _dict()


@attrs.frozen(kw_only=True)
class ReasoningSummaryTextDelta(ServerEvent):
    """``response.reasoning_summary_text.delta``."""

    item_id: str = _str()
    output_index: int = _int()
    summary_index: int = _int()
    delta: str = _str()


@attrs.frozen(kw_only=True)
class ReasoningSummaryTextDone(ServerEvent):
    """``response.reasoning_summary_text.done``."""

    item_id: str = _str()
    output_index: int = _int()
    summary_index: int = _int()
    text: str = _str()


@attrs.frozen(kw_only=True)
class ReasoningTextDelta(ServerEvent):
    """``response.reasoning_text.delta`` (raw reasoning text, where the model exposes it)."""

    item_id: str = _str()
    output_index: int = _int()
    content_index: int = _int()
    delta: str = _str()


@attrs.frozen(kw_only=True)
class ReasoningTextDone(ServerEvent):
    """``response.reasoning_text.done``."""

    item_id: str = _str()
    output_index: int = _int()
    content_index: int = _int()
    text: str = _str()


@attrs.frozen(kw_only=True)
class AudioDelta(ServerEvent):
    """``response.audio.delta`` (base64 audio bytes)."""

    delta: str = _str()


@attrs.frozen(kw_only=True)
class AudioDone(ServerEvent):
    """``response.audio.done``."""


@attrs.frozen(kw_only=True)
class AudioTranscriptDelta(ServerEvent):
    """``response.audio.transcript.delta``."""

    delta: str = _str()


@attrs.frozen(kw_only=True)
class AudioTranscriptDone(ServerEvent):
    """``response.audio.transcript.done``."""


@attrs.frozen(kw_only=True)
class ToolCallProgress(ServerEvent):
    """A hosted tool call changed state: ``response.web_search_call.searching``,
    ``response.file_search_call.completed``, ``response.mcp_call.failed`` and their kin.

    ``status`` is the last segment of the type (``in_progress``, ``searching``, ``completed``...).
    """

    item_id: str = _str()
    output_index: int = _int()

    @property
    def status(self) -> str:
        return self.type.rsplit(".", 1)[-1]


@attrs.frozen(kw_only=True)
class ImageGenerationPartialImage(ServerEvent):
    """``response.image_generation_call.partial_image``."""

    item_id: str = _str()
    output_index: int = _int()
    partial_image_index: int = _int()
    partial_image_b64: str = _str()


@attrs.frozen(kw_only=True)
class CodeInterpreterCodeDelta(ServerEvent):
    """``response.code_interpreter_call_code.delta``."""

    item_id: str = _str()
    output_index: int = _int()
    delta: str = _str()


@attrs.frozen(kw_only=True)
class CodeInterpreterCodeDone(ServerEvent):
    """``response.code_interpreter_call_code.done``."""

    item_id: str = _str()
    output_index: int = _int()
    code: str = _str()


@attrs.frozen(kw_only=True)
class McpCallArgumentsDelta(ServerEvent):
    """``response.mcp_call_arguments.delta``."""

    item_id: str = _str()
    output_index: int = _int()
    delta: str = _str()


@attrs.frozen(kw_only=True)
class McpCallArgumentsDone(ServerEvent):
    """``response.mcp_call_arguments.done``."""

    item_id: str = _str()
    output_index: int = _int()
    arguments: str = _str()


@attrs.frozen(kw_only=True)
class ShellCallCommandAdded(ServerEvent):
    """``response.shell_call_command.added``: a command of a shell call begins."""

    item_id: str = _str()
    output_index: int = _int()
    command_index: int = _int()
    command: str = _str()


@attrs.frozen(kw_only=True)
class ShellCallCommandDelta(ServerEvent):
    """``response.shell_call_command.delta``."""

    item_id: str = _str()
    output_index: int = _int()
    command_index: int = _int()
    delta: str = _str()


@attrs.frozen(kw_only=True)
class ShellCallCommandDone(ServerEvent):
    """``response.shell_call_command.done``."""

    item_id: str = _str()
    output_index: int = _int()
    command_index: int = _int()
    command: str = _str()


@attrs.frozen(kw_only=True)
class ShellCallOutputContentDelta(ServerEvent):
    """``response.shell_call_output_content.delta``; here ``delta`` is an object
    (``{"stdout": ...}`` / ``{"stderr": ...}``), unlike every other delta."""

    item_id: str = _str()
    output_index: int = _int()
    command_index: int = _int()
    delta: JSONDict = _dict()


@attrs.frozen(kw_only=True)
class ShellCallOutputContentDone(ServerEvent):
    """``response.shell_call_output_content.done``."""

    item_id: str = _str()
    output_index: int = _int()
    command_index: int = _int()
    output: list[Any] = _list()


# -- the registry -------------------------------------------------------------------------------

_HOSTED_PROGRESS = {
    "file_search_call": ("in_progress", "searching", "completed"),
    "web_search_call": ("in_progress", "searching", "completed"),
    "code_interpreter_call": ("in_progress", "interpreting", "completed"),
    "image_generation_call": ("in_progress", "generating", "completed"),
    "mcp_call": ("in_progress", "completed", "failed"),
    "mcp_list_tools": ("in_progress", "completed", "failed"),
}

_REGISTRY: dict[str, type[ServerEvent]] = {
    "response.created": ResponseCreated,
    "response.in_progress": ResponseInProgress,
    "response.queued": ResponseQueued,
    "response.completed": ResponseCompleted,
    "response.done": ResponseCompleted,
    "response.failed": ResponseFailed,
    "response.incomplete": ResponseIncomplete,
    "error": ErrorEvent,
    "response.output_item.added": OutputItemAdded,
    "response.output_item.done": OutputItemDone,
    "response.content_part.added": ContentPartAdded,
    "response.content_part.done": ContentPartDone,
    "response.output_text.delta": OutputTextDelta,
    "response.output_text.done": OutputTextDone,
    "response.output_text.annotation.added": OutputTextAnnotationAdded,
    "response.refusal.delta": RefusalDelta,
    "response.refusal.done": RefusalDone,
    "response.function_call_arguments.delta": FunctionCallArgumentsDelta,
    "response.function_call_arguments.done": FunctionCallArgumentsDone,
    "response.custom_tool_call_input.delta": CustomToolCallInputDelta,
    "response.custom_tool_call_input.done": CustomToolCallInputDone,
    "response.reasoning_summary_part.added": ReasoningSummaryPartAdded,
    "response.reasoning_summary_part.done": ReasoningSummaryPartDone,
    "response.reasoning_summary_text.delta": ReasoningSummaryTextDelta,
    "response.reasoning_summary_text.done": ReasoningSummaryTextDone,
    "response.reasoning_text.delta": ReasoningTextDelta,
    "response.reasoning_text.done": ReasoningTextDone,
    "response.audio.delta": AudioDelta,
    "response.audio.done": AudioDone,
    "response.audio.transcript.delta": AudioTranscriptDelta,
    "response.audio.transcript.done": AudioTranscriptDone,
    "response.image_generation_call.partial_image": ImageGenerationPartialImage,
    "response.code_interpreter_call_code.delta": CodeInterpreterCodeDelta,
    "response.code_interpreter_call_code.done": CodeInterpreterCodeDone,
    "response.mcp_call_arguments.delta": McpCallArgumentsDelta,
    "response.mcp_call_arguments.done": McpCallArgumentsDone,
    "response.shell_call_command.added": ShellCallCommandAdded,
    "response.shell_call_command.delta": ShellCallCommandDelta,
    "response.shell_call_command.done": ShellCallCommandDone,
    "response.shell_call_output_content.delta": ShellCallOutputContentDelta,
    "response.shell_call_output_content.done": ShellCallOutputContentDone,
}
for _tool, _states in _HOSTED_PROGRESS.items():
    for _state in _states:
        _REGISTRY[f"response.{_tool}.{_state}"] = ToolCallProgress

#: Event types that end a response: ``response.completed`` (and ``response.done``, its synonym on
#: some servers), ``response.failed``, ``response.incomplete`` and ``error``. The one list of
#: them; :attr:`ServerEvent.is_terminal` and the emulator read it.
TERMINAL_EVENT_TYPES: Final = frozenset(
    type_
    for type_, cls in _REGISTRY.items()
    if cls in (ResponseCompleted, ResponseFailed, ResponseIncomplete, ErrorEvent)
)

# (attribute name, JSON key, accepted types, default or factory, default is a factory)
_Spec = tuple[tuple[str, str, tuple[type, ...], Any, bool], ...]
_SPECS: dict[type[ServerEvent], _Spec] = {}
_BASE_FIELDS = frozenset({"type", "sequence_number", "raw"})


def _spec_of(cls: type[ServerEvent]) -> _Spec:
    spec = _SPECS.get(cls)
    if spec is None:
        rows = []
        for field in attrs.fields(cls):
            if field.name in _BASE_FIELDS or "types" not in field.metadata:
                continue
            if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
                default, is_factory = field.default.factory, True
            else:
                default, is_factory = field.default, False
            key = field.metadata["key"] or field.name
            rows.append((field.name, key, field.metadata["types"], default, is_factory))
        spec = _SPECS[cls] = tuple(rows)
    return spec


for _cls in set(_REGISTRY.values()):
    _spec_of(_cls)
    _cls.TYPES = tuple(sorted(t for t, c in _REGISTRY.items() if c is _cls))


def event_types() -> frozenset[str]:
    """Every event type string :func:`parse_server_event` turns into a specific class."""
    return frozenset(_REGISTRY)


def _type_name(types: tuple[type, ...]) -> str:
    return {str: "a string", int: "an integer", dict: "an object", list: "an array"}.get(
        types[0], types[0].__name__
    )


def _fill(cls: type[ServerEvent], data: Mapping[str, Any], kwargs: dict[str, Any]) -> None:
    for name, key, types, default, is_factory in _spec_of(cls):
        value = data.get(key)
        if value is None:
            value = default() if is_factory else default
        elif not isinstance(value, types) or (type(value) is bool and bool not in types):
            raise ProtocolError(
                f"{kwargs['type']!r} event field {key!r} must be {_type_name(types)}, "
                f"got {type(value).__name__}"
            )
        kwargs[name] = value


def _optional_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ProtocolError(f"error field must be a string, got {type(value).__name__}")


def _parse_error(data: Mapping[str, Any], kwargs: dict[str, Any]) -> ErrorEvent:
    nested = data.get("error")
    if isinstance(nested, str):  # {"type": "error", "error": "message"}, seen on proxies
        nested = {"message": nested}
    elif nested is not None and not isinstance(nested, dict):
        raise ProtocolError(
            f"'error' event field 'error' must be an object, got {type(nested).__name__}"
        )
    source: Mapping[str, Any] = nested if isinstance(nested, dict) else data
    status = data.get("status", source.get("status"))
    if status is not None and type(status) is not int:
        # a numeric string is a status; anything else (e.g. "failed") is not an HTTP status
        status = int(status) if isinstance(status, str) and status.isdigit() else None
    headers = source.get("headers", data.get("headers"))
    if not isinstance(headers, dict):
        headers = {}
    message = _optional_str(source.get("message")) or ""
    return ErrorEvent(
        code=_optional_str(source.get("code")),
        message=message,
        error_type=_optional_str(source.get("type")) if source is not data else None,
        param=_optional_str(source.get("param")),
        status=status,
        headers=headers,
        **kwargs,
    )


def parse_server_event(data: Mapping[str, Any] | str | bytes | bytearray) -> ServerEvent:
    """Parse one server event.

    Args:
        data: a WebSocket text frame or SSE ``data`` (JSON text, ``str`` or UTF-8 ``bytes``), or
            an already-decoded JSON object.

    Returns:
        The typed event: a specific class for the types of PROTOCOL.md section 3, an
        :class:`UnknownEvent` for any other type. ``.raw`` holds the whole object, with every
        lone UTF-16 surrogate (escaped in the JSON) replaced by U+FFFD, except the halves of
        a pair split across deltas, left at the edges of ``delta`` (see
        :func:`join_split_surrogates`). A ``str`` frame is expected to be strictly decoded
        UTF-8 (as the transports make it): raw surrogates in it are looked for only in an
        already-decoded object. An object passed in is never changed (a copy is cleaned).

    Raises:
        ProtocolError: the text is not JSON, not a JSON object, has no string ``type``, or a
            known field has the wrong JSON type. Nothing else is raised, whatever the input.
    """
    decoded: Any = _NOT_DECODED
    if isinstance(data, (str, bytes, bytearray)) and _orjson is not None:
        decoded = _fast_loads(data)
        suspect = False  # orjson refuses every lone surrogate: json decides those
    if decoded is not _NOT_DECODED:
        pass
    elif isinstance(data, (str, bytes, bytearray)):
        try:
            # decoding bytes here spares json the work of guessing their encoding
            text = data if isinstance(data, str) else data.decode("utf-8")
            decoded = json.loads(text)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise ProtocolError(f"server event is not valid JSON: {_preview(data)}") from exc
        # The cheap gate: in text decoded strictly from UTF-8 (as both transports and the
        # bytes branch above) a surrogate can only come from a \uD800-\uDFFF escape. Looking
        # for one character first is a memchr, far cheaper than a multi-character search.
        suspect = "\\" in text and _SURROGATE_ESCAPE.search(text) is not None
    elif isinstance(data, MAPPING) and not isinstance(data, dict):
        decoded = dict(data)
        suspect = True
    else:
        decoded = data
        suspect = True  # an object decoded elsewhere: its strings are not known to be clean
    if not isinstance(decoded, dict):
        raise ProtocolError(
            f"server event must be a JSON object, got {type(decoded).__name__}: {_preview(data)}"
        )
    if suspect:
        try:
            decoded = _clean_event(decoded)
        except RecursionError as exc:
            raise ProtocolError(f"server event is nested too deeply: {_preview(data)}") from exc
    event_type = decoded.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise ProtocolError(f"server event has no 'type': {_preview(data)}")
    sequence_number = decoded.get("sequence_number")
    if type(sequence_number) is not int:
        sequence_number = None
    kwargs: dict[str, Any] = {
        "type": event_type,
        "sequence_number": sequence_number,
        "raw": decoded,
    }
    cls = _REGISTRY.get(event_type)
    if cls is None:
        return UnknownEvent(**kwargs)
    if cls is ErrorEvent:
        return _parse_error(decoded, kwargs)
    _fill(cls, decoded, kwargs)
    return cls(**kwargs)


def _preview(data: Any, limit: int = 120) -> str:
    if isinstance(data, (bytes, bytearray)):
        text = bytes(data[: limit + 1]).decode("utf-8", "replace")
    elif isinstance(data, str):
        text = data[: limit + 1]
    else:
        text = repr(data)[: limit + 1]
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


# -- accumulation -------------------------------------------------------------------------------


@attrs.frozen
class TerminalState:
    """How a response ended.

    Attributes:
        status: ``"completed"``, ``"incomplete"``, ``"failed"``, ``"cancelled"``, or ``"error"``
            (an ``error`` event ended the stream without a response object).
        event: the terminal event.
        error: the typed API error for ``failed`` and ``error``, else None.
    """

    status: str
    event: ServerEvent
    error: APIError | None = None

    @property
    def ok(self) -> bool:
        """True for a response that produced a result (completed or incomplete)."""
        return self.status in ("completed", "incomplete")


_ATOMS: Final = frozenset({str, int, float, bool, type(None)})


def _copy_json(value: Any) -> Any:
    """A deep copy of decoded JSON, several times faster than :func:`copy.deepcopy`: dicts
    and lists are copied, JSON scalars (immutable) are shared, and anything else (an object
    a caller put in a mapping) goes through :func:`copy.deepcopy`. Decoded JSON is a tree, so
    no memo is needed."""
    kind = type(value)
    if kind is dict:
        return {
            k: v if type(v) in _ATOMS else _copy_json(v)
            for k, v in value.items()  # keys are strings in decoded JSON
        }
    if kind is list:
        return [v if type(v) in _ATOMS else _copy_json(v) for v in value]
    if kind in _ATOMS:
        return value
    return copy.deepcopy(value)


_TEXT_PART: Final[JSONDict] = {"type": "output_text", "annotations": []}
_REFUSAL: Final[JSONDict] = {"type": "refusal"}
_SUMMARY: Final[JSONDict] = {"type": "summary_text"}
_REASONING: Final[JSONDict] = {"type": "reasoning_text"}


class ResponseAccumulator:
    """Folds the server events of one response into the response object.

    Feed it every event of one response in order; read :attr:`output` (built from the stream
    events alone) at any time, and :attr:`response` (the final response object) once
    :attr:`terminal` is set.

    Text is kept as chunk lists and joined when read, so a response of tens of thousands of
    deltas folds in linear time. The events of the output items are folded in when
    :attr:`output` is first read, or in batches as they come: a response read only through its
    terminal event's output (the common case) never builds its items twice. ``*.done`` events
    and ``response.output_item.done`` are authoritative: they replace what the deltas built,
    and the terminal event's response is the final word. A repeated event (a
    ``sequence_number`` already seen in this response) is ignored and counted in
    :attr:`ignored`, as are events after the terminal one. An event whose ``sequence_number``
    is lower than one seen before but new is folded in where it arrives. Neither is fatal: the
    first such anomaly of a response is logged at WARNING on the ``openai_ws`` logger, the rest
    at DEBUG. Text pieces are joined with :func:`replace_lone_surrogates`, so a surrogate pair
    split across two deltas is whole.

    Not thread-safe: one accumulator per response, fed by one thread.
    """

    def __init__(self) -> None:
        self._snapshot: JSONDict = {}
        self._items: dict[int, JSONDict] = {}
        self._index_by_id: dict[str, int] = {}
        # (output_index, path...) -> text chunks not yet joined into the item
        self._chunks: dict[tuple[Any, ...], list[str]] = {}
        self._output_cache: list[JSONDict] | None = None
        # the item events not folded in yet: most responses are read only through their
        # terminal event's output, so the items are built when first read (or every
        # _FOLD_EVERY events, which bounds what is held)
        self._deferred: list[ServerEvent] = []
        # sequence numbers: the highest so far, and every one seen (memory in proportion to
        # the events, like their text; remembering only the numbers a jump skipped would let
        # a hostile server make it grow without bound)
        self._last_sequence = -1
        self._seen_sequences: set[int] = set()
        self._anomalies = 0
        self.terminal: TerminalState | None = None
        self.ignored = 0
        self.events = 0

    # -- reading ---------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Whether a terminal event arrived."""
        return self.terminal is not None

    @property
    def response_id(self) -> str | None:
        value = self._snapshot.get("id")
        return value if isinstance(value, str) else None

    @property
    def output(self) -> list[JSONDict]:
        """The output items built from the stream events, in ``output_index`` order.

        A fresh list of fresh dicts: callers may keep or change it.
        """
        if self._deferred:
            self._fold()
        if self._output_cache is None:
            self._output_cache = [self._materialize(i) for i in sorted(self._items)]
        output: list[JSONDict] = _copy_json(self._output_cache)
        return output

    def _fold(self) -> None:
        """Fold the deferred item events in, in the order they came."""
        deferred, self._deferred = self._deferred, []
        handlers = _ITEM_HANDLERS
        for event in deferred:
            handlers[type(event)](self, event)

    @property
    def response(self) -> JSONDict:
        """The response object: the last one the server sent, with the streamed output.

        When the terminal event's response lists output items, those are authoritative and
        kept. When it lists none (some servers send ``"output": []`` in ``response.completed``
        after streaming items), the items built from the stream take their place.
        """
        result: JSONDict = _copy_json(self._snapshot)
        server_output = result.get("output")
        if not (isinstance(server_output, list) and server_output):
            result["output"] = self.output
        return result

    def result(self) -> JSONDict:
        """:attr:`response` for a reader that keeps nothing of it but its ``output``: the output
        items are copied (they are the caller's own), every other field is shared with the
        server's event (cheaper than a deep copy of the whole object; do not change them)."""
        result = dict(self._snapshot)
        server_output = result.get("output")
        if isinstance(server_output, list) and server_output:
            result["output"] = _copy_json(server_output)
        else:
            result["output"] = self.output
        return result

    @property
    def usage(self) -> JSONDict | None:
        usage = self._snapshot.get("usage")
        return _copy_json(usage) if isinstance(usage, dict) else None

    # -- feeding ---------------------------------------------------------------------------

    def feed(self, event: ServerEvent) -> TerminalState | None:
        """Fold *event* in.

        Returns:
            The terminal state when *event* ended the response, else None.

        A repeated event (its ``sequence_number`` was seen before) is not folded in: it only
        adds one to :attr:`ignored`. Never raises for out-of-order or repeated events.
        """
        if self.terminal is not None:
            self.ignored += 1
            return None
        sequence = event.sequence_number
        if sequence is not None and sequence >= 0:
            seen = self._seen_sequences
            if sequence > self._last_sequence:  # the common case: in order
                self._last_sequence = sequence
            elif sequence in seen:
                self.ignored += 1
                self._anomaly("repeated", sequence, event)
                return None
            else:
                self._anomaly("out of order", sequence, event)
            seen.add(sequence)
        self.events += 1
        kind = type(event)
        handler = _RESPONSE_HANDLERS.get(kind)
        if handler is not None:
            handler(self, event)
        elif kind in _ITEM_HANDLERS:
            deferred = self._deferred
            deferred.append(event)
            self._output_cache = None
            if len(deferred) >= _FOLD_EVERY:
                self._fold()
        return self.terminal

    def _anomaly(self, what: str, sequence: int, event: ServerEvent) -> None:
        self._anomalies += 1
        logger.log(
            logging.WARNING if self._anomalies == 1 else logging.DEBUG,
            "%s sequence_number %d (after %d) at %r in response %s; %s",
            what,
            sequence,
            self._last_sequence,
            event.type,
            self.response_id,
            "ignored" if what == "repeated" else "folded in where it arrived",
        )

    # -- lifecycle -------------------------------------------------------------------------

    # the snapshot is the event's own object, never changed here (copied before _on_error
    # changes it, and by every reader that hands it out)
    def _on_response(self, event: ResponseEvent) -> None:
        self._snapshot = event.response

    def _on_terminal_response(self, event: ResponseEvent) -> None:
        self._snapshot = event.response
        status = event.status
        if isinstance(event, ResponseFailed):
            status = "failed" if status not in ("failed", "cancelled") else status
            self.terminal = TerminalState(status, event, _response_error(event.response))
        elif isinstance(event, ResponseIncomplete):
            self.terminal = TerminalState("incomplete", event)
        else:
            if status in ("failed", "cancelled"):  # response.done may carry any final status
                self.terminal = TerminalState(status, event, _response_error(event.response))
            elif status == "incomplete":
                self.terminal = TerminalState("incomplete", event)
            else:
                self.terminal = TerminalState("completed", event)

    def _on_error(self, event: ErrorEvent) -> None:
        self._snapshot = dict(self._snapshot)  # the event's object: changed on a copy
        self._snapshot.setdefault("status", "failed")
        if self._snapshot.get("status") in ("in_progress", "queued"):
            self._snapshot["status"] = "failed"
        self.terminal = TerminalState("error", event, event.to_exception())

    # -- items -----------------------------------------------------------------------------

    def _locate(self, output_index: int, item_id: str, kind: str) -> tuple[int, JSONDict]:
        """The item an event refers to, by ``output_index`` or else by ``item_id``; created
        (with the event's *kind*) when the stream skipped its ``output_item.added``."""
        item = self._items.get(output_index)
        if item is not None:
            return output_index, item
        if item_id and item_id in self._index_by_id:
            index = self._index_by_id[item_id]
            return index, self._items[index]
        item = {"type": kind, "status": "in_progress"}
        if item_id:
            item["id"] = item_id
            self._index_by_id[item_id] = output_index
        if kind == "message":
            item.update(role="assistant", content=[])
        elif kind == "reasoning":
            item["summary"] = []
        self._items[output_index] = item
        return output_index, item

    def _on_item_added(self, event: OutputItemAdded) -> None:
        if event.output_index in self._items:
            return  # a repeated "added" must not wipe what the deltas built
        item = _copy_json(event.item)
        self._items[event.output_index] = item
        item_id = item.get("id")
        if isinstance(item_id, str):
            self._index_by_id[item_id] = event.output_index

    def _on_item_done(self, event: OutputItemDone) -> None:
        item_id = event.item.get("id")
        index = event.output_index
        if index not in self._items and isinstance(item_id, str) and item_id in self._index_by_id:
            index = self._index_by_id[item_id]
        self._items[index] = _copy_json(event.item)
        if isinstance(item_id, str):
            self._index_by_id[item_id] = index
        for key in [k for k in self._chunks if k[0] == index]:
            del self._chunks[key]

    @staticmethod
    def _slot(item: JSONDict, container: str, position: int) -> JSONDict:
        """``item[container][position]``, growing the list with empty placeholders as needed."""
        seq = item.get(container)
        if not isinstance(seq, list):
            seq = item[container] = []
        while len(seq) <= position:
            seq.append({})
        slot = seq[position]
        if not isinstance(slot, dict):
            slot = seq[position] = {}
        return slot

    def _append(self, key: tuple[Any, ...], current: Any, delta: str) -> None:
        """Add *delta* to the text at *key*, which starts from *current* (the text so far)."""
        chunks = self._chunks.get(key)
        if chunks is None:
            chunks = self._chunks[key] = [current] if isinstance(current, str) and current else []
        chunks.append(delta)

    # A text inside a part of an item: output_text and refusal parts of messages, summary parts
    # and reasoning_text parts of reasoning items. (event, item kind, list, position, field,
    # the keys a new part starts with)
    def _part_delta(
        self, event: Any, kind: str, container: str, position: int, field: str, blank: JSONDict
    ) -> None:
        index, item = self._locate(event.output_index, event.item_id, kind)
        slot = self._slot(item, container, position)
        for name, value in blank.items():
            slot.setdefault(name, copy.copy(value))
        self._append((index, container, position, field), slot.get(field), event.delta)

    def _part_done(
        self,
        event: Any,
        kind: str,
        container: str,
        position: int,
        field: str,
        blank: JSONDict,
        value: str,
    ) -> None:
        index, item = self._locate(event.output_index, event.item_id, kind)
        slot = self._slot(item, container, position)
        for name, default in blank.items():
            slot.setdefault(name, copy.copy(default))
        slot[field] = value
        self._chunks.pop((index, container, position, field), None)

    def _on_text_delta(self, event: OutputTextDelta) -> None:
        # the common case, tens of thousands of times a response: more text for a part whose
        # chunk list exists, at an index that is its own
        chunks = self._chunks.get((event.output_index, "content", event.content_index, "text"))
        if chunks is not None and event.output_index in self._items:
            chunks.append(event.delta)
            return
        self._part_delta(event, "message", "content", event.content_index, "text", _TEXT_PART)

    def _on_text_done(self, event: OutputTextDone) -> None:
        self._part_done(
            event, "message", "content", event.content_index, "text", _TEXT_PART, event.text
        )

    def _on_refusal_delta(self, event: RefusalDelta) -> None:
        self._part_delta(event, "message", "content", event.content_index, "refusal", _REFUSAL)

    def _on_refusal_done(self, event: RefusalDone) -> None:
        self._part_done(
            event, "message", "content", event.content_index, "refusal", _REFUSAL, event.refusal
        )

    def _on_summary_delta(self, event: ReasoningSummaryTextDelta) -> None:
        self._part_delta(event, "reasoning", "summary", event.summary_index, "text", _SUMMARY)

    def _on_summary_done(self, event: ReasoningSummaryTextDone) -> None:
        self._part_done(
            event, "reasoning", "summary", event.summary_index, "text", _SUMMARY, event.text
        )

    def _on_reasoning_delta(self, event: ReasoningTextDelta) -> None:
        self._part_delta(event, "reasoning", "content", event.content_index, "text", _REASONING)

    def _on_reasoning_done(self, event: ReasoningTextDone) -> None:
        self._part_done(
            event, "reasoning", "content", event.content_index, "text", _REASONING, event.text
        )

    def _replace_part(self, event: Any, kind: str, container: str, position: int) -> None:
        """``*.part.added`` fills an empty slot; ``*.part.done`` replaces the part outright."""
        index, item = self._locate(event.output_index, event.item_id, kind)
        slot = self._slot(item, container, position)
        if event.type.endswith(".added") and slot:
            return  # keep what deltas already built
        slot.clear()
        slot.update(_copy_json(event.part))
        if event.type.endswith(".done"):
            for field in ("text", "refusal"):
                self._chunks.pop((index, container, position, field), None)

    def _on_part(self, event: ContentPartAdded | ContentPartDone) -> None:
        self._replace_part(event, "message", "content", event.content_index)

    def _on_summary_part(self, event: ReasoningSummaryPartAdded | ReasoningSummaryPartDone) -> None:
        self._replace_part(event, "reasoning", "summary", event.summary_index)

    def _on_annotation(self, event: OutputTextAnnotationAdded) -> None:
        _, item = self._locate(event.output_index, event.item_id, "message")
        slot = self._slot(item, "content", event.content_index)
        slot.setdefault("type", "output_text")
        annotations = slot.get("annotations")
        if not isinstance(annotations, list):
            annotations = slot["annotations"] = []
        annotation = _copy_json(event.annotation)
        if 0 <= event.annotation_index < len(annotations):
            annotations[event.annotation_index] = annotation
        else:
            annotations.append(annotation)

    # A text field of the item itself: arguments, custom tool input, code.
    def _field_delta(self, event: Any, kind: str, field: str) -> None:
        index, item = self._locate(event.output_index, event.item_id, kind)
        self._append((index, field), item.get(field), event.delta)

    def _field_done(self, event: Any, kind: str, field: str, value: str) -> JSONDict:
        index, item = self._locate(event.output_index, event.item_id, kind)
        item[field] = value
        self._chunks.pop((index, field), None)
        return item

    def _on_arguments_delta(
        self, event: FunctionCallArgumentsDelta | McpCallArgumentsDelta
    ) -> None:
        kind = "mcp_call" if isinstance(event, McpCallArgumentsDelta) else "function_call"
        self._field_delta(event, kind, "arguments")

    def _on_arguments_done(self, event: FunctionCallArgumentsDone | McpCallArgumentsDone) -> None:
        kind = "mcp_call" if isinstance(event, McpCallArgumentsDone) else "function_call"
        item = self._field_done(event, kind, "arguments", event.arguments)
        if isinstance(event, FunctionCallArgumentsDone) and event.name:
            item["name"] = event.name

    def _on_custom_input_delta(self, event: CustomToolCallInputDelta) -> None:
        self._field_delta(event, "custom_tool_call", "input")

    def _on_custom_input_done(self, event: CustomToolCallInputDone) -> None:
        self._field_done(event, "custom_tool_call", "input", event.input)

    def _on_code_delta(self, event: CodeInterpreterCodeDelta) -> None:
        self._field_delta(event, "code_interpreter_call", "code")

    def _on_code_done(self, event: CodeInterpreterCodeDone) -> None:
        self._field_done(event, "code_interpreter_call", "code", event.code)

    def _commands(self, event: Any) -> tuple[int, list[Any]]:
        index, item = self._locate(event.output_index, event.item_id, "shell_call")
        action = item.get("action")
        if not isinstance(action, dict):
            action = item["action"] = {}
        commands = action.get("commands")
        if not isinstance(commands, list):
            commands = action["commands"] = []
        while len(commands) <= event.command_index:
            commands.append("")
        return index, commands

    def _on_command_set(self, event: ShellCallCommandAdded | ShellCallCommandDone) -> None:
        index, commands = self._commands(event)
        commands[event.command_index] = event.command
        self._chunks.pop((index, "commands", event.command_index), None)

    def _on_command_delta(self, event: ShellCallCommandDelta) -> None:
        index, commands = self._commands(event)
        key = (index, "commands", event.command_index)
        self._append(key, commands[event.command_index], event.delta)

    def _on_shell_output_delta(self, event: ShellCallOutputContentDelta) -> None:
        _, item = self._locate(event.output_index, event.item_id, "shell_call_output")
        entry = self._slot(item, "output", event.command_index)
        for stream, text in event.delta.items():
            if isinstance(text, str):
                previous = entry.get(stream)
                entry[stream] = (previous if isinstance(previous, str) else "") + text

    def _on_shell_output_done(self, event: ShellCallOutputContentDone) -> None:
        _, item = self._locate(event.output_index, event.item_id, "shell_call_output")
        item["output"] = _copy_json(event.output)

    def _on_progress(self, event: ToolCallProgress) -> None:
        kind = event.type.split(".")[1]
        _, item = self._locate(event.output_index, event.item_id, kind)
        item["status"] = event.status

    # -- materialising ---------------------------------------------------------------------

    def _materialize(self, index: int) -> JSONDict:
        item: JSONDict = _copy_json(self._items[index])
        for key, chunks in self._chunks.items():
            if key[0] != index:
                continue
            text = replace_lone_surrogates("".join(chunks))  # joins pairs split across deltas
            path = key[1:]
            if len(path) == 1:
                item[path[0]] = text
            elif path[0] == "commands":
                action = item.setdefault("action", {})
                action["commands"][path[1]] = text
            else:
                container, position, field = path
                item[container][position][field] = text
        return item


#: The accumulator's handler for each event type (built once, not per response).
_Handler = Callable[[ResponseAccumulator, Any], None]

#: The events of the response object itself: folded in as they come.
_RESPONSE_HANDLERS: Final[dict[type[ServerEvent], _Handler]] = {
    ResponseCreated: ResponseAccumulator._on_response,
    ResponseInProgress: ResponseAccumulator._on_response,
    ResponseQueued: ResponseAccumulator._on_response,
    ResponseCompleted: ResponseAccumulator._on_terminal_response,
    ResponseFailed: ResponseAccumulator._on_terminal_response,
    ResponseIncomplete: ResponseAccumulator._on_terminal_response,
    ErrorEvent: ResponseAccumulator._on_error,
}

#: How many item events an accumulator holds before it folds them in.
_FOLD_EVERY: Final = 64

#: The events of the output items: deferred (see ResponseAccumulator._fold).
_ITEM_HANDLERS: Final[dict[type[ServerEvent], _Handler]] = {
    OutputItemAdded: ResponseAccumulator._on_item_added,
    OutputItemDone: ResponseAccumulator._on_item_done,
    ContentPartAdded: ResponseAccumulator._on_part,
    ContentPartDone: ResponseAccumulator._on_part,
    OutputTextDelta: ResponseAccumulator._on_text_delta,
    OutputTextDone: ResponseAccumulator._on_text_done,
    OutputTextAnnotationAdded: ResponseAccumulator._on_annotation,
    RefusalDelta: ResponseAccumulator._on_refusal_delta,
    RefusalDone: ResponseAccumulator._on_refusal_done,
    FunctionCallArgumentsDelta: ResponseAccumulator._on_arguments_delta,
    FunctionCallArgumentsDone: ResponseAccumulator._on_arguments_done,
    McpCallArgumentsDelta: ResponseAccumulator._on_arguments_delta,
    McpCallArgumentsDone: ResponseAccumulator._on_arguments_done,
    CustomToolCallInputDelta: ResponseAccumulator._on_custom_input_delta,
    CustomToolCallInputDone: ResponseAccumulator._on_custom_input_done,
    ReasoningSummaryPartAdded: ResponseAccumulator._on_summary_part,
    ReasoningSummaryPartDone: ResponseAccumulator._on_summary_part,
    ReasoningSummaryTextDelta: ResponseAccumulator._on_summary_delta,
    ReasoningSummaryTextDone: ResponseAccumulator._on_summary_done,
    ReasoningTextDelta: ResponseAccumulator._on_reasoning_delta,
    ReasoningTextDone: ResponseAccumulator._on_reasoning_done,
    CodeInterpreterCodeDelta: ResponseAccumulator._on_code_delta,
    CodeInterpreterCodeDone: ResponseAccumulator._on_code_done,
    ShellCallCommandAdded: ResponseAccumulator._on_command_set,
    ShellCallCommandDelta: ResponseAccumulator._on_command_delta,
    ShellCallCommandDone: ResponseAccumulator._on_command_set,
    ShellCallOutputContentDelta: ResponseAccumulator._on_shell_output_delta,
    ShellCallOutputContentDone: ResponseAccumulator._on_shell_output_done,
    ToolCallProgress: ResponseAccumulator._on_progress,
}


def _response_error(response: Mapping[str, Any]) -> APIError:
    error = response.get("error")
    if not isinstance(error, dict):
        error = {}
    code = error.get("code")
    message = error.get("message")
    return api_error_from_fields(
        message=message if isinstance(message, str) else "the response failed",
        code=code if isinstance(code, str) else None,
        type=error.get("type") if isinstance(error.get("type"), str) else None,
    )
