"""The journal's rows decoded: a receipt and its batch's slot as a row holds them, each field held to what
the service writes (:class:`JournalCorruptError` when one is not: the API database was changed outside the
service)."""

from __future__ import annotations

from typing import Any

from api.receipts.input import _HASH_NAMES
from api.receipts.journal import BatchSlot, receipts_table
from node.errors import DxlError
from verifier.codes import FindingCode
from verifier.receipts import Receipt


def _receipt_columns() -> list[Any]:
    c = receipts_table.c
    return [c.delivery_id, c.commitment, c.hash_algorithm, c.byte_size, c.record_count]


def _row_receipt(row: Any) -> Receipt:
    return Receipt(bytes(row.delivery_id), int(row.grant_id), bytes(row.commitment), int(row.hash_algorithm),
                   int(row.byte_size), int(row.record_count))  # fmt: skip


class JournalCorruptError(DxlError, ValueError):
    """Thrown when a row of the receipt journal holds what the service never writes: the API database was
    changed outside the service (edited or cut by hand). The message says which row and what."""

    code = FindingCode.RECEIPT_JOURNAL_CORRUPT  # and of the finding a verdict names it by


_UINT64 = 2**64
#: The status a receipt reads by its batch's state (the states the service writes: any other is corrupt).
_STATUS = {"closed": "anchored", "final": "final", "refused": "refused"}


def _checked_receipt(row: Any) -> Receipt:
    """The receipt of a journal row, each field what the service writes (bytes32, an id or count of the
    ledger's width, a hash algorithm it knows).

    Raises:
        JournalCorruptError: a field is not.
    """
    where = f"the journal's row {row.seq}"
    for name in ("delivery_id", "commitment"):
        value = getattr(row, name)
        if not isinstance(value, bytes | memoryview) or len(value) != 32:
            raise JournalCorruptError(f"{where} holds {value!r} as its {name}, not 32 bytes")
    for name in ("grant_id", "byte_size", "record_count"):
        value = getattr(row, name)
        if type(value) is not int or not 0 <= value < _UINT64:
            raise JournalCorruptError(f"{where} holds {value!r} as its {name}, not a 64-bit count")
    if row.hash_algorithm not in _HASH_NAMES:
        raise JournalCorruptError(
            f"{where} names hash algorithm {row.hash_algorithm!r}, none the ledger knows"
        )
    return _row_receipt(row)


def _checked_batch(row: Any) -> None:
    """That the batch joined to a journal row is one the service wrote.

    Raises:
        JournalCorruptError: the batch is missing, or a field of it is not what the service writes.
    """
    batch = f"its batch {row.batch_id}"
    if row.state is None:
        raise JournalCorruptError(
            f"the journal's row {row.seq} is in {batch}, which the journal does not hold"
        )
    if row.state not in _STATUS:
        raise JournalCorruptError(f"{batch} is in state {row.state!r}, which the service never writes")
    if not isinstance(row.root, bytes | memoryview) or len(row.root) != 32:
        raise JournalCorruptError(f"{batch} holds {row.root!r} as its root, not 32 bytes")
    for name, low in (("batch_grant_id", 1), ("batch_provider", 1), ("first_sequence", 0), ("leaf_count", 1)):
        value = getattr(row, name)
        if type(value) is not int or not low <= value < _UINT64:
            raise JournalCorruptError(f"{batch} holds {value!r} as its {name.removeprefix('batch_')}")
    # A batch is one grant's receipts, anchored by its provider: a member naming another is not the batch's.
    if (row.grant_id, row.provider) != (row.batch_grant_id, row.batch_provider):
        raise JournalCorruptError(
            f"the journal's row {row.seq} names grant {row.grant_id} of department {row.provider}, {batch} "
            f"grant {row.batch_grant_id} of department {row.batch_provider}"
        )


def _row_slot(row: Any) -> BatchSlot:
    """The slot the journal's batch row (joined to a receipt's) says its batch holds."""
    return BatchSlot(int(row.batch_grant_id), int(row.batch_provider), int(row.first_sequence),
                     int(row.leaf_count))  # fmt: skip
