"""The little of Ethereum the proof code needs: Keccak-256, EIP-55 addresses and EIP-191 signatures.

Written against libsecp256k1 (``coincurve``) and a C Keccak (``safe-pysha3``) instead of eth-account and
eth-utils because those import in about a second (eth-account loads eth-keyfile and py_ecc's BLS tables),
which is most of the run time of ``dxl commit`` and ``dxl verify``. Signatures are the ones eth-account makes:
RFC 6979 nonces, low ``s``, ``v`` = 27 + recovery id; the tests check both ways against eth-account.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from sha3 import keccak_256

if TYPE_CHECKING:  # imported where a key signs or a signature recovers: an unsigned commit never needs it
    import coincurve

#: The secp256k1 group order; a valid signature has ``0 < r, s < N``.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
# Held with fullmatch: a pattern's "$" also matches before a final newline ("PSB\n" would pass).
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def keccak(data: bytes) -> bytes:
    """Keccak-256 as Ethereum uses it (the original padding, not NIST SHA3-256)."""
    digest: bytes = keccak_256(data).digest()
    return digest


@functools.lru_cache(maxsize=4096)
def to_checksum_address(address: str | bytes) -> str:
    """The EIP-55 spelling of a 20-byte address given as bytes or as 40 hex digits (``0x`` optional).

    Kept for the last 4,096 spellings asked: a service names the same few addresses in every log, receipt and
    record it reads (a keccak each, some 20 calls a write, 6% of a write's CPU before).

    Raises:
        ValueError: not 20 bytes / 40 hex digits.
    """
    if isinstance(address, bytes | bytearray):
        if len(address) != 20:
            raise ValueError(f"an address is 20 bytes, got {len(address)}")
        lower = bytes(address).hex()
    else:
        if not _ADDRESS.fullmatch(address if address.startswith("0x") else "0x" + address):
            raise ValueError(f"not an address: {address!r}")
        lower = address.removeprefix("0x").lower()
    nibbles = keccak(lower.encode("ascii")).hex()[:40]
    return "0x" + "".join(c.upper() if int(n, 16) >= 8 else c for c, n in zip(lower, nibbles, strict=True))


def is_checksum_address(value: object) -> bool:
    """Whether ``value`` is a string spelling an address exactly as EIP-55 does."""
    return isinstance(value, str) and bool(_ADDRESS.fullmatch(value)) and to_checksum_address(value) == value


def is_address(value: object) -> bool:
    """Whether ``value`` is 40 hex digits after ``0x``, in any case (mixed case must be a valid checksum)."""
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        return False
    digits = value[2:]
    return digits in (digits.lower(), digits.upper()) or to_checksum_address(value) == value


def _address_of(public_key: coincurve.PublicKey) -> str:
    return to_checksum_address(keccak(public_key.format(compressed=False)[1:])[-20:])


def personal_message_hash(message: bytes) -> bytes:
    """The EIP-191 version 0x45 (``personal_sign``) hash of ``message``."""
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode("ascii") + message)


def address_of_key(private_key: bytes) -> str:
    """The checksummed address of a 32-byte secp256k1 private key.

    Raises:
        ValueError: not a valid private key (wrong length, zero, or not below the group order).
    """
    import coincurve

    if len(private_key) != 32 or not 0 < int.from_bytes(private_key, "big") < SECP256K1_N:
        raise ValueError("a private key is 32 bytes encoding an integer in [1, N)")
    return _address_of(coincurve.PrivateKey(private_key).public_key)


def sign_personal_message(message: bytes, private_key: bytes) -> bytes:
    """The 65-byte ``r || s || v`` EIP-191 signature of ``message`` (``v`` is 27 or 28).

    Raises:
        ValueError: not a valid private key.
    """
    import coincurve

    address_of_key(private_key)  # the same key checks, with the same message
    rsv = coincurve.PrivateKey(private_key).sign_recoverable(personal_message_hash(message), hasher=None)
    return rsv[:64] + bytes([27 + rsv[64]])


def recover_personal_signer(message: bytes, signature: bytes) -> str:
    """The checksummed address whose key produced the EIP-191 ``signature`` over ``message``.

    Raises:
        ValueError: not 65 bytes, ``v`` not 27/28 (or 0/1), ``r`` or ``s`` out of range, or no key recovers.
    """
    import coincurve

    if len(signature) != 65:
        raise ValueError(f"a signature is 65 bytes, got {len(signature)}")
    r, s, v = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    if v in (27, 28):
        v -= 27
    if v not in (0, 1):
        raise ValueError(f"signature v is {signature[64]}, expected 27 or 28")
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N):
        raise ValueError("signature r or s out of range")
    try:
        key = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v]), personal_message_hash(message), hasher=None
        )
    except Exception as e:  # libsecp256k1 reports a point that does not recover as a bare Exception
        raise ValueError(f"no public key recovers from the signature ({e})") from None
    return _address_of(key)
