"""Key custody: one encrypted file per principal under ``DXL_HOME/keys/``.

* Signing keys are Ethereum V3 keystores (scrypt KDF, AES-128-CTR), ``<name>.json``, readable by any wallet
  that reads geth keystores. The address is stored in clear, so it is readable without the
  passphrase.
* Departments also hold an X25519 key (payload encryption). Its private half is kept beside the signing key as
  ``<name>.x25519.pem``: PKCS#8 encrypted with the same passphrase (``BestAvailableEncryption``); the public
  half is in ``<name>.x25519.pub`` (raw 32 bytes, hex) for tools that only need to encrypt to the department.
* Every file is created 0600 in a 0700 directory, written atomically (temp file + rename).

Key material never appears in messages, logs or ``repr``: errors name the principal and the file only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_account import Account
from eth_utils.address import to_checksum_address

from node.errors import ConfigurationError, DxlError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from node.settings import Settings

#: scrypt work factor. 2**15 (32 MiB, ~0.1 s per unlock) rather than geth's 2**18 (256 MiB, ~1 s): `dxl run`
#: unlocks every demo principal at start on a 2-core machine. Keystores written with any n still unlock.
DEFAULT_SCRYPT_N = 2**15
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class KeystoreError(DxlError, PermissionError):
    """Thrown when a keystore cannot be unlocked or used (wrong passphrase, unreadable or corrupt file)."""

    code = "KEYSTORE_ERROR"


class UnknownKeyError(KeystoreError, LookupError):
    """Thrown when no key exists under a name."""

    code = "UNKNOWN_KEY"

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        super().__init__(f"no key named {name!r} in {directory}")


class KeyExistsError(KeystoreError, FileExistsError):
    """Thrown when creating a key under a name that is taken (keys are never overwritten)."""

    code = "KEY_EXISTS"

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        super().__init__(f"a key named {name!r} already exists at {path}; keys are never overwritten")


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"key name must match {_NAME.pattern} (lower-case, digits, _ or -), got {name!r}"
        )
    return name


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with 0600 permissions, atomically, refusing to replace an existing file."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        # link() fails if the target exists: two processes creating the same key cannot overwrite each other.
        os.link(tmp, path)
    except FileExistsError:
        raise
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class EncryptionKeyPair:
    """A department's X25519 key pair. ``repr`` shows the public key only."""

    public: bytes
    _private: X25519PrivateKey = field(repr=False)

    @property
    def private_key(self) -> X25519PrivateKey:
        return self._private


class _Stamp(NamedTuple):
    """What ``stat`` says of a key file: a changed stamp means the file must be read again."""

    size: int
    mtime_ns: int
    inode: int


class KeyStore:
    """The keystore directory and the passphrase protecting it.

    Unlocked accounts are cached for the life of the object (unlocking runs scrypt); thread-safe.
    """

    def __init__(self, directory: Path, passphrase: str, *, scrypt_n: int = DEFAULT_SCRYPT_N) -> None:
        if not passphrase:
            raise ConfigurationError("keystore passphrase must not be empty")
        self.directory = directory
        self._passphrase = passphrase
        self._scrypt_n = scrypt_n
        self._unlocked: dict[str, LocalAccount] = {}
        self._lock = threading.Lock()
        #: What the last scan read: each signing key file's stamp, and its address (None: unreadable).
        self._scanned: dict[str, tuple[_Stamp, str | None]] = {}
        self._scan_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyStore({str(self.directory)!r})"

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: int) -> KeyStore:
        """The keystore of ``settings``; in development, generates and remembers a passphrase if none is set.

        Raises:
            ConfigurationError: production without a configured passphrase, or an unreadable passphrase file.
        """
        passphrase = settings.passphrase()
        if passphrase is None:
            if settings.production:
                raise ConfigurationError("no keystore passphrase configured (DXL_KEYSTORE_PASSPHRASE[_FILE])")
            passphrase = development_passphrase(settings.generated_passphrase_file)
        return cls(settings.keys_dir, passphrase, **kwargs)

    def path(self, name: str) -> Path:
        return self.directory / f"{_check_name(name)}.json"

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json") if _NAME.fullmatch(p.stem))

    def _entries(self) -> dict[str, _Stamp]:
        """The signing key files of the directory by name, each with its stamp: one ``os.scandir``."""
        try:
            with os.scandir(self.directory) as entries:
                found: dict[str, _Stamp] = {}
                for entry in entries:
                    name = entry.name.removesuffix(".json")
                    if name != entry.name and _NAME.fullmatch(name) and entry.is_file():
                        st = entry.stat()
                        found[name] = _Stamp(st.st_size, st.st_mtime_ns, st.st_ino)
                return found
        except (FileNotFoundError, NotADirectoryError):
            return {}

    def addresses(self) -> dict[str, str]:
        """The checksummed address of every readable signing key, by name, as the directory holds them now.

        One scan of the directory; a file is read only when its stamp (size, modification time, inode) differs
        from the last scan's, so a key added, removed or replaced under the same name (a rotation writes a new
        file and renames it over the old) is seen, and an unchanged directory costs no file read. A corrupt
        file is left out until it changes. A replaced file's account is unlocked again from the new file.
        """
        with self._scan_lock:
            current = self._entries()
            scanned: dict[str, tuple[_Stamp, str | None]] = {}
            for name, stamp in sorted(current.items()):
                known = self._scanned.get(name)
                if known is not None and known[0] == stamp:
                    scanned[name] = known
                    continue
                if known is not None:
                    # Replaced under the same name: the account unlocked from the old file is not this key.
                    with self._lock:
                        self._unlocked.pop(name, None)
                try:
                    scanned[name] = (stamp, self.address(name))
                except KeystoreError:  # unreadable or corrupt (or removed since the scan): not a usable key
                    scanned[name] = (stamp, None)
            self._scanned = scanned
        return {name: address for name, (_, address) in scanned.items() if address is not None}

    def _ensure_dir(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)

    def create(self, name: str, *, private_key: bytes | None = None) -> str:
        """Generate (or import ``private_key``) and store a signing key; returns its checksummed address.

        Raises:
            KeyExistsError: a key with this name exists.
            ConfigurationError: the name is malformed.
        """
        path = self.path(name)
        self._ensure_dir()
        account = Account.from_key(private_key) if private_key is not None else Account.create()
        keystore = Account.encrypt(account.key, self._passphrase, kdf="scrypt", iterations=self._scrypt_n)
        try:
            _write_private(path, json.dumps(keystore).encode())
        except FileExistsError:
            raise KeyExistsError(name, path) from None
        with self._lock:
            self._unlocked[name] = account
        return str(account.address)

    def ensure(self, name: str) -> str:
        """The address of ``name``, creating the key first if it does not exist (idempotent)."""
        # Look first: creating encrypts (scrypt) before the write finds the file taken, which cost every
        # start of `dxl run` a key derivation per principal for keys it already had.
        if self.exists(name):
            return self.address(name)
        try:
            return self.create(name)
        except KeyExistsError:
            return self.address(name)

    def _read(self, name: str) -> dict[str, object]:
        path = self.path(name)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UnknownKeyError(name, self.directory) from None
        except (OSError, ValueError) as exc:
            raise KeystoreError(f"keystore {path} is unreadable or not JSON ({type(exc).__name__})") from None
        if not isinstance(raw, dict) or ("crypto" not in raw and "Crypto" not in raw):
            raise KeystoreError(f"keystore {path} is not an Ethereum V3 keystore")
        return raw

    def address(self, name: str) -> str:
        """The checksummed address of ``name``, without unlocking it.

        Raises:
            UnknownKeyError: no such key.
            KeystoreError: the file is corrupt.
        """
        raw = self._read(name)
        try:
            return str(to_checksum_address("0x" + str(raw["address"]).removeprefix("0x")))
        except (KeyError, ValueError):
            raise KeystoreError(f"keystore {self.path(name)} records no address") from None

    def unlock(self, name: str) -> LocalAccount:
        """The signing account of ``name``.

        Raises:
            UnknownKeyError: no such key.
            KeystoreError: wrong passphrase, or a corrupt file.
        """
        with self._lock:
            cached = self._unlocked.get(name)
        if cached is not None:
            return cached
        raw = self._read(name)
        try:
            key = Account.decrypt(raw, self._passphrase)
        except ValueError:
            # eth-account says "MAC mismatch" for a wrong passphrase; never echo anything from the file.
            raise KeystoreError(
                f"cannot unlock key {name!r} ({self.path(name)}): wrong passphrase or corrupt keystore"
            ) from None
        account: LocalAccount = Account.from_key(key)
        with self._lock:
            self._unlocked[name] = account
        return account

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    # --- X25519 payload-encryption keys -------------------------------------------------------------------

    def encryption_key_path(self, name: str) -> Path:
        return self.directory / f"{_check_name(name)}.x25519.pem"

    def ensure_encryption_key(self, name: str) -> bytes:
        """The X25519 public key of ``name`` (32 bytes), generating the pair if it does not exist."""
        path = self.encryption_key_path(name)
        if path.is_file():
            return self.encryption_key(name).public
        self._ensure_dir()
        private = X25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._passphrase.encode()),
        )
        public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        try:
            _write_private(path, pem)
        except FileExistsError:
            return self.encryption_key(name).public
        pub_path = path.with_name(f"{name}.x25519.pub")
        if not pub_path.exists():
            _write_private(pub_path, public.hex().encode() + b"\n")
        return public

    def encryption_key(self, name: str) -> EncryptionKeyPair:
        """The X25519 key pair of ``name``.

        Raises:
            UnknownKeyError: no encryption key under this name.
            KeystoreError: wrong passphrase or corrupt file.
        """
        path = self.encryption_key_path(name)
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise UnknownKeyError(f"{name}.x25519", self.directory) from None
        try:
            private = serialization.load_pem_private_key(pem, password=self._passphrase.encode())
        except (ValueError, TypeError):
            raise KeystoreError(
                f"cannot unlock encryption key {name!r} ({path}): wrong passphrase or corrupt file"
            ) from None
        if not isinstance(private, X25519PrivateKey):
            raise KeystoreError(f"{path} does not hold an X25519 key")
        public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return EncryptionKeyPair(public, private)


def development_passphrase(path: Path) -> str:
    """The generated development passphrase stored at ``path`` (0600), created on first use.

    Only for development: :meth:`KeyStore.from_settings` refuses this path in production.
    """
    try:
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    # If another process wins the race, its passphrase is the one used.
    with contextlib.suppress(FileExistsError):
        _write_private(path, secrets.token_urlsafe(32).encode() + b"\n")
    return path.read_text(encoding="utf-8").strip()
