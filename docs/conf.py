"""Sphinx configuration for openai-ws."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from openai_ws import __version__  # noqa: E402

project = "openai-ws"
author = "openai-ws contributors"
copyright = "2026, openai-ws contributors"
release = __version__
version = ".".join(__version__.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True

myst_heading_anchors = 3

# Warn (and so, with -W, fail) on a cross-reference into the client's public surface that does
# not resolve; other unresolved references (``object`` in signatures...) are left alone.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?s)(?!openai_ws\.(Client|StreamResponse|StreamOptions)\b).*")]

# The install lines, in one place: openai-ws is not on a package index, so users install it
# from a clone of the repository. Use them in ``.. parsed-literal::`` blocks; tests/test_docs.py
# checks that README.md and the examples say the same and that the extras exist in setup.cfg.
INSTALL = {
    "install_testing": 'python3 -m pip install ".[testing]"',
    "install_flask": 'python3 -m pip install ".[testing,flask]"',
}
rst_prolog = "\n".join(f".. |{name}| replace:: {line}" for name, line in INSTALL.items())

html_theme = "furo"
html_title = f"openai-ws {release}"
