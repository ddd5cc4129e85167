"""The public surface: exports, typing marker, version."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import openai_ws

PACKAGE = Path(openai_ws.__file__).parent
PUBLIC_MODULES = ["chain", "convert", "exceptions", "history", "messages", "protocol", "sse"]
IO_MODULES = ["transports", "transports.websocket", "transports.http"]


def test_every_export_exists() -> None:
    for name in openai_ws.__all__:
        assert hasattr(openai_ws, name), name


TESTING_MODULES = [
    "testing",
    "testing.engine",
    "testing.faults",
    "testing.models",
    "testing.server",
]


def test_public_modules_declare_all_and_export_what_they_list() -> None:
    for module_name in PUBLIC_MODULES + IO_MODULES + TESTING_MODULES:
        module = importlib.import_module(f"openai_ws.{module_name}")
        assert module.__all__, module_name
        for name in module.__all__:
            assert hasattr(module, name), f"{module_name}.{name}"


def test_init_only_reexports() -> None:
    tree = ast.parse((PACKAGE / "__init__.py").read_text("utf-8"))
    for node in tree.body:
        assert isinstance(node, (ast.Expr, ast.ImportFrom, ast.Import, ast.Assign)), ast.dump(node)
        if isinstance(node, ast.Assign):
            assert [t.id for t in node.targets if isinstance(t, ast.Name)] == ["__all__"]


def test_api_md_names_are_exported() -> None:
    # names ../shared/API.md fixes for the core (the rest arrive with the transports and client)
    for name in [
        "UserMessage",
        "AssistantMessage",
        "ToolResultMessage",
        "Tool",
        "Context",
        "Usage",
        "OpenAIWSError",
        "ConfigurationError",
        "TransportError",
        "ConnectError",
        "ConnectionClosed",
        "StreamTimeout",
        "ProtocolError",
        "APIError",
        "AuthenticationError",
        "RateLimitError",
        "PreviousResponseNotFound",
        "ConnectionLimitReached",
        "ContextLengthExceeded",
        "ConcurrencyError",
        "CustomTool",
        "HostedTool",
        "ServerItem",
        "convert_tools",
        "convert_messages_to_input_items",
        "build_assistant_message_from_response",
        "WebSocketConnection",
        "SSETransport",
    ]:
        assert name in openai_ws.__all__, name


def test_typed_marker_and_version() -> None:
    assert (PACKAGE / "py.typed").exists()
    assert openai_ws.__version__.count(".") >= 2


def test_core_modules_are_sans_io() -> None:
    """The core imports no socket, requests or websocket code."""
    forbidden = {"socket", "ssl", "requests", "websocket", "websockets", "threading", "http"}
    for module_name in [*PUBLIC_MODULES, "_redact"]:
        tree = ast.parse((PACKAGE / f"{module_name}.py").read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            bad = roots & forbidden
            if module_name == "_redact":
                bad -= {"threading"}  # a lock guards the registry of secrets
            assert not bad, f"{module_name} imports {bad}"


def test_project_urls_point_at_the_repository() -> None:
    import configparser

    config = configparser.ConfigParser()
    config.read(PACKAGE.parent / "setup.cfg")
    metadata = config["metadata"]
    urls = dict(
        (part.strip() for part in line.split("=", 1))
        for line in metadata["project_urls"].strip().splitlines()
    )
    assert {"Source", "Documentation", "Changelog", "Issues"} <= set(urls)
    repository = metadata["url"]
    assert repository == "https://github.com/openai-ws/openai-ws"
    assert all(url.startswith(repository) for url in urls.values())
