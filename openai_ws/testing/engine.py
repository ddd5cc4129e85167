"""The Responses API's behaviour, independent of the transport that carries it.

:class:`Engine` validates a request, resolves the conversation it continues (the connection
cache for WebSocket mode, the store for ``store: true``), asks the model for a turn, and turns
that into the exact event sequence the API streams, each event with the delay the latency
model gives it. The WebSocket and HTTP front ends send the same :class:`Reply`; only the framing
differs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Final

import attrs

from ..protocol import ResponseCompleted
from .models import (
    BUILTIN_CALLS,
    HOSTED_PROGRESS,
    BuiltinCall,
    CustomCall,
    DefaultModel,
    Failure,
    FunctionCall,
    HostedCall,
    Incomplete,
    Model,
    ModelRequest,
    ParallelCall,
    RawFrames,
    Reasoning,
    Refusal,
    Rejection,
    Text,
    Turn,
    needs_context,
)

__all__ = [
    "KNOWN_PARAMETERS",
    "Engine",
    "LatencyModel",
    "Reply",
    "StoredResponse",
    "estimate_tokens",
]

JSONDict = dict[str, Any]

logger = logging.getLogger("openai_ws.testing")

#: Top-level request fields the emulator accepts (others are rejected like the API does).
KNOWN_PARAMETERS: Final = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls",
        "temperature", "top_p", "max_output_tokens", "max_tool_calls", "previous_response_id",
        "store", "metadata", "include", "reasoning", "text", "truncation", "user",
        "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "service_tier",
        "stream", "stream_options", "background", "conversation", "prompt", "top_logprobs",
        "generate", "stream_id", "context_management", "type",
    }
)  # fmt: skip


def estimate_tokens(value: Any) -> int:
    """A token estimate good enough for usage and latency: one token per 4 characters of JSON."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return max(1, (len(text) + 3) // 4) if text else 0


@attrs.frozen
class LatencyModel:
    """How long the emulated service takes.

    A turn waits ``time_to_first_event + per_uncached_token * uncached`` before its first event,
    where *uncached* counts the input tokens NOT served from the WebSocket connection cache
    (a chained turn on the same socket pays only for its new items; an HTTP turn pays for the
    whole conversation). Each delta then waits for its tokens at ``tokens_per_second``; every
    event also waits ``per_event``.

    The default is the :meth:`realistic` profile divided by 10: the same shape (and so the same
    WebSocket-versus-HTTP ratios), ten times faster, so demos and tests stay quick.
    """

    time_to_first_event: float = 0.025
    per_uncached_token: float = 6e-6
    tokens_per_second: float = 1000.0
    per_event: float = 0.0

    @classmethod
    def realistic(cls) -> LatencyModel:
        """Magnitudes of a hosted frontier model: 250 ms to the first event, 60 us per
        uncached input token (about 17k tokens/s of prefill), 100 output tokens/s."""
        return cls(0.25, 60e-6, 100.0, 0.0)

    @classmethod
    def instant(cls) -> LatencyModel:
        """No delays at all (for tests and throughput benchmarks)."""
        return cls(0.0, 0.0, 0.0, 0.0)

    def first_event(self, uncached_tokens: int) -> float:
        return self.time_to_first_event + self.per_uncached_token * uncached_tokens + self.per_event

    def delta(self, text: str) -> float:
        tokens = self.per_event
        if self.tokens_per_second > 0:
            tokens += estimate_tokens(text) / self.tokens_per_second
        return tokens


@attrs.define
class StoredResponse:
    """A finished response the server remembers (connection cache or store)."""

    id: str
    context: list[JSONDict]
    output: list[JSONDict]
    response: JSONDict
    #: the tokens the server holds for it: its whole prompt (instructions and tools included)
    #: and its output; what a continuation on the same socket does not pay for again
    held_tokens: int = 0

    def continued(self) -> list[JSONDict]:
        """The conversation a continuation of this response starts from."""
        return self.context + self.output


@attrs.define
class ConnectionState:
    """One client connection as the engine sees it."""

    id: int
    transport: str
    opened_at: float = attrs.field(factory=time.monotonic)
    cache: StoredResponse | None = None


@attrs.define
class Reply:
    """What to send for one request.

    Attributes:
        frames: ``(delay before sending, event type, JSON text)``; raw string frames have the
            event type ``""``.
        status: the HTTP status for the non-streaming and SSE front ends (200 unless rejected).
        error_body: for a rejection, the ``{"error": {...}}`` HTTP body.
        headers: extra HTTP headers (e.g. ``retry-after``).
        close_code: close the socket (or cut the body) after the frames.
        response: the final response object (for non-streaming HTTP).
        duplicated_items: new input items that repeat items the chained response already holds
            (a client bug: history sent together with ``previous_response_id``).
    """

    frames: list[tuple[float, str, str]] = attrs.field(factory=list)
    status: int = 200
    error_body: JSONDict | None = None
    headers: dict[str, str] = attrs.field(factory=dict)
    close_code: int | None = None
    response: JSONDict | None = None
    duplicated_items: int = 0
    _on_sent: Any = attrs.field(default=None, repr=False)

    @property
    def rejected(self) -> bool:
        return self.error_body is not None

    def sent(self) -> None:
        """Call once every frame was delivered: commits the response to cache and store."""
        if self._on_sent is not None:
            self._on_sent()
            self._on_sent = None


class _Rejected(Exception):
    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.message)
        self.rejection = rejection


def _model_failure(message: str) -> Rejection:
    return Rejection(code="server_error", message=message, status=500, type="server_error")


def _invalid(message: str, param: str | None, code: str | None = None) -> _Rejected:
    return _Rejected(Rejection(code=code, message=message, status=400, param=param))


class Engine:
    """The emulated service: shared by every connection of one server. Thread-safe."""

    def __init__(
        self,
        *,
        model: Model | None = None,
        latency: LatencyModel | None = None,
        seed: int = 0,
        max_connection_age: float = 3600.0,
        obfuscation: bool = True,
        error_shape: str = "nested",
        reject_unknown_parameters: bool = True,
    ) -> None:
        if error_shape not in ("nested", "flat"):
            raise ValueError("error_shape must be 'nested' or 'flat'")
        self.model: Model = model if model is not None else DefaultModel()
        self.latency = latency if latency is not None else LatencyModel()
        self.max_connection_age = max_connection_age
        self.obfuscation = obfuscation
        self.error_shape = error_shape
        self.reject_unknown_parameters = reject_unknown_parameters
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.store: dict[str, StoredResponse] = {}

    # -- ids ---------------------------------------------------------------------------------

    def new_id(self, prefix: str, length: int = 48) -> str:
        with self._lock:
            bits = self._rng.getrandbits(length * 4)
        return f"{prefix}_{bits:0{length}x}"

    def _call_id(self) -> str:
        with self._lock:
            chars = "".join(
                self._rng.choices(
                    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=24
                )
            )
        return f"call_{chars}"

    def _obfuscation(self) -> str:
        with self._lock:
            return "".join(
                self._rng.choices(
                    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
                    k=self._rng.randint(2, 15),
                )
            )

    # -- requests ----------------------------------------------------------------------------

    def handle(self, body: Any, connection: ConnectionState) -> Reply:
        """Plan the reply to one request (``body`` is the decoded JSON)."""
        try:
            return self._handle(body, connection)
        except _Rejected as rejected:
            connection.cache = None  # a failed turn evicts the connection cache
            return self.rejection_reply(rejected.rejection, connection.transport)

    def rejection_reply(self, rejection: Rejection, transport: str) -> Reply:
        """A reply that rejects the request: an error event, or an HTTP error body."""
        error: JSONDict = {
            "type": rejection.type,
            "code": rejection.code,
            "message": rejection.message,
            "param": rejection.param,
        }
        if rejection.headers:
            error["headers"] = dict(rejection.headers)
        if self.error_shape == "flat":
            # the flat shape has no room for the error's own type: "type" is the event's
            flat = {k: v for k, v in error.items() if k != "type"}
            event: JSONDict = {"type": "error", **flat, "status": rejection.status}
        else:
            event = {"type": "error", "status": rejection.status, "error": error}
        headers = {k.lower(): v for k, v in rejection.headers.items()}
        http_error = {k: v for k, v in error.items() if k != "headers"}
        return Reply(
            frames=[(0.0, "error", json.dumps(event))],
            status=rejection.status,
            error_body={"error": http_error},
            headers=headers,
        )

    def _handle(self, body: Any, connection: ConnectionState) -> Reply:
        transport = connection.transport
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object.", None, "invalid_json")
        if transport == "websocket":
            if body.get("type") != "response.create":
                raise _invalid(
                    f"Unsupported event type: {body.get('type')!r}; expected 'response.create'.",
                    "type",
                    "unknown_event_type",
                )
            age = time.monotonic() - connection.opened_at
            if age >= self.max_connection_age:
                raise _Rejected(
                    Rejection(
                        code="websocket_connection_limit_reached",
                        message="This WebSocket connection reached its maximum duration. "
                        "Open a new connection to continue.",
                        status=400,
                    )
                )
            if body.get("background"):
                raise _invalid("background is not supported in WebSocket mode.", "background")
        self._validate(body)
        model = self.model
        previous_id = body.get("previous_response_id")
        input_items = _input_items(body.get("input"))
        parent: StoredResponse | None = None
        from_cache = False
        if previous_id is not None and needs_context(model):
            cache = connection.cache
            if cache is not None and cache.id == previous_id:
                parent, from_cache = cache, True
            else:
                with self._lock:
                    parent = self.store.get(previous_id)
            if parent is None:
                raise _Rejected(
                    Rejection(
                        code="previous_response_not_found",
                        message=f"Previous response with id '{previous_id}' not found.",
                        status=400,
                        param="previous_response_id",
                    )
                )
        base = parent.continued() if parent is not None else []
        context = base + input_items
        duplicated = _count_duplicates(base, input_items) if parent is not None else 0
        if needs_context(model):
            _check_tool_pairs(context, len(base))
        request = ModelRequest(body, context, transport, connection.id)
        planned = Turn() if body.get("generate") is False else self._ask(model, request)
        if planned.rejection is not None:
            raise _Rejected(planned.rejection)
        prompt_tokens = estimate_tokens(context) + estimate_tokens(
            [body.get("instructions") or "", body.get("tools") or []]
        )
        cached_tokens = 0
        if from_cache and parent is not None:
            cached_tokens = min(parent.held_tokens or estimate_tokens(base), prompt_tokens)
        if planned.raw is not None:
            reply = self._raw_reply(planned.raw, connection, context, prompt_tokens - cached_tokens)
        else:
            reply = self._generate(body, planned, connection, context, prompt_tokens, cached_tokens)
        reply.duplicated_items = duplicated
        return reply

    @staticmethod
    def _ask(model: Model, request: ModelRequest) -> Turn:
        """The model's turn; a model that raises or returns something else fails the request
        with a 500 that says why, so a broken script is visible in the client's error."""
        try:
            planned: object = model(request)
        except Exception as exc:
            logger.exception("the emulator's model raised")
            raise _Rejected(_model_failure(f"the emulator's model raised {exc!r}")) from exc
        if not isinstance(planned, Turn):
            problem = f"the emulator's model returned {type(planned).__name__}, not a Turn"
            logger.error(problem)
            raise _Rejected(_model_failure(problem))
        return planned

    def _validate(self, body: JSONDict) -> None:
        if self.reject_unknown_parameters:
            for key in body:
                if key not in KNOWN_PARAMETERS:
                    raise _invalid(f"Unknown parameter: '{key}'.", key, "unknown_parameter")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _invalid(
                "Missing required parameter: 'model'.", "model", "missing_required_parameter"
            )
        value = body.get("input")
        if value is not None and not isinstance(value, (str, list)):
            raise _invalid(
                "Invalid type for 'input': expected a string or an array.", "input", "invalid_type"
            )
        for index, item in enumerate(_input_items(value)):
            _validate_item(item, f"input[{index}]")
        tools = body.get("tools")
        if tools is not None:
            if not isinstance(tools, list):
                raise _invalid(
                    "Invalid type for 'tools': expected an array.", "tools", "invalid_type"
                )
            for index, tool in enumerate(tools):
                if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
                    raise _invalid(
                        "Each tool needs a 'type'.",
                        f"tools[{index}].type",
                        "missing_required_parameter",
                    )
                if tool["type"] in ("function", "custom") and not isinstance(tool.get("name"), str):
                    raise _invalid(
                        f"Missing required parameter: 'tools[{index}].name'.",
                        f"tools[{index}].name",
                        "missing_required_parameter",
                    )
                if "function" in tool:
                    raise _invalid(
                        f"Unknown parameter: 'tools[{index}].function'. "
                        "Function tools are flat in the Responses API.",
                        f"tools[{index}].function",
                        "unknown_parameter",
                    )
        for name, low, high in (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0)):
            number = body.get(name)
            if number is not None and (
                isinstance(number, bool)
                or not isinstance(number, (int, float))
                or not low <= number <= high
            ):
                raise _invalid(
                    f"Invalid '{name}': expected a number from {low} to {high}.",
                    name,
                    "invalid_value",
                )
        limit = body.get("max_output_tokens")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 16
        ):
            raise _invalid(
                "Invalid 'max_output_tokens': integer below minimum value 16.",
                "max_output_tokens",
                "integer_below_min_value",
            )
        previous = body.get("previous_response_id")
        if previous is not None and not isinstance(previous, str):
            raise _invalid(
                "Invalid type for 'previous_response_id'.", "previous_response_id", "invalid_type"
            )

    # -- building the events -----------------------------------------------------------------

    def _response(self, response_id: str, body: JSONDict, status: str, created_at: int) -> JSONDict:
        reasoning = body.get("reasoning")
        if not isinstance(reasoning, dict):
            reasoning = {}
        return {
            "id": response_id,
            "object": "response",
            "created_at": created_at,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": body.get("model"),
            "output": [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": None,
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }

    def _generate(
        self,
        body: JSONDict,
        planned: Turn,
        connection: ConnectionState,
        context: list[JSONDict],
        prompt_tokens: int,
        cached_tokens: int,
    ) -> Reply:
        response_id = self.new_id("resp")
        created_at = int(time.time())
        frames: list[tuple[float, str, str]] = []
        sequence = 0
        stream_id = body.get("stream_id") if isinstance(body.get("stream_id"), str) else None
        pending_delay = self.latency.first_event(prompt_tokens - cached_tokens)

        def emit(event_type: str, delay: float | None = None, **fields: Any) -> None:
            nonlocal sequence, pending_delay
            event = {"type": event_type, **fields, "sequence_number": sequence}
            if stream_id is not None:
                event["stream_id"] = stream_id
            sequence += 1
            wait = pending_delay + (self.latency.per_event if delay is None else delay)
            pending_delay = 0.0
            frames.append((wait, event_type, json.dumps(event, separators=(",", ":"))))

        snapshot = self._response(response_id, body, "in_progress", created_at)
        emit("response.created", response=snapshot)
        if body.get("generate") is not False:
            emit("response.in_progress", response=snapshot)

        include = body.get("include")
        if not isinstance(include, list):
            include = []
        limit = body.get("max_output_tokens")
        budget = limit if isinstance(limit, int) else None
        output: list[JSONDict] = []
        output_tokens = 0
        reasoning_tokens = 0
        ending: Incomplete | Failure | None = planned.ending
        for part in planned.parts:
            index = len(output)
            if isinstance(part, Text):
                text = part.text
                if budget is not None:
                    room = max(0, budget - output_tokens)
                    if estimate_tokens(text) > room:
                        text = text[: room * 4]
                        ending = Incomplete("max_output_tokens")
                item = self._emit_message(emit, index, text, part.phase, part.chunk, refusal=False)
                output_tokens += estimate_tokens(text)
            elif isinstance(part, Refusal):
                item = self._emit_message(emit, index, part.text, None, None, refusal=True)
                output_tokens += estimate_tokens(part.text)
            elif isinstance(part, FunctionCall):
                item = self._emit_call(emit, index, part)
                output_tokens += estimate_tokens(item["arguments"])
            elif isinstance(part, ParallelCall):
                uses = [
                    {
                        "recipient_name": f"functions.{call.name}",
                        "parameters": call.arguments
                        if isinstance(call.arguments, str)
                        else dict(call.arguments),
                    }
                    for call in part.calls
                ]
                wrapper = FunctionCall(part.name, {"tool_uses": uses}, part.call_id)
                item = self._emit_call(emit, index, wrapper)
                output_tokens += estimate_tokens(item["arguments"])
            elif isinstance(part, CustomCall):
                item = self._emit_custom(emit, index, part)
                output_tokens += estimate_tokens(part.input)
            elif isinstance(part, HostedCall):
                item = self._emit_hosted(emit, index, part)
                output_tokens += estimate_tokens(dict(part.fields))
            elif isinstance(part, BuiltinCall):
                item = self._emit_builtin(emit, index, part)
                output_tokens += estimate_tokens(dict(part.request))
            else:
                item = self._emit_reasoning(
                    emit, index, part, "reasoning.encrypted_content" in include
                )
                used = estimate_tokens([*part.summary, part.text or ""])
                output_tokens += used
                reasoning_tokens += used
            output.append(item)
            if isinstance(ending, Incomplete) and budget is not None and output_tokens >= budget:
                break

        usage = {
            "input_tokens": prompt_tokens,
            "input_tokens_details": {"cached_tokens": cached_tokens},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": prompt_tokens + output_tokens,
        }
        final = dict(snapshot, output=output, usage=usage)
        if isinstance(ending, Failure):
            error = {
                "type": ending.type,
                "code": ending.code,
                "message": ending.message,
                "param": None,
            }
            emit("error", error=error)
            final.update(status="failed", error={"code": ending.code, "message": ending.message})
            emit("response.failed", response=final)
            failed = True
        elif isinstance(ending, Incomplete):
            final.update(status="incomplete", incomplete_details={"reason": ending.reason})
            emit("response.incomplete", response=final)
            failed = False
        else:
            final["status"] = "completed"
            emit("response.completed", response=final)
            failed = False

        stored = StoredResponse(response_id, context, output, final, prompt_tokens + output_tokens)
        store = body.get("store", True) is not False

        def commit() -> None:
            if failed:
                connection.cache = None
                return
            connection.cache = stored if connection.transport == "websocket" else None
            if store:
                with self._lock:
                    self.store[response_id] = stored

        return Reply(frames=frames, response=final, on_sent=commit)

    def _emit_message(
        self,
        emit: Any,
        index: int,
        text: str,
        phase: str | None,
        chunk: int | None,
        *,
        refusal: bool,
    ) -> JSONDict:
        item_id = self.new_id("msg")
        item: JSONDict = {
            "id": item_id,
            "type": "message",
            "status": "in_progress",
            "content": [],
            "role": "assistant",
        }
        if phase:
            item["phase"] = phase
        emit("response.output_item.added", output_index=index, item=item)
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        if refusal:
            emit("response.content_part.added", **where, part={"type": "refusal", "refusal": ""})
            for piece in _chunks(text, chunk):
                emit("response.refusal.delta", self.latency.delta(piece), **where, delta=piece)
            emit("response.refusal.done", **where, refusal=text)
            part: JSONDict = {"type": "refusal", "refusal": text}
        else:
            emit(
                "response.content_part.added",
                **where,
                part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
            )
            for piece in _chunks(text, chunk):
                extra = {"obfuscation": self._obfuscation()} if self.obfuscation else {}
                emit(
                    "response.output_text.delta",
                    self.latency.delta(piece),
                    **where,
                    delta=piece,
                    logprobs=[],
                    **extra,
                )
            emit("response.output_text.done", **where, text=text, logprobs=[])
            part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        emit("response.content_part.done", **where, part=part)
        done = dict(item, status="completed", content=[part])
        emit("response.output_item.done", output_index=index, item=done)
        return done

    def _emit_call(self, emit: Any, index: int, call: FunctionCall) -> JSONDict:
        item_id = self.new_id("fc")
        arguments = (
            call.arguments
            if isinstance(call.arguments, str)
            else json.dumps(dict(call.arguments), separators=(",", ":"))
        )
        item: JSONDict = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": call.call_id or self._call_id(),
            "name": call.name,
        }
        emit("response.output_item.added", output_index=index, item=item)
        for piece in _chunks(arguments, 8):
            extra = {"obfuscation": self._obfuscation()} if self.obfuscation else {}
            emit(
                "response.function_call_arguments.delta",
                self.latency.delta(piece),
                item_id=item_id,
                output_index=index,
                delta=piece,
                **extra,
            )
        emit(
            "response.function_call_arguments.done",
            item_id=item_id,
            output_index=index,
            arguments=arguments,
        )
        done = dict(item, status="completed", arguments=arguments)
        emit("response.output_item.done", output_index=index, item=done)
        return done

    def _emit_custom(self, emit: Any, index: int, call: CustomCall) -> JSONDict:
        item_id = self.new_id("ctc")
        item: JSONDict = {
            "id": item_id,
            "type": "custom_tool_call",
            "status": "in_progress",
            "call_id": call.call_id or self._call_id(),
            "input": "",
            "name": call.name,
        }
        emit("response.output_item.added", output_index=index, item=item)
        where = {"item_id": item_id, "output_index": index}
        for piece in _chunks(call.input, 8):
            emit(
                "response.custom_tool_call_input.delta",
                self.latency.delta(piece),
                **where,
                delta=piece,
            )
        emit("response.custom_tool_call_input.done", **where, input=call.input)
        done = dict(item, status="completed", input=call.input)
        emit("response.output_item.done", output_index=index, item=done)
        return done

    _HOSTED_PREFIX: Final = {
        "web_search_call": "ws",
        "file_search_call": "fs",
        "code_interpreter_call": "ci",
        "image_generation_call": "ig",
        "mcp_call": "mcp",
        "mcp_list_tools": "mcpl",
        "compaction": "cmp",
    }

    def _emit_hosted(self, emit: Any, index: int, part: HostedCall) -> JSONDict:
        item_id = self.new_id(self._HOSTED_PREFIX.get(part.type, "item"))
        progress = (
            part.progress if part.progress is not None else HOSTED_PROGRESS.get(part.type, ())
        )
        item: JSONDict = {"id": item_id, "type": part.type}
        if progress:
            item["status"] = "in_progress"
        emit("response.output_item.added", output_index=index, item=item)
        for state in progress:
            emit(f"response.{part.type}.{state}", output_index=index, item_id=item_id)
        done = dict(item, **dict(part.fields))
        if progress:
            done["status"] = "failed" if "failed" in progress else "completed"
        done["id"] = item_id
        emit("response.output_item.done", output_index=index, item=done)
        return done

    def _emit_builtin(self, emit: Any, index: int, call: BuiltinCall) -> JSONDict:
        prefix = {"shell_call": "sh", "local_shell_call": "lsh", "apply_patch_call": "apc"}
        item_id = self.new_id(prefix.get(call.type, "cu"))
        field = BUILTIN_CALLS[call.type]
        request = dict(call.request)
        item: JSONDict = {
            "id": item_id,
            "type": call.type,
            "status": "in_progress",
            "call_id": call.call_id or self._call_id(),
        }
        if call.type == "shell_call":
            item[field] = {**request, "commands": []}
        emit("response.output_item.added", output_index=index, item=item)
        if call.type == "shell_call":
            commands = request.get("commands")
            for number, command in enumerate(commands if isinstance(commands, list) else []):
                where = {"output_index": index, "command_index": number}
                emit("response.shell_call_command.added", **where, command="")
                for piece in _chunks(str(command), 8):
                    emit(
                        "response.shell_call_command.delta",
                        self.latency.delta(piece),
                        **where,
                        delta=piece,
                    )
                emit("response.shell_call_command.done", **where, command=str(command))
        done = dict(item, status="completed")
        done[field] = request
        emit("response.output_item.done", output_index=index, item=done)
        return done

    def _emit_reasoning(self, emit: Any, index: int, part: Reasoning, encrypted: bool) -> JSONDict:
        item_id = self.new_id("rs")
        item: JSONDict = {"id": item_id, "type": "reasoning", "summary": []}
        secret = part.encrypted_content
        if secret is None and encrypted:
            digest = hashlib.sha256((item_id + "".join(part.summary)).encode()).digest() * 4
            secret = "gAAAAAB" + base64.urlsafe_b64encode(digest).decode()
        if secret is not None:
            item["encrypted_content"] = secret
        emit("response.output_item.added", output_index=index, item=item)
        summary = []
        for number, text in enumerate(part.summary):
            where = {"item_id": item_id, "output_index": index, "summary_index": number}
            emit(
                "response.reasoning_summary_part.added",
                **where,
                part={"type": "summary_text", "text": ""},
            )
            for piece in _chunks(text, None):
                emit(
                    "response.reasoning_summary_text.delta",
                    self.latency.delta(piece),
                    **where,
                    delta=piece,
                )
            emit("response.reasoning_summary_text.done", **where, text=text)
            emit(
                "response.reasoning_summary_part.done",
                **where,
                part={"type": "summary_text", "text": text},
            )
            summary.append({"type": "summary_text", "text": text})
        done = dict(item, summary=summary)
        if part.text is not None:
            where = {"item_id": item_id, "output_index": index, "content_index": 0}
            for piece in _chunks(part.text, None):
                emit(
                    "response.reasoning_text.delta", self.latency.delta(piece), **where, delta=piece
                )
            emit("response.reasoning_text.done", **where, text=part.text)
            done["content"] = [{"type": "reasoning_text", "text": part.text}]
        emit("response.output_item.done", output_index=index, item=done)
        return done

    def _raw_reply(
        self, raw: RawFrames, connection: ConnectionState, context: list[JSONDict], uncached: int
    ) -> Reply:
        frames: list[tuple[float, str, str]] = []
        final: JSONDict | None = None
        for number, frame in enumerate(raw.frames):
            delay = self.latency.first_event(uncached) if number == 0 else self.latency.per_event
            if isinstance(frame, str):
                frames.append((delay, "", frame))
                continue
            event_type = frame.get("type")
            frames.append(
                (delay, event_type if isinstance(event_type, str) else "", json.dumps(frame))
            )
            if event_type in ResponseCompleted.TYPES and isinstance(frame.get("response"), dict):
                final = frame["response"]

        def commit() -> None:
            if final is None or not isinstance(final.get("id"), str):
                connection.cache = None
                return
            output = final.get("output")
            items = [i for i in output if isinstance(i, dict)] if isinstance(output, list) else []
            stored = StoredResponse(final["id"], context, items, final)
            connection.cache = stored if connection.transport == "websocket" else None
            if final.get("store", True) is not False:
                with self._lock:
                    self.store[final["id"]] = stored

        return Reply(frames=frames, close_code=raw.close_code, response=final, on_sent=commit)


_WORD: Final = re.compile(r"\s*\S+|\s+")


def _chunks(text: str, size: int | None) -> Iterator[str]:
    if not text:
        return
    if size:
        for start in range(0, len(text), size):
            yield text[start : start + size]
        return
    for match in _WORD.finditer(text):
        yield match.group(0)


def _input_items(value: Any) -> list[JSONDict]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return [item if isinstance(item, dict) else {"invalid": item} for item in value]


_ITEM_RULES: Final[dict[str, tuple[str, ...]]] = {
    "message": ("role", "content"),
    "function_call": ("call_id", "name", "arguments"),
    "function_call_output": ("call_id", "output"),
    "custom_tool_call": ("call_id", "name", "input"),
    "custom_tool_call_output": ("call_id", "output"),
    "shell_call": ("call_id", "action"),
    "shell_call_output": ("call_id", "output"),
    "local_shell_call": ("id", "call_id", "action"),
    "local_shell_call_output": ("id", "output"),
    "apply_patch_call": ("call_id", "operation"),
    "apply_patch_call_output": ("call_id", "status"),
    "computer_call": ("id", "call_id", "action"),
    "computer_call_output": ("call_id", "output"),
    "reasoning": ("id", "summary"),
    "item_reference": ("id",),
}


def _validate_item(item: JSONDict, where: str) -> None:
    if "invalid" in item and len(item) == 1:
        raise _invalid(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
    kind = item.get("type", "message" if "role" in item else None)
    if not isinstance(kind, str):
        raise _invalid(
            f"Missing required parameter: '{where}.type'.",
            f"{where}.type",
            "missing_required_parameter",
        )
    for field in _ITEM_RULES.get(kind, ()):
        if field not in item:
            raise _invalid(
                f"Missing required parameter: '{where}.{field}'.",
                f"{where}.{field}",
                "missing_required_parameter",
            )
    if kind == "message" and item.get("role") not in ("user", "assistant", "system", "developer"):
        raise _invalid(f"Invalid value for '{where}.role'.", f"{where}.role", "invalid_value")
    if kind == "reasoning" and not str(item.get("id", "")).startswith("rs_"):
        raise _invalid(
            f"Invalid 'id' for '{where}': reasoning ids start with 'rs_'.",
            f"{where}.id",
            "invalid_value",
        )
    for field in ("call_id", "id") if kind in _CALL_OF or kind in _OUTPUT_OF else ():
        value = item.get(field)
        if field in item and (not isinstance(value, str) or not value.strip()):
            raise _invalid(
                f"Invalid '{where}.{field}': empty string. Expected a string with minimum "
                "length 1.",
                f"{where}.{field}",
                "empty_string",
            )
    if kind == "custom_tool_call_output" or kind == "custom_tool_call":
        value = item.get("output" if kind.endswith("_output") else "input")
        if not isinstance(value, (str, list)):
            raise _invalid(f"Invalid type for '{where}'.", where, "invalid_type")
    if kind == "function_call" and not isinstance(item.get("arguments"), str):
        raise _invalid(
            f"Invalid type for '{where}.arguments': expected a string.",
            f"{where}.arguments",
            "invalid_type",
        )


#: The output item type each call item type needs, and the field holding the call id.
_OUTPUT_OF: Final[dict[str, str]] = {
    "function_call": "function_call_output",
    "custom_tool_call": "custom_tool_call_output",
    "shell_call": "shell_call_output",
    "local_shell_call": "local_shell_call_output",
    "apply_patch_call": "apply_patch_call_output",
    "computer_call": "computer_call_output",
}
_CALL_OF: Final = {output: call for call, output in _OUTPUT_OF.items()}
_READABLE: Final = {
    "function_call": "function call",
    "custom_tool_call": "custom tool call",
    "shell_call": "shell call",
    "local_shell_call": "local shell call",
    "apply_patch_call": "apply patch call",
    "computer_call": "computer call",
}


def _output_call_id(item: Mapping[str, Any]) -> Any:
    # local_shell_call_output names the call it answers by "id"
    return item.get("id") if item.get("type") == "local_shell_call_output" else item.get("call_id")


def _check_tool_pairs(context: list[JSONDict], new_from: int) -> None:
    """Every tool output answers an earlier call of the matching kind, and every call has an
    output (as the API checks: a custom output for a function call is rejected)."""
    calls: dict[Any, tuple[int, str]] = {}
    answered: set[Any] = set()
    for position, item in enumerate(context):
        kind = item.get("type")
        if kind in _OUTPUT_OF:
            calls[item.get("call_id")] = (position, kind)
        elif kind in _CALL_OF:
            call_id = _output_call_id(item)
            call = calls.get(call_id)
            if position >= new_from and (call is None or call[1] != _CALL_OF[kind]):
                what = _READABLE[_CALL_OF[kind]]
                raise _invalid(
                    f"No tool call found for {what} output with call_id {call_id}.", "input"
                )
            answered.add(call_id)
    for call_id, (_, kind) in calls.items():
        if call_id not in answered:
            raise _invalid(f"No tool output found for {_READABLE[kind]} {call_id}.", "input")


def _normalised(item: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in item.items() if k not in ("id", "status")}, sort_keys=True)


def _count_duplicates(base: list[JSONDict], new: list[JSONDict]) -> int:
    known = {_normalised(item) for item in base}
    return sum(1 for item in new if _normalised(item) in known)
