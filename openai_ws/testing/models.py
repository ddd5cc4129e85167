"""What the emulated model says: scripted turns, a deterministic default model, and replays.

A model is any callable that takes a :class:`ModelRequest` (the request and the conversation as
the server reconstructed it) and returns a :class:`Turn`. Three are provided:

* :class:`DefaultModel`: deterministic. When the user's last message mentions a declared tool
  (``get_weather`` is mentioned by "weather"), it calls that tool once for each capitalised
  name in the message ("Weather in Paris and Rome?" calls it for Paris, then for Rome, one turn
  each), then answers in text using the tool results. Otherwise it answers in text. A demo
  agent loop therefore runs several turns with no script.
* :class:`ScriptedModel`: plays a list of turns in order, whatever the request says.
* :class:`ReplayModel`: sends recorded or hand-written frames verbatim (a recorded stream from
  ``fixtures/recorded``, or the turns of OpenAI's WebSocket contract).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import attrs

__all__ = [
    "BUILTIN_CALLS",
    "HOSTED_PROGRESS",
    "BuiltinCall",
    "CustomCall",
    "DefaultModel",
    "Failure",
    "FunctionCall",
    "HostedCall",
    "Incomplete",
    "Model",
    "ModelRequest",
    "ParallelCall",
    "RawFrames",
    "Reasoning",
    "Refusal",
    "Rejection",
    "ReplayModel",
    "ScriptedModel",
    "Text",
    "Turn",
    "turn",
]

JSONDict = dict[str, Any]


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _frame_tuple(value: Iterable[JSONDict | str]) -> tuple[JSONDict | str, ...]:
    return tuple(value)


def _part_tuple(value: Iterable[Part]) -> tuple[Part, ...]:
    return tuple(value)


@attrs.frozen
class Text:
    """An assistant message with one ``output_text`` part.

    Attributes:
        text: the text; streamed as one delta per word (spaces stay attached).
        phase: ``"commentary"`` or ``"final_answer"`` to set the message's phase.
        chunk: stream ``chunk`` characters per delta instead of a word per delta.
    """

    text: str
    phase: str | None = None
    chunk: int | None = None


@attrs.frozen
class Refusal:
    """An assistant message whose one part is a ``refusal``."""

    text: str


@attrs.frozen
class Reasoning:
    """A reasoning item.

    Attributes:
        summary: summary parts, streamed as reasoning summary events.
        text: raw reasoning text (``reasoning_text`` events), for models that expose it.
        encrypted_content: the opaque state; None makes one up when the request includes
            ``"reasoning.encrypted_content"``, as the API does.
    """

    summary: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    text: str | None = None
    encrypted_content: str | None = None


@attrs.frozen
class FunctionCall:
    """A function call. ``arguments`` may be a dict (sent as compact JSON) or raw text."""

    name: str
    arguments: Mapping[str, Any] | str = attrs.field(factory=dict)
    call_id: str | None = None


@attrs.frozen
class CustomCall:
    """A custom (freeform) tool call: ``input`` is the free text, streamed as
    ``response.custom_tool_call_input.delta`` events."""

    name: str
    input: str = ""
    call_id: str | None = None


#: The progress states each hosted tool streams, in order (as the API does).
HOSTED_PROGRESS: dict[str, tuple[str, ...]] = {
    "web_search_call": ("in_progress", "searching", "completed"),
    "file_search_call": ("in_progress", "searching", "completed"),
    "code_interpreter_call": ("in_progress", "interpreting", "completed"),
    "image_generation_call": ("in_progress", "generating", "completed"),
    "mcp_call": ("in_progress", "completed"),
    "mcp_list_tools": ("in_progress", "completed"),
}


@attrs.frozen
class HostedCall:
    """An item the API produces and handles itself: a hosted tool call (``web_search_call``,
    ``file_search_call``, ``code_interpreter_call``, ``image_generation_call``, ``mcp_call``),
    ``mcp_list_tools``, ``compaction``...

    Attributes:
        type: the output item's type.
        fields: the item's other fields when done (e.g. ``{"action": {"type": "search",
            "query": "..."}}``); ``id`` and ``status`` are filled in.
        progress: the progress states streamed between ``output_item.added`` and
            ``output_item.done`` (``response.<type>.<state>`` events); None uses the API's
            usual ones for the type (:data:`HOSTED_PROGRESS`; none for other types).
    """

    type: str
    fields: Mapping[str, Any] = attrs.field(factory=dict)
    progress: tuple[str, ...] | None = attrs.field(
        default=None, converter=attrs.converters.optional(_str_tuple)
    )


#: Built-in tools the client executes: item type -> the field holding the request.
BUILTIN_CALLS: dict[str, str] = {
    "shell_call": "action",
    "local_shell_call": "action",
    "apply_patch_call": "operation",
    "computer_call": "action",
}


@attrs.frozen
class BuiltinCall:
    """A call of a built-in tool the client executes: ``shell_call`` (its commands streamed
    as ``response.shell_call_command.*`` events), ``local_shell_call``, ``apply_patch_call``,
    ``computer_call``.

    Attributes:
        type: the output item's type.
        request: the item's ``action`` (``operation`` for apply_patch).
        call_id: the call id (made up when None).
    """

    type: str = attrs.field()
    request: Mapping[str, Any] = attrs.field(factory=dict)
    call_id: str | None = None

    @type.validator
    def _check_type(self, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in BUILTIN_CALLS:
            raise ValueError(f"BuiltinCall.type must be one of {sorted(BUILTIN_CALLS)}")


@attrs.frozen
class ParallelCall:
    """The parallel wrapper some models emit: one ``function_call`` named ``name`` whose
    arguments are ``{"tool_uses": [{"recipient_name": "functions.<name>", "parameters":
    {...}}, ...]}``, one use per call."""

    calls: tuple[FunctionCall, ...] = attrs.field(converter=tuple)
    name: str = "parallel"
    call_id: str | None = None


@attrs.frozen
class Incomplete:
    """End the turn as ``response.incomplete`` with this reason (after any parts before it)."""

    reason: str = "max_output_tokens"


@attrs.frozen
class Failure:
    """Fail during generation: an ``error`` event then ``response.failed``, as the API does."""

    code: str = "server_error"
    message: str = "The server had an error while processing your request."
    type: str = "server_error"


@attrs.frozen
class Rejection:
    """Reject the request before generating: an HTTP error status over HTTP, an ``error``
    event carrying ``status`` over WebSocket. A rejection evicts the connection cache."""

    code: str | None = "invalid_request_error"
    message: str = "Invalid request."
    status: int = 400
    param: str | None = None
    type: str = "invalid_request_error"
    headers: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class RawFrames:
    """Frames sent verbatim: dicts are sent as JSON text, strings as they are (so ``"{"`` is a
    malformed frame). ``close_code`` closes the socket afterwards (1006: without a close frame);
    over HTTP any ``close_code`` cuts the body there."""

    frames: tuple[JSONDict | str, ...] = attrs.field(converter=_frame_tuple)
    close_code: int | None = None


Part: TypeAlias = (
    Text | Refusal | Reasoning | FunctionCall | CustomCall | HostedCall | BuiltinCall | ParallelCall
)
_PARTS = (Text, Refusal, Reasoning, FunctionCall, CustomCall, HostedCall, BuiltinCall, ParallelCall)
Ending: TypeAlias = Incomplete | Failure


@attrs.frozen
class Turn:
    """One response: output parts in order, then how it ends (completed unless ``ending``).

    A turn can instead be a :class:`Rejection` or :class:`RawFrames` (then ``parts`` is empty).
    """

    parts: tuple[Part, ...] = attrs.field(default=(), converter=_part_tuple)
    ending: Ending | None = None
    rejection: Rejection | None = None
    raw: RawFrames | None = None


TurnLike: TypeAlias = Turn | str | Part | Ending | Rejection | RawFrames | Sequence[Any]


def turn(spec: TurnLike) -> Turn:
    """Build a :class:`Turn` from a shorthand: a string is a :class:`Text`; a part, ending,
    rejection or raw frames stands alone; a list mixes parts and ends with an ending."""
    if isinstance(spec, Turn):
        return spec
    if isinstance(spec, str):
        return Turn((Text(spec),))
    if isinstance(spec, _PARTS):
        return Turn((spec,))
    if isinstance(spec, (Incomplete, Failure)):
        return Turn(ending=spec)
    if isinstance(spec, Rejection):
        return Turn(rejection=spec)
    if isinstance(spec, RawFrames):
        return Turn(raw=spec)
    if isinstance(spec, Sequence):
        parts: list[Part] = []
        ending: Ending | None = None
        for element in spec:
            if ending is not None:
                raise ValueError("nothing may follow Incomplete or Failure in a turn")
            if isinstance(element, str):
                parts.append(Text(element))
            elif isinstance(element, _PARTS):
                parts.append(element)
            elif isinstance(element, (Incomplete, Failure)):
                ending = element
            else:
                raise TypeError(f"not a turn part: {element!r}")
        return Turn(tuple(parts), ending)
    raise TypeError(f"not a turn: {spec!r}")


@attrs.frozen
class ModelRequest:
    """What a model sees.

    Attributes:
        body: the request as received (``response.create`` fields).
        context: the whole conversation as input items: the chain's earlier input and output
            (from the connection cache or the store) followed by this request's ``input``.
        transport: ``"websocket"``, ``"sse"`` or ``"http"``.
        connection: the emulator's id of the connection it came on.
    """

    body: JSONDict
    context: list[JSONDict]
    transport: str
    connection: int

    @property
    def tools(self) -> list[JSONDict]:
        tools = self.body.get("tools")
        return [t for t in tools if isinstance(t, dict)] if isinstance(tools, list) else []

    @property
    def last_user_index(self) -> int | None:
        for index in range(len(self.context) - 1, -1, -1):
            item = self.context[index]
            if item.get("role") == "user" and item.get("type", "message") == "message":
                return index
        return None

    @property
    def last_user_text(self) -> str:
        index = self.last_user_index
        return "" if index is None else _item_text(self.context[index])


def _item_text(item: Mapping[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    texts = []
    for part in content if isinstance(content, list) else ():
        if isinstance(part, Mapping) and isinstance(part.get("text"), str):
            texts.append(part["text"])
    return " ".join(texts)


class Model(Protocol):
    """Anything that turns a :class:`ModelRequest` into a :class:`Turn`."""

    def __call__(self, request: ModelRequest) -> Turn: ...


#: Whether a model needs the conversation resolved (previous_response_id looked up). Models that
#: replay verbatim set ``needs_context = False`` so that their scripts play whatever was asked.
def needs_context(model: Callable[..., Any]) -> bool:
    return bool(getattr(model, "needs_context", True))


_GENERIC_WORDS = frozenset(
    {
        "get",
        "set",
        "fetch",
        "list",
        "lookup",
        "look",
        "find",
        "search",
        "query",
        "call",
        "run",
        "do",
        "make",
        "current",
        "the",
        "a",
        "an",
        "of",
        "for",
        "to",
        "by",
        "and",
        "tool",
        "info",
    }
)
# Capitalised words that start questions and requests rather than name something.
_STARTERS = frozenset(
    {
        "what",
        "what's",
        "whats",
        "how",
        "tell",
        "please",
        "can",
        "could",
        "would",
        "will",
        "is",
        "are",
        "do",
        "does",
        "give",
        "show",
        "get",
        "find",
        "check",
        "look",
        "hi",
        "hello",
        "hey",
        "and",
        "also",
        "then",
        "now",
        "i",
        "i'm",
        "which",
        "where",
        "when",
        "why",
        "who",
        "compare",
        "list",
        "ok",
        "okay",
        "thanks",
        "thank",
        "the",
        "in",
        "for",
    }
)
_CAPITALISED = re.compile(r"\b([A-Z][\w\-]*(?:\s+[A-Z][\w\-]*)*)")


def _tool_words(name: str) -> set[str]:
    words = re.split(r"[_\-\s.]+|(?<=[a-z])(?=[A-Z])", name)
    return {w.lower() for w in words if w and w.lower() not in _GENERIC_WORDS}


class DefaultModel:
    """The deterministic model the emulator uses when given no other.

    Rules, applied to the last user message of the conversation:

    1. A declared function tool is *mentioned* when one of the words of its name (other than
       generic verbs such as get/fetch/list) appears in the message, case-insensitively.
    2. The *subjects* are the capitalised words or runs of words in the message, except words
       that start questions or requests ("What", "Tell"...) and words of tool names ("What's
       the weather in Paris and New York?" has the subjects Paris and New York).
    3. While some subject has not been passed to a mentioned tool since that message, call the
       first mentioned tool for the next one: its first string parameter (required first) gets
       the subject. A tool with no string parameter is called once with ``{}``.
    4. Then answer in text, quoting every tool result that followed the message (a JSON
       object is quoted by its first string value other than the subject, and any quote is cut
       to 80 characters); or, when no tool was mentioned, say what the user asked.
    """

    def __call__(self, request: ModelRequest) -> Turn:
        user_index = request.last_user_index
        text = request.last_user_text
        mentioned = self._mentioned_tools(request.tools, text)
        since = request.context[user_index + 1 :] if user_index is not None else []
        calls = [i for i in since if i.get("type") == "function_call"]
        outputs = [i for i in since if i.get("type") == "function_call_output"]
        if mentioned:
            tool = mentioned[0]
            subjects = self._subjects(text, request.tools)
            done = {self._subject_of(call) for call in calls}
            param = self._string_param(tool)
            if param is None:
                if not calls:
                    return Turn((FunctionCall(tool["name"], {}),))
            else:
                for subject in subjects:
                    if subject not in done:
                        return Turn((FunctionCall(tool["name"], {param: subject}),))
                if not subjects and not calls:
                    return Turn((FunctionCall(tool["name"], {param: text.strip()}),))
        if outputs:
            results = []
            calls_by_id = {c.get("call_id"): c for c in calls}
            for output in outputs:
                call = calls_by_id.get(output.get("call_id"), {})
                about = self._subject_of(call)
                value = self._gist(output.get("output"), about)
                results.append(f"{about}: {value}" if about else value)
            return Turn((Text("Here is what I found. " + "; ".join(results) + "."),))
        if text:
            return Turn((Text(f"You said: {text}"),))
        return Turn((Text("Hello! How can I help?"),))

    @staticmethod
    def _gist(output: Any, subject: str | None) -> str:
        """What to quote from a tool result: the text itself, or, for a JSON object, its first
        string value other than the subject; cut to 80 characters."""
        text = output if isinstance(output, str) else json.dumps(output)
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            for value in decoded.values():
                if isinstance(value, str) and value != subject:
                    text = value
                    break
        return text if len(text) <= 80 else text[:79] + "…"

    @staticmethod
    def _mentioned_tools(tools: list[JSONDict], text: str) -> list[JSONDict]:
        words = {w.lower() for w in re.findall(r"[\w\-]+", text)}
        mentioned = []
        for tool in tools:
            name = tool.get("name")
            if tool.get("type", "function") != "function" or not isinstance(name, str):
                continue
            if name.lower() in words or _tool_words(name) & words:
                mentioned.append(tool)
        return mentioned

    @staticmethod
    def _subjects(text: str, tools: list[JSONDict]) -> list[str]:
        ignored = set(_STARTERS)
        for tool in tools:
            if isinstance(tool.get("name"), str):
                ignored |= _tool_words(tool["name"])
        subjects: list[str] = []
        for match in _CAPITALISED.finditer(text):
            words = [w for w in match.group(1).split() if w.lower() not in ignored]
            if words:
                subject = " ".join(words)
                if subject not in subjects:
                    subjects.append(subject)
        return subjects

    @staticmethod
    def _string_param(tool: JSONDict) -> str | None:
        params = tool.get("parameters")
        props = params.get("properties") if isinstance(params, dict) else None
        if not isinstance(props, dict):
            return None
        required = params.get("required") if isinstance(params, dict) else None
        order = [p for p in required if p in props] if isinstance(required, list) else []
        order += [p for p in props if p not in order]
        for name in order:
            spec = props[name]
            if isinstance(spec, dict) and spec.get("type", "string") == "string":
                return str(name)
        return None

    @staticmethod
    def _subject_of(call: Mapping[str, Any]) -> str | None:
        try:
            args = json.loads(call.get("arguments") or "{}")
        except (TypeError, ValueError):
            return None
        if isinstance(args, dict):
            for value in args.values():
                if isinstance(value, str):
                    return value
        return None


class ScriptedModel:
    """Plays *turns* in order, one per request, across all connections.

    Args:
        turns: turn specifications (see :func:`turn` for the shorthands).
        then: what to do when the script is exhausted: ``"fail"`` (a ``server_error`` rejection
            saying so, the default), ``"repeat"`` (play the last turn again), or a model to
            defer to.

    Thread-safe. :attr:`remaining` says how many turns are left.
    """

    def __init__(self, turns: Iterable[TurnLike], *, then: str | Model = "fail") -> None:
        self._turns = [turn(t) for t in turns]
        self._next = 0
        self._lock = threading.Lock()
        self._then = then
        if isinstance(then, str) and then not in ("fail", "repeat"):
            raise ValueError("then must be 'fail', 'repeat' or a model")

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._turns) - self._next

    def __call__(self, request: ModelRequest) -> Turn:
        with self._lock:
            if self._next < len(self._turns):
                self._next += 1
                return self._turns[self._next - 1]
        if self._then == "repeat" and self._turns:
            return self._turns[-1]
        if callable(self._then):
            return self._then(request)
        return Turn(
            rejection=Rejection(
                code="server_error",
                message="The emulator's script has no more turns.",
                status=500,
                type="server_error",
            )
        )


class ReplayModel(ScriptedModel):
    """Replays frames verbatim, one :class:`RawFrames` per request.

    Build it from a recorded file with :meth:`from_recording` (each ``response.created`` starts
    a new stream), or from the turns of OpenAI's WebSocket contract with
    :meth:`from_scenario`. The conversation is not resolved: ``previous_response_id`` is not
    checked, since the frames say what happens.
    """

    needs_context = False

    def __init__(self, turns: Iterable[RawFrames | Turn]) -> None:
        super().__init__(list(turns))

    @classmethod
    def from_recording(cls, path: str | Path) -> ReplayModel:
        """One turn per stream of a ``*.chunks.txt`` recording (one JSON event per line)."""
        streams: list[list[JSONDict]] = []
        for line in Path(path).read_text("utf-8").split("\n"):
            if not line.strip():
                continue
            event = json.loads(line)
            if event.get("type") == "response.created" or not streams:
                streams.append([])
            streams[-1].append(event)
        return cls(RawFrames(tuple(stream)) for stream in streams)

    @classmethod
    def from_scenario(cls, scenario: Mapping[str, Any]) -> ReplayModel:
        """The turns of one scenario of ``websocket_scenarios.json``; its ``close_code`` (if
        any) closes the socket after the last turn's frames."""
        turns = list(scenario["turns"])
        out = []
        for number, entry in enumerate(turns):
            close = scenario.get("close_code") if number == len(turns) - 1 else None
            out.append(RawFrames(tuple(entry["frames"]), close_code=close))
        return cls(out)
