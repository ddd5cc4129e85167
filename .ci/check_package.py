"""Check the built distributions (tox -e package).

* The wheel carries py.typed, the console script, one version and the project URLs.
* Installed alone (no extras) in a fresh virtual environment, its command runs, and the parts
  that need the ``testing`` extra say what to install instead of showing a traceback.
* The sdist is complete: it holds every file of the repository's tests, docs, examples and
  benchmarks, and the tests run from the unpacked sdist (a representative set by default;
  ``--all-tests`` runs them all).
"""

from __future__ import annotations

import argparse
import configparser
import email
import os
import shutil
import subprocess
import tarfile
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What the sdist must carry besides the package: everything the tests read.
SHIPPED_DIRS = ("tests", "docs", "examples", "benchmarks")
SHIPPED_FILES = (
    "README.md",
    "CHANGELOG.md",
    "LICENSE",
    "MANIFEST.in",
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
    "tox.ini",
    "toxfile.py",
)
#: Run from the unpacked sdist: conftest, the test subpackages, fixtures, docs, examples, README.
SDIST_TESTS = (
    "tests/test_package.py",
    "tests/test_readme.py",
    "tests/test_docs.py",
    "tests/test_examples.py",
    "tests/test_recorded.py",
    "tests/test_sse.py",
    "tests/testing/test_server.py",
    "tests/test_bench.py::test_benchmarks_run_py_is_the_same_command",
)
INSTALL_LINE = 'python3 -m pip install ".[testing]"'


def run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    print("$", " ".join(str(a) for a in args), flush=True)
    return subprocess.run(
        [str(a) for a in args],
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


def repository_files() -> list[str]:
    """The repository's files the sdist must ship (tracked files when this is a git checkout)."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        listed = run("git", "-C", ROOT, "ls-files", *SHIPPED_DIRS, capture_output=True, check=True)
        names = [n for n in listed.stdout.splitlines() if (ROOT / n).is_file()]
    else:
        names = [
            str(p.relative_to(ROOT))
            for d in SHIPPED_DIRS
            for p in (ROOT / d).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        ]
    assert names, "no test, doc or example files found"
    return [*SHIPPED_FILES, *names]


def check_wheel(wheel: Path) -> str:
    version = wheel.name.split("-")[1]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "openai_ws/py.typed" in names, "py.typed missing from the wheel"
        assert "openai_ws/testing/__init__.py" in names
        assert not any(n.startswith("tests/") for n in names), "tests/ leaked into the wheel"
        info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = configparser.ConfigParser()
        entry_points.read_string(archive.read(info).decode())
        assert entry_points["console_scripts"]["openai-ws"] == "openai_ws.cli:main"
        version_file = archive.read("openai_ws/_version.py").decode()
        assert f'__version__ = "{version}"' in version_file, (
            "the wheel's name and _version.py disagree"
        )
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(metadata_name))
        urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
        assert {"Source", "Documentation", "Changelog", "Issues"} <= set(urls), urls
        assert all(u.startswith("https://github.com/openai-ws/openai-ws") for u in urls.values())
        extras = set(metadata.get_all("Provides-Extra") or [])
        assert {"testing", "flask", "test"} <= extras, extras
    return version


def check_sdist_contents(sdist: Path) -> None:
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        shipped = {n.removeprefix(f"{top}/") for n in archive.getnames()}
    missing = [n for n in repository_files() if n not in shipped]
    assert not missing, f"the sdist lacks {len(missing)} file(s): {missing[:20]}"
    junk = [n for n in shipped if "__pycache__" in n or n.endswith(".pyc")]
    assert not junk, junk


def check_install_and_sdist_tests(wheel: Path, sdist: Path, version: str, all_tests: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = Path(tmp) / "venv"
        venv.EnvBuilder(with_pip=True).create(env)
        python = env / "bin" / "python"
        command = env / "bin" / "openai-ws"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTHON"))}

        # the wheel alone: the command works, the emulator says which extra it needs
        run(python, "-m", "pip", "install", "--quiet", wheel, check=True)
        out = run(command, "--version", check=True, capture_output=True, env=clean)
        assert out.stdout.strip() == f"openai-ws {version}", out.stdout
        chat = run(command, "chat", "--emulator", capture_output=True, env=clean)
        assert chat.returncode == 2, chat
        assert INSTALL_LINE in chat.stderr, chat.stderr
        assert "Traceback" not in chat.stderr, chat.stderr
        imported = run(python, "-c", "import openai_ws.testing", capture_output=True, env=clean)
        assert imported.returncode == 1, imported
        assert INSTALL_LINE in imported.stderr, imported.stderr

        # the sdist, unpacked: installs with the test extra, and its tests run
        with tarfile.open(sdist) as archive:
            if hasattr(tarfile, "data_filter"):  # 3.12, and 3.10.12/3.11.4 on
                archive.extractall(tmp, filter="data")
            else:  # our own archive, just built
                archive.extractall(tmp)  # noqa: S202
        source = next(p for p in Path(tmp).iterdir() if p.name.startswith("openai_ws-"))
        run(python, "-m", "pip", "install", "--quiet", f"{source}[test]", check=True)
        run(python, "-c", "import openai_ws.testing", check=True, env=clean)
        tests = () if all_tests else SDIST_TESTS
        result = run(
            python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, cwd=source, env=clean
        )
        assert result.returncode == 0, "the tests failed when run from the unpacked sdist"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dist", type=Path, help="the folder with the built sdist and wheel")
    parser.add_argument("--all-tests", action="store_true", help="run every test from the sdist")
    args = parser.parse_args(argv)
    wheels = sorted(args.dist.glob("openai_ws-*.whl"))
    sdists = sorted(args.dist.glob("openai_ws-*.tar.gz"))
    assert len(wheels) == 1, wheels
    assert len(sdists) == 1, sdists
    version = check_wheel(wheels[0])
    check_sdist_contents(sdists[0])
    check_install_and_sdist_tests(wheels[0], sdists[0], version, args.all_tests)
    print(f"ok: {wheels[0].name} and {sdists[0].name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
