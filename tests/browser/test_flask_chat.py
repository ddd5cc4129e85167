"""The Flask chat example in a real browser: Debian's Chromium, driven by Playwright, against the
app on 127.0.0.1 backed by the emulator. Run with ``tox -e browser`` (marker ``browser``)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_flask_example

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parent.parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# records every text the last assistant bubble shows, to prove the answer arrives piece by piece
RECORDER = """
window.__answers = [];
new MutationObserver(() => {
  const bubbles = document.querySelectorAll('.turn.assistant');
  if (bubbles.length) window.__answers.push(bubbles[bubbles.length - 1].textContent);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Debian's chromium is needed for the browser tests: apt-get install chromium")
    return path


@pytest.fixture
def site() -> Iterator[tuple[str, Any]]:
    from werkzeug.serving import make_server

    from openai_ws import Client
    from openai_ws.testing import FakeResponsesServer, LatencyModel

    latency = LatencyModel(time_to_first_event=0.02, per_uncached_token=0.0, tokens_per_second=60.0)
    with (
        FakeResponsesServer(latency=latency, api_key="sk-browser-test") as emulator,
        Client(api_key="sk-browser-test", base_url=emulator.http_base_url) as client,
    ):
        app = load_flask_example().create_app(client)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="flask-chat")
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}/", emulator
        finally:
            server.shutdown()
            thread.join(10)


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield instance
        finally:
            instance.close()


def ask(page: Any, question: str) -> str:
    page.fill("#question", question)
    page.press("#question", "Enter")
    page.wait_for_function(
        "document.getElementById('status').textContent.startsWith('served over')", timeout=20_000
    )
    answers = page.query_selector_all(".turn.assistant")
    text: str = answers[-1].text_content()
    page.evaluate("document.getElementById('status').textContent = ''")
    return text


def test_chat_streams_uses_tools_and_keeps_the_session(site: tuple[str, Any], browser: Any) -> None:
    url, emulator = site
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script(RECORDER)
    page.goto(url)
    answer = ask(page, "What's the weather in Paris and Rome?")
    assert (
        answer == "Here is what I found. Paris: 18C, sunny; Rome: 24C, clear."
    )  # the tools' results
    seen = page.evaluate("window.__answers")
    partial = [text for text in seen if text and text != answer]
    assert len(set(partial)) >= 3, seen  # the answer appeared piece by piece
    assert all(answer.startswith(text) for text in partial)
    tools = [t.text_content() for t in page.query_selector_all(".turn.tool")]
    assert 'calling get_weather({"city":"Paris"})' in tools
    assert "get_weather returned 24C, clear" in tools
    assert page.text_content("#status") == ""
    page.screenshot(path=str(ARTIFACTS / "flask_chat_answer.png"), full_page=True)

    page.reload()  # the conversation is still there, and goes on in the same session
    history = [t.text_content() for t in page.query_selector_all(".turn")]
    assert history == ["What's the weather in Paris and Rome?", answer]
    follow_up = ask(page, "Weather in Oslo?")
    assert follow_up == "Here is what I found. Oslo: 6C, rain."
    page.screenshot(path=str(ARTIFACTS / "flask_chat_after_reload.png"), full_page=True)
    requests = [r for r in emulator.requests if r.transport == "websocket"]
    assert "previous_response_id" not in requests[0].body
    assert all("previous_response_id" in r.body for r in requests[1:])  # chained across the reload
    assert len({r.connection for r in requests}) == 1
    context.close()


def test_many_browsers_at_once(site: tuple[str, Any], browser: Any) -> None:
    url, emulator = site
    cities = ["Paris", "Rome", "Oslo", "Tokyo"]
    contexts = [browser.new_context() for _ in cities]
    pages = [c.new_page() for c in contexts]
    for page in pages:
        page.goto(url)
    for page, city in zip(pages, cities, strict=True):  # all four questions in flight together
        page.fill("#question", f"Weather in {city}?")
        page.press("#question", "Enter")
    weather = {
        "Paris": "18C, sunny",
        "Rome": "24C, clear",
        "Oslo": "6C, rain",
        "Tokyo": "15C, cloudy",
    }
    for page, city in zip(pages, cities, strict=True):
        page.wait_for_function(
            "document.getElementById('status').textContent.startsWith('served over')",
            timeout=20_000,
        )
        assert (
            page.query_selector_all(".turn.assistant")[-1].text_content()
            == f"Here is what I found. {city}: {weather[city]}."
        )
    pages[0].screenshot(path=str(ARTIFACTS / "flask_chat_parallel.png"))
    sockets = {r.connection for r in emulator.requests}
    assert len(sockets) == len(cities)  # one session, one socket, per browser
    for c in contexts:
        c.close()
