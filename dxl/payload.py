"""``dxl commit``, ``dxl verify`` and ``dxl reconcile``: payload commitments and their checks.

These are parsed with :mod:`argparse`, not typer like the other commands: typer loads pydantic and rich
before it parses anything (about a third of a second), and these commands run once per delivery, often from
scripts. Everything they import is light (see ``tests/test_dxl_cli.py``).

Exit codes (``verify`` and ``reconcile``): 0 everything matched, 1 a negative verdict (mismatch, untrusted
manifest, unpaired files), 2 a usage or I/O error (unreadable file, malformed manifest) reported in one line.
With ``--json`` the result (or the error, as ``{"status": "ERROR", "code", "message"}``) goes to stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any, NoReturn

from verifier.codes import FindingCode, VerdictStatus
from verifier.errors import DxlError
from verifier.text import counted

if TYPE_CHECKING:
    from pathlib import Path

    from node.endpoint import NodeHead
    from node.settings import Settings

MANIFEST_SUFFIX = ".manifest.json"
# Held with fullmatch: a pattern's "$" also matches before a final newline ("PSB\n" would pass).
_HEX32 = re.compile(r"(0x)?[0-9a-fA-F]{64}")


class _UsageError(Exception):
    """A command line that parses but makes no sense; reported with the usage line, exit status 2."""


class _Exit(Exception):
    """Ends a command with an exit status after its output is written."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _ledger_reader(args: argparse.Namespace) -> Any:
    """The chain to check against, or ``None`` with ``--offline``.

    Explicit ``--rpc``/``--contract`` win; otherwise ``DXL_HOME/deployment.json`` names the ledger and the
    node is the one every command reads (:func:`node.endpoint.configured_node`: of ``DXL_RPC_URL`` and
    ``DXL_RPC_FAILOVER_URLS`` the first that answers and does not lag behind, else the embedded node). With
    neither a flag nor a deployment record the check is refused, not made offline: a script reads exit 0 as
    "on the ledger", and a mistyped DXL_HOME must not turn that into "against the manifest alone" unasked.

    Raises:
        ChainCheckError: the node is unreachable, serves another chain, or has no ledger at the address.
        NoLedgerError: no ``--offline``, no ``--contract`` and no deployment record.
        ConfigurationError: a chain flag is given but there is no deployment record to fill in the rest.
    """
    rpc: str | None = args.rpc
    chain_id: int | None = args.chain_id
    contract: str | None = args.contract
    from_block: int | None = args.from_block
    if args.offline:
        return None
    from node.deploy import NoLedgerError, deployment_path, load_deployment
    from verifier.onchain import LedgerReader

    deployment = None
    if contract is None:
        home = _home()
        if not (rpc or deployment_path(home).is_file()):
            raise NoLedgerError(
                deployment_path(home),
                "name one with --contract ADDRESS (and --rpc URL), or DXL_HOME the home `dxl deploy` "
                "recorded it in, or pass --offline to check against the manifest alone "
                "(the chain NOT CHECKED)",
            )
        deployment = load_deployment(home)
    if rpc is None:
        from node.endpoint import configured_node

        settings = _settings()
        rpc = configured_node(settings).rpc_url
        if settings.rpc_url and chain_id is None:
            chain_id = settings.chain_id
    if deployment is not None:
        contract = deployment.address
        chain_id = chain_id if chain_id is not None else deployment.chain_id
        from_block = from_block if from_block is not None else deployment.block_number
    assert contract is not None
    return LedgerReader(rpc, contract, chain_id=chain_id, from_block=from_block or 0, timeout=rpc_timeout())


def _head(reader: Any) -> NodeHead:
    """The head of the node ``reader`` reads, as the check begins: the node and block the output names, so
    that the answer can be read again there; ``reader`` reads that block from now on (and the anchors
    readers made from it: :func:`_receipt_check`).

    Raises:
        NodeError: the node does not answer.
    """
    from node.endpoint import pin_to_head

    return pin_to_head(reader.rpc)


def _settings() -> Settings:
    """The settings (DXL_* variables or a .env file), which name DXL_HOME and the node as every command takes
    them; loaded only where a command needs them (pydantic is most of a second of imports)."""
    from node.settings import load_settings

    return load_settings()


def _home() -> Path:
    """DXL_HOME as every command takes it: through the settings where a .env file may name it, else from the
    environment alone, as the settings would read it, without loading them."""
    if os.path.isfile(".env"):
        return _settings().home
    from dxl.home import dxl_home

    return dxl_home()


def rpc_timeout() -> float:
    """``DXL_RPC_TIMEOUT`` as every command takes it (how long each request to the node is waited for):
    through the settings where it or a .env file is set, else its default, without loading them.

    Raises:
        ConfigurationError: the settings are invalid (``DXL_RPC_TIMEOUT`` not above 0, past 3600).
    """
    if os.path.isfile(".env") or any(name.upper() == "DXL_RPC_TIMEOUT" for name in os.environ):
        return _settings().rpc_timeout
    from verifier.rpc import DEFAULT_TIMEOUT_S

    return DEFAULT_TIMEOUT_S


def loaded() -> None:
    """Turn the cyclic garbage collector back on if the entry point turned it off for the start-up
    (:func:`dxl.main.run`), once a command has loaded its modules: what they made lasts the whole run, so it
    is left out of every later scan (``gc.freeze``). Called in-process (tests), where it was never turned
    off, this does nothing."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _fail(message: str, *, code: str, as_json: bool) -> NoReturn:
    if as_json:
        print(json.dumps({"status": "ERROR", "code": code, "message": message}))
    else:
        print(f"dxl: error: {message}", file=sys.stderr)
    raise _Exit(2)


@contextmanager
def _errors_exit_2(as_json: bool) -> Iterator[None]:
    """Turn expected failures into a one-line message and exit status 2 instead of a traceback."""
    try:
        yield
    except DxlError as e:
        _fail(e.message, code=e.code, as_json=as_json)
    except OSError as e:
        _fail(f"{e.filename or ''}: {e.strerror or e}".lstrip(": "), code="IO_ERROR", as_json=as_json)


@contextmanager
def _progress(label: str, total: int | None) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr, only when stderr is a terminal (never in pipes, logs or --json runs)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _parse_delivery_id(value: str | None) -> bytes | None:
    if value is None:
        return None
    if not _HEX32.fullmatch(value):
        raise _UsageError(f"--delivery-id: expected 32 bytes as 64 hex digits (0x optional), got {value!r}")
    return bytes.fromhex(value.removeprefix("0x"))


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _load_key(keystore: str, password_file: str | None) -> Any:
    from eth_account import Account

    from verifier import jsontext
    from verifier.errors import ManifestSignatureError

    if password_file is None:
        raise _UsageError("--keystore needs --password-file")
    try:
        # Read after eth-account is imported, whose py_ecc raises the recursion limit to 100,000: a keystore
        # file nested that deep overflowed the C stack in json.loads (SIGSEGV, exit 139).
        keyfile = jsontext.loads(_read_text(keystore))
        password = _read_text(password_file).rstrip("\r\n")
    except (OSError, ValueError) as e:
        raise ManifestSignatureError(f"cannot read keystore {keystore}: {e}") from None
    try:
        return Account.from_key(Account.decrypt(keyfile, password))
    except Exception:  # wrong password and corrupt keystores surface as several types
        raise ManifestSignatureError(
            f"cannot unlock keystore {keystore} (wrong password or not a keystore)"
        ) from None


def commit(args: argparse.Namespace) -> int:
    """Commit to PAYLOAD offline and write its delivery manifest (no chain needed).

    A fresh random salt is drawn per delivery; the manifest carries it, the chain never does. Prints the root,
    size and record count that the on-chain receipt will record.
    """
    from verifier.commitment import commit_payload, new_salt
    from verifier.delivery_ids import new_delivery_id
    from verifier.hashing import HashAlgorithm
    from verifier.leaves import Chunking, parse_format
    from verifier.manifest import build_manifest, sign_manifest, write_manifest
    from verifier.units import format_size, parse_size

    loaded()
    # Paths as the strings given: pathlib is a tenth of this command's start-up (see _HelpFormatter).
    payload: str = args.payload
    as_json: bool = args.json
    leaves: bool = args.leaves
    try:
        algorithm = HashAlgorithm.parse(args.alg)
        chunking = Chunking(parse_format(args.format, payload), parse_size(args.chunk_size))
    except ValueError as e:
        raise _UsageError(str(e)) from None
    keystore, password_file = args.keystore, args.password_file
    try:
        did = _parse_delivery_id(args.delivery_id) or (
            new_delivery_id(args.provider_id) if args.provider_id is not None else os.urandom(32)
        )
    except ValueError as e:
        raise _UsageError(f"--provider-id: {e}") from None
    out: str = args.out or payload + MANIFEST_SUFFIX
    with _errors_exit_2(as_json):
        account = _load_key(keystore, password_file) if keystore is not None else None
        total = os.stat(payload).st_size if os.path.isfile(payload) else None
        with _progress(f"commit {os.path.basename(payload)}", total) as progress:
            c = commit_payload(
                payload, alg=algorithm, salt=new_salt(), chunking=chunking, keep_leaf_hashes=leaves,
                progress=progress,
            )  # fmt: skip
        manifest = build_manifest(
            c,
            delivery_id=did,
            agreement_id=args.agreement,
            grant_id=args.grant,
            provider=args.provider,
            consumer=args.consumer,
            include_leaf_hashes=leaves,
        )
        if account is not None:
            manifest = sign_manifest(manifest, account)
        write_manifest(out, manifest)
    if as_json:
        print(
            json.dumps(
                {
                    "manifest": out,
                    "delivery_id": "0x" + manifest.delivery_id.hex(),
                    "root": "0x" + c.root.hex(),
                    "algorithm": c.alg.label,
                    "format": c.chunking.format.value,
                    "byte_size": c.byte_size,
                    "leaf_count": c.leaf_count,
                    "record_count": c.record_count,
                    "signed": manifest.signed,
                    "signer": manifest.signer,
                }
            )
        )
        return 0
    print(f"root     0x{c.root.hex()} ({c.alg.label})")
    print(f"size     {counted(c.byte_size, 'byte')} ({format_size(c.byte_size)})")
    print(f"records  {c.record_count} ({c.chunking.format.value}, {counted(c.leaf_count, 'leaf', 'leaves')})")
    print(f"delivery 0x{manifest.delivery_id.hex()}")
    if manifest.signed:
        print(f"manifest {out} (signed by {manifest.signer})")
    else:
        print(f"manifest {out} (UNSIGNED: pass --keystore and --password-file to sign it)")
    return 0


def _print_verdict(verdict: Any, payload: Path, expected_signer: str | None, head: NodeHead | None) -> None:
    print(f"{verdict.status.value}  {payload}")
    if verdict.delivery_id is not None:
        print(f"  delivery 0x{verdict.delivery_id.hex()}")
    if verdict.observed:
        o = verdict.observed
        size = f"{counted(o['byte_size'], 'byte')}, {counted(o['record_count'], 'record')}"
        print(f"  root     {o['root']}  ({size})")
    if verdict.signer and verdict.status is not VerdictStatus.UNTRUSTED:
        checked = "the expected signer" if expected_signer else "not checked against --signer"
        print(f"  signer   {verdict.signer} ({checked})")
    elif not verdict.signer:
        print("  signer   none: the manifest is UNSIGNED (its origin is not authenticated)")
    a = verdict.anchor
    if a is None:
        altered = any(f.code is FindingCode.MANIFEST_INCONSISTENT for f in verdict.findings)
        why = "the manifest was altered" if altered else "--offline"
        print(f"  chain    NOT CHECKED ({why})")
    elif a.recorded:
        d, settled = a.details, a.details.get("settled")
        print(f"  chain    recorded in block {d['block_number']} ({d['block_hash']})")
        print(f"           tx {d['tx_hash']} log {d['log_index']}; {a.source}")
        if settled is None:
            print(f"           {d['status']}: not acknowledged by the consumer yet")
        else:
            print(f"           {d['status']} in block {settled['block_number']} (tx {settled['tx_hash']})")
    elif verdict.status is VerdictStatus.PENDING:
        status = a.details["receipt_status"]
        print(f"  chain    not on chain yet: accepted as a receipt, {status}; {a.source}")
    else:
        print(f"  chain    not recorded; {a.source}")
    if head is not None:
        print(f"  node     {head} (its head as the check began)")
    for f in verdict.findings:
        print(f"  - {f.message}")


def verify(args: argparse.Namespace) -> int:
    """Check PAYLOAD against its manifest and the ledger: exit 0 MATCH; 1 MISMATCH, UNTRUSTED, NOT_RECORDED,
    ACK_DIFFERS or PENDING; 2 usage, I/O or chain-access error.

    On chain: the receipt must exist, be confirmed by the contract, equal the manifest, not be disputed, and
    the manifest must be signed by the provider department's on-chain signer. The ledger is --contract's, else
    DXL_HOME's deployment record; with neither the check is refused (exit 2) unless --offline asks for the
    payload against its manifest alone, whose MATCH (exit 0) then says the chain was NOT CHECKED.

    Recomputes the commitment with the manifest's salt, algorithm and chunking; when the manifest carries leaf
    hashes, names the chunks or records that differ. A signed manifest is always checked against its signer;
    --signer also says who that must be.

    A payload delivered as an anchored receipt (POST /receipts) is checked the same way with --receipt: the
    receipt's inclusion proof must lead to a batch the chain holds, in place of the delivery's own record.
    Without --receipt, against this DXL_HOME's deployment, a receipt is found in its service's receipt
    journal (PENDING while accepted and not anchored yet); against a node alone (--contract) it cannot be:
    the chain holds a batch's root, not its receipts, so the answer is NOT_RECORDED, saying so.
    """
    from verifier.errors import ManifestInconsistentError
    from verifier.manifest import load_manifest
    from verifier.verify import altered, check_delivery

    loaded()
    payload: Path = args.payload
    signer: str | None = args.signer
    as_json: bool = args.json
    expected_id = _parse_delivery_id(args.delivery_id)
    manifest_path: Path = args.manifest or payload.with_name(payload.name + MANIFEST_SUFFIX)
    with _errors_exit_2(as_json):
        try:
            manifest = load_manifest(manifest_path)
        except ManifestInconsistentError as e:
            _report_verdict(altered(e), payload, signer, as_json)
        reader = _ledger_reader(args)
        head = None if reader is None else _head(reader)
        receipt = _receipt_check(args, reader)
        with _progress(f"verify {payload.name}", manifest.byte_size) as progress:
            if receipt is not None:
                from verifier.receipt_check import verify_payload_receipt

                anchors, proof = receipt
                verdict = verify_payload_receipt(
                    payload, manifest, reader, anchors, proof, expected_delivery_id=expected_id,
                    progress=progress,
                )  # fmt: skip
                if signer is not None and verdict.signer and verdict.signer.lower() != signer.lower():
                    from verifier.verify import untrusted

                    mismatch = untrusted(manifest, f"signed by {verdict.signer}, expected {signer}")
                    verdict = mismatch.with_anchor(verdict.anchor) if verdict.anchor else mismatch
            elif reader is None:
                verdict = check_delivery(
                    payload, manifest, expected_signer=signer, expected_delivery_id=expected_id,
                    progress=progress,
                )  # fmt: skip
            else:
                from verifier.onchain import payload_check, verify_payload_onchain

                journaled = _journaled_receipt(args, reader, manifest.delivery_id)
                if journaled is None:
                    verdict = verify_payload_onchain(
                        payload, manifest, reader, expected_delivery_id=expected_id, progress=progress
                    )
                else:
                    from api.verdicts import delivery_verdict

                    view, anchors = journaled
                    offline = payload_check(
                        payload, manifest, expected_delivery_id=expected_id, progress=progress
                    )
                    verdict = delivery_verdict(
                        manifest, offline, reader, view, anchors, expected_delivery_id=expected_id
                    )
                if signer is not None and verdict.signer and verdict.signer.lower() != signer.lower():
                    from verifier.verify import untrusted

                    mismatch = untrusted(manifest, f"signed by {verdict.signer}, expected {signer}")
                    verdict = mismatch.with_anchor(verdict.anchor) if verdict.anchor else mismatch
    _report_verdict(verdict, payload, signer, as_json, head)


def _receipt_check(args: argparse.Namespace, reader: Any) -> tuple[Any, Any] | None:
    """With ``--receipt``: the anchors reader and the receipt's proof to check the payload against, in place
    of a single delivery's ``DeliveryRecorded`` log; None without it.

    Raises:
        ConfigurationError: ``--receipt`` with ``--offline``, no anchors known, an unreadable file.
        ChainCheckError, InvalidProofError: from the verifier.
    """
    if args.receipt is None:
        return None
    from node.errors import ConfigurationError
    from verifier import jsontext
    from verifier.receipt_check import AnchorsReader
    from verifier.receipts import ReceiptProof

    if reader is None:
        raise ConfigurationError("--receipt is checked on chain: it cannot be checked --offline")
    anchors: str | None = args.anchors
    if anchors is None:
        from node.deploy import load_deployment

        recorded = load_deployment(_home()).receipt_anchors
        if recorded is None:
            raise ConfigurationError("the deployment record names no receipt anchors; pass --anchors")
        anchors = recorded.address
    try:
        raw = jsontext.loads(_read_text(args.receipt))
    except (OSError, ValueError) as e:
        raise ConfigurationError(f"cannot read {args.receipt}: {e}") from None
    proof = ReceiptProof.from_answer(raw, anchors=anchors)
    return AnchorsReader(
        reader.rpc_url, anchors, chain_id=reader.chain_id, timeout=reader.rpc.timeout, block=reader.rpc.block
    ), proof


def _journaled_receipt(args: argparse.Namespace, reader: Any, delivery_id: bytes) -> tuple[Any, Any] | None:
    """The receipt ``delivery_id`` names in the receipt journal of this DXL_HOME's service, with a factory
    of the anchors reader, when the ledger checked is this home's deployment and holds no single delivery
    of that id; None otherwise (the check is then the ledger's alone).

    Only then: a single delivery's check, the common case, loads no database code, and a ledger named by
    --contract is not this home's service's, whose journal says nothing about it.

    Raises:
        ChainCheckError: the node fails.
    """
    if args.contract is not None or reader.status(delivery_id) != 0:
        return None
    from node.deploy import load_deployment

    anchors = load_deployment(_home()).receipt_anchors
    if anchors is None:
        return None
    from sqlalchemy import inspect

    from api.db import make_engine
    from api.receipts.journal import receipts_table
    from api.receipts.lookups import ReceiptReader
    from api.settings import load_api_settings
    from verifier.receipt_check import AnchorsReader

    engine = make_engine(load_api_settings().effective_database_url)
    try:
        if not inspect(engine).has_table(receipts_table.name):
            return None
        found = ReceiptReader(engine, anchored=_anchored(reader)).lookup([delivery_id], reader=None)
    finally:
        engine.dispose()
    if not found:
        return None
    address = anchors.address
    return found[0], lambda: AnchorsReader(
        reader.rpc_url, address, chain_id=reader.chain_id, timeout=reader.rpc.timeout, block=reader.rpc.block
    )


def _anchored(reader: Any) -> Any:
    """What the anchors on ``reader``'s node say a batch's anchor transaction anchored, for the journal's
    batches to be held to (:func:`api.receipts.service.anchored_batch`); None when this home's anchors cannot
    be reached there (the journal's rows are then all there is)."""
    from api.receipts.service import anchored_batch
    from node.deploy import anchors_client
    from node.endpoint import NodeEndpoint
    from node.errors import DxlError

    try:
        # Waited for as the reader of the check is, on the same node.
        endpoint = NodeEndpoint(reader.rpc_url, reader.chain_id)
        return anchored_batch(anchors_client(endpoint, _home(), request_timeout=reader.rpc.timeout))
    except DxlError:
        return None


def _report_verdict(
    verdict: Any, payload: Path, signer: str | None, as_json: bool, head: NodeHead | None = None
) -> NoReturn:
    if as_json:
        node = None if head is None else head.to_dict()
        checked = verdict.anchor is not None  # None: --offline, or a manifest found altered before the chain
        print(json.dumps({**verdict.to_dict(), "chain_checked": checked, "node": node}, indent=2))
    else:
        _print_verdict(verdict, payload, signer, head)
    raise _Exit(0 if verdict.ok else 1)


def reconcile_dir(
    directory: Path, signer: str | None = None, reader: Any = None, head: NodeHead | None = None
) -> dict[str, Any]:
    """Verify every ``X`` / ``X.manifest.json`` pair in ``directory`` (not recursive; dotfiles ignored).

    With a ``reader`` (:class:`verifier.onchain.LedgerReader`) each pair is also checked on chain,
    payloads whose delivery is not on chain go to ``unrecorded``, and ``recorded_but_missing`` lists the
    deliveries recorded under the manifests' grants that have no payload here (at most
    :data:`verifier.onchain.MAX_LISTED_DELIVERIES`; ``recorded_but_missing_truncated`` says if cut short).

    Returns:
        ``{"matched": [...], "mismatched": [...], "unrecorded": [...], "errors": [...], "unmanifested": [...],
        "missing_payloads": [...], "recorded_but_missing": [...], "chain": str | None, "node": {"rpc_url",
        "block", "block_timestamp"} | None (``head``: the node read, at its head as the check began),
        "ok": bool}``; ``ok``
        is true only when every payload matched and nothing is unpaired, unrecorded or unreadable.

    Raises:
        ChainCheckError: the chain cannot be consulted.
    """
    from verifier.errors import ManifestInconsistentError
    from verifier.manifest import load_manifest
    from verifier.verify import altered, check_delivery

    names = sorted(p.name for p in directory.iterdir() if not p.name.startswith(".") and p.is_file())
    manifests = {n.removesuffix(MANIFEST_SUFFIX) for n in names if n.endswith(MANIFEST_SUFFIX)}
    payloads = [n for n in names if not n.endswith(MANIFEST_SUFFIX)]
    orphans = manifests - set(payloads)  # manifests whose payload is missing
    report: dict[str, Any] = {
        "directory": str(directory),
        "matched": [],
        "mismatched": [],
        "errors": [],
        "unmanifested": [n for n in payloads if n not in manifests],
        "missing_payloads": sorted(m + MANIFEST_SUFFIX for m in orphans),
        "unrecorded": [],
        "recorded_but_missing": [],
        "recorded_but_missing_truncated": False,
        "chain": reader.source if reader is not None else None,
        "node": None if head is None else head.to_dict(),
    }
    grants: set[int] = set()
    present: set[bytes] = set()
    for name in payloads:
        if name not in manifests:
            continue
        entry: dict[str, Any] = {"payload": name, "manifest": name + MANIFEST_SUFFIX}
        try:
            try:
                manifest = load_manifest(directory / entry["manifest"])
            except ManifestInconsistentError as e:
                entry.update(altered(e).to_dict())
                report["mismatched"].append(entry)
                continue
            if manifest.grant_id is not None:
                grants.add(manifest.grant_id)
            present.add(manifest.delivery_id)
            if reader is None:
                verdict = check_delivery(directory / name, manifest, expected_signer=signer)
            else:
                from verifier.onchain import verify_payload_onchain

                verdict = verify_payload_onchain(directory / name, manifest, reader)
        # A ChainCheckError is a DxlError too: one inconsistent receipt is this pair's error, not the run's.
        except DxlError as e:
            report["errors"].append({**entry, "code": e.code, "message": e.message})
            continue
        entry.update(verdict.to_dict())
        key = (
            "matched"
            if verdict.ok
            else "unrecorded"
            if verdict.status is VerdictStatus.NOT_RECORDED
            else "mismatched"
        )
        report[key].append(entry)
    if reader is not None:
        # Manifests whose payload is missing still name grants to look under.
        for m in orphans:
            try:
                grant = load_manifest(directory / (m + MANIFEST_SUFFIX)).grant_id
            except DxlError:
                continue
            if grant is not None:
                grants.add(grant)
        found, truncated = reader.deliveries_for_grants(grants)
        report["recorded_but_missing"] = [
            {"delivery_id": "0x" + r.delivery_id.hex(), "grant_id": r.grant_id, **r.location()}
            for r in found
            if r.delivery_id not in present
        ]
        report["recorded_but_missing_truncated"] = truncated
    report["ok"] = not (
        report["mismatched"] or report["errors"] or report["unmanifested"] or report["missing_payloads"]
        or report["unrecorded"] or report["recorded_but_missing"]
    )  # fmt: skip
    return report


def reconcile(args: argparse.Namespace) -> int:
    """Verify a directory of deliveries: payload X pairs with manifest X.manifest.json.

    On chain it also reports payloads not recorded and deliveries recorded under the manifests' grants whose
    payload is not in the directory. The ledger is found as dxl verify finds it: with none known the command
    is refused (exit 2) unless --offline asks for the manifests alone.

    Reports matched and mismatched pairs, payloads without a manifest, manifests whose payload is missing,
    and pairs that could not be checked. Exit 0 only if everything matched and nothing is unpaired.
    """
    loaded()  # what reconcile loads beyond this, it loads as it goes
    directory: Path = args.directory
    as_json: bool = args.json
    if not directory.is_dir():
        _fail(f"{directory} is not a directory", code="IO_ERROR", as_json=as_json)
    with _errors_exit_2(as_json):
        reader = _ledger_reader(args)
        head = None if reader is None else _head(reader)
        report = reconcile_dir(directory, args.signer, reader, head)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        for e in report["matched"]:
            print(f"MATCH         {e['payload']}")
        for e in report["mismatched"]:
            reasons = "; ".join(f["message"] for f in e["findings"])
            print(f"{e['status']:<13} {e['payload']}: {reasons}")
        for e in report["errors"]:
            print(f"ERROR         {e['payload']}: {e['message']}")
        for n in report["unmanifested"]:
            print(f"NO MANIFEST   {n}")
        for n in report["missing_payloads"]:
            print(f"NO PAYLOAD    {n}")
        for e in report["unrecorded"]:
            print(f"NOT RECORDED  {e['payload']}")
        for r in report["recorded_but_missing"]:
            print(f"ONLY ON CHAIN {r['delivery_id']} (grant {r['grant_id']}, tx {r['tx_hash']})")
        more = " (list cut short)" if report["recorded_but_missing_truncated"] else ""
        print(
            f"{len(report['matched'])} matched, {len(report['mismatched'])} mismatched, "
            f"{len(report['errors'])} unreadable, {len(report['unmanifested'])} without manifest, "
            f"{counted(len(report['missing_payloads']), 'manifest')} without payload"
            + (
                f", {len(report['unrecorded'])} not recorded, "
                f"{len(report['recorded_but_missing'])} recorded but missing{more}; read from {head} (its "
                "head as the check began)"
                if report["chain"]
                else "; chain NOT CHECKED"
            )
        )
    return 0 if report["ok"] else 1


# --- command line ---------------------------------------------------------------------------------------

COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "commit": (commit, "Commit to PAYLOAD offline and write its delivery manifest (no chain needed)."),
    "verify": (verify, "Check PAYLOAD against its manifest and the ledger (exit 0 MATCH, 1 not, 2 error)."),
    "reconcile": (
        reconcile,
        "Verify a directory of deliveries: payload X pairs with manifest X.manifest.json.",
    ),
}


def _non_negative(value: str) -> int:
    # Decimal digits only: int() also reads "1_0" as 10, and "+5", " 5" or Arabic-Indic digits as 5, and the
    # id a signed manifest holds is to be the number written, not one int() made of it.
    digits = value.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        raise argparse.ArgumentTypeError(f"not an integer in decimal digits: {value!r}")
    if digits != value:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return int(value)


def _address(value: str) -> str:
    # An address as --contract takes one: a mistyped --signer was a verdict (UNTRUSTED, exit 1) on the
    # manifest, and one whose mixed case broke its EIP-55 checksum was taken as the address it resembles.
    from verifier.eth import is_address

    if not is_address(value):
        raise argparse.ArgumentTypeError(
            f"expected 0x and 40 hex digits (in mixed case, as EIP-55 checksums them), got {value!r}"
        )
    return value


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="Print a machine-readable JSON result on stdout.")


def _signer_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--signer",
        metavar="ADDRESS",
        type=_address,
        help="Provider's signing address; the manifest must be signed by it (else the verdict is UNTRUSTED).",
    )


def _chain_options(parser: argparse.ArgumentParser) -> None:
    chain = parser.add_argument_group("ledger to check against")
    chain.add_argument(
        "--rpc",
        metavar="URL",
        help="Node JSON-RPC URL [default: of DXL_RPC_URL and DXL_RPC_FAILOVER_URLS the first that answers "
        "and does not lag behind, else the embedded node].",
    )
    chain.add_argument(
        "--chain-id", type=_non_negative, help="Chain id the node must serve (refused otherwise)."
    )
    chain.add_argument(
        "--contract", metavar="ADDRESS", help="Ledger address [default: DXL_HOME/deployment.json]."
    )
    chain.add_argument(
        "--from-block",
        type=_non_negative,
        help="First block to search for receipts [default: the deployment block].",
    )
    chain.add_argument(
        "--offline",
        action="store_true",
        help="Do not consult the chain: payload against manifest only (without it, and with no ledger known, "
        "the check is refused).",
    )


@cache
def _help_width() -> int:
    """The width argparse would wrap help to: the terminal's (``COLUMNS`` first), else 80, less 2."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns) - 2
    try:
        return os.get_terminal_size().columns - 2
    except OSError:  # not a terminal
        return 80 - 2


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, told the width to wrap to. Left to find it, argparse imports :mod:`shutil` (bz2
    and lzma with it) to ask, as each option is declared: with :mod:`pathlib` (which ``dxl commit`` does
    without), a sixth of the start-up ``dxl commit`` spends before it reads a byte, a start-up every delivery
    pays and the whole-process comparison with ``openssl dgst`` counts."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_help_width())


def parser_for(command: str) -> argparse.ArgumentParser:
    """The argument parser of ``dxl COMMAND``; its description is the command's docstring."""
    function, _summary = COMMANDS[command]
    parser = argparse.ArgumentParser(
        prog=f"dxl {command}", description=(function.__doc__ or "").replace("\n    ", "\n").strip(),
        formatter_class=_HelpFormatter,
    )  # fmt: skip
    if command == "commit":
        parser.add_argument("payload", help="The payload file to commit to (read, never modified).")
        parser.add_argument(
            "--out", "-o", help="Where to write the manifest [default: PAYLOAD.manifest.json]."
        )
        parser.add_argument(
            "--alg", default="sha256", help="Hash algorithm: sha256 or sm3 (GB/T 32905) [default: sha256]."
        )
        parser.add_argument(
            "--format",
            default="auto",
            help="How to cut leaves: bytes (fixed chunks), jsonl (a leaf per line), csv (header = leaf 0, "
            "then a leaf per row), or auto (by extension: .jsonl/.ndjson, .csv, else bytes) [default: auto].",
        )
        parser.add_argument(
            "--chunk-size",
            default="1MiB",
            help="Chunk size for the bytes format, e.g. 1MiB, 64KiB, 4096 [default: 1MiB].",
        )
        parser.add_argument(
            "--leaves",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="Put every leaf hash in the manifest, so verify can name the differing chunks/records "
            "[default: on].",
        )
        parser.add_argument(
            "--delivery-id",
            metavar="HEX",
            help="32-byte delivery id; the ledger accepts only ids starting with the provider's department "
            "id (4 bytes, big-endian) [default: random, in --provider-id's namespace when given].",
        )
        parser.add_argument(
            "--provider-id",
            type=_non_negative,
            metavar="N",
            help="Provider's department id: the random delivery id is made in its namespace.",
        )
        parser.add_argument("--agreement", type=_non_negative, help="Agreement id.")
        parser.add_argument("--grant", type=_non_negative, help="Grant id under the agreement.")
        parser.add_argument("--provider", help="Provider department code.")
        parser.add_argument("--consumer", help="Consumer department code.")
        parser.add_argument("--keystore", help="Provider's signing keystore (V3 JSON); signs the manifest.")
        parser.add_argument("--password-file", help="File holding the keystore password.")
        _json_option(parser)
        return parser
    from pathlib import Path

    if command == "verify":
        parser.add_argument("payload", type=Path, help="The payload file received.")
        parser.add_argument(
            "--manifest", "-m", type=Path, help="The delivery manifest [default: PAYLOAD.manifest.json]."
        )
        _signer_option(parser)
        parser.add_argument("--delivery-id", metavar="HEX", help="The delivery this payload must be for.")
        parser.add_argument(
            "--receipt",
            type=Path,
            metavar="FILE",
            help="The payload was delivered as an anchored receipt: its GET /receipts/{id} answer (or its "
            "proof), checked on chain in place of a single delivery's record.",
        )
        parser.add_argument(
            "--anchors",
            metavar="ADDRESS",
            help="Receipt anchors address, with --receipt [default: DXL_HOME/deployment.json].",
        )
        _chain_options(parser)
    else:
        parser.add_argument("directory", type=Path, help="Directory of payloads and their manifests.")
        _signer_option(parser)
        _chain_options(parser)
    _json_option(parser)
    return parser


def main(argv: Sequence[str]) -> int:
    """Run ``dxl COMMAND ARGS...`` for one of :data:`COMMANDS`; returns the exit status.

    Raises:
        SystemExit: from argparse, for ``--help`` (0) and unparsable command lines (2).
    """
    command, *rest = argv
    parser = parser_for(command)
    args = parser.parse_args(rest)
    try:
        return COMMANDS[command][0](args)
    except _UsageError as e:
        parser.error(str(e))
    except _Exit as e:
        return e.status
