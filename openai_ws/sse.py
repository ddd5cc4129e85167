"""A sans-I/O decoder for ``text/event-stream`` bodies (the WHATWG server-sent events rules).

Feed it bytes as they arrive; it returns every event whose terminating blank line has arrived,
at once. It never splits on anything but CR, LF and CRLF (``str.splitlines()`` would also split
on U+2028, U+0085, U+000B and others that are legal inside JSON strings), decodes each complete
line once (so a UTF-8 sequence split across chunks is whole when decoded), and holds no CR back:
a CR ends its line immediately, and an LF that follows it in the next chunk is skipped.

Example::

    decoder = SSEDecoder()
    for chunk in response.iter_content(chunk_size=None):
        for message in decoder.feed(chunk):
            handle(message.event, message.data)
    decoder.finish()
"""

from __future__ import annotations

import re
from typing import Any

import attrs

__all__ = ["SSEDecoder", "SSEMessage"]

_EOL = re.compile(rb"[\r\n]")
_BOM = b"\xef\xbb\xbf"


@attrs.frozen
class SSEMessage:
    """One dispatched server-sent event.

    Attributes:
        event: the event type (``"message"`` when the stream gave none).
        data: the data lines joined with ``"\\n"``.
        id: the last event id seen so far in the stream (it persists across events).
        retry: the reconnection time in milliseconds set by this event, if any.
    """

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None


class SSEDecoder:
    """Incremental server-sent events decoder.

    Not thread-safe: one decoder per stream, fed by one thread.

    Attributes:
        last_event_id: the id that a reconnection would send as ``Last-Event-ID`` (set when an
            event, or a blank line, is dispatched).
        retry: the last valid reconnection time (milliseconds) the stream set, or None.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._scan_from = 0  # bytes of the buffer already known to hold no line end
        self._skip_lf = False  # the previous chunk ended with CR: a leading LF belongs to it
        self._bom_checked = False
        self._event = ""
        self._data: list[str] = []
        self._has_fields = False
        self._retry_this_event: int | None = None
        self._id_buffer = ""  # persists across events, unlike the data and event buffers
        self.last_event_id = ""
        self.retry: int | None = None
        self._data_only = False  # set by _feed_data: dispatch an event's data, not a message

    def _feed_data(self, chunk: bytes) -> list[str]:
        """:meth:`feed`, returning only each event's data (what the transports use: no
        :class:`SSEMessage` is made). The decoder's state moves exactly as with :meth:`feed`."""
        self._data_only = True
        try:
            return self.feed(chunk)  # type: ignore[return-value]
        finally:
            self._data_only = False

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        """Consume *chunk* and return the events it completed, in order.

        Args:
            chunk: the next bytes of the body, of any length (empty is fine).

        Returns:
            Every event whose blank line is in the bytes fed so far and was not returned before.
        """
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
                if not chunk:
                    return []
        buffer = self._buffer
        if self._bom_checked and b"\r" not in chunk and b"\n" in chunk:
            # The common case (LF line ends only), without copying a chunk that starts with an
            # empty buffer (what the buffer holds has no line end at all, so no CR either)
            if buffer:
                buffer += chunk
                chunk = bytes(buffer)
            return self._lf_lines(chunk)
        buffer += chunk
        if not self._bom_checked:
            if len(buffer) < 3 and _BOM.startswith(bytes(buffer)):
                return []  # maybe the start of a BOM: wait for more
            self._bom_checked = True
            if buffer.startswith(_BOM):
                del buffer[:3]
        if b"\r" not in chunk:
            if b"\n" not in chunk:
                self._scan_from = len(buffer)
                return []
            return self._lf_lines(bytes(buffer))
        return self._any_lines()

    def _lf_lines(self, data: bytes) -> list[Any]:
        """The events of *data*: the whole unread input, with LF line ends only."""
        messages: list[Any] = []
        append = messages.append
        data_only = self._data_only
        *lines, rest = data.split(b"\n")
        for line in lines:
            if not line:
                if self._data:  # as _dispatch does, without its steps
                    self.last_event_id = self._id_buffer
                    append(
                        "\n".join(self._data)
                        if data_only
                        else SSEMessage(
                            self._event or "message",
                            "\n".join(self._data),
                            self._id_buffer,
                            self._retry_this_event,
                        )
                    )
                    self._event = ""
                    self._data = []
                    self._has_fields = False
                    self._retry_this_event = None
                else:
                    self._dispatch()  # nothing to dispatch; resets the event
            elif line.startswith(b"data: "):  # as _process_line does, without its steps
                self._data.append(line[6:].decode("utf-8", "replace"))
                self._has_fields = True
            elif line.startswith(b"event: "):
                self._event = line[7:].decode("utf-8", "replace")
                self._has_fields = True
            else:
                self._process_line(line)
        self._buffer[:] = rest
        self._scan_from = len(rest)
        return messages

    def _any_lines(self) -> list[Any]:
        """The events of the buffer, whatever its line ends (CR, LF, CRLF)."""
        buffer = self._buffer
        messages: list[Any] = []
        start = 0
        search = _EOL.search
        match = search(buffer, self._scan_from)
        while match is not None:
            end = match.start()
            line = bytes(buffer[start:end])
            if buffer[end] == 0x0D:  # CR
                if end + 1 < len(buffer):
                    next_start = end + 2 if buffer[end + 1] == 0x0A else end + 1
                else:
                    next_start = end + 1
                    self._skip_lf = True
            else:
                next_start = end + 1
            message = self._process_line(line)
            if message is not None:
                messages.append(message)
            start = next_start
            match = search(buffer, start)
        if start:
            del buffer[:start]
        self._scan_from = len(buffer)
        return messages

    def finish(self) -> bool:
        """Signal the end of the body and reset the decoder.

        As the WHATWG rules require, an event whose blank line never arrived is discarded, and
        so is a final line without a line end.

        Returns:
            True when something was discarded, i.e. the body was cut in the middle of an event.
        """
        truncated = bool(self._buffer) or self._has_fields
        self._buffer.clear()
        self._scan_from = 0
        self._skip_lf = False
        self._bom_checked = False
        self._reset_event()
        return truncated

    def _reset_event(self) -> None:
        self._event = ""
        self._data = []
        self._has_fields = False
        self._retry_this_event = None

    def _process_line(self, raw: bytes) -> Any:
        if not raw:
            return self._dispatch()
        if raw[0] == 0x3A:  # ":" starts a comment (keep-alives)
            return None
        line = raw.decode("utf-8", "replace")
        name, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_fields = True
        elif name == "event":
            self._event = value
            self._has_fields = True
        elif name == "id":
            if "\x00" not in value:
                self._id_buffer = value
            self._has_fields = True
        elif name == "retry":
            if value and value.isascii() and value.isdigit():
                self.retry = self._retry_this_event = int(value)
            self._has_fields = True
        # any other field name is ignored, as the rules say
        return None

    def _dispatch(self) -> Any:
        """The event the blank line ends (its data only with ``_data_only``), or None."""
        self.last_event_id = self._id_buffer
        if not self._data:
            # A blank line with no data dispatches nothing; the event type is reset.
            self._reset_event()
            return None
        if self._data_only:
            data = "\n".join(self._data)
            self._reset_event()
            return data
        message = SSEMessage(
            event=self._event or "message",
            data="\n".join(self._data),
            id=self._id_buffer,
            retry=self._retry_this_event,
        )
        self._reset_event()
        return message
