"""Stream events: what :meth:`Client.stream() <openai_ws.Client.stream>` yields.

A stream is ``start``, then for each piece of the answer a ``*_start``, its ``*_delta`` events
and a ``*_end`` (text, thinking, tool calls), then exactly one ``done`` or ``error``::

    start
    thinking_start  thinking_delta...  thinking_end
    text_start      text_delta...      text_end
    toolcall_start  toolcall_delta...  toolcall_end
    hosted_tool...                     (progress of a tool the API runs itself)
    done | error

``content_index`` is the position of the piece in the final message's ``content`` (server
items, such as a web search, hold a position too; a parallel wrapper call that the final message
expands into several calls shifts the positions after it). Every event
keeps the server event it came from as ``.raw`` (None for events the SDK makes itself).
``partial`` is the message as it stood when the event was made; it is built when read (the
stream only records lengths), so reading it is optional and costs nothing otherwise.

:class:`MessageBuilder` is the sans-I/O translator from server events to stream events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import attrs

from .convert import (
    CLIENT_CALLS,
    AssistantContent,
    build_assistant_message_from_response,
    content_from_item,
    reasoning_text,
)
from .exceptions import APIError, OpenAIWSError
from .history import declared_function_names
from .messages import (
    AssistantMessage,
    ModelInfo,
    ToolCall,
    Usage,
    join_tool_call_id,
    split_tool_call_id,
)
from .protocol import (
    ContentPartAdded,
    ContentPartDone,
    CustomToolCallInputDelta,
    CustomToolCallInputDone,
    ErrorEvent,
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    ImageGenerationPartialImage,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    OutputTextDone,
    ReasoningSummaryPartAdded,
    ReasoningSummaryTextDelta,
    ReasoningSummaryTextDone,
    ReasoningTextDelta,
    RefusalDelta,
    RefusalDone,
    ResponseAccumulator,
    ResponseCreated,
    ServerEvent,
    ToolCallProgress,
    join_split_surrogates,
    replace_lone_surrogates,
)

__all__ = [
    "Done",
    "Error",
    "HostedToolEvent",
    "MessageBuilder",
    "Start",
    "StreamEvent",
    "TextDelta",
    "TextEnd",
    "TextStart",
    "ThinkingDelta",
    "ThinkingEnd",
    "ThinkingStart",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
]

_Snapshot = tuple[int, ...]


@attrs.frozen(kw_only=True)
class StreamEvent:
    """Base of every stream event.

    Attributes:
        type: the event's type string (``"text_delta"``...).
        raw: the server event this one came from, or None.
    """

    type: ClassVar[str] = ""
    raw: ServerEvent | None = attrs.field(default=None, repr=False, eq=False)
    _view: Callable[[], AssistantMessage] | None = attrs.field(
        default=None, repr=False, eq=False, alias="view"
    )

    @property
    def partial(self) -> AssistantMessage:
        """The assistant message as it stood when this event was made."""
        if self._view is None:
            return AssistantMessage()
        return self._view()


@attrs.frozen(kw_only=True)
class Start(StreamEvent):
    """The request was accepted and the first server event arrived."""

    type: ClassVar[str] = "start"


@attrs.frozen(kw_only=True)
class _Text(StreamEvent):
    content_index: int
    phase: str | None = None

    @property
    def commentary(self) -> bool:
        """True for text the model says while it works (``phase: "commentary"``), which is
        streamed but kept out of :attr:`AssistantMessage.text`."""
        return self.phase == "commentary"


@attrs.frozen(kw_only=True)
class TextStart(_Text):
    """A text part begins."""

    type: ClassVar[str] = "text_start"


@attrs.frozen(kw_only=True)
class TextDelta(_Text):
    """More text."""

    type: ClassVar[str] = "text_delta"
    delta: str


@attrs.frozen(kw_only=True)
class TextEnd(_Text):
    """A text part is complete; ``content`` is its whole text."""

    type: ClassVar[str] = "text_end"
    content: str


@attrs.frozen(kw_only=True)
class ThinkingStart(StreamEvent):
    """A reasoning item begins."""

    type: ClassVar[str] = "thinking_start"
    content_index: int


@attrs.frozen(kw_only=True)
class ThinkingDelta(StreamEvent):
    """More reasoning summary (or reasoning text). Summary parts are separated by a blank line,
    sent as a delta of its own."""

    type: ClassVar[str] = "thinking_delta"
    content_index: int
    delta: str


@attrs.frozen(kw_only=True)
class ThinkingEnd(StreamEvent):
    """A reasoning item is complete; ``content`` is its whole summary."""

    type: ClassVar[str] = "thinking_end"
    content_index: int
    content: str


@attrs.frozen(kw_only=True)
class ToolCallStart(StreamEvent):
    """A tool call begins; ``tool_call`` has its id and name (no arguments yet)."""

    type: ClassVar[str] = "toolcall_start"
    content_index: int
    tool_call: ToolCall


@attrs.frozen(kw_only=True)
class ToolCallDelta(StreamEvent):
    """More of the tool call's JSON arguments."""

    type: ClassVar[str] = "toolcall_delta"
    content_index: int
    delta: str


@attrs.frozen(kw_only=True)
class ToolCallEnd(StreamEvent):
    """A tool call is complete; ``tool_call.arguments`` are parsed."""

    type: ClassVar[str] = "toolcall_end"
    content_index: int
    tool_call: ToolCall


@attrs.frozen(kw_only=True)
class HostedToolEvent(StreamEvent):
    """Progress of a tool the API runs itself (web search, file search, code interpreter, image
    generation, MCP...): one for each of its progress events.

    Attributes:
        content_index: the position of its :class:`~openai_ws.messages.ServerItem` in the
            message.
        item_type: the output item's type (``"web_search_call"``...).
        status: what it is doing: ``"in_progress"``, ``"searching"``, ``"interpreting"``,
            ``"generating"``, ``"completed"``, ``"failed"``...; ``"partial_image"`` for an image
            generation's partial image (its base64 data is in ``raw.partial_image_b64``).
        item: the output item as it stood when the event arrived.
    """

    type: ClassVar[str] = "hosted_tool"
    content_index: int
    item_type: str
    status: str
    item: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class Done(StreamEvent):
    """The response completed. The last event of a successful stream.

    Attributes:
        reason: ``"stop"``, ``"length"`` or ``"toolUse"`` (the message's stop reason).
        message: the final assistant message, to append to the conversation.
    """

    type: ClassVar[str] = "done"
    reason: Literal["stop", "length", "toolUse"]
    message: AssistantMessage


@attrs.frozen(kw_only=True)
class Error(StreamEvent):
    """The stream failed. The last event of a failed stream.

    Attributes:
        reason: ``"error"``, or ``"aborted"`` when the caller closed the stream.
        error: an assistant message with ``stop_reason`` ``"error"``/``"aborted"``,
            ``error_message`` saying why, and whatever content arrived before.
        exception: the typed exception (``APIError``, ``ConnectionClosed``...), which
            :meth:`StreamResponse.result() <openai_ws.StreamResponse.result>` raises.
    """

    type: ClassVar[str] = "error"
    reason: Literal["error", "aborted"]
    error: AssistantMessage
    exception: OpenAIWSError | None = None


class _Part:
    """A piece of the message being built: text, thinking or a tool call."""

    __slots__ = ("_joined", "chunks", "ended", "extra", "kind", "length")

    def __init__(self, kind: str, extra: dict[str, Any]) -> None:
        self.kind = kind
        self.chunks: list[str] = []
        self.length = 0
        self.ended = False
        self.extra = extra
        self._joined: tuple[int, str] = (0, "")

    def append(self, text: str) -> None:
        self.chunks.append(text)
        self.length += len(text)

    def replace(self, text: str) -> None:
        self.chunks = [text]
        self.length = len(text)
        self._joined = (-1, "")  # the chunk count alone no longer tells the cache is stale

    def text(self, length: int | None = None) -> str:
        count, joined = self._joined
        if count != len(self.chunks):
            joined = "".join(self.chunks)
            self._joined = (len(self.chunks), joined)
        return joined if length is None else joined[:length]


class MessageBuilder:
    """Turns the server events of one response into stream events.

    Feed each server event to :meth:`feed`; it returns the stream events it makes (possibly
    none). At the terminal server event it returns the ``done`` or ``error`` event. Sans-I/O;
    not thread-safe.

    Args:
        model: the model asked for (:class:`~openai_ws.messages.ModelInfo` or its id).
        tools: the request's ``tools`` (API shapes): their function names decide whether a
            parallel wrapper call is expanded into its calls. None uses the tools the response
            echoes. A wrapper streams as one call (``toolcall_*`` events named ``parallel``);
            the ``done`` message holds the expanded calls.
    """

    def __init__(self, model: ModelInfo | str, *, tools: Any = None) -> None:
        self.model = model if isinstance(model, ModelInfo) else ModelInfo(model)
        self._tools = tools
        self._declared = declared_function_names(tools)
        self.accumulator = ResponseAccumulator()
        self.parts: list[_Part] = []
        self._by_key: dict[tuple[Any, ...], int] = {}
        self._items: dict[int, dict[str, Any]] = {}
        self.finished: Done | Error | None = None
        #: the response object of the terminal event, once :attr:`finished` is set by it (see
        #: :meth:`ResponseAccumulator.result <openai_ws.protocol.ResponseAccumulator.result>`)
        self.final_response: dict[str, Any] | None = None
        # part index -> the high surrogate ending its last delta, held for the next one
        self._held: dict[int, str] = {}
        # (output_index, content_index, part index, part) of the text part last looked up
        self._last_text: tuple[Any, Any, int, _Part] | None = None

    @property
    def response_id(self) -> str | None:
        return self.accumulator.response_id

    # -- partial messages ------------------------------------------------------------------

    def _snapshot(self) -> _Snapshot:
        return tuple([part.length for part in self.parts])  # a list first: faster than a genexpr

    def _view(self) -> Callable[[], AssistantMessage]:
        snapshot = self._snapshot()
        return lambda: self.partial(snapshot)

    def partial(self, snapshot: _Snapshot | None = None) -> AssistantMessage:
        """The message so far (or as it stood at *snapshot*)."""
        lengths = snapshot if snapshot is not None else self._snapshot()
        content: list[AssistantContent] = []
        for part, length in zip(self.parts, lengths, strict=False):
            content.extend(content_from_item(_item_of(part, part.text(length)), self._declared))
        return AssistantMessage(
            content=content,
            api=self.model.api,
            provider=self.model.provider,
            model=self.model.id,
            usage=Usage(),
            stop_reason="stop",
            response_id=self.response_id,
        )

    # -- translating -----------------------------------------------------------------------

    def start(self, raw: ServerEvent | None = None) -> Start:
        return Start(raw=raw, view=self._view())

    def feed(self, event: ServerEvent) -> list[StreamEvent]:
        """Fold one server event in; return the stream events it makes."""
        if self.finished is not None:
            return []
        ignored = self.accumulator.ignored
        terminal = self.accumulator.feed(event)
        if self.accumulator.ignored != ignored:
            return []  # a repeated event (its sequence_number was seen): already translated
        if self._tools is None and isinstance(event, ResponseCreated):
            self._declared = declared_function_names(event.response.get("tools"))
        out: list[StreamEvent] = []
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event, out)
        if terminal is not None:
            self._end_open_parts(event, out)
            out.append(self._final(event))
        return out

    def _new_part(
        self, key: tuple[Any, ...], kind: str, extra: dict[str, Any]
    ) -> tuple[int, _Part]:
        index = len(self.parts)
        part = _Part(kind, extra)
        self.parts.append(part)
        self._by_key[key] = index
        return index, part

    def _text_part(self, event: Any, out: list[StreamEvent], *, refusal: bool) -> tuple[int, _Part]:
        last = self._last_text  # the common case: another delta of the same part
        if last is not None and last[0] == event.output_index and last[1] == event.content_index:
            return last[2], last[3]
        key = ("text", event.output_index, event.content_index)
        index = self._by_key.get(key)
        if index is not None:
            self._last_text = (event.output_index, event.content_index, index, self.parts[index])
            return index, self.parts[index]
        item = self._items.get(event.output_index, {})
        phase = _text_or_none(item.get("phase"))
        extra = {
            "item_id": _text_or_none(item.get("id")) or event.item_id or None,
            "phase": phase,
            "refusal": refusal,
        }
        index, part = self._new_part(key, "text", extra)
        self._last_text = (event.output_index, event.content_index, index, part)
        out.append(TextStart(raw=event, view=self._view(), content_index=index, phase=phase))
        return index, part

    def _on_item_added(self, event: OutputItemAdded, out: list[StreamEvent]) -> None:
        item = event.item
        self._items[event.output_index] = item
        kind = item.get("type")
        if kind == "reasoning":
            self._thinking_part(event.output_index, item.get("id"), event, out)
        elif kind in _CALL_TYPES:
            self._tool_part(event.output_index, item, event, out)
        elif isinstance(kind, str) and kind != "message":
            self._server_part(event.output_index, item)

    def _thinking_part(
        self, output_index: int, item_id: Any, event: ServerEvent, out: list[StreamEvent]
    ) -> tuple[int, _Part]:
        key = ("thinking", output_index)
        index = self._by_key.get(key)
        if index is not None:
            return index, self.parts[index]
        extra = {"item_id": item_id if isinstance(item_id, str) else None, "summaries": 0}
        index, part = self._new_part(key, "thinking", extra)
        out.append(ThinkingStart(raw=event, view=self._view(), content_index=index))
        return index, part

    def _tool_part(
        self, output_index: int, item: dict[str, Any], event: ServerEvent, out: list[StreamEvent]
    ) -> tuple[int, _Part]:
        key = ("tool", output_index)
        index = self._by_key.get(key)
        if index is not None:
            return index, self.parts[index]
        call_id = _text_or_none(item.get("call_id")) or ""
        item_id = _text_or_none(item.get("id")) or ""
        item_type = _text_or_none(item.get("type")) or ""
        if item_type not in _CALL_TYPES:  # hostile or out-of-order input: treat it as a function
            item_type = "custom_tool_call" if isinstance(event, _CUSTOM_INPUT) else "function_call"
        kind, _ = CLIENT_CALLS.get(
            item_type, ("custom" if item_type == "custom_tool_call" else "function", "")
        )
        name = _text_or_none(item.get("name")) or (kind if item_type in CLIENT_CALLS else "")
        tool_call_id = join_tool_call_id(call_id, item_id)
        extra = {"id": tool_call_id, "name": name, "item": dict(item), "type": item_type}
        index, part = self._new_part(key, "tool", extra)
        out.append(
            ToolCallStart(
                raw=event,
                view=self._view(),
                content_index=index,
                tool_call=ToolCall(tool_call_id, name, kind=kind),  # type: ignore[arg-type]
            )
        )
        return index, part

    def _server_part(self, output_index: int, item: dict[str, Any]) -> tuple[int, _Part]:
        key = ("server", output_index)
        index = self._by_key.get(key)
        if index is not None:
            self.parts[index].extra["item"] = dict(item)
            return index, self.parts[index]
        return self._new_part(key, "server", {"item": dict(item)})

    def _on_progress(
        self, event: ToolCallProgress | ImageGenerationPartialImage, out: list[StreamEvent]
    ) -> None:
        item = self._items.get(event.output_index) or {"id": event.item_id}
        item_type = event.type.removeprefix("response.").rsplit(".", 1)[0]
        status = event.status if isinstance(event, ToolCallProgress) else "partial_image"
        item = {"type": item_type, **item}
        index, _ = self._server_part(event.output_index, item)
        out.append(
            HostedToolEvent(
                raw=event,
                view=self._view(),
                content_index=index,
                item_type=item_type,
                status=status,
                item=dict(item),
            )
        )

    def _on_custom_input_delta(
        self, event: CustomToolCallInputDelta, out: list[StreamEvent]
    ) -> None:
        item = self._items.get(
            event.output_index, {"id": event.item_id, "type": "custom_tool_call"}
        )
        index, part = self._tool_part(event.output_index, item, event, out)
        part.append(event.delta)
        out.append(
            ToolCallDelta(raw=event, view=self._view(), content_index=index, delta=event.delta)
        )

    def _on_custom_input_done(self, event: CustomToolCallInputDone, out: list[StreamEvent]) -> None:
        item = self._items.get(
            event.output_index, {"id": event.item_id, "type": "custom_tool_call"}
        )
        _, part = self._tool_part(event.output_index, item, event, out)
        if event.input != part.text():
            part.replace(event.input)

    def _on_part_added(self, event: ContentPartAdded, out: list[StreamEvent]) -> None:
        kind = event.part.get("type")
        if kind in ("output_text", "refusal"):
            self._text_part(event, out, refusal=kind == "refusal")

    def _on_text_delta(self, event: OutputTextDelta | RefusalDelta, out: list[StreamEvent]) -> None:
        last = self._last_text  # the common case, inline: another delta of the same part
        if last is not None and last[0] == event.output_index and last[1] == event.content_index:
            index, part = last[2], last[3]
        else:
            index, part = self._text_part(event, out, refusal=isinstance(event, RefusalDelta))
        delta = event.delta
        # parsing leaves surrogates only at a delta's edges: the halves of a split pair
        if self._held or (
            delta and ("\udc00" <= delta[0] <= "\udfff" or "\ud800" <= delta[-1] <= "\udbff")
        ):
            delta = self._join(index, delta)
            if not delta:
                return
        part.append(delta)
        snapshot = tuple([p.length for p in self.parts])  # as _view, without its two calls
        out.append(
            TextDelta(
                raw=event,
                view=lambda: self.partial(snapshot),
                content_index=index,
                delta=delta,
                phase=part.extra["phase"],
            )
        )

    def _on_text_done(self, event: OutputTextDone | RefusalDone, out: list[StreamEvent]) -> None:
        text = event.text if isinstance(event, OutputTextDone) else event.refusal
        index, part = self._text_part(event, out, refusal=isinstance(event, RefusalDone))
        self._end_text(index, part, event, out, text)

    def _end_text(
        self, index: int, part: _Part, event: ServerEvent, out: list[StreamEvent], text: str | None
    ) -> None:
        if part.ended:
            return
        self._flush_held(index, part, event, out)
        if text is not None and text != part.text():
            part.replace(text)  # the done text is authoritative
        part.ended = True
        out.append(
            TextEnd(
                raw=event,
                view=self._view(),
                content_index=index,
                content=part.text(),
                phase=part.extra["phase"],
            )
        )

    def _on_part_done(self, event: ContentPartDone, out: list[StreamEvent]) -> None:
        key = ("text", event.output_index, event.content_index)
        index = self._by_key.get(key)
        if index is None:
            return
        text = event.part.get("text", event.part.get("refusal"))
        self._end_text(
            index, self.parts[index], event, out, text if isinstance(text, str) else None
        )

    def _on_summary_part(self, event: ReasoningSummaryPartAdded, out: list[StreamEvent]) -> None:
        index, part = self._thinking_part(event.output_index, event.item_id, event, out)
        self._flush_held(index, part, event, out)
        if event.summary_index > 0 and part.length:
            part.append("\n\n")
            out.append(
                ThinkingDelta(raw=event, view=self._view(), content_index=index, delta="\n\n")
            )

    def _on_thinking_delta(
        self, event: ReasoningSummaryTextDelta | ReasoningTextDelta, out: list[StreamEvent]
    ) -> None:
        index, part = self._thinking_part(event.output_index, event.item_id, event, out)
        delta = event.delta
        if self._held or (
            delta and ("\udc00" <= delta[0] <= "\udfff" or "\ud800" <= delta[-1] <= "\udbff")
        ):
            delta = self._join(index, delta)
            if not delta:
                return
        part.append(delta)
        out.append(ThinkingDelta(raw=event, view=self._view(), content_index=index, delta=delta))

    def _join(self, index: int, delta: str) -> str:
        """*delta* of part *index* with a surrogate pair split across deltas joined: a
        trailing high surrogate waits for the next delta (see ``join_split_surrogates``)."""
        text, hold = join_split_surrogates(self._held.pop(index, ""), delta)
        if hold:
            self._held[index] = hold
        return text

    def _flush_held(
        self, index: int, part: _Part, event: ServerEvent, out: list[StreamEvent]
    ) -> None:
        """At the end of a text or thinking part: a high surrogate still held had no partner;
        it goes out as U+FFFD."""
        held = self._held.pop(index, None)
        if held is None:
            return
        text = replace_lone_surrogates(held)
        part.append(text)
        if part.kind == "text":
            out.append(
                TextDelta(
                    raw=event,
                    view=self._view(),
                    content_index=index,
                    delta=text,
                    phase=part.extra["phase"],
                )
            )
        else:
            out.append(ThinkingDelta(raw=event, view=self._view(), content_index=index, delta=text))

    def _on_summary_done(self, event: ReasoningSummaryTextDone, out: list[StreamEvent]) -> None:
        """Nothing to send: the item's done event carries every summary part."""

    def _on_arguments_delta(
        self, event: FunctionCallArgumentsDelta, out: list[StreamEvent]
    ) -> None:
        item = self._items.get(event.output_index, {"id": event.item_id})
        index, part = self._tool_part(event.output_index, item, event, out)
        part.append(event.delta)
        out.append(
            ToolCallDelta(raw=event, view=self._view(), content_index=index, delta=event.delta)
        )

    def _on_arguments_done(self, event: FunctionCallArgumentsDone, out: list[StreamEvent]) -> None:
        item = self._items.get(event.output_index, {"id": event.item_id})
        _, part = self._tool_part(event.output_index, item, event, out)
        if event.arguments != part.text():
            part.replace(event.arguments)
        if event.name:
            part.extra["name"] = event.name

    def _on_item_done(self, event: OutputItemDone, out: list[StreamEvent]) -> None:
        item = event.item
        kind = item.get("type")
        if kind == "message":
            for key, index in list(self._by_key.items()):
                if key[0] == "text" and key[1] == event.output_index:
                    self._end_text(index, self.parts[index], event, out, None)
        elif kind == "reasoning":
            index, part = self._thinking_part(event.output_index, item.get("id"), event, out)
            self._flush_held(index, part, event, out)
            final = reasoning_text(item)
            if final is not None and final != part.text():
                part.replace(final)
            if not part.ended:
                part.ended = True
                out.append(
                    ThinkingEnd(
                        raw=event, view=self._view(), content_index=index, content=part.text()
                    )
                )
        elif kind in _CALL_TYPES:
            index, part = self._tool_part(event.output_index, item, event, out)
            part.extra["item"] = dict(item)
            text = item.get("input" if kind == "custom_tool_call" else "arguments")
            if isinstance(text, str) and text != part.text():
                part.replace(text)
            self._end_tool(index, part, event, out)
        elif isinstance(kind, str):
            self._server_part(event.output_index, item)

    def _end_tool(
        self, index: int, part: _Part, event: ServerEvent, out: list[StreamEvent]
    ) -> None:
        if part.ended:
            return
        part.ended = True
        # the call as streamed: a parallel wrapper stays one call here (see the class docs)
        call = content_from_item(_item_of(part, part.text()))[0]
        assert isinstance(call, ToolCall)  # _tool_part admits only call item types
        out.append(ToolCallEnd(raw=event, view=self._view(), content_index=index, tool_call=call))

    def _end_open_parts(self, event: ServerEvent, out: list[StreamEvent]) -> None:
        """A terminal event closes every piece still open (e.g. a response cut short)."""
        for index, part in enumerate(self.parts):
            if part.ended:
                continue
            if part.kind == "server":
                part.ended = True
            elif part.kind == "text":
                self._end_text(index, part, event, out, None)
            elif part.kind == "thinking":
                self._flush_held(index, part, event, out)
                part.ended = True
                out.append(
                    ThinkingEnd(
                        raw=event, view=self._view(), content_index=index, content=part.text()
                    )
                )
            else:
                self._end_tool(index, part, event, out)

    def _final(self, event: ServerEvent) -> Done | Error:
        terminal = self.accumulator.terminal
        assert terminal is not None
        # the message and the session keep only the output items of it: only those are copied
        response = self.accumulator.result()
        self.final_response = response
        message = build_assistant_message_from_response(response, self.model, tools=self._tools)
        final: Done | Error
        if isinstance(event, ErrorEvent) or terminal.status in ("error", "failed", "cancelled"):
            error = terminal.error or APIError("the response failed")
            message = attrs.evolve(message, stop_reason="error", error_message=str(error.message))
            final = Error(raw=event, reason="error", error=message, exception=error)
        elif message.stop_reason in ("stop", "length", "toolUse"):
            final = Done(raw=event, reason=message.stop_reason, message=message)
        else:
            exception = APIError(message.error_message or "the response did not complete")
            final = Error(raw=event, reason="error", error=message, exception=exception)
        self.finished = final
        return final

    def fail(
        self, exception: OpenAIWSError, *, aborted: bool = False, raw: ServerEvent | None = None
    ) -> Error:
        """The ``error`` event for a stream that broke (or was closed) before its end."""
        reason: Literal["error", "aborted"] = "aborted" if aborted else "error"
        message = attrs.evolve(
            self.partial(),
            stop_reason=reason,
            error_message=str(exception) or type(exception).__name__,
        )
        final = Error(raw=raw, reason=reason, error=message, exception=exception)
        self.finished = final
        return final


def _item_of(part: _Part, text: str) -> dict[str, Any]:
    """The output item a part stands for, with *text* as its text so far, for
    :func:`~openai_ws.convert.content_from_item` (the one item-to-content mapping)."""
    extra = part.extra
    if part.kind == "text":
        piece = (
            {"type": "refusal", "refusal": text}
            if extra["refusal"]
            else {"type": "output_text", "text": text}
        )
        return {
            "type": "message",
            "id": extra["item_id"],
            "phase": extra["phase"],
            "content": [piece],
        }
    if part.kind == "thinking":
        # as raw reasoning text, so the partial keeps the text without inventing summary parts
        return {
            "type": "reasoning",
            "id": extra["item_id"],
            "content": [{"type": "reasoning_text", "text": text}],
        }
    if part.kind == "server":
        return dict(extra["item"])
    item = dict(extra["item"])
    if extra["type"] == "function_call":
        call_id, item_id = split_tool_call_id(extra["id"])
        item.update(type="function_call", id=item_id, call_id=call_id, name=extra["name"])
        item["arguments"] = text
    elif extra["type"] == "custom_tool_call":
        call_id, item_id = split_tool_call_id(extra["id"])
        item.update(type="custom_tool_call", id=item_id, call_id=call_id, name=extra["name"])
        item["input"] = text
    return item


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


#: Output item types that become a :class:`~openai_ws.messages.ToolCall` (and so stream as
#: ``toolcall_*`` events); every other non-message, non-reasoning item is a ServerItem.
_CALL_TYPES = frozenset({"function_call", "custom_tool_call", *CLIENT_CALLS})
_CUSTOM_INPUT = (CustomToolCallInputDelta, CustomToolCallInputDone)

_HANDLERS: dict[type[ServerEvent], Callable[[MessageBuilder, Any, list[StreamEvent]], None]] = {
    OutputItemAdded: MessageBuilder._on_item_added,
    OutputItemDone: MessageBuilder._on_item_done,
    ContentPartAdded: MessageBuilder._on_part_added,
    ContentPartDone: MessageBuilder._on_part_done,
    OutputTextDelta: MessageBuilder._on_text_delta,
    RefusalDelta: MessageBuilder._on_text_delta,
    OutputTextDone: MessageBuilder._on_text_done,
    RefusalDone: MessageBuilder._on_text_done,
    ReasoningSummaryPartAdded: MessageBuilder._on_summary_part,
    ReasoningSummaryTextDelta: MessageBuilder._on_thinking_delta,
    ReasoningTextDelta: MessageBuilder._on_thinking_delta,
    ReasoningSummaryTextDone: MessageBuilder._on_summary_done,
    FunctionCallArgumentsDelta: MessageBuilder._on_arguments_delta,
    FunctionCallArgumentsDone: MessageBuilder._on_arguments_done,
    CustomToolCallInputDelta: MessageBuilder._on_custom_input_delta,
    CustomToolCallInputDone: MessageBuilder._on_custom_input_done,
    ToolCallProgress: MessageBuilder._on_progress,
    ImageGenerationPartialImage: MessageBuilder._on_progress,
}
