"""SSEDecoder reads chunks with LF line ends only on a fast path; the same stream with CRLF line
ends goes the general way. Both must give the same events, whatever the chunking."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from openai_ws.sse import SSEDecoder, SSEMessage

text = st.text(
    alphabet=st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=8
)
lines = st.one_of(
    st.just(""),
    st.builds(lambda v: f"data: {v}", text),
    st.builds(lambda v: f"data:{v}", text),
    st.builds(lambda v: f"event: {v}", text),
    st.builds(lambda v: f"id: {v}", text),
    st.builds(lambda v: f"retry: {v}", st.sampled_from(["10", "x", ""])),
    st.builds(lambda v: f": {v}", text),
    st.builds(lambda v: f"other: {v}", text),
    st.just("data"),
)


def decode(body: bytes, cuts: list[int]) -> tuple[list[object], str, int | None, bool]:
    decoder = SSEDecoder()
    messages: list[object] = []
    previous = 0
    for cut in sorted({min(c, len(body)) for c in cuts} | {len(body)}):
        messages += decoder.feed(body[previous:cut])
        previous = cut
    last_id, retry = decoder.last_event_id, decoder.retry
    return messages, last_id, retry, decoder.finish()


@settings(max_examples=300, deadline=None)
@given(
    stream=st.lists(lines, max_size=14),
    bom=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=6),
)
def test_lf_and_crlf_streams_decode_alike(stream: list[str], bom: bool, cuts: list[int]) -> None:
    head = "\ufeff" if bom else ""
    lf = (head + "".join(line + "\n" for line in stream)).encode()
    crlf = (head + "".join(line + "\r\n" for line in stream)).encode()
    expected = decode(crlf, [])
    assert decode(lf, []) == expected
    # the same cuts, moved to the matching places of the LF stream
    assert decode(lf, cuts) == decode(lf, [])
    assert decode(crlf, cuts) == expected


def decode_data(body: bytes, cuts: list[int]) -> tuple[list[object], str, int | None, bool]:
    """As :func:`decode`, with the transports' ``_feed_data`` (the events' data only)."""
    decoder = SSEDecoder()
    data: list[object] = []
    previous = 0
    for cut in sorted({min(c, len(body)) for c in cuts} | {len(body)}):
        data += decoder._feed_data(body[previous:cut])
        previous = cut
    last_id, retry = decoder.last_event_id, decoder.retry
    return data, last_id, retry, decoder.finish()


@settings(max_examples=300, deadline=None)
@given(
    stream=st.lists(lines, max_size=14),
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=6),
)
def test_the_data_only_feed_gives_the_data_of_the_same_events(
    stream: list[str], eol: str, cuts: list[int]
) -> None:
    body = "".join(line + eol for line in stream).encode()
    messages, last_id, retry, truncated = decode(body, cuts)
    expected = ([m.data for m in messages], last_id, retry, truncated)  # type: ignore[attr-defined]
    assert decode_data(body, cuts) == expected
    # and the same decoder goes on making whole messages with feed
    decoder = SSEDecoder()
    assert decoder._feed_data(body) == [m.data for m in decode(body, [])[0]]  # type: ignore[attr-defined]
    decoder.finish()
    (message,) = decoder.feed(b"data: x\n\n")
    assert isinstance(message, SSEMessage)
    assert message.data == "x"
