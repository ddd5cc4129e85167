"""The JSON texts written every turn (openai_ws._json): the same text as json.dumps with the
same options, for every kind of value a request or an item holds."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Any

import pytest

from openai_ws._json import MAPPING, canonical, compact

VALUES: list[Any] = [
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
    {"z": 1, "a": [1, 2.5, -0.0, 1e300, True, False, None], "m": {"y": "é", "b": "\U0001f600"}},
    {"text": 'quotes " and \\ and \n and \t and \x00 and \u2028'},
    {"big": 2**70, "neg": -(2**65), "float": 0.1 + 0.2},
    ["a", {"b": OrderedDict([("d", 1), ("c", 2)])}, (1, 2)],
    "a plain string with é",
    42,
    None,
    [],
    {},
]


@pytest.mark.parametrize("value", VALUES)
def test_compact_is_json_dumps_with_the_same_options(value: Any) -> None:
    assert compact(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize("value", VALUES)
def test_canonical_is_sorted_ascii_json(value: Any) -> None:
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert canonical(value) == expected
    assert canonical(value).isascii()


def test_canonical_gives_one_text_whatever_the_key_order() -> None:
    assert canonical({"b": 1, "a": {"d": 2, "c": 3}}) == canonical({"a": {"c": 3, "d": 2}, "b": 1})


def test_canonical_writes_other_objects_as_str_and_compact_refuses_them() -> None:
    class Thing:
        def __str__(self) -> str:
            return "thing"

    assert canonical({"x": Thing()}) == '{"x":"thing"}'
    with pytest.raises(TypeError):
        compact({"x": Thing()})


def test_non_finite_floats_as_json_writes_them() -> None:
    value = {"a": math.inf, "b": -math.inf}
    assert compact(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_a_cycle_is_a_value_error_not_a_hang() -> None:
    looped: dict[str, Any] = {}
    looped["self"] = looped
    with pytest.raises(ValueError, match="Circular reference"):
        compact(looped)
    with pytest.raises(ValueError, match="Circular reference"):
        canonical([looped])


def test_mapping_tells_dicts_and_other_mappings() -> None:
    from types import MappingProxyType

    assert isinstance({}, MAPPING)
    assert isinstance(MappingProxyType({}), MAPPING)
    assert not isinstance([], MAPPING)
