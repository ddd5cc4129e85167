"""Every code sample the documentation shows is a file under docs/snippets, run here."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

SNIPPETS = sorted((Path(__file__).parent.parent / "docs" / "snippets").glob("*.py"))


def test_there_are_snippets() -> None:
    assert SNIPPETS


@pytest.mark.parametrize("path", SNIPPETS, ids=lambda p: p.name)
def test_snippet_runs(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(path), run_name="__main__")
    assert capsys.readouterr().out.strip(), "a documented example should show its result"


def test_every_snippet_is_shown_in_the_docs() -> None:
    text = "".join(p.read_text("utf-8") for p in (SNIPPETS[0].parent.parent).rglob("*.rst"))
    for path in SNIPPETS:
        assert f"snippets/{path.name}" in text, f"{path.name} is not included anywhere"
