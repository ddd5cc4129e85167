"""Every example runs, against the emulator, and says what it did."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted(p for p in (Path(__file__).parent.parent / "examples").glob("*.py"))


def test_there_are_examples() -> None:
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip()


def test_agent_loop_example_runs_several_turns() -> None:
    result = subprocess.run(
        [sys.executable, str(Path(__file__).parent.parent / "examples" / "agent_loop.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = result.stdout
    assert "calling get_weather" in out
    assert "Paris: 18C, sunny" in out
    assert "[4 turns; the last over websocket]" in out


def test_flask_example_without_flask_says_what_to_install() -> None:
    app = Path(__file__).parent.parent / "examples" / "flask_chat" / "app.py"
    code = "import runpy, sys\nsys.modules['flask'] = None\nrunpy.run_path(sys.argv[1])\n"
    result = subprocess.run(
        [sys.executable, "-c", code, str(app)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert 'python3 -m pip install ".[testing,flask]"' in result.stderr
    assert (app.parent / "README.md").is_file()
