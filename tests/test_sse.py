"""SSEDecoder against the WHATWG server-sent events rules, fed whole and in every chunking."""

from __future__ import annotations

import json

import pytest

from openai_ws.sse import SSEDecoder, SSEMessage


def decode(body: bytes, chunks: list[bytes] | None = None) -> tuple[list[SSEMessage], bool]:
    decoder = SSEDecoder()
    out: list[SSEMessage] = []
    for chunk in chunks if chunks is not None else [body]:
        out.extend(decoder.feed(chunk))
    return out, decoder.finish()


def every_split(body: bytes) -> list[list[bytes]]:
    """Every way to cut *body* in two, plus one byte at a time."""
    splits = [[body[:i], body[i:]] for i in range(len(body) + 1)]
    splits.append([body[i : i + 1] for i in range(len(body))])
    return splits


# -- the examples of the WHATWG specification ("Interpreting an event stream") ------------------

SPEC_EXAMPLES: dict[str, tuple[bytes, list[SSEMessage]]] = {
    # "The following event stream ... would cause an event message ... data 'YHOO\n+2\n10'"
    "stock_ticker_multiline_data": (
        b"data: YHOO\ndata: +2\ndata: 10\n\n",
        [SSEMessage(data="YHOO\n+2\n10")],
    ),
    # comments, ids and their reset, one leading space stripped only
    "four_blocks_with_ids": (
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
        b"data:  third event\n\n",
        [
            SSEMessage(data="first event", id="1"),
            SSEMessage(data="second event", id=""),
            SSEMessage(data=" third event", id=""),
        ],
    ),
    # "data" with no colon is an empty value; the last block has no blank line: discarded
    "empty_data_fields": (
        b"data\n\ndata\ndata\n\ndata:",
        [SSEMessage(data=""), SSEMessage(data="\n")],
    ),
    # "data:test" and "data: test" are the same
    "space_after_colon_optional": (
        b"data:test\n\ndata: test\n\n",
        [SSEMessage(data="test"), SSEMessage(data="test")],
    ),
    # named events
    "event_types": (
        b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
        [
            SSEMessage(event="add", data="73857293"),
            SSEMessage(event="remove", data="2153"),
            SSEMessage(event="add", data="113411"),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(SPEC_EXAMPLES))
def test_spec_example(name: str) -> None:
    body, expected = SPEC_EXAMPLES[name]
    assert decode(body)[0] == expected


@pytest.mark.parametrize("name", sorted(SPEC_EXAMPLES))
def test_spec_example_at_every_chunk_boundary(name: str) -> None:
    body, expected = SPEC_EXAMPLES[name]
    for chunks in every_split(body):
        assert decode(body, chunks)[0] == expected, chunks


# -- line endings -------------------------------------------------------------------------------

RESPONSES_BODY = (
    b'event: response.created\ndata: {"type":"response.created","sequence_number":0}\n\n'
    b": keep-alive\n\n"
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
    b'"delta":"h\xc3\xa9llo \xe2\x80\xa8 w\xc3\xb6rld","sequence_number":1}\n\n'
    b'event: response.completed\ndata: {"type":"response.completed","sequence_number":2}\n\n'
)


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_every_line_ending_gives_the_same_events(eol: bytes) -> None:
    body = RESPONSES_BODY.replace(b"\n", eol)
    events, truncated = decode(body)
    assert [e.event for e in events] == [
        "response.created",
        "response.output_text.delta",
        "response.completed",
    ]
    assert json.loads(events[1].data)["delta"] == "h\u00e9llo \u2028 w\u00f6rld"
    assert truncated is False
    for chunks in every_split(body):
        assert decode(body, chunks)[0] == events, chunks


def test_mixed_line_endings_in_one_stream() -> None:
    events, _ = decode(b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r")
    assert events == [SSEMessage(data="a\nb\nc"), SSEMessage(data="d")]


def test_crlf_split_across_chunks_makes_no_phantom_event() -> None:
    # A decoder that treated the CR and the LF as two line ends would see "data: x", "" (dispatch)
    # and then "" again; one that dispatched twice would emit a phantom event.
    events, _ = decode(b"", [b"data: x\r", b"\n\r", b"\ndata: y\r\n\r\n"])
    assert events == [SSEMessage(data="x"), SSEMessage(data="y")]


def test_event_is_emitted_as_soon_as_its_blank_line_arrives() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [SSEMessage(data="a")]
    # with CR line ends the final CR is not held back waiting for a possible LF
    assert decoder.feed(b"data: b\r") == []
    assert decoder.feed(b"\r") == [SSEMessage(data="b")]
    assert decoder.feed(b"\n") == []  # completes the CRLF begun by that CR: no blank line
    assert decoder.finish() is False


def test_lf_after_cr_at_chunk_end_is_skipped_only_once() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []  # the LF of the CRLF: not a blank line
    assert decoder.feed(b"\n") == [SSEMessage(data="a")]


# -- the universal-newline trap -----------------------------------------------------------------

TRAP_CHARACTERS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]


@pytest.mark.parametrize("char", TRAP_CHARACTERS, ids=[f"U+{ord(c):04X}" for c in TRAP_CHARACTERS])
def test_characters_that_splitlines_would_split_on_stay_in_the_data(char: str) -> None:
    payload = json.dumps({"type": "x", "delta": f"a{char}b"}, ensure_ascii=False)
    assert char.join(["a", "b"]).splitlines() == ["a", "b"]  # the trap is real
    body = f"data: {payload}\n\n".encode()
    for chunks in every_split(body):
        events, _ = decode(body, chunks)
        assert len(events) == 1
        assert json.loads(events[0].data)["delta"] == f"a{char}b"


# -- UTF-8 --------------------------------------------------------------------------------------


def test_utf8_sequence_split_across_chunks() -> None:
    body = "data: \u00e9\u20ac\U0001f600\n\n".encode()
    for chunks in every_split(body):
        assert decode(body, chunks)[0] == [SSEMessage(data="\u00e9\u20ac\U0001f600")]


def test_invalid_utf8_becomes_replacement_character() -> None:
    events, _ = decode(b"data: a\xffb\n\n")
    assert events == [SSEMessage(data="a\ufffdb")]


def test_leading_bom_is_ignored_even_when_split() -> None:
    body = b"\xef\xbb\xbfdata: x\n\n"
    for chunks in every_split(body):
        assert decode(body, chunks)[0] == [SSEMessage(data="x")]


def test_bom_is_only_stripped_at_the_start() -> None:
    events, _ = decode(b"data: a\n\n\xef\xbb\xbfdata: b\n\n")
    # a BOM later in the stream makes the field name "\ufeffdata", which is ignored
    assert events == [SSEMessage(data="a")]


# -- fields -------------------------------------------------------------------------------------


def test_comments_and_unknown_fields_are_ignored() -> None:
    events, _ = decode(b": hi\nfoo: bar\ndata: x\n:another\n\n")
    assert events == [SSEMessage(data="x")]


def test_blank_line_without_data_dispatches_nothing_and_resets_event_type() -> None:
    events, _ = decode(b"event: ping\n\ndata: x\n\n")
    assert events == [SSEMessage(event="message", data="x")]


def test_id_containing_nul_is_ignored() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"id: 7\ndata: a\n\nid: 8\x009\ndata: b\n\n")
    assert [e.id for e in events] == ["7", "7"]
    assert decoder.last_event_id == "7"


def test_id_persists_and_last_event_id_updates_on_dispatch() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 1\n") == []
    assert decoder.last_event_id == ""  # not dispatched yet
    assert decoder.feed(b"\n") == []  # blank line: no data, but the id is committed
    assert decoder.last_event_id == "1"
    assert decoder.feed(b"data: a\n\n") == [SSEMessage(data="a", id="1")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(b"3000", 3000), (b"0", 0), (b"12a", None), (b"-5", None), (b"", None), (b" 5", None)],
)
def test_retry_accepts_ascii_digits_only(value: bytes, expected: int | None) -> None:
    decoder = SSEDecoder()
    # " 5" keeps no leading space after the one the colon rule strips: "retry:  5" -> " 5"
    events = decoder.feed(b"retry: " + value + b"\ndata: x\n\n")
    assert events == [SSEMessage(data="x", retry=expected)]
    assert decoder.retry == expected


def test_unicode_digits_are_not_a_retry() -> None:
    decoder = SSEDecoder()
    decoder.feed("retry: \u0663\n\n".encode())
    assert decoder.retry is None


def test_field_value_keeps_colons_after_the_first() -> None:
    events, _ = decode(b'data: {"a": "b:c"}\n\n')
    assert events == [SSEMessage(data='{"a": "b:c"}')]


# -- end of stream ------------------------------------------------------------------------------


def test_partial_event_at_eof_is_dropped_and_reported() -> None:
    events, truncated = decode(b"data: whole\n\ndata: cut")
    assert events == [SSEMessage(data="whole")]
    assert truncated is True


def test_event_missing_only_its_blank_line_is_dropped() -> None:
    events, truncated = decode(b"data: a\n")
    assert events == []
    assert truncated is True


def test_clean_end_reports_nothing_dropped() -> None:
    events, truncated = decode(b"data: a\n\n")
    assert events == [SSEMessage(data="a")]
    assert truncated is False


def test_finish_resets_for_reuse() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: cut")
    assert decoder.finish() is True
    assert decoder.feed(b"data: next\n\n") == [SSEMessage(data="next")]


def test_empty_feed_is_harmless() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"") == []
    assert decoder.finish() is False


def test_done_sentinel_is_an_ordinary_event() -> None:
    # The Responses API sends no [DONE]; the transport tolerates one. The decoder just decodes.
    assert decode(b"data: [DONE]\n\n")[0] == [SSEMessage(data="[DONE]")]


# -- size ---------------------------------------------------------------------------------------


def test_payload_over_16_mib_in_small_chunks() -> None:
    text = "x" * (17 * 1024 * 1024)
    body = b'data: {"delta": "' + text.encode() + b'"}\n\ndata: after\n\n'
    decoder = SSEDecoder()
    events: list[SSEMessage] = []
    step = 64 * 1024
    for start in range(0, len(body), step):
        events.extend(decoder.feed(body[start : start + step]))
    assert len(events) == 2
    assert len(json.loads(events[0].data)["delta"]) == len(text)
    assert events[1] == SSEMessage(data="after")
    assert decoder.finish() is False


def test_many_small_events_in_one_chunk() -> None:
    body = b"".join(b"data: %d\n\n" % i for i in range(20_000))
    events, _ = decode(body)
    assert [e.data for e in events] == [str(i) for i in range(20_000)]
