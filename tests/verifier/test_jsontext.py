"""Reading JSON that someone else wrote: nesting is bounded before the standard library's parser recurses."""

from __future__ import annotations

import json
import sys

import pytest

from verifier import jsontext
from verifier.errors import JsonDuplicateKeyError, JsonNestingError


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("5", 0),
        ('"[[[{"', 0),
        ('[1, {"a": [2, "]]][[[\\"["]}]', 3),
        ("[" * 256 + "]" * 256, 256),
    ],
)
def test_depth_counts_nesting_not_brackets_in_strings(text: str, want: int) -> None:
    assert jsontext.depth(text) == want
    assert jsontext.loads(text) == json.loads(text)


_TEXT = '{"title": "户籍人口基本信息", "fields": [["a"]]}'


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_bytes_are_utf_8_and_a_byte_order_mark_is_ignored(encoding: str) -> None:
    assert jsontext.loads(_TEXT.encode(encoding)) == json.loads(_TEXT)
    assert jsontext.loads(_TEXT.encode(encoding).decode("utf-8")) == json.loads(_TEXT)  # a file read as text


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-16-le"])
def test_bytes_in_another_encoding_are_a_value_error(encoding: str) -> None:
    """The standard library reads UTF-16 and -32 too; the API refuses them, and so does every dxl reader."""
    with pytest.raises(ValueError, match="utf-8"):
        jsontext.loads(_TEXT.encode(encoding))


@pytest.mark.parametrize(
    "text", ["[" * 257 + "]" * 257, '{"a":' * 300_000, "[" * 300_000], ids=["257", "objects", "arrays"]
)
def test_deeper_nesting_is_a_value_error_whatever_the_recursion_limit(text: str) -> None:
    """Under the limit py_ecc sets when eth-account is imported (100,000, as in the API and in some dxl
    commands), the standard library's parser given 300,000 levels overflowed the C stack (SIGSEGV)."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        with pytest.raises(JsonNestingError, match="more than 256 levels") as raised:
            jsontext.loads(text)
    finally:
        sys.setrecursionlimit(before)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("text", "key"),
    [('{"root": "0x11", "root": "0x22"}', "root"), ('[{"a": 1}, {"b": {"c": 1, "c": 1}}]', "c")],
)
def test_an_object_naming_a_key_twice_is_a_value_error(text: str, key: str) -> None:
    """The standard library keeps the last value, a reader may show the first: a document holds one."""
    with pytest.raises(JsonDuplicateKeyError, match=f"the key '{key}' twice") as raised:
        jsontext.loads(text)
    assert isinstance(raised.value, ValueError)
    assert jsontext.loads(text, unique_keys=False) == json.loads(text)
