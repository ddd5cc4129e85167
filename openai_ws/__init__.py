"""openai-ws: the OpenAI Responses API over WebSocket mode, from ordinary synchronous Python.

This module only re-exports; every name lives in the module named after its concept.
"""

from __future__ import annotations

import logging

from . import events
from ._version import __version__
from .chain import ChainPlan, plan_request
from .client import Client, has_ws_session, release_ws_session, stream
from .convert import (
    build_assistant_message_from_response,
    convert_messages_to_input_items,
    convert_tools,
    output_items_to_input_items,
)
from .exceptions import (
    APIError,
    AuthenticationError,
    ConcurrencyError,
    ConfigurationError,
    ConnectError,
    ConnectionClosed,
    ConnectionLimitReached,
    ContextLengthExceeded,
    OpenAIWSError,
    PreviousResponseNotFound,
    ProtocolError,
    RateLimitError,
    StreamTimeout,
    TransportError,
)
from .messages import (
    AssistantMessage,
    Context,
    Cost,
    CustomTool,
    HostedTool,
    ImageContent,
    ModelInfo,
    ServerItem,
    TextContent,
    ThinkingContent,
    Tool,
    ToolCall,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from .options import StreamOptions
from .protocol import ResponseAccumulator, parse_server_event
from .sse import SSEDecoder, SSEMessage
from .stores import MemoryChainStore
from .stream import StreamResponse
from .telemetry import TurnStats
from .transports import SSETransport, WebSocketConnection

# a library only logs; the application decides where logs go (as requests does)
logging.getLogger("openai_ws").addHandler(logging.NullHandler())

__all__ = [
    "APIError",
    "AssistantMessage",
    "AuthenticationError",
    "ChainPlan",
    "Client",
    "ConcurrencyError",
    "ConfigurationError",
    "ConnectError",
    "ConnectionClosed",
    "ConnectionLimitReached",
    "Context",
    "ContextLengthExceeded",
    "Cost",
    "CustomTool",
    "HostedTool",
    "ImageContent",
    "MemoryChainStore",
    "ModelInfo",
    "OpenAIWSError",
    "PreviousResponseNotFound",
    "ProtocolError",
    "RateLimitError",
    "ResponseAccumulator",
    "SSEDecoder",
    "SSEMessage",
    "SSETransport",
    "ServerItem",
    "StreamOptions",
    "StreamResponse",
    "StreamTimeout",
    "TextContent",
    "ThinkingContent",
    "Tool",
    "ToolCall",
    "ToolResultMessage",
    "TransportError",
    "TurnStats",
    "Usage",
    "UserMessage",
    "WebSocketConnection",
    "__version__",
    "build_assistant_message_from_response",
    "convert_messages_to_input_items",
    "convert_tools",
    "events",
    "has_ws_session",
    "output_items_to_input_items",
    "parse_server_event",
    "plan_request",
    "release_ws_session",
    "stream",
]
