"""The conversation model: messages, their content, tools, usage.

Value objects are immutable ``attrs`` classes validated at construction, so a wrong argument
fails where it was written, not three calls later inside a request. :class:`Context` is the one
mutable class: an agent loop appends to ``context.messages``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeAlias

import attrs

__all__ = [
    "AssistantMessage",
    "Content",
    "Context",
    "Cost",
    "CustomTool",
    "HostedTool",
    "ImageContent",
    "Message",
    "ModelInfo",
    "ServerItem",
    "StopReason",
    "TextContent",
    "ThinkingContent",
    "Tool",
    "ToolCall",
    "ToolKind",
    "ToolResultMessage",
    "Usage",
    "UserMessage",
    "join_tool_call_id",
    "split_tool_call_id",
]

StopReason: TypeAlias = Literal["stop", "length", "toolUse", "error", "aborted"]

#: What kind of call a :class:`ToolCall` is: a function call, a custom (freeform) tool call, or
#: a built-in tool the client executes (named after its output item, without ``_call``).
ToolKind: TypeAlias = Literal[
    "function", "custom", "shell", "local_shell", "apply_patch", "computer"
]
_TOOL_KINDS = ("function", "custom", "shell", "local_shell", "apply_patch", "computer")
_STOP_REASONS = ("stop", "length", "toolUse", "error", "aborted")


def _instance_of_any(*types: type) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types)
            raise TypeError(
                f"{type(instance).__name__}.{attribute.name} must be {names}, "
                f"got {type(value).__name__}"
            )

    return check


def split_tool_call_id(tool_call_id: str) -> tuple[str, str | None]:
    """Split ``"call_id|item_id"`` into its parts; a blank part is dropped.

    A bare id is a call id. When the call id is blank the item id stands in for it, on both the
    call and its result, so the two still pair.

    Returns:
        ``(call_id, item_id or None)``.
    """
    call_id, _, item_id = tool_call_id.partition("|")
    call_id, item_id = call_id.strip(), item_id.strip()
    if not call_id:
        call_id = item_id
    return call_id, (item_id or None)


def join_tool_call_id(call_id: str | None, item_id: str | None) -> str:
    """The inverse of :func:`split_tool_call_id`: ``"call_id|item_id"`` (either may be blank)."""
    return f"{call_id or ''}|{item_id or ''}"


def _optional_str(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(
            f"{type(instance).__name__}.{attribute.name} must be a str or None, "
            f"got {type(value).__name__}"
        )


@attrs.frozen
class TextContent:
    """Text, in a user message or in an assistant's answer.

    Attributes:
        text: the text.
        item_id: for assistant text, the ``msg_...`` output item it came from.
        phase: for assistant text, the item's ``phase``: ``"commentary"`` (a preamble the model
            says while it works, e.g. before a tool call) or ``"final_answer"``; None if the
            model gave none.
        refusal: True when the model refused (the API's ``refusal`` content part).
        annotations: citations and other annotations of the text, as the API gave them.
    """

    type: ClassVar[str] = "text"

    text: str = attrs.field(validator=_instance_of_any(str))
    item_id: str | None = attrs.field(default=None, validator=_optional_str)
    phase: str | None = attrs.field(default=None, validator=_optional_str)
    refusal: bool = False
    annotations: list[dict[str, Any]] = attrs.field(factory=list, repr=False)


@attrs.frozen
class ThinkingContent:
    """The model's reasoning, as the summary it chose to show.

    Attributes:
        thinking: the summary parts joined with a blank line (or the raw reasoning text when
            the model exposes it instead of a summary).
        item_id: the ``rs_...`` reasoning item id; reasoning is replayed only with such an id.
        summary: the summary parts, kept apart so the item can be replayed exactly.
        encrypted_content: the opaque reasoning state, present when the request included
            ``"reasoning.encrypted_content"`` (what keeps reasoning across turns with
            ``store: false``).
    """

    type: ClassVar[str] = "thinking"

    thinking: str = attrs.field(validator=_instance_of_any(str))
    item_id: str | None = attrs.field(default=None, validator=_optional_str)
    summary: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    encrypted_content: str | None = attrs.field(default=None, repr=False, validator=_optional_str)


@attrs.frozen
class ImageContent:
    """An image in a user message or a tool result: base64 ``data`` or a ``url``.

    Attributes:
        data: base64-encoded bytes (sent as a ``data:`` URL).
        mime_type: the media type of ``data``.
        url: an ``https:`` (or ``data:``) URL, instead of ``data``.
        detail: ``"auto"``, ``"low"`` or ``"high"``.
    """

    type: ClassVar[str] = "image"

    data: str | None = attrs.field(default=None, repr=False, validator=_optional_str)
    mime_type: str = "image/png"
    url: str | None = attrs.field(default=None, validator=_optional_str)
    detail: str = "auto"

    def __attrs_post_init__(self) -> None:
        if (self.data is None) == (self.url is None):
            raise ValueError("ImageContent needs exactly one of data (base64) or url")

    @property
    def image_url(self) -> str:
        """The URL the API receives: ``url``, or a ``data:`` URL built from ``data``."""
        if self.url is not None:
            return self.url
        return f"data:{self.mime_type};base64,{self.data}"


@attrs.frozen
class ToolCall:
    """A call the model asked the client to run: a function, a custom tool, or a built-in tool
    the client executes (shell, local_shell, apply_patch, computer).

    Attributes:
        id: ``"<call_id>|<item_id>"``: the call id pairs the call with its result; the item id
            (``fc_...``) lets the call be replayed as the same item. Either may be blank.
        name: the tool's name.
        arguments: the parsed JSON arguments; ``{}`` when the model produced invalid JSON.
        raw_arguments: the arguments exactly as the model wrote them (kept even when they are
            not valid JSON), or None for a call built in code.
        kind: ``"function"``, ``"custom"``, or the built-in tool's type (``"shell"``,
            ``"local_shell"``, ``"apply_patch"``, ``"computer"``). The result is replayed as
            the output item this kind needs (``function_call_output``,
            ``custom_tool_call_output``, ``shell_call_output``...).
        input: for a custom call, the free text the model wrote (``arguments`` is ``{}``); for
            a built-in call, its request (the item's ``action``, or ``operation`` for
            apply_patch); None for a function call.
        item: the whole output item the call came from (None for a call built in code); the
            call is replayed from it. For a call expanded from a parallel wrapper, the wrapper.
    """

    type: ClassVar[str] = "toolCall"

    id: str = attrs.field(validator=_instance_of_any(str))
    name: str = attrs.field(validator=_instance_of_any(str))
    arguments: dict[str, Any] = attrs.field(factory=dict, validator=_instance_of_any(dict))
    raw_arguments: str | None = attrs.field(default=None, validator=_optional_str)
    kind: ToolKind = attrs.field(default="function")
    input: Any = None
    item: dict[str, Any] | None = attrs.field(default=None, repr=False, eq=False)

    @kind.validator
    def _check_kind(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in _TOOL_KINDS:
            raise ValueError(f"ToolCall.kind must be one of {_TOOL_KINDS}, got {value!r}")

    @property
    def call_id(self) -> str:
        """The ``call_...`` id that a :class:`ToolResultMessage` answers."""
        return split_tool_call_id(self.id)[0]

    @property
    def item_id(self) -> str | None:
        """The ``fc_...`` output item id, or None."""
        return split_tool_call_id(self.id)[1]

    @property
    def arguments_json(self) -> str:
        """The arguments as the JSON text to send back: the raw text when there is one."""
        if self.raw_arguments is not None:
            return self.raw_arguments
        return json.dumps(self.arguments, separators=(",", ":"), ensure_ascii=False)

    @property
    def arguments_valid(self) -> bool:
        """False when the model's raw arguments were not a JSON object."""
        if self.raw_arguments is None:
            return True
        try:
            return isinstance(json.loads(self.raw_arguments or "{}"), dict)
        except ValueError:
            return False


@attrs.frozen
class ServerItem:
    """An output item the API produced and handles itself: a hosted tool call
    (``web_search_call``, ``file_search_call``, ``code_interpreter_call``,
    ``image_generation_call``, ``mcp_call``...), ``mcp_list_tools``, ``compaction``, or any item
    type this version does not model otherwise.

    It is kept in the message in the order the model produced it and replayed verbatim in the
    next full request, so that nothing the model did is lost.

    Attributes:
        item: the output item, as the API sent it.
    """

    item: dict[str, Any] = attrs.field(validator=_instance_of_any(dict))

    @item.validator
    def _check_item(self, attribute: attrs.Attribute[Any], value: dict[str, Any]) -> None:
        if not isinstance(value.get("type"), str):
            raise ValueError("ServerItem.item needs a 'type'")

    @property
    def type(self) -> str:
        """The item's type (``"web_search_call"``...)."""
        return str(self.item["type"])

    @property
    def id(self) -> str | None:
        """The item's id, or None."""
        value = self.item.get("id")
        return value if isinstance(value, str) else None

    @property
    def status(self) -> str | None:
        """The item's status (``"completed"``...), or None."""
        value = self.item.get("status")
        return value if isinstance(value, str) else None


Content: TypeAlias = TextContent | ThinkingContent | ToolCall | ImageContent | ServerItem
_USER_CONTENT = (TextContent, ImageContent)
_ASSISTANT_CONTENT = (TextContent, ThinkingContent, ToolCall, ServerItem)


def _content_list(allowed: tuple[type, ...], *, allow_str: bool) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if allow_str and isinstance(value, str):
            return
        if not isinstance(value, list):
            raise TypeError(
                f"{type(instance).__name__}.{attribute.name} must be a "
                f"{'str or ' if allow_str else ''}list, got {type(value).__name__}"
            )
        for position, part in enumerate(value):
            if not isinstance(part, allowed):
                names = ", ".join(t.__name__ for t in allowed)
                raise TypeError(
                    f"{type(instance).__name__}.{attribute.name}[{position}] must be one of "
                    f"{names}, got {type(part).__name__}"
                )

    return check


@attrs.frozen
class Cost:
    """Cost in US dollars, from the :class:`ModelInfo` rates (zero when no rates are given)."""

    input: float = 0.0
    output: float = 0.0
    cache_read: float = 0.0
    cache_write: float = 0.0
    total: float = 0.0


@attrs.frozen
class Usage:
    """Tokens a response used.

    Attributes:
        input: input tokens NOT served from the cache (``input_tokens - cached_tokens``).
        output: output tokens (reasoning included).
        cache_read: input tokens served from the prompt cache (``cached_tokens``).
        cache_write: tokens written to a cache (the Responses API reports none: 0).
        total_tokens: the API's ``total_tokens``, or ``input_tokens + output_tokens`` when it
            gave none.
        cost: what that cost, from the model's rates.
    """

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    total_tokens: int = 0
    cost: Cost = attrs.field(factory=Cost)


@attrs.frozen
class ModelInfo:
    """The model a message is built for, and its prices per million tokens (optional)."""

    id: str = attrs.field(validator=_instance_of_any(str))
    api: str = "openai-responses"
    provider: str = "openai"
    input_cost: float = 0.0
    output_cost: float = 0.0
    cache_read_cost: float = 0.0
    cache_write_cost: float = 0.0


@attrs.frozen
class UserMessage:
    """What the user said: text, or a list of text and images."""

    role: ClassVar[str] = "user"

    content: str | list[TextContent | ImageContent] = attrs.field(
        validator=_content_list(_USER_CONTENT, allow_str=True)
    )


@attrs.frozen
class AssistantMessage:
    """What the model answered, with how and why it stopped.

    Attributes:
        content: text, thinking, tool calls and server items (hosted tool calls and other
            items the API handles itself), in the order the model produced them.
        api, provider, model: where it came from (``model`` is the model asked for).
        usage: the tokens it used.
        stop_reason: ``"stop"`` (answered), ``"toolUse"`` (asks for tool results),
            ``"length"`` (cut by ``max_output_tokens``), ``"error"``, or ``"aborted"``
            (the caller abandoned it).
        error_message: why, for ``"error"`` and ``"aborted"``.
        response_id: the ``resp_...`` id, when the API assigned one.
    """

    role: ClassVar[str] = "assistant"

    content: list[TextContent | ThinkingContent | ToolCall | ServerItem] = attrs.field(
        factory=list, validator=_content_list(_ASSISTANT_CONTENT, allow_str=False)
    )
    api: str = "openai-responses"
    provider: str = "openai"
    model: str = ""
    usage: Usage = attrs.field(factory=Usage)
    stop_reason: StopReason = attrs.field(default="stop")
    error_message: str | None = None
    response_id: str | None = None

    @stop_reason.validator
    def _check_stop_reason(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in _STOP_REASONS:
            raise ValueError(f"stop_reason must be one of {_STOP_REASONS}, got {value!r}")

    @property
    def text(self) -> str:
        """The answer's text: every text part except ``phase="commentary"`` ones, joined.

        Commentary (what the model says while it works, e.g. "Let me check the weather") is
        streamed like any text but is not part of the final answer.
        """
        return "".join(
            part.text
            for part in self.content
            if isinstance(part, TextContent) and part.phase != "commentary"
        )

    @property
    def commentary(self) -> str:
        """The text of ``phase="commentary"`` parts, joined."""
        return "".join(
            part.text
            for part in self.content
            if isinstance(part, TextContent) and part.phase == "commentary"
        )

    @property
    def thinking(self) -> str:
        """The reasoning summaries, joined with a blank line."""
        return "\n\n".join(
            part.thinking for part in self.content if isinstance(part, ThinkingContent)
        )

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls, in order."""
        return [part for part in self.content if isinstance(part, ToolCall)]

    @property
    def server_items(self) -> list[ServerItem]:
        """The items the API handled itself (hosted tool calls...), in order."""
        return [part for part in self.content if isinstance(part, ServerItem)]


@attrs.frozen
class ToolResultMessage:
    """The result of running a tool the model called.

    Attributes:
        tool_call_id: the :attr:`ToolCall.id` it answers (the ``call_id`` part is what pairs
            them; a bare ``call_...`` id works too).
        tool_name: the tool's name.
        content: the result: text, or a list of text and images.
        is_error: True when the tool failed; the model is told so in the output text.
        output: sent verbatim as the output item's ``output`` field when the call's kind needs
            structure (a shell call's list of ``{stdout, stderr, outcome}``, a computer call's
            screenshot object); None sends ``content`` as text.
    """

    role: ClassVar[str] = "toolResult"

    tool_call_id: str = attrs.field(validator=_instance_of_any(str))
    tool_name: str = attrs.field(validator=_instance_of_any(str))
    content: str | list[TextContent | ImageContent] = attrs.field(
        validator=_content_list(_USER_CONTENT, allow_str=True)
    )
    is_error: bool = False
    output: dict[str, Any] | list[Any] | None = attrs.field(
        default=None, validator=attrs.validators.optional(_instance_of_any(dict, list))
    )


Message: TypeAlias = UserMessage | AssistantMessage | ToolResultMessage
_MESSAGES = (UserMessage, AssistantMessage, ToolResultMessage)


def _check_parameters(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"Tool.parameters must be a JSON schema dict, got {type(value).__name__}")


def _check_name(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"Tool.name must be a non-empty str, got {value!r}")


@attrs.frozen
class Tool:
    """A function the model may call.

    Attributes:
        name: the function's name.
        description: what it does, for the model.
        parameters: the JSON schema of its arguments.
        strict: ask for strict schema adherence (None leaves the API's default).
    """

    name: str = attrs.field(validator=_check_name)
    description: str = attrs.field(validator=_instance_of_any(str))
    parameters: dict[str, Any] = attrs.field(
        factory=lambda: {"type": "object", "properties": {}}, validator=_check_parameters
    )
    strict: bool | None = None


def _check_format(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not (
        isinstance(value, Mapping) and isinstance(value.get("type"), str)
    ):
        raise ValueError(
            "CustomTool.format must be None or a dict with a 'type' "
            '(e.g. {"type": "grammar", "syntax": "lark", "definition": ...})'
        )


@attrs.frozen
class CustomTool:
    """A freeform tool: the model writes plain text (optionally constrained by a grammar)
    instead of JSON arguments. Its calls are :class:`ToolCall` with ``kind="custom"`` and the
    text in ``input``.

    Attributes:
        name: the tool's name.
        description: what it does, for the model.
        format: None for free text, or ``{"type": "grammar", "syntax": "lark" | "regex",
            "definition": ...}``.
    """

    name: str = attrs.field(validator=_check_name)
    description: str = attrs.field(default="", validator=_instance_of_any(str))
    format: dict[str, Any] | None = attrs.field(default=None, validator=_check_format)


def _check_spec(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Mapping) or not isinstance(value.get("type"), str):
        raise ValueError('HostedTool needs a spec dict with a "type", e.g. {"type": "web_search"}')
    if value["type"] in ("function", "custom"):
        raise ValueError(f"use Tool or CustomTool for a {value['type']!r} tool, not HostedTool")


@attrs.frozen
class HostedTool:
    """A tool the API defines by its own type, sent verbatim: ``HostedTool({"type":
    "web_search"})``, ``{"type": "file_search", "vector_store_ids": [...]}``, ``{"type":
    "code_interpreter", "container": {"type": "auto"}}``, ``{"type": "image_generation"}``,
    ``{"type": "mcp", ...}``, ``{"type": "shell"}``, ``{"type": "apply_patch"}``...

    Hosted tools (web search, file search, code interpreter, image generation, MCP) run on the
    server: their items arrive as :class:`ServerItem` parts. Built-in tools the client executes
    (shell, local_shell, apply_patch, computer) arrive as :class:`ToolCall` with their ``kind``.
    """

    spec: dict[str, Any] = attrs.field(converter=dict, validator=_check_spec)

    @property
    def type(self) -> str:
        """The tool's type."""
        return str(self.spec["type"])


AnyTool: TypeAlias = Tool | CustomTool | HostedTool
_TOOLS = (Tool, CustomTool, HostedTool)


def _check_tools(instance: Any, attribute: attrs.Attribute[Any], value: list[Any]) -> None:
    for position, tool in enumerate(value):
        if not isinstance(tool, _TOOLS):
            raise TypeError(
                f"Context.tools[{position}] must be a Tool, CustomTool or HostedTool, "
                f"got {type(tool).__name__}"
            )


def _check_messages(instance: Any, attribute: attrs.Attribute[Any], value: list[Any]) -> None:
    # the converter has already made *value* a list
    for position, message in enumerate(value):
        if not isinstance(message, _MESSAGES):
            raise TypeError(
                f"Context.messages[{position}] must be a UserMessage, AssistantMessage or "
                f"ToolResultMessage, got {type(message).__name__}"
            )


def _to_list(value: Sequence[Any] | None) -> list[Any]:
    return [] if value is None else list(value)


@attrs.define
class Context:
    """A conversation: the system prompt, the messages so far, and the tools on offer.

    Mutable on purpose: an agent loop appends the assistant's message and the tool results to
    ``messages`` and streams again. Validated when built; :func:`~openai_ws.convert.
    convert_messages_to_input_items` checks each message again when the request is made.
    """

    system_prompt: str | None = attrs.field(default=None, validator=_optional_str)
    messages: list[Message] = attrs.field(
        factory=list, converter=_to_list, validator=_check_messages
    )
    tools: list[Tool | CustomTool | HostedTool] = attrs.field(
        factory=list, converter=_to_list, validator=_check_tools
    )
