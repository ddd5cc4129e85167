"""Generation options, and the request body a turn sends (identical on both transports)."""

from __future__ import annotations

import operator
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from .chain import InputItems, ItemDigest
from .convert import InputState, convert_messages_to_input_items, convert_tools
from .history import HistoryState, prepare_history
from .messages import Context, Message

__all__ = ["StreamOptions", "build_request"]

JSONDict = dict[str, Any]


def _number(low: float, high: float) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not low <= value <= high
        ):
            raise ValueError(
                f"StreamOptions.{attribute.name} must be a number from {low} to {high}, "
                f"got {value!r}"
            )

    return check


def _positive_int(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ValueError(
            f"StreamOptions.{attribute.name} must be a positive integer, got {value!r}"
        )


def _positive_number(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
    ):
        raise ValueError(
            f"StreamOptions.{attribute.name} must be a positive number of seconds, got {value!r}"
        )


def _optional(*types: type) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types)
            raise TypeError(
                f"StreamOptions.{attribute.name} must be {names}, got {type(value).__name__}"
            )

    return check


@attrs.frozen(kw_only=True)
class StreamOptions:
    """How to generate, and how to wait. Every field is optional.

    Attributes:
        temperature: sampling temperature, 0 to 2.
        top_p: nucleus sampling, 0 to 1.
        max_output_tokens: the most tokens the answer may have (the stop reason is ``length``
            when it runs out).
        tool_choice: ``"auto"``, ``"none"``, ``"required"`` or ``{"type": "function",
            "name": ...}``.
        reasoning_effort: ``reasoning.effort`` (``"minimal"`` ... ``"high"``).
        reasoning_summary: ``reasoning.summary`` (``"auto"``, ``"concise"``, ``"detailed"``).
        text_verbosity: ``text.verbosity`` (``"low"``, ``"medium"``, ``"high"``).
        store: store responses on the server (default False: WebSocket mode chains through
            the connection cache, HTTP sends the whole conversation).
        metadata: string key/value pairs attached to the response.
        include: extra output to include; when ``store`` is False and reasoning is asked for
            (``reasoning_effort`` or ``reasoning_summary``), ``["reasoning.encrypted_content"]``
            is the default, so that reasoning can be carried to the next turn.
        instructions: the system instructions, instead of ``Context.system_prompt``.
        extra_body: fields merged into the request body last (they win).
        headers: extra HTTP headers: on each HTTP request, and on the WebSocket handshake (a
            session whose headers change gets a new socket).
        warm_up: before the first turn on a new socket, send a ``generate: false`` request with
            the tools and instructions, and chain the turn from it.
        timeout: seconds to wait for the first event and between two events.
        on_payload: called with each request body before it is sent (after chaining decided
            what goes in it); may return a replacement.
    """

    temperature: float | None = attrs.field(default=None, validator=_number(0.0, 2.0))
    top_p: float | None = attrs.field(default=None, validator=_number(0.0, 1.0))
    max_output_tokens: int | None = attrs.field(default=None, validator=_positive_int)
    tool_choice: str | Mapping[str, Any] | None = attrs.field(
        default=None, validator=_optional(str, Mapping)
    )
    reasoning_effort: str | None = attrs.field(default=None, validator=_optional(str))
    reasoning_summary: str | None = attrs.field(default=None, validator=_optional(str))
    text_verbosity: str | None = attrs.field(default=None, validator=_optional(str))
    store: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    metadata: Mapping[str, str] | None = attrs.field(default=None, validator=_optional(Mapping))
    include: Sequence[str] | None = attrs.field(default=None, validator=_optional(list, tuple))
    instructions: str | None = attrs.field(default=None, validator=_optional(str))
    extra_body: Mapping[str, Any] | None = attrs.field(default=None, validator=_optional(Mapping))
    headers: Mapping[str, str] | None = attrs.field(default=None, validator=_optional(Mapping))
    warm_up: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    timeout: float | None = attrs.field(default=None, validator=_positive_number)
    on_payload: Callable[[JSONDict], JSONDict | None] | None = attrs.field(default=None, eq=False)

    @on_payload.validator
    def _check_callable(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not callable(value):
            raise TypeError("StreamOptions.on_payload must be callable")


@attrs.frozen
class _Prepared:
    """What the last request built from a context computed (never changed once made): the
    messages it was built from, the hygiene and the conversion resumable from their end, and
    the running digest of those items."""

    messages: tuple[Message, ...]  # held, so that their ids stay theirs
    history: HistoryState
    inputs: InputState
    digest: ItemDigest
    # the digests after each item this turn added but the last (the planner then finds the
    # digest of the last request's input plus its answer without hashing the answer again)
    steps: tuple[ItemDigest, ...] = ()


class _Memo:
    """One :class:`_Prepared` per live :class:`~openai_ws.messages.Context`, keyed by the
    context's id (a context is mutable, hence unhashable) and dropped with the context.

    A turn whose messages start with the very same objects as the last request's (compared by
    identity, never by value) prepares, converts and hashes only the messages after them; any
    other list (a message removed, replaced, even by an equal one, or reordered) is prepared
    from the start. Messages are frozen; changing a list or dict inside one after it was sent
    is not seen, as the documentation says. Thread-safe without a lock (a lock here could be
    taken by a weakref callback in the middle of any allocation): a :class:`_Prepared` is never
    changed, a new one replaces it with one dict assignment, and a context's entry can only be
    removed when no thread holds the context any more.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[Context], _Prepared]] = {}

    def _forget(self, key: int, ref: weakref.ref[Context]) -> None:
        # the callback runs as the context dies, before its id can be anyone else's
        entry = self._entries.get(key)
        if entry is not None and entry[0] is ref:
            self._entries.pop(key, None)

    def _forgetter(self, key: int) -> Callable[[weakref.ref[Context]], None]:
        return lambda ref: self._forget(key, ref)

    def input_items(self, context: Context) -> InputItems:
        """The prepared and converted messages of *context*, with their digests.

        Raises:
            ValueError, TypeError: as :func:`~openai_ws.history.prepare_history` and
                :func:`~openai_ws.convert.convert_messages_to_input_items`.
        """
        key = id(context)
        entry = self._entries.get(key)
        messages = context.messages
        previous: _Prepared | None = None
        if entry is not None and entry[0]() is context:
            previous = entry[1]
            done = len(previous.messages)
            if len(messages) < done or not all(map(operator.is_, previous.messages, messages)):
                previous = None
        prepared: _Prepared | None = None
        if previous is not None:
            history = previous.history.copy()
            new = messages[len(previous.messages) :]
            if history.extend(new):  # False: a new call answers a result dropped before
                start = len(previous.history.out)
                inputs = previous.inputs.copy()
                inputs.extend(history.out[start:])
                digest = previous.digest.copy()
                steps = []
                for item in inputs.items[len(previous.inputs.items) :]:
                    if digest.count > previous.digest.count:
                        steps.append(digest.copy())
                    digest.update((item,))
                prepared = _Prepared(tuple(messages), history, inputs, digest, tuple(steps))
            else:
                previous = None  # prepared again from the start: its digest is not ours
        if prepared is None:
            history = HistoryState()
            history.extend(list(messages))
            inputs = InputState()
            inputs.extend(history.out)
            digest = ItemDigest().update(inputs.items)
            prepared = _Prepared(tuple(messages), history, inputs, digest)
        history.log_drops()
        tail = inputs.converted(history.finish())
        checkpoints = [prepared.digest, *prepared.steps]
        if previous is not None:
            checkpoints.append(previous.digest)
        ref = entry[0] if entry is not None and entry[0]() is context else None
        if ref is None:
            ref = weakref.ref(context, self._forgetter(key))
        self._entries[key] = (ref, prepared)
        return InputItems(inputs.items + tail if tail else inputs.items, checkpoints)


_MEMO = _Memo()


def build_request(model: str, context: Context, options: StreamOptions) -> JSONDict:
    """The whole request for a turn: the full conversation, the tools, every option.

    The same body goes over both transports; chaining may then replace ``input`` with only the
    new items and add ``previous_response_id``.

    The work is incremental: per *context* (by identity; forgotten with the context), the
    hygiene, the converted items and their digest are kept, and a request whose messages start
    with the very objects of the last one's prepares only the messages after them. Any other
    change to ``context.messages`` (a message removed, inserted, reordered, or replaced, even
    by an equal one) is prepared from the start. Messages are frozen: a list or dict inside a
    message changed in place after a request was built from it is not seen; replace the
    message instead. With ``options.on_payload`` the items are built afresh (the hook may change
    them in place). Thread-safe.

    Raises:
        ValueError: the history breaks a rule (see :func:`~openai_ws.history.prepare_history`),
            or the request would carry nothing at all (an empty ``Context()``).
    """
    # hygiene first: every call answered, no orphan results, blank ids refused (ValueError)
    if options.on_payload is None:
        items: list[JSONDict] = _MEMO.input_items(context)
    else:
        # the hook may change the items in place: they must be this request's own
        items = convert_messages_to_input_items(prepare_history(context.messages))
    body: JSONDict = {"model": model, "input": items}
    instructions = (
        options.instructions if options.instructions is not None else context.system_prompt
    )
    if instructions:
        body["instructions"] = instructions
    if context.tools:
        body["tools"] = convert_tools(context.tools)
    if options.tool_choice is not None:
        body["tool_choice"] = (
            options.tool_choice
            if isinstance(options.tool_choice, str)
            else dict(options.tool_choice)
        )
    for name in ("temperature", "top_p", "max_output_tokens"):
        value = getattr(options, name)
        if value is not None:
            body[name] = value
    reasoning: JSONDict = {}
    if options.reasoning_effort is not None:
        reasoning["effort"] = options.reasoning_effort
    if options.reasoning_summary is not None:
        reasoning["summary"] = options.reasoning_summary
    if reasoning:
        body["reasoning"] = reasoning
    if options.text_verbosity is not None:
        body["text"] = {"verbosity": options.text_verbosity}
    body["store"] = options.store
    if options.metadata is not None:
        body["metadata"] = dict(options.metadata)
    if options.include is not None:
        body["include"] = list(options.include)
    elif reasoning and not options.store:
        body["include"] = ["reasoning.encrypted_content"]
    if options.extra_body:
        body.update(options.extra_body)
    if not (body["input"] or body.get("instructions") or body.get("tools") or body.get("prompt")):
        # the API answers a request with nothing in it with a 400; say so before sending it
        raise ValueError(
            "the context is empty: add a message to context.messages (or a system prompt, or "
            "tools to warm up with) before streaming a turn"
        )
    return body
