"""Pure conversions between the conversation model and the Responses API's JSON.

* :func:`convert_tools`: :class:`~openai_ws.messages.Tool` -> the flat function tool shape.
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

Output items this version does not model (hosted tool calls, custom tool calls, compaction)
are not turned into messages and so are not replayed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .messages import (
    AssistantMessage,
    Cost,
    ImageContent,
    Message,
    ModelInfo,
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
    "TOOL_ERROR_PREFIX",
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


def convert_tools(tools: Iterable[Tool]) -> list[JSONDict]:
    """Tools in the Responses API's flat shape: ``{"type": "function", "name", ...}``."""
    converted = []
    for tool in tools:
        if not isinstance(tool, Tool):
            raise TypeError(f"tools must be Tool instances, got {type(tool).__name__}")
        entry: JSONDict = {
            "type": "function",
            "name": tool.name,
            "description": tool.description,
            "parameters": dict(tool.parameters),
        }
        if tool.strict is not None:
            entry["strict"] = tool.strict
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


def _result_item(message: ToolResultMessage) -> JSONDict:
    call_id, _ = split_tool_call_id(message.tool_call_id)
    return {"type": "function_call_output", "call_id": call_id, "output": _tool_output(message)}


def _assistant_items(message: AssistantMessage) -> list[JSONDict]:
    replays_reasoning = any(
        isinstance(part, ThinkingContent) and (part.item_id or "").startswith("rs_")
        for part in message.content
    )
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
            call_id, item_id = split_tool_call_id(part.id)
            call: JSONDict = {"type": "function_call"}
            if replays_reasoning and item_id:
                call["id"] = item_id
            call.update(call_id=call_id, name=part.name, arguments=part.arguments_json)
            items.append(call)
    return items


def convert_messages_to_input_items(messages: Iterable[Message]) -> list[JSONDict]:
    """The ``input`` items for a conversation (the system prompt goes to ``instructions``).

    Raises:
        TypeError: an element is not a message of :mod:`openai_ws.messages`.
    """
    items: list[JSONDict] = []
    for message in messages:
        if isinstance(message, UserMessage):
            items.append(
                {"type": "message", "role": "user", "content": _user_parts(message.content)}
            )
        elif isinstance(message, AssistantMessage):
            if message.stop_reason in ("error", "aborted"):
                continue
            items.extend(_assistant_items(message))
        elif isinstance(message, ToolResultMessage):
            items.append(_result_item(message))
        else:
            raise TypeError(
                "messages must be UserMessage, AssistantMessage or ToolResultMessage, "
                f"got {type(message).__name__}"
            )
    return items


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from_response(usage: Mapping[str, Any] | None, model: ModelInfo | None = None) -> Usage:
    """:class:`~openai_ws.messages.Usage` from a response's ``usage`` object.

    ``input`` excludes cached tokens (they are ``cache_read``); ``total_tokens`` is derived
    when the API gave none or zero.
    """
    if not isinstance(usage, Mapping):
        return Usage()
    input_tokens = _int(usage.get("input_tokens"))
    output_tokens = _int(usage.get("output_tokens"))
    details = usage.get("input_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, Mapping) else 0
    cached = min(cached, input_tokens)
    total = _int(usage.get("total_tokens")) or input_tokens + output_tokens
    uncached = input_tokens - cached
    cost = Cost()
    if model is not None:
        c_in = uncached * model.input_cost / 1e6
        c_out = output_tokens * model.output_cost / 1e6
        c_read = cached * model.cache_read_cost / 1e6
        cost = Cost(input=c_in, output=c_out, cache_read=c_read, total=c_in + c_out + c_read)
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
        if isinstance(entry, Mapping) and isinstance(entry.get("text"), str)
    )


AssistantContent = TextContent | ThinkingContent | ToolCall


def content_from_item(item: Mapping[str, Any]) -> list[AssistantContent]:
    """The assistant content parts one output item becomes (the one mapping from the API's
    output items to the conversation model, used for final and partial messages alike)."""
    content: list[AssistantContent] = []
    kind = item.get("type")
    item_id = item.get("id") if isinstance(item.get("id"), str) else None
    if kind == "message":
        phase = item.get("phase") if isinstance(item.get("phase"), str) else None
        parts = item.get("content")
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, Mapping):
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
        raw = _str_or(item.get("arguments"), "")
        content.append(
            ToolCall(
                join_tool_call_id(_str_or(item.get("call_id"), ""), item_id),
                _str_or(item.get("name"), ""),
                parse_tool_arguments(raw),
                raw_arguments=raw,
            )
        )
    return content


def _content_from_items(output: Sequence[Any]) -> list[AssistantContent]:
    content: list[AssistantContent] = []
    for item in output:
        if isinstance(item, Mapping):
            content.extend(content_from_item(item))
    return content


def _stop_reason(
    response: Mapping[str, Any], has_tool_calls: bool
) -> tuple[StopReason, str | None]:
    status = response.get("status")
    if status in ("completed", None):
        return ("toolUse" if has_tool_calls else "stop"), None
    if status == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, Mapping) else None
        if reason in ("max_output_tokens", None):
            return "length", None
        return "error", f"response incomplete: {reason}"
    if status in ("failed", "cancelled"):
        error = response.get("error")
        message = error.get("message") if isinstance(error, Mapping) else None
        if not isinstance(message, str) or not message:
            message = f"response {status}"
        return "error", message
    return "error", f"response did not finish (status: {status})"


def build_assistant_message_from_response(
    response: Mapping[str, Any], model_info: ModelInfo | str
) -> AssistantMessage:
    """The :class:`~openai_ws.messages.AssistantMessage` for a response object.

    Args:
        response: a response object (e.g. ``response.completed``'s ``response``).
        model_info: the model asked for, as a :class:`~openai_ws.messages.ModelInfo` (with
            prices, for the cost) or just its id.

    Stop reasons: ``toolUse`` when the output has any tool call, ``stop`` otherwise, for a
    completed response; ``length`` for ``incomplete`` with ``max_output_tokens``; ``error``
    (with ``error_message``) for ``failed``, ``cancelled`` and other incomplete reasons.
    """
    model = model_info if isinstance(model_info, ModelInfo) else ModelInfo(model_info)
    output = response.get("output")
    content = _content_from_items(output if isinstance(output, list) else [])
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


def output_items_to_input_items(output: Sequence[Mapping[str, Any]]) -> list[JSONDict]:
    """The input items that replay a response's *output* items.

    Exactly what :func:`convert_messages_to_input_items` produces for the assistant message
    :func:`build_assistant_message_from_response` makes of them.
    """
    message = AssistantMessage(content=_content_from_items(output))
    return _assistant_items(message)
