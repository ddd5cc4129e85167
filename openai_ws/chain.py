"""Deciding, per turn, between a delta request and a full one (PROTOCOL.md section 1).

A turn may be sent as ``previous_response_id`` plus only the new input items when the server
still holds the previous response and the new request truly continues it. Otherwise the whole
context is sent, and then WITHOUT ``previous_response_id``: sending both would make the server
see the history twice.

:func:`plan_request` is pure: the session layer tells it whether the chain's last response is
still usable (it completed on the connection the turn will use, or it is stored), by passing
``previous_response_id`` or None.

:func:`plan_from_fingerprint` applies the same rule when the previous request is not at hand
(another process made it): a :class:`Fingerprint` keeps digests instead of the request, so a
chain store holds a few hundred bytes per conversation, however long the conversation is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from ._json import canonical
from .convert import output_items_to_input_items
from .history import WRAPPER_NAMES, collapse_wrapper_outputs

__all__ = [
    "IGNORED_FIELDS",
    "ChainPlan",
    "Fingerprint",
    "ItemDigest",
    "fingerprint",
    "plan_from_fingerprint",
    "plan_request",
    "settings_digest",
]

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
    previous_replayed: Sequence[Mapping[str, Any]] | None = None,
) -> ChainPlan:
    """Plan one turn.

    Args:
        request: the new turn's full request (``input`` holds the whole conversation).
        previous_request: the previous turn's full request, as planned before chaining.
        previous_output: the previous response's output items.
        previous_response_id: the previous response's id when the server can still resolve it
            (it completed on the connection this turn will use, or it was stored), else None.
        previous_replayed: *previous_output* as input items, when the caller has them (what
            :func:`~openai_ws.convert.output_items_to_input_items` makes of it with the
            previous request's tools); computed here otherwise.

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
    if previous_replayed is None:
        previous_replayed = output_items_to_input_items(
            previous_output or [], tools=previous_request.get("tools")
        )
    prefix = _as_items(previous_request.get("input")) + list(previous_replayed)
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


# -- fingerprints: the same rule without the previous request -------------------------------


def _canonical(value: Any) -> bytes:
    """One JSON text per value: sorted keys, no spaces, ASCII only (so equal values hash the
    same in every process, whatever their dicts' insertion order)."""
    return canonical(value).encode("ascii")


def settings_digest(request: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of every field of *request* that must stay the same along a chain
    (all but :data:`IGNORED_FIELDS`)."""
    settings = {k: v for k, v in request.items() if k not in IGNORED_FIELDS}
    return hashlib.sha256(_canonical(settings)).hexdigest()


class ItemDigest:
    """A running SHA-256 over input items, one canonical JSON text per item.

    Each item's text is followed by a newline (which canonical JSON never contains), so two
    different lists of items never feed the same bytes. :meth:`copy` forks the running state:
    the digest of a prefix is extended by the next turn's items without hashing the prefix
    again. Not thread-safe (one per turn).
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.count = 0

    def update(self, items: Iterable[Any]) -> ItemDigest:
        for item in items:
            self._hash.update(_canonical(item))
            self._hash.update(b"\n")
            self.count += 1
        return self

    def copy(self) -> ItemDigest:
        other = ItemDigest()
        other._hash = self._hash.copy()
        other.count = self.count
        return other

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class InputItems(list[Any]):
    """A request's ``input`` list (a plain list to everything else) that knows the running
    :class:`ItemDigest` of some of its prefixes, so that the planner and :func:`fingerprint`
    hash only the items after the nearest one (O(new items), not O(history)).

    :func:`~openai_ws.options.build_request` makes it from the digests it keeps per
    conversation. The checkpoints are trusted only while the list has the length it was made
    with; else (or for a plain list) everything is hashed.
    """

    __slots__ = ("_checkpoints", "_length")

    def __init__(self, items: Iterable[Any], checkpoints: Iterable[ItemDigest] = ()) -> None:
        super().__init__(items)
        self._length = len(self)
        self._checkpoints = tuple(sorted(checkpoints, key=lambda d: d.count))

    def __reduce__(self) -> tuple[Any, ...]:
        # a copy or a pickle is a plain list (the running hashes are not picklable)
        return (list, (list(self),))

    def knows(self, count: int) -> bool:
        """Whether it holds the digest of exactly its first *count* items."""
        return len(self) == self._length and count in [c.count for c in self._checkpoints]

    def digest_upto(self, count: int) -> ItemDigest:
        """A new :class:`ItemDigest` of the first *count* items."""
        start = ItemDigest()
        if len(self) == self._length:
            for checkpoint in self._checkpoints:
                if checkpoint.count <= count:
                    start = checkpoint
        return start.copy().update(self[start.count : count])


def _digest_upto(items: list[Any], count: int) -> ItemDigest:
    if isinstance(items, InputItems):
        return items.digest_upto(count)
    return ItemDigest().update(items[:count])


@attrs.frozen
class Fingerprint:
    """What the next turn needs to check the strict-suffix rule against a response, without
    the request that produced it.

    Attributes:
        settings: :func:`settings_digest` of the request.
        prefix: the :class:`ItemDigest` of the items a continuation must start with (the
            request's input, then the response's output replayed as input items).
        length: how many items that is.
        wrappers: the response's parallel wrapper calls, if any (a delta merges their
            expanded results, see :func:`~openai_ws.history.collapse_wrapper_outputs`).
    """

    settings: str
    prefix: str
    length: int
    wrappers: tuple[JSONDict, ...] = ()


def fingerprint(
    request: Mapping[str, Any],
    output: Sequence[Mapping[str, Any]],
    *,
    input_digest: ItemDigest | None = None,
    settings: str | None = None,
    replayed: Sequence[Mapping[str, Any]] | None = None,
) -> Fingerprint:
    """The fingerprint of a completed turn: *request* (as planned before chaining, with the
    whole conversation in ``input``) and the response's *output* items.

    Args:
        input_digest: the digest of *request*'s input, when the caller has it already (it
            is extended, not changed); computed here otherwise.
        settings: :func:`settings_digest` of *request*, when the caller has it already.
        replayed: the input items that replay *output*, when the caller has them already
            (what :func:`~openai_ws.convert.output_items_to_input_items` makes of them with
            the request's tools); computed here otherwise.
    """
    if input_digest is not None:
        digest = input_digest.copy()
    else:
        items = _as_items(request.get("input"))
        digest = _digest_upto(items, len(items))
    if replayed is None:
        replayed = output_items_to_input_items(output, tools=request.get("tools"))
    digest.update(replayed)
    wrappers = tuple(
        dict(item)
        for item in output
        if item.get("type") == "function_call" and item.get("name") in WRAPPER_NAMES
    )
    settings = settings or settings_digest(request)
    return Fingerprint(settings, digest.hexdigest(), digest.count, wrappers)


def plan_from_fingerprint(
    request: Mapping[str, Any],
    previous: Fingerprint | None,
    *,
    previous_response_id: str | None = None,
    settings: str | None = None,
) -> tuple[ChainPlan, ItemDigest | None]:
    """:func:`plan_request` against a :class:`Fingerprint` instead of the previous request.

    The rule is the same: a delta when the response is usable, the settings digest matches,
    the new input's first ``previous.length`` items hash to ``previous.prefix`` and at least
    one item follows; else the full request. A digest can only tell "equal" or "not equal", so
    every reason for a full request is one of a few fixed phrases. *settings* is
    :func:`settings_digest` of *request*, when the caller has it already.

    Returns:
        The plan, and the digest of the request's whole input when it was computed along the
        way (for :func:`fingerprint` after the turn), else None.
    """
    if request.get("previous_response_id") is not None:
        return ChainPlan(dict(request), request["previous_response_id"], "set by the caller"), None
    if previous_response_id is None or previous is None:
        return _full(request, "no previous response to continue"), None
    if (settings or settings_digest(request)) != previous.settings:
        return _full(request, "a setting changed"), None
    items = _as_items(request.get("input"))
    if len(items) < previous.length:
        return _full(request, "the history is not a continuation of the previous turn"), None
    digest = _digest_upto(items, previous.length)
    if digest.hexdigest() != previous.prefix:
        return _full(request, "the history is not a continuation of the previous turn"), None
    delta = items[previous.length :]
    if isinstance(items, InputItems) and items.knows(len(items)):
        digest = items.digest_upto(len(items))  # a copy of the one build_request made
    else:
        digest.update(delta)
    if not delta:
        return _full(request, "no new input items"), digest
    delta = collapse_wrapper_outputs(delta, previous.wrappers)
    payload = dict(request)
    payload["input"] = delta
    payload["previous_response_id"] = previous_response_id
    return ChainPlan(payload, previous_response_id, f"{len(delta)} new input items"), digest
