"""A local emulator of the OpenAI Responses API, for tests, demos and benchmarks.

Install with ``pip install openai-ws[testing]``. See :class:`FakeResponsesServer`.
"""

from __future__ import annotations

from .engine import LatencyModel
from .faults import BadFrame, CloseSocket, CutBody, RefuseUpgrade, Stall
from .models import (
    DefaultModel,
    Failure,
    FunctionCall,
    Incomplete,
    ModelRequest,
    RawFrames,
    Reasoning,
    Refusal,
    Rejection,
    ReplayModel,
    ScriptedModel,
    Text,
    Turn,
    turn,
)
from .server import FakeResponsesServer, RecordedHandshake, RecordedRequest, ServerStats

__all__ = [
    "BadFrame",
    "CloseSocket",
    "CutBody",
    "DefaultModel",
    "Failure",
    "FakeResponsesServer",
    "FunctionCall",
    "Incomplete",
    "LatencyModel",
    "ModelRequest",
    "RawFrames",
    "Reasoning",
    "RecordedHandshake",
    "RecordedRequest",
    "Refusal",
    "RefuseUpgrade",
    "Rejection",
    "ReplayModel",
    "ScriptedModel",
    "ServerStats",
    "Stall",
    "Text",
    "Turn",
    "turn",
]
