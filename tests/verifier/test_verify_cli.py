"""``dxl commit`` / ``verify`` / ``reconcile`` through the real CLI: exit codes 0/1/2 and --json output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from tests.cli import dxl
from tests.hostile_node import answering, silent
from verifier.receipts import BatchTree, Receipt, ReceiptProof

PROVIDER = Account.from_key("0x" + "33" * 32)


@pytest.fixture
def keystore(tmp_path: Path) -> tuple[Path, Path]:
    ks = tmp_path / "provider.json"
    ks.write_text(json.dumps(Account.encrypt(PROVIDER.key, "s3cret", kdf="pbkdf2", iterations=1000)))
    pw = tmp_path / "password.txt"
    pw.write_text("s3cret\n")
    return ks, pw


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text('id,name\n1,Ann\n2,"Bob\nJr"\n3,Cy\n')
    return path


def test_commit_then_verify_match_then_mismatch(payload: Path) -> None:
    code, out, _ = dxl("commit", payload)
    assert code == 0, out
    assert "records  3" in out and "UNSIGNED" in out
    manifest = payload.with_name("people.csv.manifest.json")
    assert json.loads(manifest.read_text())["record_count"] == 3
    assert dxl("verify", payload, "--offline")[0] == 0
    payload.write_text('id,name\n1,Ann\n2,"Bob\nSr"\n3,Cy\n')
    code, out, _ = dxl("verify", payload, "--offline", "--manifest", manifest, "--json")
    assert code == 1
    verdict = json.loads(out)
    assert verdict["status"] == "MISMATCH"
    assert verdict["differing_leaves"] == [[2, 3]]


def test_commit_json_signed_with_keystore(payload: Path, tmp_path: Path, keystore: tuple[Path, Path]) -> None:
    out_path = tmp_path / "m.json"
    ks, pw = keystore
    code, out, _ = dxl(
        "commit", payload, "--out", out_path, "--alg", "sm3", "--keystore", ks, "--password-file", pw,
        "--agreement", "4", "--grant", "2", "--delivery-id", "ab" * 32, "--json",
    )  # fmt: skip
    assert code == 0, out
    result = json.loads(out)
    assert result["signed"] and result["signer"] == PROVIDER.address
    assert result["algorithm"] == "sm3" and result["delivery_id"] == "0x" + "ab" * 32
    assert dxl("verify", payload, "--offline", "-m", out_path, "--signer", PROVIDER.address)[0] == 0
    code, out, _ = dxl(
        "verify", payload, "--offline", "-m", out_path, "--signer", Account.from_key("0x" + "44" * 32).address
    )
    assert code == 1 and "UNTRUSTED" in out
    code, out, _ = dxl("verify", payload, "--offline", "-m", out_path, "--delivery-id", "cd" * 32, "--json")
    assert code == 1 and json.loads(out)["status"] == "UNTRUSTED"


@pytest.mark.parametrize(
    "signer",
    [
        PROVIDER.address[:-1],
        "provider",
        " " + PROVIDER.address,
        PROVIDER.address[:2] + PROVIDER.address[2:].swapcase(),
    ],
    ids=["short", "not-hex", "space", "bad-checksum"],
)
def test_a_signer_that_is_no_address_is_a_usage_error(
    payload: Path, tmp_path: Path, keystore: tuple[Path, Path], signer: str
) -> None:
    """--signer is an address, or exit 2 naming it: a mistyped one was a verdict on the manifest (UNTRUSTED,
    exit 1), and one in mixed case whose EIP-55 checksum failed was taken for the address it resembles."""
    out_path, (ks, pw) = tmp_path / "m.json", keystore
    assert dxl("commit", payload, "--out", out_path, "--keystore", ks, "--password-file", pw)[0] == 0
    code, _, err = dxl("verify", payload, "--offline", "-m", out_path, "--signer", signer)
    assert code == 2 and "--signer" in err and "Traceback" not in err, err
    for spelling in (PROVIDER.address, PROVIDER.address.lower(), "0x" + PROVIDER.address[2:].upper()):
        assert dxl("verify", payload, "--offline", "-m", out_path, "--signer", spelling)[0] == 0


def test_wrong_keystore_password_is_exit_2(payload: Path, keystore: tuple[Path, Path]) -> None:
    ks, pw = keystore
    pw.write_text("wrong")
    code, _, err = dxl("commit", payload, "--keystore", ks, "--password-file", pw)
    assert code == 2
    assert "cannot unlock keystore" in err and "Traceback" not in err


def test_keystore_nested_too_deeply_is_exit_2(payload: Path, keystore: tuple[Path, Path]) -> None:
    """Read after eth-account raised the recursion limit to 100,000: the standard library's parser crashed
    the process on such a file (SIGSEGV), whatever it was given as --keystore."""
    ks, pw = keystore
    ks.write_text("[" * 300_000)
    code, _, err = dxl("commit", payload, "--keystore", ks, "--password-file", pw)
    assert code == 2
    assert "cannot read keystore" in err and "nested more than 256 levels" in err


def test_a_manifest_saved_with_a_byte_order_mark_is_read(payload: Path) -> None:
    """An editor may save the manifest with a UTF-8 byte order mark: ignored, as the API and the console
    ignore it."""
    assert dxl("commit", payload)[0] == 0
    manifest = payload.with_name("people.csv.manifest.json")
    manifest.write_bytes(manifest.read_text().encode("utf-8-sig"))
    code, out, err = dxl("verify", payload, "--manifest", manifest, "--offline")
    assert code == 0 and out.startswith("MATCH"), (out, err)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing payload", "cannot read payload"),
        ("payload is a directory", "cannot read payload"),
        ("manifest not JSON", "not valid JSON"),
        # Past the standard library parser's recursion: a traceback and exit 1, a mismatch's status, before.
        ("manifest nested too deeply", "nested more than 256 levels"),
        ("manifest field missing", "field 'root'"),
        # A forged root before the true one: a reader may show the first, the check read the last (MATCH).
        ("manifest names a key twice", "names the key 'root' twice"),
        ("manifest missing", "cannot read"),
        # Python's parser reads UTF-16 too; the API and the console do not: one answer for one file.
        ("manifest in UTF-16", "not valid JSON"),
    ],
)
def test_io_and_malformed_input_exit_2_with_one_line(payload: Path, setup: str, message: str) -> None:
    assert dxl("commit", payload)[0] == 0
    manifest = payload.with_name("people.csv.manifest.json")
    if setup == "missing payload":
        payload.unlink()
    elif setup == "payload is a directory":
        payload.unlink()
        payload.mkdir()
    elif setup == "manifest not JSON":
        manifest.write_text("{not json")
    elif setup == "manifest nested too deeply":
        manifest.write_text('{"a":' * 200_000)
    elif setup == "manifest names a key twice":
        manifest.write_text('{"root": "0x' + "11" * 32 + '", ' + manifest.read_text().lstrip()[1:])
    elif setup == "manifest in UTF-16":
        manifest.write_bytes(manifest.read_text().encode("utf-16"))
    elif setup == "manifest field missing":
        d = json.loads(manifest.read_text())
        del d["root"]
        manifest.write_text(json.dumps(d))
    else:
        manifest.unlink()
    code, out, err = dxl("verify", payload, "--offline")
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, out, _ = dxl("verify", payload, "--offline", "--json")
    assert code == 2
    assert json.loads(out)["status"] == "ERROR"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"id,name\r1,Ann\r", "a CR outside quotes is followed by something other than a line end"),
        (b'id,note\n1,"open\n', "a quote is not closed before the end of the file"),
        (
            b'id,note\n1,"a"b\n',
            "a closing quote is followed by something other than a delimiter or a line end",
        ),
    ],
    ids=["bare-CR line ends", "quote not closed", "bytes after a closing quote"],
)
def test_a_csv_the_format_refuses_is_named_in_its_specifications_words(
    tmp_path: Path, content: bytes, why: str
) -> None:
    """MANIFEST.md's refusals, said as it says them: the csv module's own words for a bare CR advised opening
    the file in universal-newline mode, which would split the file the format refuses."""
    path = tmp_path / "rows.csv"
    path.write_bytes(content)
    code, _, err = dxl("commit", path)
    assert code == 2 and why in err and "universal-newline" not in err, err
    code, out, _ = dxl("commit", path, "--json")
    assert (code, json.loads(out)["code"]) == (2, "PAYLOAD_FORMAT_INVALID")


@pytest.mark.parametrize(
    "args",
    [
        ["--alg", "md5"],
        ["--format", "xml"],
        ["--chunk-size", "0"],
        ["--chunk-size", "lots"],
        ["--delivery-id", "12"],
        ["--delivery-id", "ab" * 32 + "\n"],
        # Numbers in decimal digits only: int() read "1_0" as 10 and Arabic-Indic digits as theirs.
        ["--agreement", "1_0"],
        ["--grant", "\u0665"],
        ["--provider-id", "+3"],
        ["--chunk-size", "\u0666\u0664KiB"],
    ],
)
def test_bad_commit_options_are_usage_errors(payload: Path, args: list[str]) -> None:
    code, _, err = dxl("commit", payload, *args)
    assert code == 2
    assert "Traceback" not in err


def test_reconcile_reports_every_category(tmp_path: Path) -> None:
    d = tmp_path / "inbox"
    d.mkdir()
    for name in ("a.jsonl", "b.bin", "c.csv", "gone.bin"):
        (d / name).write_bytes(b'{"x":1}\n' if name.endswith("jsonl") else b"id\n1\n")
        assert dxl("commit", d / name)[0] == 0
    (d / "b.bin").write_bytes(b"changed")
    (d / "gone.bin").unlink()
    (d / "loose.txt").write_text("no manifest")
    (d / "c.csv.manifest.json").write_text("[]")
    code, out, _ = dxl("reconcile", d, "--offline", "--json")
    assert code == 1
    report = json.loads(out)
    assert [e["payload"] for e in report["matched"]] == ["a.jsonl"]
    assert [e["payload"] for e in report["mismatched"]] == ["b.bin"]
    assert [e["payload"] for e in report["errors"]] == ["c.csv"]
    assert report["unmanifested"] == ["loose.txt"]
    assert report["missing_payloads"] == ["gone.bin.manifest.json"]
    code, out, _ = dxl("reconcile", d, "--offline")
    assert code == 1 and "1 matched, 1 mismatched" in out


def test_reconcile_all_matched_and_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"x":1}\n')
    assert dxl("commit", tmp_path / "a.jsonl")[0] == 0
    assert dxl("reconcile", tmp_path, "--offline")[0] == 0
    code, _, err = dxl("reconcile", tmp_path / "nope")
    assert code == 2 and "not a directory" in err


def test_help_explains_commands() -> None:
    for command in ("commit", "verify", "reconcile"):
        code, out, _ = dxl(command, "--help")
        assert code == 0 and "--json" in out


def _flip(hex_value: str) -> str:
    return hex_value[:-1] + ("0" if hex_value[-1] != "0" else "1")


ALTERED = [
    ("a leaf hash", lambda d: {**d, "leaf_hashes": [_flip(d["leaf_hashes"][0]), *d["leaf_hashes"][1:]]}),
    ("one leaf hash dropped", lambda d: {**d, "leaf_hashes": d["leaf_hashes"][:-1]}),
    ("the leaf count", lambda d: {**d, "leaf_count": d["leaf_count"] + 1}),
    ("the record count", lambda d: {**d, "record_count": d["record_count"] + 1}),
    ("the root", lambda d: {**d, "root": _flip(d["root"])}),
    ("an empty payload's byte size", lambda d: {**d, "byte_size": 0}),
]


@pytest.mark.parametrize("alter", [a[1] for a in ALTERED], ids=[a[0] for a in ALTERED])
def test_manifest_whose_fields_no_longer_fit_is_an_untrusted_verdict(payload: Path, alter: Any) -> None:
    assert dxl("commit", payload)[0] == 0
    manifest = payload.with_name("people.csv.manifest.json")
    manifest.write_text(json.dumps(alter(json.loads(manifest.read_text()))))
    code, out, err = dxl("verify", payload, "--offline", "--json")
    assert code == 1, out + err
    verdict = json.loads(out)
    assert verdict["status"] == "UNTRUSTED"
    assert [f["code"] for f in verdict["findings"]] == ["MANIFEST_INCONSISTENT"]
    code, out, _ = dxl("verify", payload, "--offline")
    assert code == 1 and out.startswith("UNTRUSTED") and "the manifest was altered" in out
    code, out, _ = dxl("reconcile", payload.parent, "--offline", "--json")
    report = json.loads(out)
    assert code == 1 and [e["status"] for e in report["mismatched"]] == ["UNTRUSTED"] and not report["errors"]


@pytest.mark.parametrize(
    ("content", "differing", "missing", "extra"),
    [
        ('id,name\n1,Ann\n2,"Bob\nJr"\n3,Cy\n', [], [], []),
        ('id,name\n1,Al\n2,"Bob\nJr"\n3,Di\n', [[1, 2], [3, 4]], [], []),
        ('id,name\n1,Al\n2,"Bob\nSr"\n3,Cy\n', [[1, 3]], [], []),
        ("id,name\n1,Ann\n", [], [[2, 4]], []),
        ('id,name\n1,Ann\n2,"Bob\nJr"\n3,Cy\n4,Di\n5,Ed\n', [], [], [[4, 6]]),
    ],
    ids=["same", "two apart", "two adjacent", "truncated", "extended"],
)
def test_leaf_lists_share_one_form_in_json(
    payload: Path, content: str, differing: list[list[int]], missing: list[list[int]], extra: list[list[int]]
) -> None:
    assert dxl("commit", payload)[0] == 0
    payload.write_text(content)
    _code, out, _ = dxl("verify", payload, "--offline", "--json")
    verdict = json.loads(out)
    assert (verdict["differing_leaves"], verdict["missing_leaves"], verdict["extra_leaves"]) == (
        differing,
        missing,
        extra,
    )
    assert verdict["differing_count"] == sum(end - start for start, end in differing)
    assert verdict["differing_truncated"] is False


def test_a_manifest_that_cannot_be_written_is_an_io_error(payload: Path, tmp_path: Path) -> None:
    """The system's error naming the file, exit 2; not "invalid manifest" (the manifest is fine)."""
    out = tmp_path / "no-such-dir" / "m.json"
    code, _, err = dxl("commit", payload, "--out", out)
    assert (code, err.strip()) == (2, f"dxl: error: {out}: No such file or directory")


def test_text_output_marks_leaf_indexes_0_based(payload: Path) -> None:
    assert dxl("commit", payload)[0] == 0
    payload.write_text('id,name\n1,Al\n2,"Bob\nJr"\n3,Cy\n')
    code, out, _ = dxl("verify", payload, "--offline")
    assert code == 1 and "1 leaf differs, at 0-based index 1" in out
    payload.write_text('id,name\n1,Al\n2,"Bob\nJr"\n3,Cyd\n')
    code, out, _ = dxl("verify", payload, "--offline")
    assert code == 1 and "2 leaves differ, at 0-based indexes 1, 3" in out
    payload.write_text("id,name\n1,Ann\n")
    code, out, _ = dxl("verify", payload, "--offline")
    assert code == 1 and "leaves 2..3 (0-based, inclusive) are missing from the payload" in out


def _reading(pid: int, path: Path) -> bool:
    """Whether process ``pid`` holds ``path`` open and has read 64 MiB (a tenth of the 1 GiB payloads
    here; its imports read a few): into hashing it."""
    proc = Path(f"/proc/{pid}")
    try:
        if not any(os.readlink(fd) == str(path) for fd in (proc / "fd").iterdir()):
            return False
        io = dict(line.split(": ") for line in (proc / "io").read_text().splitlines())
        return int(io["rchar"]) >= 64 << 20
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="watches the process through /proc")
def test_commit_of_a_file_cut_short_while_hashed_exits_2_with_an_error(tmp_path: Path) -> None:
    """Another program truncates the payload while ``dxl commit`` (a real process) hashes it: a clear error
    and exit 2 (hashed from a mapping of the file, it died of SIGBUS)."""
    path = tmp_path / "payload.bin"
    with path.open("wb") as f:
        f.truncate(1 << 30)  # sparse: nothing written, hashed all the same
    proc = subprocess.Popen(
        [sys.executable, "-m", "dxl", "commit", str(path), "--out", str(tmp_path / "m.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        while proc.poll() is None and not _reading(proc.pid, path):
            pass  # the hashing of 1 GiB lasts far longer than one look at /proc
        os.truncate(path, 0)
        _out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 2, (
        f"exit {proc.returncode} (below 0: the signal that killed it; SIGBUS is 7): {err}"
    )
    assert err.startswith("dxl: error: cannot read payload") and "shrank" in err


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="watches the process through /proc")
def test_commit_terminated_stops_hashing_and_ends_by_that_signal(tmp_path: Path) -> None:
    """SIGTERM to the ``dxl commit`` process a supervisor started ends it, hashing threads and all, with no
    manifest written."""
    path = tmp_path / "payload.bin"
    with path.open("wb") as f:
        f.truncate(1 << 30)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dxl", "commit", str(path), "--out", str(tmp_path / "m.json")]
    )
    try:
        while proc.poll() is None and not _reading(proc.pid, path):
            pass
        proc.terminate()
        assert proc.wait(timeout=60) == -signal.SIGTERM
    finally:
        proc.kill()
    assert not (tmp_path / "m.json").exists()


def test_a_node_answering_json_nested_too_deeply_is_a_chain_access_error(payload: Path) -> None:
    """Any node the auditor names answers here: JSON nested past the parser's recursion ended dxl verify
    with a RecursionError traceback and exit 1, the status of a payload that does not match."""
    assert dxl("commit", payload)[0] == 0
    with answering(b"[" * 200_000) as url:
        code, _, err = dxl("verify", payload, "--rpc", url, "--contract", "0x" + "11" * 20)
    assert code == 2, err
    assert f"node at {url} did not answer" in err and "nested more than 256 levels" in err


def test_a_node_that_never_answers_is_given_up_on_after_dxl_rpc_timeout(
    payload: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dxl verify waits for the node as DXL_RPC_TIMEOUT says, as every other command does: a node that takes
    the connection and never answers ends the check after that long (exit 2, naming the wait). It waited a
    fixed 30 s whatever the setting."""
    assert dxl("commit", payload)[0] == 0
    monkeypatch.setenv("DXL_RPC_TIMEOUT", "1")
    with silent() as url:
        began = time.monotonic()
        code, _, err = dxl("verify", payload, "--rpc", url, "--contract", "0x" + "11" * 20)
        waited = time.monotonic() - began
    assert waited < 5.0, f"dxl verify waited {waited:.1f} s"
    assert code == 2, err
    assert f"node at {url} did not answer" in err and "no answer within 1 s" in err, err


def test_verify_with_no_ledger_known_is_refused_unless_offline(
    payload: Path, tmp_path: Path, keystore: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: with no --contract and no deployment record in DXL_HOME (here a mistyped one), dxl verify and
    dxl reconcile refuse (exit 2, NO_LEDGER) naming the ways to give a ledger and --offline: a MATCH from the
    manifest alone exited 0, which a script reads as "on the ledger". With --offline a match exits 0 and says
    the chain was not checked and the signer held to no department's, in words and in --json."""
    monkeypatch.chdir(tmp_path)  # no .env naming another DXL_HOME
    monkeypatch.setenv("DXL_HOME", str(tmp_path / "no-such-home"))
    ks, pw = keystore
    assert dxl("commit", payload, "--keystore", ks, "--password-file", pw)[0] == 0
    for command, target in (("verify", payload), ("reconcile", payload.parent)):
        code, out, err = dxl(command, target)
        assert (code, out) == (2, ""), out + err
        assert f"no deployment record at {tmp_path / 'no-such-home' / 'deployment.json'}" in err, err
        assert "--contract ADDRESS" in err and "--offline" in err and "NOT CHECKED" in err, err
        code, out, _ = dxl(command, target, "--json")
        assert (code, json.loads(out)["status"], json.loads(out)["code"]) == (2, "ERROR", "NO_LEDGER"), out
    code, out, _ = dxl("verify", payload, "--offline")
    assert code == 0 and out.startswith("MATCH"), out
    assert "chain    NOT CHECKED (--offline)" in out, out
    assert "not checked against --signer" in out, out
    code, out, _ = dxl("verify", payload, "--offline", "--json")
    verdict = json.loads(out)
    assert (code, verdict["status"], verdict["chain_checked"], verdict["anchor"], verdict["node"]) == (
        0, "MATCH", False, None, None,
    )  # fmt: skip
    _code, out, _ = dxl("reconcile", payload.parent, "--offline")  # exit 1: the keystore has no manifest
    assert "1 matched" in out and out.rstrip().endswith("; chain NOT CHECKED"), out
    # --rpc alone names a node, not a ledger: it reads DXL_HOME's, and there is none.
    code, out, err = dxl("verify", payload, "--rpc", "http://127.0.0.1:1")
    assert code == 2 and "no ledger deployment recorded" in err, out + err
    # A receipt's proof is checked on chain only: refused the same way, with nothing to do offline.
    receipt = Receipt(os.urandom(32), 7, os.urandom(32), 1, 10, 0)
    tree = BatchTree([receipt.leaf_hash()])
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps(ReceiptProof(receipt, 40, 0, 1, tree.root, ()).to_json()))
    for args in (("verify", payload, "--receipt", answer), ("verify-receipt", answer)):
        code, out, err = dxl(*args)
        assert (code, out) == (2, ""), out + err
        assert "no ledger to check against" in err and "DXL_HOME" in err, err
    code, _, err = dxl("verify", payload, "--receipt", answer, "--offline")
    assert code == 2 and "cannot be checked --offline" in err, err


def test_counts_agree_with_their_nouns(tmp_path: Path) -> None:
    """A count of one reads in the singular: "1 leaf", "1 record", "1 byte", "1 manifest without payload"
    (it read "1 leaves", "1 records", "1 bytes", "1 manifests"), and more than one in the plural."""
    one = tmp_path / "one.jsonl"
    one.write_text("1")  # one byte: one record, one leaf
    code, out, _ = dxl("commit", one)
    assert code == 0 and "size     1 byte (" in out and "records  1 (jsonl, 1 leaf)" in out, out
    code, out, _ = dxl("verify", one, "--offline")
    assert code == 0 and "(1 byte, 1 record)" in out, out
    two = tmp_path / "two.jsonl"
    two.write_text('{"a": 1}\n{"a": 2}\n')
    code, out, _ = dxl("commit", two)
    assert code == 0 and "size     18 bytes (" in out and "records  2 (jsonl, 2 leaves)" in out, out
    code, out, _ = dxl("verify", two, "--offline")
    assert code == 0 and "(18 bytes, 2 records)" in out, out
    one.unlink()
    code, out, _ = dxl("reconcile", tmp_path, "--offline")
    assert code == 1 and "1 matched, " in out and ", 1 manifest without payload;" in out, out
