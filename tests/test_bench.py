"""The benchmark harness runs end to end (tiny sizes); speed itself is measured by
``openai-ws bench``, never asserted here."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import wait_for


def test_the_benchmark_harness_runs(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "openai_ws", "bench", "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "smoke"
    names = set(report["throughput"]["results"])
    assert {
        "raw websocket-client",
        "raw requests + SSE split",
        "openai-ws Client.stream (websocket)",
    } <= names
    for entry in report["throughput"]["results"].values():
        assert len(set(entry["events"])) == 1  # every run saw every event
    loops = report["agent_loop"]["results"]
    for entry in loops.values():
        assert entry["turns"] == [4]  # three tool turns and the answer
        assert entry["requests"] == [4]
    assert loops["openai-ws Client.stream (websocket)"]["connections"] == [1]
    assert [level["errors"] for level in report["concurrency"]["levels"]] == [0, 0]
    assert [level["threads_after_release"] for level in report["concurrency"]["levels"]] == [0, 0]
    assert set(report["cold_warm"]["results"]) == {
        "new connection",
        "after warm_up",
        "reused connection",
    }
    throughput = report["throughput"]
    assert throughput["server"] == "replay"
    # the replay server's ceiling was measured in every repeat, on both transports
    assert {key: len(values) for key, values in throughput["server_ceiling"].items()} == {
        "websocket": 1,
        "sse": 1,
    }
    assert all(value > 0 for values in throughput["server_ceiling"].values() for value in values)
    turns = report["turn_cost"]["results"]
    assert set(turns) == {"raw websocket-client", "openai-ws Client.stream (websocket)"}
    # the two clients take turns within each conversation, in blocks of turns
    assert report["turn_cost"]["block"] < report["turn_cost"]["turns"]
    assert f"taking turns in blocks of {report['turn_cost']['block']}" in result.stdout
    for entry in turns.values():
        assert all(value > 0 for value in entry["all"])
    for kind in ("raw", "client"):
        (run,) = report["scale"]["results"][kind]
        assert run["errors"] == 0, run["error_samples"]
        assert run["turns"] == 8 * 2  # every session did every turn
    assert "Targets" in result.stdout
    assert "the replay server's ceiling" in result.stdout
    assert "median [min-max]" in result.stdout


def test_benchmarks_run_py_is_the_same_command() -> None:
    script = Path(__file__).parent.parent / "benchmarks" / "run.py"
    result = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--quick" in result.stdout


def test_the_replay_server_writes_one_event_per_write_when_asked() -> None:
    # the per-turn CPU scenario's server: the same bytes as the one-write reply, cut at the
    # event boundaries (each piece one whole WebSocket frame), over a real socket
    from openai_ws._bench.replay import ReplayServer, upgrade, ws_frame

    server = ReplayServer(per_event=True)
    before = set(threading.enumerate())
    accepting = threading.Thread(target=server.serve_forever, daemon=True)
    accepting.start()
    try:
        request = b'{"type":"response.create","model":"m","input":"stream 3"}'
        writes = server.replies.writes(request, "ws")
        whole = server.replies.reply(request, "ws")
        assert len(writes) == server.replies.size(3)["events"] > 3
        assert len(b"".join(writes)) == len(whole)
        for piece in writes:  # a frame header, then exactly its payload
            size = piece[1] if piece[1] < 126 else int.from_bytes(piece[2:4], "big")
            assert piece[0] == 0x81
            assert len(piece) == size + (2 if piece[1] < 126 else 4)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            got = upgrade(sock)
            sock.sendall(ws_frame(request))  # unmasked: this server reads either
            while len(got) < len(whole):
                got += sock.recv(65536)
        assert len(got) == len(whole)
        assert got.count(b'"type":"response.completed"') == 1
    finally:
        server.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        server.listener.close()
        accepting.join(5)
    # the connection's thread ends once the client's socket is closed
    assert wait_for(lambda: set(threading.enumerate()) <= before)
