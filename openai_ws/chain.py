"""Deciding, per turn, between a delta request and a full one (PROTOCOL.md section 1).

A turn may be sent as ``previous_response_id`` plus only the new input items when the server
still holds the previous response and the new request truly continues it. Otherwise the whole
context is sent, and then WITHOUT ``previous_response_id``: sending both would make the server
see the history twice.

:func:`plan_request` is pure: the session layer tells it whether the chain's last response is
still usable (it completed on the connection the turn will use, or it is stored), by passing
``previous_response_id`` or None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from .convert import output_items_to_input_items
from .history import collapse_wrapper_outputs

__all__ = ["IGNORED_FIELDS", "ChainPlan", "plan_request"]

JSONDict = dict[str, Any]

#: Request fields that may differ between two turns of one chain. ``generate`` differs between
#: a warm-up and the turn it prepares; ``stream``, ``background`` and ``type`` are transport
#: framing, not part of what the model sees.
IGNORED_FIELDS: Final = frozenset(
    {"input", "previous_response_id", "metadata", "generate", "stream", "background", "type"}
)


@attrs.frozen
class ChainPlan:
    """What to send for one turn.

    Attributes:
        payload: the request body to send; its ``input`` is the delta or the full input.
        previous_response_id: the id it chains from, or None for a full request.
        reason: why, in a few words (for logs and tests).
    """

    payload: JSONDict
    previous_response_id: str | None
    reason: str

    @property
    def is_delta(self) -> bool:
        return self.previous_response_id is not None


def _as_items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if isinstance(value, list):
        return value
    return [value]


def _full(request: Mapping[str, Any], reason: str) -> ChainPlan:
    payload = {k: v for k, v in request.items() if k != "previous_response_id"}
    return ChainPlan(payload, None, reason)


def plan_request(
    request: Mapping[str, Any],
    *,
    previous_request: Mapping[str, Any] | None = None,
    previous_output: Sequence[Mapping[str, Any]] | None = None,
    previous_response_id: str | None = None,
) -> ChainPlan:
    """Plan one turn.

    Args:
        request: the new turn's full request (``input`` holds the whole conversation).
        previous_request: the previous turn's full request, as planned before chaining.
        previous_output: the previous response's output items.
        previous_response_id: the previous response's id when the server can still resolve it
            (it completed on the connection this turn will use, or it was stored), else None.

    Returns:
        A delta (``previous_response_id`` + the new items) when every condition holds: there is
        a usable previous response; every field but ``input``, ``previous_response_id``,
        ``metadata`` (and the framing fields in :data:`IGNORED_FIELDS`) is unchanged; and the
        new input starts with the previous input followed by the previous output replayed as
        input items, with at least one item after them. Otherwise the full request, without
        ``previous_response_id``. In a delta, the results of a parallel wrapper's expanded calls
        are merged into the one output the wrapper's call id needs
        (:func:`~openai_ws.history.collapse_wrapper_outputs`); a full request sends them as
        ordinary call/output pairs.
    """
    if request.get("previous_response_id") is not None:
        return ChainPlan(dict(request), request["previous_response_id"], "set by the caller")
    if previous_response_id is None or previous_request is None:
        return _full(request, "no previous response to continue")
    keys = (set(request) | set(previous_request)) - IGNORED_FIELDS
    for key in sorted(keys):
        if request.get(key) != previous_request.get(key):
            return _full(request, f"{key!r} changed")
    prefix = _as_items(previous_request.get("input"))
    prefix = prefix + output_items_to_input_items(
        previous_output or [], tools=previous_request.get("tools")
    )
    items = _as_items(request.get("input"))
    if len(items) < len(prefix) or items[: len(prefix)] != prefix:
        return _full(request, "the history is not a continuation of the previous turn")
    delta = items[len(prefix) :]
    if not delta:
        return _full(request, "no new input items")
    # the server holds a parallel wrapper as one call: its expanded results go back as one output
    delta = collapse_wrapper_outputs(delta, previous_output or [])
    payload = dict(request)
    payload["input"] = delta
    payload["previous_response_id"] = previous_response_id
    return ChainPlan(payload, previous_response_id, f"{len(delta)} new input items")
