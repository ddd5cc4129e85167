"""The benchmark harness runs end to end (tiny sizes); speed itself is measured by
``openai-ws bench``, never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


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
