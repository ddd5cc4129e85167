"""The WSGI app gunicorn serves in ``test_gunicorn.py``: the Flask example, made from the
environment (``from_environment()``), after the master process ran one turn on the session of
every chat the test will use, so that the workers are forked from a process with open sockets
and running reader threads (the situation ``--preload`` creates in a real deployment).

Each response carries ``X-Worker-Pid`` so that the test can tell the workers apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from openai_ws import Client, Context, UserMessage
from tests.conftest import load_flask_example

COOKIE_PREFIX = "chat-"


def _preload(client: Client, chats: int) -> None:
    """One turn on each chat's session, here in the master, before the fork."""
    for number in range(chats):
        context = Context(messages=[UserMessage(f"preload {number}")])
        message = client.stream("gpt-5.2", context, session_id=f"{COOKIE_PREFIX}{number}").result()
        assert message.text == f"You said: preload {number}", message.text


def _with_worker_pid(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            return start_response(status, [*headers, ("X-Worker-Pid", str(os.getpid()))], *args)

        return app(environ, start)

    return wrapped


flask_app = load_flask_example().from_environment()
_preload(flask_app.extensions["openai_ws"], int(os.environ.get("DEPLOY_TEST_CHATS", "0")))
application = _with_worker_pid(flask_app)
