"""tox's inline plugin for this project: find the CPythons that pyenv installed.

pyenv puts every interpreter in its own prefix (``$(pyenv root)/versions/3.12.1/bin``) and its
shims answer only for the selected version, so plain ``tox`` finds ``py311`` and skips the
others. This hook hands every ``$(pyenv root)/versions/3.X.Y/bin/python3`` to tox's own
discovery, exactly as ``tox --discover PATH...`` would; tox still picks, for each environment,
the interpreter that matches it. Without pyenv it does nothing.

(The virtualenv-pyenv and tox-pyenv-redux plugins would do this, but with tox 4.67 they fail on
the ``VIRTUALENV_PYTHON="<0"`` that tox sets, so every environment is skipped.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tox.plugin import impl

_CPYTHON = re.compile(r"3\.\d+\.\d+")


def _pyenv_root() -> Path | None:
    root = os.environ.get("PYENV_ROOT")
    if not root and (pyenv := shutil.which("pyenv")):
        try:
            root = subprocess.run(  # noqa: S603 (pyenv, found on PATH)
                [pyenv, "root"], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    if not root:
        default = Path.home() / ".pyenv"
        return default if default.is_dir() else None
    return Path(root)


def pyenv_pythons() -> list[str]:
    """The ``python3`` of every CPython 3.X.Y that pyenv installed, newest first."""
    root = _pyenv_root()
    if root is None or not (root / "versions").is_dir():
        return []
    found = []
    for version in (root / "versions").iterdir():
        python = version / "bin" / "python3"
        if _CPYTHON.fullmatch(version.name) and python.exists():
            found.append((tuple(int(p) for p in version.name.split(".")), str(python)))
    return [python for _, python in sorted(found, reverse=True)]


@impl
def tox_add_core_config(core_conf: Any, state: Any) -> None:
    options = state.conf.options
    given = list(getattr(options, "discover", None) or [])
    options.discover = given + [p for p in pyenv_pythons() if p not in given]
