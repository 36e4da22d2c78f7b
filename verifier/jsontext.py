"""JSON text written by someone else (a manifest, a receipt's answer, an audit report), read with the standard
library's parser once its nesting is known to be shallow.

That parser recurses once per level of nesting, on the C stack as well as the interpreter's. Under the default
recursion limit a file of ``[[[[…`` ended ``dxl verify`` with a ``RecursionError`` traceback and exit 1 (the
status of a payload that does not match); in a process that imported ``py_ecc`` (through eth-account), which
raises the limit to 100,000, the same file overflowed the C stack and killed the process with SIGSEGV. So the
depth is counted first, without recursion, and text nested deeper than any dxl document is refused as
malformed JSON is. So is an object that names a key twice (:class:`verifier.errors.JsonDuplicateKeyError`):
no dxl document holds one, and the value a check reads would not be the one every reader shows.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from verifier.errors import JsonDuplicateKeyError, JsonNestingError

#: Deeper than any document dxl writes or reads (a manifest nests 3 levels, an audit report 5), and far below
#: what the parser takes under the default recursion limit of 1,000.
MAX_DEPTH = 256

_BOM = "\ufeff"

#: A JSON string, escapes included: its brackets are text, not nesting.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text`` (0 for a scalar), counted without recursion. Brackets
    inside strings do not count; of text that is not JSON the count says only how deep it might nest."""
    steps = [1 if b in "[{" else -1 for b in _BRACKET.findall(_STRING.sub("", text))]
    return max(accumulate(steps), default=0)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise JsonDuplicateKeyError(key)
        obj[key] = value
    return obj


def loads(text: str | bytes, *, unique_keys: bool = True) -> Any:
    """:func:`json.loads`, for text nested at most :data:`MAX_DEPTH` levels and, unless ``unique_keys`` is
    False (a node's answers, read by the thousand, whose keys the check does not show anyone), without an
    object naming a key twice.

    Raises:
        ValueError: the text is not JSON (:class:`json.JSONDecodeError`; bytes not UTF-8:
            :class:`UnicodeDecodeError`), nests
            deeper than :data:`MAX_DEPTH` (:class:`verifier.errors.JsonNestingError`), or names a key twice
            in one object (:class:`verifier.errors.JsonDuplicateKeyError`).
    """
    if isinstance(text, bytes):
        # UTF-8 only, as RFC 8259 asks of JSON exchanged between systems and as the API reads a body: the
        # standard library would also take UTF-16 and -32, which no dxl writer produces, and a file one reader
        # takes and another refuses is two answers to one question.
        text = text.decode("utf-8", "surrogatepass")
    # A leading byte order mark is not JSON but is ignored (RFC 8259 permits it), as the API and the console
    # ignore it: an editor may add one to a manifest or report it saves.
    text = text.removeprefix(_BOM)
    if depth(text) > MAX_DEPTH:
        raise JsonNestingError(MAX_DEPTH)
    return json.loads(text, object_pairs_hook=_unique if unique_keys else None)
