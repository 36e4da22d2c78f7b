"""The body of ``POST /receipts`` checked field by field: :func:`parse_receipts` makes its
:class:`~verifier.receipts.Receipt` records, :func:`refuse_repeated_names` refuses a field named twice."""

from __future__ import annotations

import itertools
import operator
from typing import Any

from api.errors import ApiError
from api.models import MAX_DELIVERY_COUNT, MAX_ID64, MAX_RECEIPTS_PER_REQUEST
from verifier.receipts import Receipt

_HASH_IDS = {"sha256": 1, "sm3": 2}
_HASH_NAMES = {v: k for k, v in _HASH_IDS.items()}
_FIELDS = ("delivery_id", "grant_id", "commitment", "hash_algorithm", "byte_size", "record_count")
_FIELD_SET = frozenset(_FIELDS)
_REQUIRED = frozenset(("delivery_id", "grant_id", "commitment", "byte_size"))


def _bad(index: int, name: str, message: str) -> ApiError:
    return ApiError(
        "VALIDATION_ERROR", f"receipts[{index}].{name}: {message}", field=f"receipts.{index}.{name}"
    )


def _b32(value: Any, index: int, name: str) -> bytes:
    # "0x" as POST /deliveries and the documented pattern take it: "0X" passed here alone.
    if not isinstance(value, str) or len(value) != 66 or value[:2] != "0x":
        raise _bad(index, name, "expected 0x followed by 64 hex digits")
    try:
        decoded = bytes.fromhex(value[2:])
    except ValueError:
        raise _bad(index, name, "expected 0x followed by 64 hex digits") from None
    if len(decoded) != 32:  # fromhex skips whitespace: 66 characters may hold fewer than 32 bytes
        raise _bad(index, name, "expected 0x followed by 64 hex digits")
    return decoded


def _count(value: Any, index: int, name: str, low: int = 0, high: int = MAX_DELIVERY_COUNT) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _bad(index, name, f"expected an integer from {low} to {high}")
    return value


def _checked(item: Any, i: int) -> Receipt:
    """Receipt ``i`` checked field by field, in the order a refusal names them.

    Raises:
        ApiError: VALIDATION_ERROR naming the first bad field.
    """
    if not isinstance(item, dict):
        raise ApiError("VALIDATION_ERROR", f"receipts[{i}] must be an object", field=f"receipts.{i}")
    missing = _REQUIRED.difference(item)
    if missing:
        raise _bad(i, sorted(missing)[0], "field required")
    if not _FIELD_SET.issuperset(item):
        raise _bad(i, sorted(set(item).difference(_FIELDS))[0], "unknown field")
    delivery_id = _b32(item["delivery_id"], i, "delivery_id")
    commitment = _b32(item["commitment"], i, "commitment")
    name = item.get("hash_algorithm", "sha256")
    # Only a string can be a name: anything else (an object, a list) is not even looked up.
    alg = _HASH_IDS.get(name) if isinstance(name, str) else None
    if alg is None:
        raise _bad(i, "hash_algorithm", "expected sha256 or sm3")
    return Receipt(
        delivery_id,
        # Any grant id the ledger could number: one it never did is GRANT_NOT_FOUND, as for POST /deliveries.
        _count(item["grant_id"], i, "grant_id", 1, MAX_ID64),
        commitment,
        alg,
        _count(item["byte_size"], i, "byte_size"),
        _count(item.get("record_count", 0), i, "record_count"),
    )


def parse_receipts(document: Any) -> list[Receipt]:
    """The receipts of a ``POST /receipts`` body (already JSON-decoded), checked field by field.

    A hand-written check instead of a model per receipt: this runs for every receipt of the hot path.

    Raises:
        ApiError: VALIDATION_ERROR naming the first bad field (``receipts.<i>.<name>``), a repeated id, or a
            wrong shape; INVALID_FIELD for a zero delivery id or commitment.
    """
    if not isinstance(document, dict):
        raise ApiError("VALIDATION_ERROR", 'the body must be {"receipts": [ ... ]}', field="body")
    # Named, as every other route names a field it does not take.
    unknown = next((name for name in document if name != "receipts"), None)
    if unknown is not None:
        raise ApiError(
            "VALIDATION_ERROR",
            f'{unknown}: unknown field (the body is {{"receipts": [ ... ]}})',
            field=unknown,
        )
    if "receipts" not in document:
        raise ApiError("VALIDATION_ERROR", 'the body must be {"receipts": [ ... ]}', field="receipts")
    items = document["receipts"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_RECEIPTS_PER_REQUEST:
        raise ApiError(
            "VALIDATION_ERROR",
            f"receipts must be a list of 1 to {MAX_RECEIPTS_PER_REQUEST} receipts",
            field="receipts",
        )
    rows: list[Receipt] = []
    seen: dict[bytes, int] = {}
    zero = bytes(32)
    fromhex, hash_ids = bytes.fromhex, _HASH_IDS
    for i, item in enumerate(items):
        # The common case is checked inline (a call per field is a third of this loop's time); whatever it
        # does not accept goes through the field checks, which name the first bad field.
        try:
            d, c = item["delivery_id"], item["commitment"]
            delivery_id, commitment = fromhex(d[2:]), fromhex(c[2:])
            grant_id, byte_size = item["grant_id"], item["byte_size"]
            alg = hash_ids.get(item.get("hash_algorithm", "sha256"))
            record_count = item.get("record_count", 0)
        except (TypeError, KeyError, ValueError, AttributeError):
            row = _checked(item, i)
        else:
            if (
                len(item) > 6
                or (len(item) > 4 and not _FIELD_SET.issuperset(item))
                or len(d) != 66
                or d[:2] != "0x"
                or len(c) != 66
                or c[:2] != "0x"
                or len(delivery_id) != 32  # fromhex skips whitespace: 66 characters may hold fewer bytes
                or len(commitment) != 32
                or alg is None
                or type(grant_id) is not int
                or not 1 <= grant_id <= MAX_ID64
                or type(byte_size) is not int
                or not 0 <= byte_size <= MAX_DELIVERY_COUNT
                or type(record_count) is not int
                or not 0 <= record_count <= MAX_DELIVERY_COUNT
            ):
                row = _checked(item, i)
            else:
                row = Receipt(delivery_id, grant_id, commitment, alg, byte_size, record_count)
        if row.delivery_id == zero or row.commitment == zero:
            raise ApiError(
                "INVALID_FIELD", f"receipts[{i}]: delivery_id and commitment must not be zero", index=i
            )
        if row.delivery_id in seen:
            raise _bad(i, "delivery_id", f"repeats receipts[{seen[row.delivery_id]}].delivery_id")
        seen[row.delivery_id] = i
        rows.append(row)
    return rows


def refuse_repeated_names(raw: bytes, document: dict[str, Any]) -> None:
    """Refuse a body that names a field twice in one object, which orjson settles silently (the last wins):
    every other route's body is refused for it before it is parsed (:func:`api.limits.parse_json`).

    Counted rather than parsed again, on the hot path: ``document`` passed :func:`parse_receipts`, so its
    only names are ``receipts`` and known receipt fields and its only strings hex ids and algorithm names,
    none holding a quote. The body's quotes are then exactly two per name and per string value; a name said
    again adds some.

    Raises:
        ApiError: VALIDATION_ERROR (field ``body``).
    """
    items = document["receipts"]
    # Two per name; each receipt's delivery_id and commitment are strings, and its hash_algorithm if given.
    with_algorithm = sum(map(operator.contains, items, itertools.repeat("hash_algorithm")))
    expected = 2 + 2 * sum(map(len, items)) + 4 * len(items) + 2 * with_algorithm
    if raw.count(b'"') != expected:
        raise ApiError("VALIDATION_ERROR", "the body names a field twice in one object", field="body")
