"""The check that the ``testing`` extra is installed; ``openai_ws.testing`` imports it first."""

from __future__ import annotations

__all__ = ["INSTALL_HINT"]

#: What to run when the ``testing`` extra is missing (the CLI shows it too).
INSTALL_HINT = (
    'openai_ws.testing (the built-in emulator) needs the "testing" extra, which installs '
    'websockets: run python3 -m pip install ".[testing]" in a clone of openai-ws '
    '(or python3 -m pip install "websockets>=13")'
)

try:
    import websockets as _websockets  # noqa: F401 (only to check the extra is installed)
except ImportError as exc:
    raise ImportError(INSTALL_HINT, name=exc.name) from exc
