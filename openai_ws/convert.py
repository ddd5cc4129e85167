"""Pure conversions between the conversation model and the Responses API's JSON.

* :func:`convert_tools`: :class:`~openai_ws.messages.Tool`, ``CustomTool`` and ``HostedTool``
  -> the API's tool shapes.
* :func:`convert_messages_to_input_items`: messages -> ``input`` items.
* :func:`build_assistant_message_from_response`: a response object -> an
  :class:`~openai_ws.messages.AssistantMessage`.
* :func:`output_items_to_input_items`: a response's output items -> the input items that replay
  them; defined as the round trip through the two functions above, so that a conversation that
  appends the assistant message it was given always starts with exactly these items (the chain
  planner relies on it).

Replay rules, chosen so that every request the API receives is one it accepts:

* reasoning is replayed only for ``rs_...`` ids, with its summary and ``encrypted_content``;
* the ``fc_...`` / ``msg_...`` ids of calls and text are sent only when the same assistant
  message replays a reasoning item (the API rejects such an item without its reasoning);
* assistant text is replayed as ``output_text`` with its ``phase``; refusals as ``refusal``;
* assistant messages that ended in ``error`` or ``aborted`` are not replayed (they never reached
  the conversation the server knows);
* a tool result with ``is_error`` says so at the start of its output text.

* a custom tool call is replayed as ``custom_tool_call`` and its result as
  ``custom_tool_call_output``; a built-in call the client executes (shell, local_shell,
  apply_patch, computer) from its item, and its result as that kind's output item
  (``shell_call_output``, ``local_shell_call_output``, ``apply_patch_call_output``,
  ``computer_call_output``), with :attr:`ToolResultMessage.output
  <openai_ws.messages.ToolResultMessage.output>` verbatim when given;
* every other output item (hosted tool calls, MCP items, compaction, and item types this
  version does not know) is a :class:`~openai_ws.messages.ServerItem`, replayed verbatim;
* a parallel wrapper whose every recipient is a declared function tool is expanded into its
  calls (:mod:`openai_ws.history`), replayed as ordinary call/output pairs.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from ._json import MAPPING
from .history import declared_function_names, sub_call_id, wrapper_uses
from .messages import (
    AssistantMessage,
    Cost,
    CustomTool,
    HostedTool,
    ImageContent,
    Message,
    ModelInfo,
    ServerItem,
    StopReason,
    TextContent,
    ThinkingContent,
    Tool,
    ToolCall,
    ToolResultMessage,
    Usage,
    UserMessage,
    join_tool_call_id,
    split_tool_call_id,
)

__all__ = [
    "CLIENT_CALLS",
    "TOOL_ERROR_PREFIX",
    "assistant_input_items",
    "build_assistant_message_from_response",
    "content_from_item",
    "convert_messages_to_input_items",
    "convert_tools",
    "output_items_to_input_items",
    "parse_tool_arguments",
    "reasoning_text",
    "split_tool_call_id",
    "usage_from_response",
]

JSONDict = dict[str, Any]

#: What a tool result with ``is_error=True`` starts with, so the model knows the tool failed.
TOOL_ERROR_PREFIX = "Error: "


def convert_tools(tools: Iterable[Tool | CustomTool | HostedTool]) -> list[JSONDict]:
    """Tools in the Responses API's shapes: ``{"type": "function", "name", ...}`` for a
    :class:`~openai_ws.messages.Tool`, ``{"type": "custom", "name", "description", "format"}``
    for a :class:`~openai_ws.messages.CustomTool`, and a
    :class:`~openai_ws.messages.HostedTool`'s spec verbatim.

    Raises:
        TypeError: an element is none of those.
    """
    converted: list[JSONDict] = []
    for tool in tools:
        if isinstance(tool, Tool):
            entry: JSONDict = {
                "type": "function",
                "name": tool.name,
                "description": tool.description,
                "parameters": dict(tool.parameters),
            }
            if tool.strict is not None:
                entry["strict"] = tool.strict
        elif isinstance(tool, CustomTool):
            entry = {"type": "custom", "name": tool.name}
            if tool.description:
                entry["description"] = tool.description
            if tool.format is not None:
                entry["format"] = dict(tool.format)
        elif isinstance(tool, HostedTool):
            entry = dict(tool.spec)
        else:
            raise TypeError(
                f"tools must be Tool, CustomTool or HostedTool instances, got {type(tool).__name__}"
            )
        converted.append(entry)
    return converted


def _user_parts(content: str | Sequence[TextContent | ImageContent]) -> list[JSONDict]:
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    parts: list[JSONDict] = []
    for part in content:
        if isinstance(part, TextContent):
            parts.append({"type": "input_text", "text": part.text})
        else:  # the message classes admit only text and images here
            parts.append(
                {"type": "input_image", "image_url": part.image_url, "detail": part.detail}
            )
    return parts


def _tool_output(message: ToolResultMessage) -> str | list[JSONDict]:
    prefix = TOOL_ERROR_PREFIX if message.is_error else ""
    if isinstance(message.content, str):
        return prefix + message.content
    if all(isinstance(part, TextContent) for part in message.content):
        return prefix + "".join(part.text for part in message.content)  # type: ignore[union-attr]
    parts = _user_parts(message.content)
    if prefix:
        parts.insert(0, {"type": "input_text", "text": prefix.rstrip()})
    return parts


#: The screenshot sent for a failed computer call that has none (a 1x1 transparent PNG): a
#: ``computer_call_output`` must carry an image.
_BLANK_SCREENSHOT = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII="
)


def _text_of(message: ToolResultMessage) -> str:
    prefix = TOOL_ERROR_PREFIX if message.is_error else ""
    if isinstance(message.content, str):
        return prefix + message.content
    return prefix + "".join(p.text for p in message.content if isinstance(p, TextContent))


def _result_item(message: ToolResultMessage, call: ToolCall | None = None) -> JSONDict:
    """The output item for a tool result, shaped by the kind of the call it answers."""
    call_id, _ = split_tool_call_id(message.tool_call_id)
    kind = call.kind if call is not None else "function"
    given = message.output
    if kind == "custom":
        output: Any = given if given is not None else _tool_output(message)
        return {"type": "custom_tool_call_output", "call_id": call_id, "output": output}
    if kind == "shell":
        if given is None:
            outcome = {"type": "exit", "exit_code": 1 if message.is_error else 0}
            text = _text_of(message).removeprefix(TOOL_ERROR_PREFIX)
            stdout, stderr = ("", text) if message.is_error else (text, "")
            given = [{"stdout": stdout, "stderr": stderr, "outcome": outcome}]
        item: JSONDict = {"type": "shell_call_output", "call_id": call_id, "output": given}
        action = call.input if call is not None else None
        if isinstance(action, MAPPING) and isinstance(action.get("max_output_length"), int):
            item["max_output_length"] = action["max_output_length"]
        return item
    if kind == "local_shell":
        text = json.dumps(given, ensure_ascii=False) if given is not None else _text_of(message)
        return {"type": "local_shell_call_output", "id": call_id, "output": text}
    if kind == "apply_patch":
        return {
            "type": "apply_patch_call_output",
            "call_id": call_id,
            "status": "failed" if message.is_error else "completed",
            "output": _text_of(message).removeprefix(TOOL_ERROR_PREFIX),
        }
    if kind == "computer":
        if given is None:
            images = [p for p in message.content if isinstance(p, ImageContent)]
            if images:
                url = images[0].image_url
            elif message.is_error:  # e.g. hygiene's synthetic result: the API needs an image
                url = _BLANK_SCREENSHOT
            else:
                raise ValueError(
                    "the result of a computer call needs output= (a computer_screenshot object) "
                    "or an ImageContent screenshot"
                )
            given = {"type": "computer_screenshot", "image_url": url}
        return {"type": "computer_call_output", "call_id": call_id, "output": given}
    output = given if given is not None else _tool_output(message)
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def _call_item(part: ToolCall, replays_reasoning: bool) -> JSONDict:
    """The input item that replays a call."""
    call_id, item_id = split_tool_call_id(part.id)
    source = part.item
    # a call expanded from a parallel wrapper carries the wrapper as its item: never its id
    expanded = source is not None and part.kind == "function" and source.get("name") != part.name
    keep_id = replays_reasoning and item_id is not None and not expanded
    if part.kind == "function":
        call: JSONDict = {"type": "function_call"}
        if keep_id:
            call["id"] = item_id
        call.update(call_id=call_id, name=part.name, arguments=part.arguments_json)
        return call
    if part.kind == "custom":
        call = {"type": "custom_tool_call"}
        if keep_id:
            call["id"] = item_id
        text = part.input if isinstance(part.input, str) else ""
        call.update(call_id=call_id, name=part.name, input=text)
        return call
    # a built-in call the client executes: its item verbatim, id included (computer and
    # local_shell calls cannot be replayed without it)
    if source is not None:
        return dict(source)
    field = "operation" if part.kind == "apply_patch" else "action"
    return {
        "type": f"{part.kind}_call",
        "call_id": call_id,
        field: part.input,
        "status": "completed",
    }


def _assistant_items(message: AssistantMessage) -> list[JSONDict]:
    replays_reasoning = False
    for part in message.content:  # a loop: cheaper than any() over a generator, per turn
        if isinstance(part, ThinkingContent) and (part.item_id or "").startswith("rs_"):
            replays_reasoning = True
            break
    items: list[JSONDict] = []
    current: JSONDict | None = None  # the message item consecutive text parts go into
    current_key: tuple[str | None, str | None] | None = None
    for part in message.content:
        if isinstance(part, TextContent):
            key = (part.item_id, part.phase)
            if current is None or key != current_key:
                current = {"type": "message", "role": "assistant", "content": []}
                if replays_reasoning and part.item_id:
                    current["id"] = part.item_id
                current["status"] = "completed"
                if part.phase:
                    current["phase"] = part.phase
                current_key = key
                items.append(current)
            if part.refusal:
                current["content"].append({"type": "refusal", "refusal": part.text})
            else:
                current["content"].append(
                    {
                        "type": "output_text",
                        "text": part.text,
                        "annotations": list(part.annotations),
                    }
                )
            continue
        current, current_key = None, None
        if isinstance(part, ThinkingContent):
            if not (part.item_id or "").startswith("rs_"):
                continue
            summary = part.summary if part.summary else ((part.thinking,) if part.thinking else ())
            reasoning: JSONDict = {
                "type": "reasoning",
                "id": part.item_id,
                "summary": [{"type": "summary_text", "text": text} for text in summary],
            }
            if part.encrypted_content:
                reasoning["encrypted_content"] = part.encrypted_content
            items.append(reasoning)
        elif isinstance(part, ToolCall):
            items.append(_call_item(part, replays_reasoning))
        elif isinstance(part, ServerItem):
            items.append(dict(part.item))
    return items


def convert_messages_to_input_items(messages: Iterable[Message]) -> list[JSONDict]:
    """The ``input`` items for a conversation (the system prompt goes to ``instructions``).

    A tool result is sent as the output item its call's kind needs (the call is looked up by
    its call id among the earlier assistant messages; a function call's when none is found).
    No history hygiene is applied here: :func:`openai_ws.history.prepare_history` does that.

    Raises:
        TypeError: an element is not a message of :mod:`openai_ws.messages`.
        ValueError: a computer call's result has neither ``output`` nor a screenshot image
            (and is not an error result, which gets a blank screenshot).
    """
    state = InputState()
    state.extend(messages)
    return state.items


class InputState:
    """:func:`convert_messages_to_input_items`'s work over the start of a conversation,
    resumable: the next turn's request converts only the new messages
    (:mod:`openai_ws.options` keeps one per :class:`~openai_ws.messages.Context`).

    Not thread-safe: extend a :meth:`copy`, never a state another thread may read.
    """

    __slots__ = ("calls", "items")

    def __init__(self) -> None:
        self.items: list[JSONDict] = []
        self.calls: dict[str, ToolCall] = {}  # call id -> its first call, for the results

    def copy(self) -> InputState:
        other = InputState()
        other.items = list(self.items)
        other.calls = dict(self.calls)
        return other

    def extend(self, messages: Iterable[Message]) -> None:
        """Convert *messages*, which follow the ones this state holds, and add their items.

        Raises:
            TypeError, ValueError: as :func:`convert_messages_to_input_items`.
        """
        items, calls = self.items, self.calls
        for message in messages:
            if isinstance(message, UserMessage):
                items.append(
                    {"type": "message", "role": "user", "content": _user_parts(message.content)}
                )
            elif isinstance(message, AssistantMessage):
                if message.stop_reason in ("error", "aborted"):
                    continue
                items.extend(_assistant_items(message))
                for call in message.tool_calls:
                    calls.setdefault(call.call_id, call)
            elif isinstance(message, ToolResultMessage):
                call_id, _ = split_tool_call_id(message.tool_call_id)
                items.append(_result_item(message, calls.get(call_id)))
            else:
                raise TypeError(
                    "messages must be UserMessage, AssistantMessage or ToolResultMessage, "
                    f"got {type(message).__name__}"
                )

    def converted(self, messages: Iterable[Message]) -> list[JSONDict]:
        """The items of *messages* as if they followed this state, without changing it (for
        the synthetic results a request ends with)."""
        other = InputState()
        other.calls = self.calls  # read only: results add no calls
        for message in messages:
            if not isinstance(message, ToolResultMessage):
                other.calls = dict(self.calls)
                break
        other.extend(messages)
        return other.items


def _int(value: Any) -> int:
    if type(value) is int:  # the common case, at once
        return value if value > 0 else 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from_response(usage: Mapping[str, Any] | None, model: ModelInfo | None = None) -> Usage:
    """:class:`~openai_ws.messages.Usage` from a response's ``usage`` object.

    ``input`` excludes cached tokens (they are ``cache_read``); ``total_tokens`` is derived
    when the API gave none or zero.
    """
    if not isinstance(usage, MAPPING):
        return Usage()
    input_tokens = _int(usage.get("input_tokens"))
    output_tokens = _int(usage.get("output_tokens"))
    details = usage.get("input_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, MAPPING) else 0
    cached = min(cached, input_tokens)
    total = _int(usage.get("total_tokens")) or input_tokens + output_tokens
    uncached = input_tokens - cached
    if model is not None:
        c_in = uncached * model.input_cost / 1e6
        c_out = output_tokens * model.output_cost / 1e6
        c_read = cached * model.cache_read_cost / 1e6
        cost = Cost(input=c_in, output=c_out, cache_read=c_read, total=c_in + c_out + c_read)
    else:
        cost = Cost()
    return Usage(
        input=uncached,
        output=output_tokens,
        cache_read=cached,
        cache_write=0,
        total_tokens=total,
        cost=cost,
    )


def _str_or(value: Any, default: str) -> str:
    return value if isinstance(value, str) else default


def parse_tool_arguments(raw: str) -> dict[str, Any]:
    """A call's JSON arguments as a dict: ``{}`` when blank, invalid, or not a JSON object."""
    try:
        parsed = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def reasoning_text(item: Mapping[str, Any]) -> str | None:
    """The thinking text of a reasoning item: its summary parts joined with a blank line, or its
    raw reasoning text when it has no summary; None when it has neither."""
    texts = _texts(item.get("summary")) or _texts(item.get("content"))
    return "\n\n".join(texts) if texts else None


def _texts(entries: Any) -> tuple[str, ...]:
    return tuple(
        entry["text"]
        for entry in (entries if isinstance(entries, list) else ())
        if isinstance(entry, MAPPING) and isinstance(entry.get("text"), str)
    )


AssistantContent = TextContent | ThinkingContent | ToolCall | ServerItem

#: Output items of built-in tools the client executes, by item type: (kind, request field).
CLIENT_CALLS: dict[str, tuple[str, str]] = {
    "shell_call": ("shell", "action"),
    "local_shell_call": ("local_shell", "action"),
    "apply_patch_call": ("apply_patch", "operation"),
    "computer_call": ("computer", "action"),
}


def content_from_item(
    item: Mapping[str, Any], declared: Collection[str] = ()
) -> list[AssistantContent]:
    """The assistant content parts one output item becomes (the one mapping from the API's
    output items to the conversation model, used for final and partial messages alike).

    Args:
        item: an output item.
        declared: the names of the declared function tools; a parallel wrapper whose every
            recipient is among them becomes one call per recipient.
    """
    content: list[AssistantContent] = []
    kind = item.get("type")
    item_id = item.get("id") if isinstance(item.get("id"), str) else None
    if kind == "message":
        phase = item.get("phase") if isinstance(item.get("phase"), str) else None
        parts = item.get("content")
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, MAPPING):
                continue
            if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                annotations = part.get("annotations")
                content.append(
                    TextContent(
                        part["text"],
                        item_id=item_id,
                        phase=phase,
                        annotations=list(annotations) if isinstance(annotations, list) else [],
                    )
                )
            elif part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                content.append(
                    TextContent(part["refusal"], item_id=item_id, phase=phase, refusal=True)
                )
    elif kind == "reasoning":
        encrypted = item.get("encrypted_content")
        summary: Any = _texts(item.get("summary"))  # attrs' tuple converter defeats mypy
        content.append(
            ThinkingContent(
                reasoning_text(item) or "",
                item_id=item_id,
                summary=summary,
                encrypted_content=encrypted if isinstance(encrypted, str) else None,
            )
        )
    elif kind == "function_call":
        call_id = _str_or(item.get("call_id"), "")
        uses = wrapper_uses(item, declared) if declared else None
        if uses is not None:
            for number, (name, parameters) in enumerate(uses):
                raw = json.dumps(parameters, separators=(",", ":"), ensure_ascii=False)
                content.append(
                    ToolCall(
                        join_tool_call_id(sub_call_id(call_id, number), None),
                        name,
                        dict(parameters),
                        raw_arguments=raw,
                        item=dict(item),
                    )
                )
            return content
        raw = _str_or(item.get("arguments"), "")
        content.append(
            ToolCall(
                join_tool_call_id(call_id, item_id),
                _str_or(item.get("name"), ""),
                parse_tool_arguments(raw),
                raw_arguments=raw,
                item=dict(item),
            )
        )
    elif kind == "custom_tool_call":
        content.append(
            ToolCall(
                join_tool_call_id(_str_or(item.get("call_id"), ""), item_id),
                _str_or(item.get("name"), ""),
                kind="custom",
                input=_str_or(item.get("input"), ""),
                item=dict(item),
            )
        )
    elif isinstance(kind, str) and kind in CLIENT_CALLS:
        call_kind, field = CLIENT_CALLS[kind]
        request = item.get(field)
        content.append(
            ToolCall(
                join_tool_call_id(_str_or(item.get("call_id"), ""), item_id),
                call_kind,
                kind=call_kind,  # type: ignore[arg-type]
                input=dict(request) if isinstance(request, MAPPING) else request,
                item=dict(item),
            )
        )
    elif isinstance(kind, str):
        content.append(ServerItem(dict(item)))
    return content


def _content_from_items(
    output: Sequence[Any], declared: Collection[str] = ()
) -> list[AssistantContent]:
    # a built-in call whose output is in the same response ran on the server (e.g. a shell in a
    # hosted container): both are server items, replayed verbatim, and nothing is asked of us
    ran = {
        item.get("call_id")
        for item in output
        if isinstance(item, MAPPING) and item.get("type") in _SERVER_OUTPUTS
    }
    content: list[AssistantContent] = []
    for item in output:
        if not isinstance(item, MAPPING):
            continue
        if item.get("type") in CLIENT_CALLS and ran and item.get("call_id") in ran:
            content.append(ServerItem(dict(item)))
        else:
            content.extend(content_from_item(item, declared))
    return content


_SERVER_OUTPUTS = frozenset(
    {
        "shell_call_output",
        "local_shell_call_output",
        "apply_patch_call_output",
        "computer_call_output",
    }
)


def _stop_reason(
    response: Mapping[str, Any], has_tool_calls: bool
) -> tuple[StopReason, str | None]:
    status = response.get("status")
    if status in ("completed", None):
        return ("toolUse" if has_tool_calls else "stop"), None
    if status == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, MAPPING) else None
        if reason in ("max_output_tokens", None):
            return "length", None
        return "error", f"response incomplete: {reason}"
    if status in ("failed", "cancelled"):
        error = response.get("error")
        message = error.get("message") if isinstance(error, MAPPING) else None
        if not isinstance(message, str) or not message:
            message = f"response {status}"
        return "error", message
    return "error", f"response did not finish (status: {status})"


def build_assistant_message_from_response(
    response: Mapping[str, Any], model_info: ModelInfo | str, *, tools: Any = None
) -> AssistantMessage:
    """The :class:`~openai_ws.messages.AssistantMessage` for a response object.

    Args:
        response: a response object (e.g. ``response.completed``'s ``response``).
        model_info: the model asked for, as a :class:`~openai_ws.messages.ModelInfo` (with
            prices, for the cost) or just its id.
        tools: the request's ``tools`` (API shapes), whose function names decide whether a
            parallel wrapper is expanded; None uses the ``tools`` the response echoes.

    Stop reasons: ``toolUse`` when the output has any tool call, ``stop`` otherwise, for a
    completed response; ``length`` for ``incomplete`` with ``max_output_tokens``; ``error``
    (with ``error_message``) for ``failed``, ``cancelled`` and other incomplete reasons.
    """
    model = model_info if isinstance(model_info, ModelInfo) else ModelInfo(model_info)
    output = response.get("output")
    declared = declared_function_names(response.get("tools") if tools is None else tools)
    content = _content_from_items(output if isinstance(output, list) else [], declared)
    has_calls = any(isinstance(part, ToolCall) for part in content)
    stop_reason, error_message = _stop_reason(response, has_calls)
    response_id = response.get("id")
    return AssistantMessage(
        content=content,
        api=model.api,
        provider=model.provider,
        model=model.id,
        usage=usage_from_response(response.get("usage"), model),
        stop_reason=stop_reason,
        error_message=error_message,
        response_id=response_id if isinstance(response_id, str) else None,
    )


def assistant_input_items(message: AssistantMessage) -> list[JSONDict]:
    """The input items that replay one assistant *message* (what
    :func:`convert_messages_to_input_items` makes of it; no tool results)."""
    return _assistant_items(message)


def output_items_to_input_items(
    output: Sequence[Mapping[str, Any]], *, tools: Any = None
) -> list[JSONDict]:
    """The input items that replay a response's *output* items.

    Exactly what :func:`convert_messages_to_input_items` produces for the assistant message
    :func:`build_assistant_message_from_response` makes of them (with the same *tools*, the
    request's, which decide whether a parallel wrapper is expanded).
    """
    message = AssistantMessage(content=_content_from_items(output, declared_function_names(tools)))
    return _assistant_items(message)
