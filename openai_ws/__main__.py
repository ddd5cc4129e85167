"""``python -m openai_ws``: the ``openai-ws`` command."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
