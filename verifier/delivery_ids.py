"""Delivery ids: 32 bytes chosen by the provider, in the providing department's namespace.

One place for the namespace, which the manifest (``dxl commit`` draws an id), the ledger's types and the
service's checks of a delivery's provider all use; it needs only :mod:`os`.
"""

from __future__ import annotations

import os

#: Length of a delivery id's provider prefix: its first four bytes are the providing department's id
#: (big-endian). The ledger accepts an id only in the recording provider's namespace, so no department can
#: take another's ids.
DELIVERY_ID_PREFIX_BYTES = 4


def new_delivery_id(provider_id: int) -> bytes:
    """A fresh random delivery id in the namespace of department ``provider_id``.

    Raises:
        ValueError: ``provider_id`` is not a department id (1..2**32-1).
    """
    if not 0 < provider_id < 2**32:
        raise ValueError(f"a department id is 1..{2**32 - 1}, got {provider_id}")
    return provider_id.to_bytes(DELIVERY_ID_PREFIX_BYTES, "big") + os.urandom(32 - DELIVERY_ID_PREFIX_BYTES)


def delivery_id_provider(delivery_id: bytes) -> int:
    """The department id whose namespace ``delivery_id`` is in."""
    return int.from_bytes(bytes(delivery_id)[:DELIVERY_ID_PREFIX_BYTES], "big")
