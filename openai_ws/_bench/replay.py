"""The replay server: the throughput, turn-cost and scale benchmarks' server, in a process of
its own.

It answers WebSocket mode and ``POST /v1/responses`` (SSE) from replies built **once**, as bytes:
the emulator's own events for the same request (so every client parses exactly what the emulator
would send), framed ahead of time. Per request it only reads the request, picks the prebuilt
reply, stamps a fresh response id into it (same width, so lengths never change) and writes it
with one ``sendall`` (or, with ``--per-event``, one ``sendall`` per event, as the service writes
each event when it is made). It is plain sockets and one thread per connection, so it is never
the cap: ``openai-ws bench`` measures its ceiling with a trivial raw client and prints it. Its
work per request is the same on turn 150 as on turn 2.

What it answers, read from the request body: ``stream N`` anywhere in it gives one text answer of
N deltas; anything else gives the short answer ``ok`` (the concurrency scenario's turns). It keeps
no conversation state: chaining fields are accepted and ignored.

``python -m openai_ws._bench.replay [--delay SECONDS] [--per-event]`` prints one JSON line with
the URLs, then answers lines on stdin (``size N``: the byte sizes and event count of the answer
to ``stream N``; ``stats``: counters) with one JSON line each, and stops at end of input.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
from typing import Any

from ..testing import LatencyModel
from ..testing.engine import ConnectionState, Engine
from .server import BenchModel

__all__ = ["ReplayServer", "Replies", "ceiling", "main", "upgrade"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_STREAM = re.compile(rb"stream (\d+)")
_ID = re.compile(rb"resp_[0-9a-f]{48}")


def ws_frame(payload: bytes, opcode: int = 1) -> bytes:
    """One unmasked, final server frame."""
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, size))
    elif size < 65536:
        head = bytes((0x80 | opcode, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + size.to_bytes(8, "big")
    return head + payload


class Replies:
    """Prebuilt replies, one per answer, each built on first use and kept. Thread-safe."""

    def __init__(self) -> None:
        self._engine = Engine(model=BenchModel(), latency=LatencyModel.instant())
        self._lock = threading.Lock()
        self._built: dict[int | None, tuple[list[bytes], list[bytes], int]] = {}
        # the byte size of each event's write (WebSocket, SSE), for the per-event mode
        self._sizes: dict[int | None, tuple[list[int], list[int]]] = {}

    def _build(self, words: int | None) -> tuple[list[bytes], list[bytes], int]:
        with self._lock:
            built = self._built.get(words)
            if built is None:
                text = f"stream {words}" if words is not None else "hello"
                body = {"type": "response.create", "model": "m", "input": text, "store": False}
                reply = self._engine.handle(body, ConnectionState(0, "websocket"))
                ws_frames = [ws_frame(frame.encode()) for _, _, frame in reply.frames]
                ws = b"".join(ws_frames)
                sse_events = (
                    f"event: {kind}\ndata: {frame}\n\n".encode() for _, kind, frame in reply.frames
                )
                head = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
                    b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                chunks = [b"%x\r\n%s\r\n" % (len(event), event) for event in sse_events]
                sse = head + b"".join(chunks) + b"0\r\n\r\n"
                # per event: the head goes with the first event, the end with the last
                sse_sizes = [len(chunk) for chunk in chunks]
                sse_sizes[0] += len(head)
                sse_sizes[-1] += len(b"0\r\n\r\n")
                self._sizes[words] = ([len(frame) for frame in ws_frames], sse_sizes)
                # split around the response id, so that each reply gets a fresh one
                built = (_ID.split(ws), _ID.split(sse), len(reply.frames))
                self._built[words] = built
            return built

    def reply(self, request: bytes, transport: str) -> bytes:
        """The bytes answering *request* (a request body) over *transport* (``ws``/``sse``)."""
        found = _STREAM.search(request)
        ws, sse, _ = self._build(int(found.group(1)) if found else None)
        fresh = b"resp_" + os.urandom(24).hex().encode()  # random, as real ids are
        return fresh.join(ws if transport == "ws" else sse)

    def writes(self, request: bytes, transport: str) -> list[bytes]:
        """:meth:`reply` cut into one write per event (the service writes each event as it
        is made; a stamped id keeps every length)."""
        found = _STREAM.search(request)
        words = int(found.group(1)) if found else None
        reply = self.reply(request, transport)
        sizes = self._sizes[words][0 if transport == "ws" else 1]
        out, start = [], 0
        for size in sizes:
            out.append(reply[start : start + size])
            start += size
        return out

    def size(self, words: int) -> dict[str, int]:
        ws, sse, events = self._build(words)
        width = len(b"resp_") + 48
        return {
            "ws_bytes": sum(map(len, ws)) + width * (len(ws) - 1),
            "sse_bytes": sum(map(len, sse)) + width * (len(sse) - 1),
            "events": events,
        }


class ReplayServer:
    """Listens on 127.0.0.1; one thread per connection (daemon threads: the process is the
    benchmark's and ends with it)."""

    def __init__(self, delay: float = 0.0, *, per_event: bool = False) -> None:
        self.replies = Replies()
        self.delay = delay
        self.per_event = per_event
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
        self.port = self.listener.getsockname()[1]
        self.counters = {"connections": 0, "requests": 0}
        self._lock = threading.Lock()

    @property
    def urls(self) -> dict[str, str]:
        return {
            "ws_url": f"ws://127.0.0.1:{self.port}/v1/responses",
            "http_base_url": f"http://127.0.0.1:{self.port}/v1",
        }

    def serve_forever(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.counters["connections"] += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _count(self) -> None:
        with self._lock:
            self.counters["requests"] += 1

    def _serve(self, sock: socket.socket) -> None:
        conn = _Conn(sock)
        try:
            head = conn.read_until(b"\r\n\r\n")
            while head is not None:
                headers = _headers(head)
                if headers.get("upgrade", "").lower() == "websocket":
                    self._websocket(conn, headers)
                    return
                body = conn.read_body(headers)
                self._count()
                if self.delay:
                    time.sleep(self.delay)
                self._send(sock, body, "sse")
                if headers.get("connection", "").lower() == "close":
                    return
                head = conn.read_until(b"\r\n\r\n")
        except OSError:
            pass
        finally:
            sock.close()

    def _websocket(self, conn: _Conn, headers: dict[str, str]) -> None:
        key = headers.get("sec-websocket-key", "").encode()
        accept = base64.b64encode(hashlib.sha1(key + _GUID, usedforsecurity=False).digest())
        conn.sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        message = b""
        while True:
            frame = conn.read_frame()
            if frame is None:
                return
            fin, opcode, payload = frame
            if opcode == 8:
                conn.sock.sendall(ws_frame(payload[:2], 8))
                return
            if opcode == 9:
                conn.sock.sendall(ws_frame(payload, 10))
                continue
            if opcode not in (0, 1, 2):
                continue
            message += payload
            if not fin:
                continue
            request, message = message, b""
            self._count()
            if self.delay:
                time.sleep(self.delay)
            self._send(conn.sock, request, "ws")

    def _send(self, sock: socket.socket, request: bytes, transport: str) -> None:
        if not self.per_event:
            sock.sendall(self.replies.reply(request, transport))
            return
        for write in self.replies.writes(request, transport):
            sock.sendall(write)


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    out = {}
    for line in lines:
        name, _, value = line.partition(":")
        out[name.strip().lower()] = value.strip()
    return out


class _Conn:
    """A buffered reader over one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _more(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def read_exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if not self._more():
                return None
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out

    def read_until(self, mark: bytes) -> bytes | None:
        while True:
            end = self.buffer.find(mark)
            if end >= 0:
                out, self.buffer = self.buffer[:end], self.buffer[end + len(mark) :]
                return out
            if not self._more():
                return None

    def read_body(self, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                line = self.read_until(b"\r\n")
                size = int((line or b"0").split(b";")[0], 16)
                if size == 0:
                    self.read_until(b"\r\n")
                    return body
                body += self.read_exactly(size + 2) or b""
        length = int(headers.get("content-length", "0") or 0)
        return self.read_exactly(length) or b""

    def read_frame(self) -> tuple[bool, int, bytes] | None:
        head = self.read_exactly(2)
        if head is None:
            return None
        size = head[1] & 0x7F
        if size == 126:
            more = self.read_exactly(2)
            size = int.from_bytes(more or b"\0\0", "big")
        elif size == 127:
            more = self.read_exactly(8)
            size = int.from_bytes(more or bytes(8), "big")
        mask = self.read_exactly(4) if head[1] & 0x80 else None
        payload = self.read_exactly(size)
        if payload is None:
            return None
        if mask:
            key = (mask * (size // 4 + 1))[:size]
            payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(
                size, "big"
            )
        return bool(head[0] & 0x80), head[0] & 0x0F, payload


# -- the ceiling: a trivial raw client ----------------------------------------------------------


def upgrade(sock: socket.socket) -> bytes:
    """Ask for the WebSocket upgrade on *sock* (a trivial client's, with no checks) and wait for
    the answer's head; the bytes that came after it."""
    sock.sendall(
        b"GET /v1/responses HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    got = b""
    while b"\r\n\r\n" not in got:
        data = sock.recv(4096)
        if not data:
            raise RuntimeError("the replay server closed the connection before upgrading")
        got += data
    return got.split(b"\r\n\r\n", 1)[1]


def ceiling(url: str, words: int, sizes: dict[str, int], transport: str) -> float:
    """Events per second the server delivers to the most trivial client: raw socket reads of
    exactly the known number of bytes, no parsing at all. Runs in the caller's process."""
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        body = json.dumps({"type": "response.create", "model": "m", "input": f"stream {words}"})
        if transport == "ws":
            upgrade(sock)
            payload = body.encode()
            request = bytes((0x81, 0x80 | 126)) + len(payload).to_bytes(2, "big") + bytes(4)
            request += payload  # a zero mask leaves the payload as it is
            expected = sizes["ws_bytes"]
        else:
            payload = body.encode()
            request = (
                b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                % len(payload)
                + payload
            )
            expected = sizes["sse_bytes"]
        buffer = bytearray(1 << 20)
        started = time.perf_counter()
        sock.sendall(request)
        received = 0
        while received < expected:
            count = sock.recv_into(buffer)
            if not count:
                raise RuntimeError("the replay server closed the connection early")
            received += count
        return sizes["events"] / (time.perf_counter() - started)
    finally:
        sock.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument(
        "--per-event", action="store_true", help="one write per event, as the service sends them"
    )
    args = parser.parse_args()
    server = ReplayServer(args.delay, per_event=args.per_event)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps(server.urls), flush=True)
    for line in sys.stdin:
        words = line.split()
        answer: Any = {}
        if words[:1] == ["size"] and len(words) == 2:
            answer = server.replies.size(int(words[1]))
        elif words[:1] == ["stats"]:
            answer = dict(server.counters)
        print(json.dumps(answer), flush=True)
    server.listener.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
