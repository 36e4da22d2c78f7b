"""Solidity ABI encoding and decoding: the calls the on-chain check makes, and the one decoder of the
contracts' logs.

Covers elementary static types (``uintN``, ``intN``, ``bool``, ``address``, ``bytesN``), ``bytes``,
``string`` and tuples of them, which is every parameter of the ledger functions the verifier calls and of
every event the contracts declare; arrays are refused rather than guessed. It exists so that ``dxl verify``
does not import eth-abi and web3 (most of a second before any work); the chain client (``node/chain.py``)
and the audit trail's codec decode logs with it too (``tests/test_log_decoding.py``), and
``tests/verifier/test_eth_light.py`` checks it against eth-abi.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from verifier.eth import keccak, to_checksum_address
from verifier.text import counted

Param = Mapping[str, Any]
_WORD = 32


def type_of(param: Param) -> str:
    """The canonical type of an ABI parameter as signatures spell it (tuples expanded)."""
    t = str(param["type"])
    if t.startswith("tuple"):
        return "(" + ",".join(type_of(c) for c in param["components"]) + ")" + t[len("tuple") :]
    return t


def signature(entry: Param) -> str:
    """``name(type,...)`` of a function or event ABI entry."""
    return f"{entry['name']}(" + ",".join(type_of(p) for p in entry["inputs"]) + ")"


def selector(entry: Param) -> bytes:
    """The 4-byte function selector."""
    return keccak(signature(entry).encode("ascii"))[:4]


def event_topic(entry: Param) -> bytes:
    """The topic 0 of a non-anonymous event."""
    return keccak(signature(entry).encode("ascii"))


def _refuse_arrays(param: Param) -> None:
    if str(param["type"]).endswith("]"):
        raise ValueError(f"ABI arrays are not supported here ({type_of(param)})")


def _is_dynamic(param: Param) -> bool:
    _refuse_arrays(param)
    t = str(param["type"])
    if t == "tuple":
        return any(_is_dynamic(c) for c in param["components"])
    return t in ("bytes", "string")


def _int_bits(t: str, prefix: str) -> int:
    bits = int(t[len(prefix) :] or 256)
    if not (0 < bits <= 256 and bits % 8 == 0):
        raise ValueError(f"not an ABI type: {t}")
    return bits


def _encode_static(t: str, value: Any) -> bytes:
    if t.startswith("uint"):
        bits, v = _int_bits(t, "uint"), int(value)
        if not 0 <= v < 1 << bits:
            raise ValueError(f"{v} does not fit {t}")
        return v.to_bytes(_WORD, "big")
    if t.startswith("int"):
        bits, v = _int_bits(t, "int"), int(value)
        if not -(1 << (bits - 1)) <= v < 1 << (bits - 1):
            raise ValueError(f"{v} does not fit {t}")
        return v.to_bytes(_WORD, "big", signed=True)
    if t == "bool":
        return int(bool(value)).to_bytes(_WORD, "big")
    if t == "address":
        raw = bytes.fromhex(str(value).removeprefix("0x")) if isinstance(value, str) else bytes(value)
        if len(raw) != 20:
            raise ValueError(f"{value!r} is not an address")
        return raw.rjust(_WORD, b"\x00")
    if t.startswith("bytes"):
        size, raw = int(t[5:]), bytes(value)
        if len(raw) != size:
            raise ValueError(f"{t} takes {counted(size, 'byte')}, got {len(raw)}")
        return raw.ljust(_WORD, b"\x00")
    raise ValueError(f"unsupported ABI type {t}")


def _encode_one(param: Param, value: Any) -> bytes:
    t = str(param["type"])
    if t == "tuple":
        components = param["components"]
        values = [value[c["name"]] for c in components] if isinstance(value, Mapping) else list(value)
        return encode(components, values)
    if t in ("bytes", "string"):
        raw = value.encode("utf-8") if t == "string" else bytes(value)
        padded = raw.ljust((len(raw) + _WORD - 1) // _WORD * _WORD, b"\x00")
        return len(raw).to_bytes(_WORD, "big") + padded
    return _encode_static(t, value)


def encode(params: Sequence[Param], values: Sequence[Any]) -> bytes:
    """ABI-encode ``values`` as the tuple of ``params`` (head words, then the dynamic tails).

    Raises:
        ValueError: a value does not fit its type, or a type is not supported.
    """
    if len(params) != len(values):
        raise ValueError(f"{len(params)} parameters, {len(values)} values")
    heads: list[bytes] = []
    tails: list[bytes] = []
    head_size = sum(_WORD if _is_dynamic(p) else _static_size(p) for p in params)
    tail_offset = head_size
    for p, v in zip(params, values, strict=True):
        encoded = _encode_one(p, v)
        if _is_dynamic(p):
            heads.append(tail_offset.to_bytes(_WORD, "big"))
            tails.append(encoded)
            tail_offset += len(encoded)
        else:
            heads.append(encoded)
    return b"".join(heads) + b"".join(tails)


def _static_size(param: Param) -> int:
    if param["type"] == "tuple":
        return sum(_static_size(c) for c in param["components"])
    return _WORD


def _word(data: bytes, at: int) -> bytes:
    if at < 0 or at + _WORD > len(data):
        raise ValueError(f"ABI data too short: need bytes {at}..{at + _WORD}, have {len(data)}")
    return data[at : at + _WORD]


@functools.cache
def word_decoder(t: str) -> Callable[[bytes], Any] | None:
    """The decoder of one 32-byte word of the static elementary type ``t`` (None for any other type), made
    once per type: the audit trail's codec decodes every word of every log with these.

    Strict: a word whose padding does not fit the type is refused, as a node that garbles a log must be
    (the chain client, ``dxl verify`` and the audit trail all refuse the same words).

    Raises (on use):
        ValueError: the word does not fit the type.
    """
    if t.startswith("uint"):
        bits = _int_bits(t, "uint")

        def uint(word: bytes) -> int:
            value = int.from_bytes(word, "big")
            if value >> bits:
                raise ValueError(f"{t} word {word.hex()} does not fit: bits above its width")
            return value

        return uint
    if t.startswith("int"):
        bits = _int_bits(t, "int")

        def sint(word: bytes) -> int:
            value = int.from_bytes(word, "big", signed=True)
            if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
                raise ValueError(f"{t} word {word.hex()} does not fit: not a sign-extended {t}")
            return value

        return sint
    if t == "bool":

        def boolean(word: bytes) -> bool:
            value = int.from_bytes(word, "big")
            if value > 1:
                raise ValueError(f"bool word {word.hex()} is neither 0 nor 1")
            return value == 1

        return boolean
    if t == "address":

        def address(word: bytes) -> str:
            if any(word[:12]):
                raise ValueError(f"address word {word.hex()} has non-zero padding")
            return to_checksum_address(word[12:])

        return address
    if t.startswith("bytes") and t[5:].isdigit():
        size = int(t[5:])
        if not 0 < size <= _WORD:
            raise ValueError(f"not an ABI type: {t}")

        def fixed(word: bytes) -> bytes:
            if any(word[size:]):
                raise ValueError(f"{t} word {word.hex()} has non-zero padding")
            return word[:size]

        return fixed
    return None


def _decode_static(t: str, word: bytes) -> Any:
    decode = word_decoder(t)
    if decode is None:
        raise ValueError(f"unsupported ABI type {t}")
    return decode(word)


def _decode_one(param: Param, data: bytes, at: int) -> Any:
    """The value of ``param`` whose encoding starts at ``at`` of ``data`` (its own tail area)."""
    t = str(param["type"])
    if t == "tuple":
        return decode(param["components"], data[at:])
    if t in ("bytes", "string"):
        size = int.from_bytes(_word(data, at), "big")
        if at + _WORD + size > len(data):
            raise ValueError("ABI data too short for a bytes/string value")
        raw = data[at + _WORD : at + _WORD + size]
        return raw.decode("utf-8") if t == "string" else raw
    return _decode_static(t, _word(data, at))


def decode(params: Sequence[Param], data: bytes) -> tuple[Any, ...]:
    """ABI-decode ``data`` as the tuple of ``params``; tuples come back as tuples.

    Raises:
        ValueError: the data is too short, a value does not fit its type, or a type is not supported.
    """
    out: list[Any] = []
    at = 0
    for p in params:
        if _is_dynamic(p):
            offset = int.from_bytes(_word(data, at), "big")
            out.append(_decode_one(p, data, offset))
            at += _WORD
        elif p["type"] == "tuple":
            size = _static_size(p)
            out.append(decode(p["components"], data[at : at + size]))
            at += size
        else:
            out.append(_decode_one(p, data, at))
            at += _WORD
    return tuple(out)


def decode_log(event: Param, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
    """The named arguments of a log of ``event``: indexed ones from ``topics[1:]``, the rest from ``data``.

    Indexed parameters of dynamic or tuple type arrive as their hash and are returned as those 32 bytes.

    Raises:
        ValueError: topic 0 is not the event's, the topic count is wrong, or the data does not decode.
    """
    if not topics or topics[0] != event_topic(event):
        raise ValueError(f"not a {event['name']} log")
    indexed = [p for p in event["inputs"] if p.get("indexed")]
    if len(topics) != len(indexed) + 1:
        raise ValueError(f"{event['name']} has {len(indexed)} indexed parameters, the log {len(topics) - 1}")
    plain = [p for p in event["inputs"] if not p.get("indexed")]
    args: dict[str, Any] = dict(zip((p["name"] for p in plain), decode(plain, data), strict=True))
    for p, topic in zip(indexed, topics[1:], strict=True):
        hashed = _is_dynamic(p) or p["type"] == "tuple"
        args[p["name"]] = topic if hashed else _decode_static(p["type"], topic)
    return {p["name"]: args[p["name"]] for p in event["inputs"]}
