"""A local emulator of the OpenAI Responses API, for tests, demos and benchmarks.

It needs the ``testing`` extra (the ``websockets`` package): from a clone of openai-ws,
``python3 -m pip install ".[testing]"``. See :class:`FakeResponsesServer`.
"""

from __future__ import annotations

#: What to run when the ``testing`` extra is missing (the CLI shows it too).
INSTALL_HINT = (
    'openai_ws.testing (the built-in emulator) needs the "testing" extra, which installs '
    'websockets: run python3 -m pip install ".[testing]" in a clone of openai-ws '
    '(or python3 -m pip install "websockets>=13")'
)

try:
    import websockets as _websockets  # noqa: F401 (only to check the extra is installed)
except ImportError as exc:
    raise ImportError(INSTALL_HINT, name=exc.name) from exc

from .engine import LatencyModel
from .faults import BadFrame, CloseSocket, CutBody, RefuseUpgrade, Stall
from .models import (
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
