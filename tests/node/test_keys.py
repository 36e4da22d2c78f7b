"""Key custody on real files: V3 keystores, permissions, wrong passphrases, X25519 keys, settings rules."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_account import Account

from api.settings import load_api_settings
from node.errors import ConfigurationError
from node.keys import KeyExistsError, KeyStore, KeystoreError, UnknownKeyError, development_passphrase
from node.settings import Environment, load_settings
from tests.api.api_helpers import TEST_SCRYPT_N
from tests.cli import dxl

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys", PASSPHRASE, scrypt_n=TEST_SCRYPT_N)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip_through_a_fresh_store(store: KeyStore) -> None:
    address = store.create("dept-psb")
    reopened = KeyStore(store.directory, PASSPHRASE)
    assert reopened.address("dept-psb") == address
    assert reopened.unlock("dept-psb").address == address
    keystore = json.loads(store.path("dept-psb").read_text())
    assert keystore["version"] == 3 and keystore["crypto"]["kdf"] == "scrypt"
    # Any V3 reader (here eth-account directly) opens it.
    assert Account.from_key(Account.decrypt(keystore, PASSPHRASE)).address == address


def test_import_keeps_the_given_key(store: KeyStore) -> None:
    account = Account.create()
    assert store.create("imported", private_key=account.key) == account.address
    assert KeyStore(store.directory, PASSPHRASE).unlock("imported").key == account.key


def test_files_and_directory_are_private(store: KeyStore) -> None:
    store.create("governor-1")
    store.ensure_encryption_key("governor-1")
    assert _mode(store.directory) == 0o700
    for path in store.directory.iterdir():
        assert _mode(path) == 0o600, path
    assert not [p for p in store.directory.iterdir() if p.name.endswith(".tmp")]


def test_wrong_passphrase_is_a_clear_error_without_key_material(store: KeyStore) -> None:
    account = Account.create()
    store.create("auditor", private_key=account.key)
    stranger = KeyStore(store.directory, "not the passphrase")
    with pytest.raises(KeystoreError) as info:
        stranger.unlock("auditor")
    text = f"{info.value} {info.value!r} {info.value.__cause__!r} {info.value.__context__!r}"
    assert "wrong passphrase" in str(info.value) and "auditor" in str(info.value)
    assert account.key.hex() not in text and PASSPHRASE not in text
    assert info.value.__cause__ is None and info.value.code == "KEYSTORE_ERROR"
    # The address is still readable without the passphrase.
    assert stranger.address("auditor") == account.address


def test_no_key_material_in_reprs(store: KeyStore) -> None:
    account = Account.create()
    store.create("dept-hrss", private_key=account.key)
    public = store.ensure_encryption_key("dept-hrss")
    pair = store.encryption_key("dept-hrss")
    raw_private = pair.private_key.private_bytes_raw()
    shown = f"{store!r} {store} {pair!r} {pair}"
    assert account.key.hex() not in shown and raw_private.hex() not in shown and PASSPHRASE not in shown
    assert pair.public == public  # the public half is not secret and may be shown


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (lambda s: s.unlock("missing"), UnknownKeyError),
        (lambda s: s.address("missing"), UnknownKeyError),
        (lambda s: s.encryption_key("missing"), UnknownKeyError),
        (lambda s: s.create("Bad Name"), ConfigurationError),
        (lambda s: s.create("../escape"), ConfigurationError),
        (lambda s: (s.create("twice"), s.create("twice")), KeyExistsError),
    ],
    ids=["unlock-missing", "address-missing", "x25519-missing", "bad-name", "path-escape", "create-twice"],
)
def test_bad_uses_are_refused(
    store: KeyStore, action: Callable[[KeyStore], object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        action(store)


def test_corrupt_keystore_is_reported(store: KeyStore) -> None:
    store.directory.mkdir(parents=True)
    store.path("broken").write_text("{not json")
    with pytest.raises(KeystoreError, match="unreadable"):
        store.unlock("broken")
    store.path("other").write_text(json.dumps({"address": "00"}))
    with pytest.raises(KeystoreError, match="not an Ethereum V3 keystore"):
        store.address("other")


def test_addresses_follow_keys_added_removed_and_replaced_under_the_same_name(store: KeyStore) -> None:
    """A rotated key keeps its file name, and a corrupt one may be repaired: the next lookup answers what the
    directory holds now, not what an earlier scan remembered."""
    first = store.create("dept-a")
    assert store.addresses() == {"dept-a": first}
    second = store.create("dept-b")
    assert store.addresses() == {"dept-a": first, "dept-b": second}
    store.path("dept-a").unlink()
    assert store.addresses() == {"dept-b": second}
    elsewhere = KeyStore(store.directory.parent / "elsewhere", PASSPHRASE, scrypt_n=TEST_SCRYPT_N)
    rotated = elsewhere.create("dept-b")
    os.replace(elsewhere.path("dept-b"), store.path("dept-b"))
    assert store.addresses() == {"dept-b": rotated}
    assert store.unlock("dept-b").address == rotated
    store.path("dept-c").write_text("{not json")
    assert store.addresses() == {"dept-b": rotated}
    repaired = elsewhere.create("dept-c")
    os.replace(elsewhere.path("dept-c"), store.path("dept-c"))
    assert store.addresses() == {"dept-b": rotated, "dept-c": repaired}


def test_addresses_read_only_the_key_files_changed_since_the_last_scan(
    store: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"dept-{i}" for i in range(5)]
    for name in names:
        store.create(name)
    read = _counted(monkeypatch, "_read")
    scanned = _counted(monkeypatch, "_entries")
    store.addresses()
    assert (len(scanned), sorted(read)) == (1, names)
    read.clear()
    for _ in range(3):
        store.addresses()
    assert (len(scanned), read) == (4, [])
    store.path("dept-2").unlink()
    store.create("dept-2")
    store.addresses()
    assert read == ["dept-2"]


def _counted(monkeypatch: pytest.MonkeyPatch, method: str) -> list[Any]:
    """Records the first argument of every call of ``KeyStore.<method>``, which still runs as it is."""
    calls: list[Any] = []
    original = getattr(KeyStore, method)

    def spy(self: KeyStore, *args: Any) -> Any:
        calls.append(args[0] if args else self)
        return original(self, *args)

    monkeypatch.setattr(KeyStore, method, spy)
    return calls


def test_ensure_is_idempotent(store: KeyStore) -> None:
    first = store.ensure("governor-2")
    assert store.ensure("governor-2") == first
    assert store.names() == ["governor-2"]


def test_x25519_keys_round_trip_and_need_the_passphrase(store: KeyStore) -> None:
    public = store.ensure_encryption_key("dept-health")
    assert len(public) == 32 and store.ensure_encryption_key("dept-health") == public
    pair = KeyStore(store.directory, PASSPHRASE).encryption_key("dept-health")
    assert pair.public == public
    # The key agrees with a peer: it is a working X25519 private key, not just bytes.
    peer = X25519PrivateKey.generate()
    assert pair.private_key.exchange(peer.public_key()) == peer.exchange(pair.private_key.public_key())
    assert (store.directory / "dept-health.x25519.pub").read_text().strip() == public.hex()
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        KeyStore(store.directory, "wrong").encryption_key("dept-health")


# --- settings and passphrase sources ------------------------------------------------------------------------


def test_development_generates_a_private_stable_passphrase(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    store = KeyStore.from_settings(settings, scrypt_n=TEST_SCRYPT_N)
    address = store.create("governor-1")
    secret = settings.generated_passphrase_file
    assert _mode(secret) == 0o600 and _mode(secret.parent) == 0o700
    assert len(secret.read_text().strip()) >= 32
    assert KeyStore.from_settings(load_settings(home=tmp_path)).unlock("governor-1").address == address
    assert development_passphrase(secret) == secret.read_text().strip()


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"env": "production"}, "needs DXL_KEYSTORE_PASSPHRASE"),
        ({"env": "production", "keystore_passphrase": "short"}, "at least 12"),
        ({"rpc_url": "http://127.0.0.1:8545"}, "DXL_CHAIN_ID is not"),
        ({"api_port": 0}, "DXL_API_PORT"),
        ({"env": "staging"}, "DXL_ENV"),
    ],
)
def test_settings_refuse_unsafe_or_incomplete_configuration(
    tmp_path: Path, env: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        load_api_settings(home=tmp_path, **env)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DXL_STALL_TIMEOUT", None, 5.0),
        ("DXL_STALL_TIMEOUT", "2.5", 2.5),
        ("DXL_STALL_TIMEOUT", "0", ConfigurationError),
        ("DXL_STALL_TIMEOUT", "-1", ConfigurationError),
        ("DXL_STALL_TIMEOUT", "soon", ConfigurationError),
        ("DXL_STALL_TIMEOUT", "nan", ConfigurationError),
        ("DXL_CATCH_UP_TIMEOUT", None, 60.0),
        ("DXL_CATCH_UP_TIMEOUT", "120", 120.0),
        ("DXL_CATCH_UP_TIMEOUT", "0", ConfigurationError),
        ("DXL_CATCH_UP_TIMEOUT", "inf", ConfigurationError),
        ("DXL_RPC_TIMEOUT", None, 30.0),
        ("DXL_RPC_TIMEOUT", "2.5", 2.5),
        ("DXL_RPC_TIMEOUT", "0", ConfigurationError),
        ("DXL_RPC_TIMEOUT", "-1", ConfigurationError),
        ("DXL_RPC_TIMEOUT", "30s", ConfigurationError),
        ("DXL_RPC_TIMEOUT", "inf", ConfigurationError),
        ("DXL_RPC_TIMEOUT", "3601", ConfigurationError),
    ],
)
def test_node_timeouts_are_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str | None, expected: Any
) -> None:
    """How long a node may lag behind the others, how long a start waits for one to catch up, and how long
    each request to the node is waited for are read from the environment and checked at start-up like every
    other setting (they were constants: the request timeout a fixed 30 s no operator could change)."""
    if value is not None:
        monkeypatch.setenv(variable, value)
    field = variable.removeprefix("DXL_").lower()
    if isinstance(expected, type):
        with pytest.raises(expected, match=f"invalid settings: {variable}: "):
            load_settings(home=tmp_path)
    else:
        assert getattr(load_settings(home=tmp_path), field) == expected


def test_a_bad_stall_timeout_stops_a_command_before_it_reads_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DXL_HOME", str(tmp_path))
    monkeypatch.setenv("DXL_STALL_TIMEOUT", "5s")
    code, out, err = dxl("status", "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "CONFIGURATION_ERROR", out + err
    assert "DXL_STALL_TIMEOUT" in json.loads(out)["error"]["message"]
    code, out, err = dxl("audit", "index")
    assert code == 2 and "DXL_STALL_TIMEOUT" in err, out + err


def test_a_bad_rpc_timeout_stops_the_service_and_a_command_before_they_start_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request timeout of 0 (every request to the node would fail at once) is refused at the top, by name
    and with the rule it breaks: ``dxl run`` starts no node and serves nothing, a command reads nothing."""
    monkeypatch.setenv("DXL_HOME", str(tmp_path))
    monkeypatch.setenv("DXL_RPC_TIMEOUT", "0")
    code, out, err = dxl("run")
    assert code == 2 and "invalid settings: DXL_RPC_TIMEOUT: Input should be greater than 0" in err, out + err
    assert "Traceback" not in out + err and list(tmp_path.iterdir()) == []
    code, out, err = dxl("status", "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "CONFIGURATION_ERROR", out + err
    assert "DXL_RPC_TIMEOUT" in json.loads(out)["error"]["message"]


def test_a_home_that_cannot_be_a_directory_stops_a_command_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DXL_HOME naming a file, or a path under one, is refused as the settings are read, by name: `dxl token`
    ended in a FileExistsError or NotADirectoryError traceback (exit 1) where it made the directory."""
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for home in (a_file, a_file / "home"):
        monkeypatch.setenv("DXL_HOME", str(home))
        code, out, err = dxl("token", "list")
        assert code == 2 and "invalid settings: DXL_HOME" in err and "Traceback" not in out + err, out + err
        # The check's own sentence, without the "Value error, " pydantic puts before it.
        assert f"invalid settings: DXL_HOME: {home} cannot be a directory: {a_file} is not one" in err, err


def test_production_reads_the_passphrase_file(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text("a long production passphrase\n")
    settings = load_settings(home=tmp_path, env="production", keystore_passphrase_file=secret)
    assert settings.env is Environment.PRODUCTION
    assert settings.passphrase() == "a long production passphrase"
    assert "production passphrase" not in repr(settings)
    store = KeyStore.from_settings(settings, scrypt_n=TEST_SCRYPT_N)
    store.create("governor-1")
    assert not settings.generated_passphrase_file.exists()


def test_missing_passphrase_file_is_a_configuration_error(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, keystore_passphrase_file=tmp_path / "absent")
    with pytest.raises(ConfigurationError, match="unreadable"):
        KeyStore.from_settings(settings)


def test_settings_read_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DXL_HOME", str(tmp_path))
    monkeypatch.setenv("DXL_RPC_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("DXL_CHAIN_ID", "1337")
    settings = load_api_settings()
    assert (settings.home, settings.rpc_url, settings.chain_id) == (
        tmp_path.resolve(),
        "http://127.0.0.1:9999",
        1337,
    )
    assert settings.effective_database_url == f"sqlite:///{tmp_path.resolve() / 'dxl.sqlite3'}"
    assert (settings.listen_url, settings.api_url) == ("http://127.0.0.1:8000", None)
