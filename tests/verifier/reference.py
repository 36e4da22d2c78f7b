"""The Merkle root written straight from RFC 6962 (and MANIFEST.md), independently of verifier.tree: the
reference the property tests compare the product's tree and its parallel commitment against."""

from __future__ import annotations

from verifier.hashing import TreeHasher


def reference_root(h: TreeHasher, leaves: list[bytes]) -> bytes:
    """RFC 6962's MTH, recursively: split at the largest power of two smaller than n."""
    if not leaves:
        return h.empty_root()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return h.node(reference_root(h, leaves[:k]), reference_root(h, leaves[k:]))


class Refused(Exception):
    """A payload MANIFEST.md says is refused (``PAYLOAD_FORMAT_INVALID``)."""


LF, CR, QUOTE, COMMA = 0x0A, 0x0D, 0x22, 0x2C


def reference_jsonl_leaves(payload: bytes) -> list[bytes]:
    """MANIFEST.md, *jsonl*: a line ends at each LF and nowhere else; the leaf is its bytes without the LF;
    a final line without LF is a leaf; the empty file has none."""
    lines = payload.split(b"\n")
    return lines[:-1] if payload.endswith(b"\n") or not payload else lines


def reference_csv_leaves(payload: bytes) -> list[bytes]:
    """MANIFEST.md, *csv*, rule by rule (not Python's csv module): a row ends at an LF outside quotes; an LF
    or CR inside a quoted field is data; a CR outside quotes must be followed by nothing but CRs up to the LF
    or the end of the file and stays in the leaf; a quote inside an unquoted field is literal; after a closing
    quote only a delimiter or a line end may follow; a quote left open at the end is refused.

    Raises:
        Refused: what the document refuses.
    """
    leaves: list[bytes] = []
    start, i, n = 0, 0, len(payload)
    state = "field_start"  # field_start | unquoted | quoted | closed (a quote inside a quoted field)
    while i < n:
        c = payload[i]
        if state == "quoted":
            state = "closed" if c == QUOTE else "quoted"
            i += 1
            continue
        if state == "closed" and c == QUOTE:  # a doubled quote: still inside the field
            state = "quoted"
        elif c == COMMA:
            state = "field_start"
        elif c == LF:
            leaves.append(payload[start:i])
            start, state = i + 1, "field_start"
        elif c == CR:
            j = i
            while j < n and payload[j] == CR:
                j += 1
            if j < n and payload[j] != LF:
                raise Refused(f"a CR at {i} not ending a line")
            i = j
            continue
        elif state == "closed":
            raise Refused(f"{chr(c)!r} after a closing quote at {i}")
        elif state == "field_start":
            state = "quoted" if c == QUOTE else "unquoted"
        i += 1
    if state == "quoted":
        raise Refused("a quote not closed before the end of the file")
    if start < n:
        leaves.append(payload[start:])
    return leaves
