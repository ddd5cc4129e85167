"""A local emulator of the OpenAI Responses API, for tests, demos and benchmarks.

It needs the ``testing`` extra (the ``websockets`` package): from a clone of openai-ws,
``python3 -m pip install ".[testing]"``. See :class:`FakeResponsesServer`.
"""

from __future__ import annotations

# first: without the testing extra, a clear ImportError that says what to install
from ._extra import INSTALL_HINT  # noqa: F401
from .engine import LatencyModel
from .faults import BadFrame, CloseSocket, CutBody, RefuseUpgrade, Stall
from .models import (
    HOSTED_PROGRESS,
    BuiltinCall,
    CustomCall,
    DefaultModel,
    Failure,
    FunctionCall,
    HostedCall,
    Incomplete,
    ModelRequest,
    ParallelCall,
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
    "HOSTED_PROGRESS",
    "BadFrame",
    "BuiltinCall",
    "CloseSocket",
    "CustomCall",
    "CutBody",
    "DefaultModel",
    "Failure",
    "FakeResponsesServer",
    "FunctionCall",
    "HostedCall",
    "Incomplete",
    "LatencyModel",
    "ModelRequest",
    "ParallelCall",
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
