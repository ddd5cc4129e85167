"""The speedups extra (orjson) changes nothing but speed: for any input, parse_server_event
gives the same event (or the same error) with it and without it. CI runs the whole suite both
ways as well (tox -e speedups)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from openai_ws import protocol
from openai_ws.exceptions import ProtocolError

# Run by `tox -e speedups`, where the extra is installed; deselected elsewhere (never skipped).
pytestmark = pytest.mark.speedups


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to itself and int and float told apart (1 != 1.0 here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def outcome(data: Any, fast: bool) -> Any:
    import orjson  # the speedups extra: a missing orjson fails the test

    saved = protocol._orjson
    protocol._orjson = orjson if fast else None
    try:
        event = protocol.parse_server_event(data)
    except ProtocolError as exc:
        return ("error", str(exc), None)
    finally:
        protocol._orjson = saved
    return (type(event).__name__, event.raw, event.sequence_number)


def check(data: Any) -> None:
    stdlib, fast = outcome(data, False), outcome(data, True)
    assert same(stdlib, fast), (stdlib, fast)


numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
event_types = st.sampled_from(
    ["response.output_text.delta", "response.created", "error", "response.completed", "x"]
)


@settings(max_examples=300, deadline=None)
@given(kind=event_types, fields=st.dictionaries(st.text(max_size=8), values, max_size=5))
def test_generated_events_parse_the_same(kind: str, fields: dict[str, Any]) -> None:
    body = {"type": kind, **fields}
    text = json.dumps(body)  # NaN and Infinity as json writes them
    check(text)
    check(text.encode())


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=60) | st.text(max_size=60))
@example(b'{"type":"x","n":123456789012345678901234567890}')
@example(b'{"type":"x","n":-9223372036854775809}')
@example(b'{"type":"x","n":18446744073709551616}')
@example(b'{"type":"x","n":1e400}')
@example(b'{"type":"x","n":NaN}')
@example(b'{"type":"x","delta":"\\ud800"}')
@example(b'{"type":"x","delta":"a\\ud83d"}')
@example(b'{"type":"x","delta":"\\ude00b"}')
@example(b'{"type":"x","delta":"\\ud83d\\ude00"}')
@example(b'\xef\xbb\xbf{"type":"x"}')
@example(b'{"type":"x","a":1,"a":2}')
@example(b'{"type":"x","s":"\xed\xa0\x80"}')
@example(b'{"type":"x","n":-0}')
@example(b'{"type":"x","n":-0.0}')
@example('{"type":"x","s":"\ud800"}')
@example(b"[" * 3000 + b"]" * 3000)
def test_any_bytes_parse_the_same(data: bytes | str) -> None:
    check(data)
    if isinstance(data, bytes):
        check(bytearray(data))
