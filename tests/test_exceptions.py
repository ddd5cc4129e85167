"""The exception tree, its attributes, and that no key ever shows."""

from __future__ import annotations

import pickle

import pytest

from openai_ws import _redact, exceptions
from openai_ws.exceptions import (
    APIError,
    AuthenticationError,
    ConcurrencyError,
    ConfigurationError,
    ConnectError,
    ConnectionClosed,
    ConnectionLimitReached,
    ContextLengthExceeded,
    OpenAIWSError,
    PreviousResponseNotFound,
    ProtocolError,
    RateLimitError,
    StreamTimeout,
    TransportError,
    api_error_from_fields,
)

TREE = {
    ConfigurationError: (OpenAIWSError, ValueError),
    TransportError: (OpenAIWSError,),
    ConnectError: (TransportError, ConnectionError),
    ConnectionClosed: (TransportError,),
    StreamTimeout: (TransportError, TimeoutError),
    ProtocolError: (OpenAIWSError,),
    APIError: (OpenAIWSError,),
    AuthenticationError: (APIError,),
    RateLimitError: (APIError,),
    PreviousResponseNotFound: (APIError,),
    ConnectionLimitReached: (APIError,),
    ContextLengthExceeded: (APIError,),
    ConcurrencyError: (OpenAIWSError, RuntimeError),
}


@pytest.mark.parametrize("cls", list(TREE), ids=lambda c: c.__name__)
def test_tree(cls: type[Exception]) -> None:
    for parent in TREE[cls]:
        assert issubclass(cls, parent)


def test_docstring_draws_every_class() -> None:
    doc = exceptions.__doc__ or ""
    for cls in [OpenAIWSError, *TREE]:
        assert cls.__name__ in doc
    assert set(exceptions.__all__) >= {c.__name__ for c in TREE}


def test_connect_error_attributes() -> None:
    error = ConnectError(
        "upgrade refused",
        status_code=426,
        headers={"Upgrade-Required": "x", "Authorization": "Bearer sk-live-1234567890"},
    )
    assert error.status_code == 426
    assert error.headers["Authorization"] == "<redacted>"
    assert error.retryable
    assert isinstance(error, OSError)
    assert str(error) == "upgrade refused"


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        (1000, False),
        (1001, True),
        (1005, True),
        (1006, True),
        (1008, False),
        (1011, True),
        (1012, True),
        (1013, True),
        (1015, True),
        (4000, False),
        (None, True),
    ],
)
def test_connection_closed_retryable_by_code(code: int | None, retryable: bool) -> None:
    error = ConnectionClosed("closed", code=code, reason="bye")
    assert (error.code, error.reason, error.retryable) == (code, "bye", retryable)


def test_stream_timeout() -> None:
    error = StreamTimeout("no event in 5s", timeout=5.0, phase="first_event")
    assert isinstance(error, TimeoutError)
    assert (error.timeout, error.phase, error.retryable) == (5.0, "first_event", True)


@pytest.mark.parametrize(
    ("fields", "cls"),
    [
        ({"code": "invalid_api_key"}, AuthenticationError),
        ({"status_code": 401}, AuthenticationError),
        ({"code": "rate_limit_exceeded"}, RateLimitError),
        ({"status_code": 429}, RateLimitError),
        ({"code": "insufficient_quota", "status_code": 429}, RateLimitError),
        ({"code": "previous_response_not_found", "status_code": 400}, PreviousResponseNotFound),
        ({"code": "websocket_connection_limit_reached"}, ConnectionLimitReached),
        ({"code": "context_length_exceeded"}, ContextLengthExceeded),
        ({"code": "server_error", "status_code": 500}, APIError),
        ({}, APIError),
    ],
)
def test_api_error_mapping(fields: dict[str, object], cls: type[APIError]) -> None:
    error = api_error_from_fields(message="m", **fields)  # type: ignore[arg-type]
    assert type(error) is cls


@pytest.mark.parametrize(
    ("fields", "retryable"),
    [
        ({"code": "rate_limit_exceeded"}, True),
        ({"status_code": 429}, True),
        ({"code": "insufficient_quota", "status_code": 429}, False),
        ({"code": "server_error"}, True),
        ({"status_code": 503}, True),
        ({"code": "context_length_exceeded", "status_code": 400}, False),
        ({"code": "invalid_api_key", "status_code": 401}, False),
        ({"status_code": 400}, False),
        ({}, False),
    ],
)
def test_api_error_retryable(fields: dict[str, object], retryable: bool) -> None:
    assert api_error_from_fields(message="m", **fields).retryable is retryable  # type: ignore[arg-type]


def test_api_error_text() -> None:
    error = api_error_from_fields(
        message="Previous response not found.",
        code="previous_response_not_found",
        type="invalid_request_error",
        param="previous_response_id",
        status_code=400,
        request_id="req_9",
    )
    assert str(error) == (
        "[previous_response_not_found, status 400] Previous response not found. "
        "(param: previous_response_id) [request id: req_9]"
    )
    assert repr(error) == (
        "PreviousResponseNotFound('Previous response not found.', "
        "code='previous_response_not_found', status_code=400)"
    )
    assert error.type == "invalid_request_error"
    assert str(api_error_from_fields(message=None)) == "the API returned an error without a message"
    assert (
        str(api_error_from_fields(message="", code="server_error")) == "[server_error] server_error"
    )


def test_rate_limit_retry_after() -> None:
    error = api_error_from_fields(message="slow down", status_code=429, retry_after=3.0)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 3.0


@pytest.mark.parametrize(
    "error",
    [
        ConnectError("x", status_code=426, headers={"a": "b"}),
        ConnectionClosed("x", code=1006, reason="r"),
        StreamTimeout("x", timeout=1.0, phase="idle"),
        api_error_from_fields(
            message="m",
            code="rate_limit_exceeded",
            status_code=429,
            retry_after=2.0,
            request_id="r",
        ),
        ConcurrencyError("two consumers"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_exceptions_pickle_with_their_attributes(error: OpenAIWSError) -> None:
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error)
    assert clone.__dict__ == error.__dict__
    assert str(clone) == str(error)


SECRET = "sk-proj-S3cr3tValue0123456789abcdef"


def test_registered_secret_never_appears() -> None:
    _redact.register_secret(SECRET)
    errors = [
        OpenAIWSError(f"bad key {SECRET}"),
        APIError(
            f"Incorrect API key provided: {SECRET}", code="invalid_api_key", headers={"x": SECRET}
        ),
        ConnectError("refused", headers={"Authorization": f"Bearer {SECRET}"}),
        ConnectionClosed("closed", reason=SECRET),
    ]
    for error in errors:
        for text in (str(error), repr(error), error.args[0], repr(error.__dict__)):
            assert SECRET not in text


def test_key_shapes_are_masked_even_when_unregistered() -> None:
    text = _redact.redact("key sk-abcdef123456 and header Authorization: Bearer abc.def-123456")
    assert "sk-abcdef123456" not in text
    assert "abc.def-123456" not in text
    assert text == "key <redacted> and header Authorization: Bearer <redacted>"


def test_short_secrets_are_not_registered() -> None:
    _redact.register_secret("abc")
    _redact.register_secret(None)
    assert _redact.redact("abc") == "abc"


def test_redact_headers() -> None:
    assert _redact.redact_headers(None) == {}
    assert _redact.redact_headers({"Cookie": "c", "X-Request-Id": "req_1", "api-key": "k"}) == {
        "Cookie": "<redacted>",
        "X-Request-Id": "req_1",
        "api-key": "<redacted>",
    }
