"""JSON texts the SDK writes on every turn: a request body (compact) and the canonical text of
an item (what the chain digests hash).

``json.dumps`` with options builds a new encoder per call, and ``JSONEncoder.encode`` builds
a new C encoder per call too; here each C encoder is built once. Neither keeps a set of the
containers being encoded (there is no circular-reference check: a cycle, which no JSON value
has, ends in :class:`ValueError` all the same, through the recursion limit).
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Mapping
from typing import Any, Final

#: For ``isinstance(value, MAPPING)``: a decoded JSON object is a dict, which this tells at
#: once; any other mapping takes the slower ABC check after it.
MAPPING: Final = (dict, Mapping)


def _encoder(*, sort_keys: bool, ensure_ascii: bool, default: Any) -> Callable[[Any], str]:
    make = getattr(json.encoder, "c_make_encoder", None)
    python = json.JSONEncoder(
        sort_keys=sort_keys,
        separators=(",", ":"),
        ensure_ascii=ensure_ascii,
        default=default,
        check_circular=False,
    )
    if make is None:  # an interpreter without the C accelerator
        return python.encode
    string = (
        json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    )
    # (markers, default, encoder, indent, key separator, item separator, sort_keys, skipkeys,
    # allow_nan): as JSONEncoder.iterencode passes them
    c_encode = make(None, python.default, string, None, ":", ",", sort_keys, False, True)

    def encode(value: Any) -> str:
        if isinstance(value, str):
            return string(value)
        try:
            return "".join(c_encode(value, 0))
        except RecursionError as exc:
            raise ValueError("Circular reference detected (or nesting too deep)") from exc

    return encode


#: ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``: a request body.
compact: Final = _encoder(sort_keys=False, ensure_ascii=False, default=None)

#: Sorted keys, no spaces, ASCII only, anything else as ``str()``: one text per value, the
#: same in every process whatever its dicts' insertion order.
canonical: Final = _encoder(sort_keys=True, ensure_ascii=True, default=str)
