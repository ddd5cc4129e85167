"""What a turn reports as it runs, for statistics and tracing to hang on.

:class:`~openai_ws.stream.StreamResponse` reports a few facts to a :class:`TurnObserver`: an
attempt started (over which transport, a full request or a delta), the request was sent, the
attempt ended (and why), the first content reached the caller, the turn ended. It never
touches spans or counters itself; observers do. The base class does nothing, so a turn with no
observer pays a handful of no-op calls per attempt and none per event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .events import Done, Error
    from .transports.base import ResponseStream

__all__ = ["TurnObserver"]


class TurnObserver:
    """Receives the facts of one turn, in order. Every method is a no-op here: subclass it and
    override what you need. Called from the thread that iterates the turn; an observer must
    not raise (what it raises is logged and ignored)."""

    def attempt_started(self, transport: str, *, full: bool, retry_reason: str | None) -> None:
        """An attempt is about to send over *transport*; *retry_reason* names what ended the
        previous attempt (None for the first)."""

    def request_sent(self, stream: ResponseStream, *, input_items: int, full: bool) -> None:
        """The request went out; *stream* will carry its events (its ``bytes_sent`` is set,
        its ``bytes_received`` grows)."""

    def first_content(self) -> None:
        """The first text, thinking or tool-call event is about to reach the caller."""

    def attempt_ended(self, transport: str, outcome: str, stream: ResponseStream | None) -> None:
        """The attempt over *transport* ended: *outcome* is ``"done"`` or the name of the
        exception that ended it; *stream* is None when nothing was sent."""

    def turn_ended(self, final: Done | Error) -> None:
        """The turn's last event is about to reach the caller."""
