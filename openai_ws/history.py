"""History hygiene and parallel-wrapper calls: pure conversions applied before a request.

**Hygiene** (:func:`prepare_history`). The API rejects a request with a tool call whose output
is missing ("No tool output found for function call ...") or an output whose call is nowhere,
and items with empty ids. A user who stops a turn, or whose tool crashes, would get a 400 on
every following turn. So, before every request:

* a tool call with no result before the next user or assistant message (or the end of the
  history) gets a synthetic error result (:data:`MISSING_RESULT_TEXT`);
* a tool result whose call is nowhere in the replayed history is dropped, logged at WARNING
  on the ``openai_ws`` logger (calls of messages that ended in ``error`` or ``aborted`` are not
  replayed, so their results count as orphans too);
* an empty or blank tool-call id raises :class:`ValueError` (a programming error: nothing is
  sent).

**Parallel wrappers** (:func:`wrapper_uses`, :func:`collapse_wrapper_outputs`). gpt-5.x
sometimes wraps parallel calls in one function call named ``parallel`` (or
``multi_tool_use.parallel``) whose arguments are ``{"tool_uses": [{"recipient_name":
"functions.weather", "parameters": {...}}, ...]}``. When every recipient is a declared function
tool, the wrapper becomes one :class:`~openai_ws.messages.ToolCall` per recipient, with the call
ids ``<wrapper call id>#<n>`` (see :func:`sub_call_id`). Their results travel in two forms:

* in a full request, as ordinary ``function_call`` / ``function_call_output`` pairs with those
  ids (the server holds no wrapper, and the API accepts any call id it was given);
* in a chained request (``previous_response_id``), the server holds the wrapper's call and
  needs exactly one output for the wrapper's call id: :func:`collapse_wrapper_outputs` merges
  the results into that output. The chain planner applies it to the delta it sends.

Nothing here does I/O; every function is thread-safe.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Final

from ._json import MAPPING
from .messages import AssistantMessage, Message, ToolCall, ToolResultMessage, UserMessage

__all__ = [
    "MISSING_RESULT_TEXT",
    "WRAPPER_NAMES",
    "collapse_wrapper_outputs",
    "declared_function_names",
    "prepare_history",
    "sub_call_id",
    "wrapper_uses",
]

logger = logging.getLogger("openai_ws")

JSONDict = dict[str, Any]

#: The function names the parallel wrapper arrives under.
WRAPPER_NAMES: Final = frozenset({"parallel", "multi_tool_use.parallel"})
#: The text of a synthetic result for a call that got none (sent with ``is_error=True``).
MISSING_RESULT_TEXT: Final = "No result: the tool call was interrupted before it returned."

_SEPARATOR: Final = "#"


def sub_call_id(wrapper_call_id: str, index: int) -> str:
    """The call id of the *index*-th call expanded from the wrapper with *wrapper_call_id*."""
    return f"{wrapper_call_id}{_SEPARATOR}{index}"


_NO_NAMES: Final[frozenset[str]] = frozenset()


def declared_function_names(tools: Any) -> frozenset[str]:
    """The names of the function tools in a request's (or response's) ``tools`` list."""
    if not tools or not isinstance(tools, list):
        return _NO_NAMES
    return frozenset(
        tool["name"]
        for tool in tools
        if isinstance(tool, MAPPING)
        and tool.get("type", "function") == "function"
        and isinstance(tool.get("name"), str)
    )


def _recipient(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    return name.removeprefix("functions.")


def wrapper_uses(
    item: Mapping[str, Any], declared: Collection[str]
) -> list[tuple[str, JSONDict]] | None:
    """The calls a parallel wrapper stands for, as ``(function name, parameters)``, or None when
    *item* is not a wrapper that can be expanded: not a ``function_call`` named ``parallel`` /
    ``multi_tool_use.parallel``, arguments that are not ``{"tool_uses": [...]}`` with at least
    one use, a use without a dict of parameters, or any recipient that is not among the
    *declared* function names (then the wrapper stays one call, as the model wrote it)."""
    if item.get("type") != "function_call" or item.get("name") not in WRAPPER_NAMES:
        return None
    if any(name in WRAPPER_NAMES for name in declared):
        return None  # a real tool of that name: the call is what it says
    arguments = item.get("arguments")
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else None
    except ValueError:
        return None
    uses = parsed.get("tool_uses") if isinstance(parsed, dict) else None
    if not isinstance(uses, list) or not uses:
        return None
    out: list[tuple[str, JSONDict]] = []
    for use in uses:
        if not isinstance(use, MAPPING):
            return None
        name = _recipient(use.get("recipient_name"))
        parameters = use.get("parameters", {})
        if name is None or name not in declared or not isinstance(parameters, dict):
            return None
        out.append((name, parameters))
    return out


def collapse_wrapper_outputs(
    items: Sequence[Mapping[str, Any]], wrappers: Iterable[Mapping[str, Any]]
) -> list[JSONDict]:
    """The input *items* with the outputs of expanded wrapper calls merged, for a request that
    chains on the response holding the wrappers.

    Args:
        items: input items (the delta of a chained request).
        wrappers: the output items of the previous response (the one the request chains on);
            its parallel wrappers are found by name and call id.

    Each wrapper whose sub-call outputs appear in *items* gets one ``function_call_output``
    for its own call id, at the place of its first sub-call output, whose ``output`` is a JSON
    array of ``{"recipient_name", "output"}`` in the wrapper's order. Other items are kept.
    """
    by_call: dict[str, list[str]] = {}
    for wrapper in wrappers:
        call_id = wrapper.get("call_id")
        arguments = wrapper.get("arguments")
        if wrapper.get("name") not in WRAPPER_NAMES or not isinstance(call_id, str):
            continue
        try:
            uses = json.loads(arguments).get("tool_uses") if isinstance(arguments, str) else None
        except (ValueError, AttributeError):
            continue
        if isinstance(uses, list):
            by_call[call_id] = [
                str(use.get("recipient_name")) if isinstance(use, MAPPING) else "" for use in uses
            ]
    if not by_call:
        return [dict(item) for item in items]
    results: dict[str, dict[int, Any]] = {}
    out: list[JSONDict] = []
    for item in items:
        call_id = item.get("call_id")
        wrapper_id, _, number = (call_id if isinstance(call_id, str) else "").rpartition(_SEPARATOR)
        if (
            item.get("type") == "function_call_output"
            and wrapper_id in by_call
            and number.isdigit()
        ):
            if wrapper_id not in results:
                results[wrapper_id] = {}
                out.append({"type": "function_call_output", "call_id": wrapper_id})
            results[wrapper_id][int(number)] = item.get("output")
            continue
        out.append(dict(item))
    for item in out:
        merged_id = item.get("call_id")
        if item.get("type") == "function_call_output" and merged_id in results:
            recipients = by_call[merged_id]
            merged = [
                {"recipient_name": name, "output": _as_text(results[merged_id].get(n))}
                for n, name in enumerate(recipients)
            ]
            item["output"] = json.dumps(merged, ensure_ascii=False)
    return out


def _as_text(output: Any) -> str:
    if output is None:
        return MISSING_RESULT_TEXT
    if isinstance(output, str):
        return output
    if isinstance(output, list):  # content parts: keep their text
        texts = [p.get("text") for p in output if isinstance(p, MAPPING)]
        return "".join(t for t in texts if isinstance(t, str))
    return json.dumps(output, ensure_ascii=False)


def _check_id(value: str, what: str) -> None:
    call_id = value.partition("|")[0].strip()
    item_id = value.partition("|")[2].strip()
    if not call_id and not item_id:
        raise ValueError(f"{what} has an empty or blank tool call id ({value!r})")


class HistoryState:
    """:func:`prepare_history`'s work over the start of a conversation, resumable: the request
    of the next turn extends it with the new messages only (:mod:`openai_ws.options` keeps one
    per :class:`~openai_ws.messages.Context`).

    It holds the hygiene's output so far without the synthetic results of the calls still
    waiting at the end (:meth:`finish` adds them), so that a result that arrives later is
    placed as if the whole history had been prepared at once. Not thread-safe: extend a
    :meth:`copy`, never a state another thread may read.
    """

    __slots__ = ("answered", "calls", "dropped", "out", "pending", "warnings")

    def __init__(self) -> None:
        self.calls: set[str] = set()  # every replayed call's call id
        self.out: list[Message] = []
        self.pending: list[ToolCall] = []  # calls of the last assistant message still waiting
        self.answered: set[str] = set()
        self.dropped: set[str] = set()  # the call ids of the results dropped as orphans
        self.warnings: list[tuple[str, str]] = []  # (tool name, call id) of each drop

    def copy(self) -> HistoryState:
        other = HistoryState()
        other.calls = set(self.calls)
        other.out = list(self.out)
        other.pending = list(self.pending)
        other.answered = set(self.answered)
        other.dropped = set(self.dropped)
        other.warnings = list(self.warnings)
        return other

    def extend(self, messages: Sequence[Message]) -> bool:
        """Prepare *messages*, which follow the ones this state holds.

        Returns:
            False, with the state unusable, when a new call answers a result this state
            dropped as an orphan: the whole history must then be prepared again.

        Raises:
            ValueError: a replayed tool call or a tool result has an empty or blank id.
        """
        new_calls: set[str] = set()
        for message in messages:
            if isinstance(message, AssistantMessage) and message.stop_reason not in (
                "error",
                "aborted",
            ):
                for call in message.tool_calls:
                    _check_id(call.id, f"the {call.name!r} tool call")
                    new_calls.add(call.call_id)
            elif isinstance(message, ToolResultMessage):
                _check_id(message.tool_call_id, f"the {message.tool_name!r} tool result")
        if not self.dropped.isdisjoint(new_calls):
            return False
        calls = self.calls
        calls |= new_calls
        out, pending, answered = self.out, self.pending, self.answered
        for message in messages:
            if isinstance(message, ToolResultMessage):
                call_id = message.tool_call_id.partition("|")[0].strip() or (
                    message.tool_call_id.partition("|")[2].strip()
                )
                if call_id not in calls:
                    self.dropped.add(call_id)
                    self.warnings.append((message.tool_name, call_id))
                    continue
                answered.add(call_id)
                out.append(message)
                continue
            if isinstance(message, (UserMessage, AssistantMessage)):
                _settle(pending, answered, out)
            out.append(message)
            if isinstance(message, AssistantMessage) and message.stop_reason not in (
                "error",
                "aborted",
            ):
                pending.extend(message.tool_calls)
        return True

    def finish(self) -> list[Message]:
        """The synthetic results of the calls still waiting at the end (the state is not
        changed): the prepared history is ``state.out + state.finish()``."""
        tail: list[Message] = []
        _settle(list(self.pending), set(self.answered), tail)
        return tail

    def log_drops(self) -> None:
        """Log a WARNING for each result dropped as an orphan (on every request, as before)."""
        for tool_name, call_id in self.warnings:
            logger.warning(
                "dropped the result of tool %r: no call with id %r in the history",
                tool_name,
                call_id,
            )


def _settle(pending: list[ToolCall], answered: set[str], out: list[Message]) -> None:
    for call in pending:
        if call.call_id not in answered:
            out.append(ToolResultMessage(call.id, call.name, MISSING_RESULT_TEXT, is_error=True))
            answered.add(call.call_id)
    pending.clear()


def prepare_history(messages: Iterable[Message]) -> list[Message]:
    """The messages to send: every call answered, no orphan results (see the module docstring).

    Returns a new list; *messages* is not changed.

    Raises:
        ValueError: a replayed tool call or a tool result has an empty or blank id.
    """
    state = HistoryState()
    state.extend(list(messages))  # from nothing, nothing was dropped before
    state.log_drops()
    return state.out + state.finish()
