"""Every code sample the documentation shows is a file under docs/snippets, run here."""

from __future__ import annotations

import re
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


def test_the_observability_snippet_shows_stats_and_a_span(
    capsys: pytest.CaptureFixture[str],
) -> None:
    runpy.run_path(str(SNIPPETS[0].parent / "observability.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert out.count('"name": "chat gpt-5.2"') == 3  # one span per turn, from the console
    assert "(full request), new socket" in out
    assert "(chained), socket reused" in out
    assert "sse after falling back (ConnectError), 2 attempts" in out


def test_every_snippet_is_shown_in_the_docs() -> None:
    text = "".join(p.read_text("utf-8") for p in (SNIPPETS[0].parent.parent).rglob("*.rst"))
    for path in SNIPPETS:
        assert f"snippets/{path.name}" in text, f"{path.name} is not included anywhere"


# -- install lines: openai-ws is installed from a clone, never "pip install openai-ws[...]" -----

ROOT = Path(__file__).parent.parent
#: Where a user reads an install line: README, the docs, the examples, the package's messages.
USER_FACING = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").rglob("*.rst")),
    *sorted((ROOT / "docs").rglob("*.py")),
    *sorted((ROOT / "examples").rglob("*.py")),
    *sorted((ROOT / "examples").rglob("*.md")),
    *sorted((ROOT / "openai_ws").rglob("*.py")),
]


def install_lines() -> dict[str, str]:
    """The install lines docs/conf.py defines (the one place they live)."""
    namespace = runpy.run_path(str(ROOT / "docs" / "conf.py"))
    lines: dict[str, str] = namespace["INSTALL"]
    assert f"|install_testing| replace:: {lines['install_testing']}" in namespace["rst_prolog"]
    return lines


def declared_extras() -> set[str]:
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return set(config["options.extras_require"])


def test_no_install_line_assumes_a_package_index() -> None:
    bad = re.compile(r"pip install\s+[\"']?openai-ws\b")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in USER_FACING
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if bad.search(line)
    ]
    assert offenders == [], "openai-ws is not on an index; install from a clone: " + str(offenders)


def test_every_install_line_names_extras_that_exist() -> None:
    extras = declared_extras()
    found = 0
    for path in USER_FACING:
        for match in re.finditer(r"pip install [^\n]*?\"\.\[([^\]]+)\]\"", path.read_text("utf-8")):
            found += 1
            named = {e.strip() for e in match.group(1).split(",")}
            assert named <= extras, f"{path.relative_to(ROOT)}: unknown extra in {match.group(0)}"
    assert found >= 5


def test_readme_and_examples_use_the_docs_install_lines() -> None:
    lines = install_lines()
    readme = (ROOT / "README.md").read_text("utf-8")
    assert f"{lines['install_testing']} && openai-ws demo" in readme
    flask_readme = (ROOT / "examples" / "flask_chat" / "README.md").read_text("utf-8")
    assert lines["install_flask"] in flask_readme
    assert lines["install_flask"] in (ROOT / "examples" / "flask_chat" / "app.py").read_text()
    # the docs use the substitutions rather than repeating the lines
    docs = "".join(p.read_text("utf-8") for p in (ROOT / "docs").rglob("*.rst"))
    assert "|install_testing|" in docs
    assert "|install_flask|" in docs
