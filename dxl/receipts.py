"""``dxl verify-receipt`` (an anchored receipt's inclusion proof checked against the chain alone) and
``dxl bench receipts``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from dxl.commands.common import JsonOption, cli_error
from node.errors import ConfigurationError, DxlError


def verify_receipt(
    proof_file: Annotated[
        Path, typer.Argument(help="The JSON of GET /receipts/{id}, or its `proof` object.")
    ],
    rpc: Annotated[
        str | None,
        typer.Option(
            "--rpc",
            metavar="URL",
            help="Node JSON-RPC URL (default: of DXL_RPC_URL and DXL_RPC_FAILOVER_URLS the first that answers"
            " and does not lag behind, else the embedded node).",
        ),
    ] = None,
    chain_id: Annotated[
        int | None, typer.Option("--chain-id", help="Chain id the node must serve (refused otherwise).")
    ] = None,
    anchors: Annotated[
        str | None,
        typer.Option(
            "--anchors", metavar="ADDRESS", help="ReceiptAnchors address (default: DXL_HOME/deployment.json)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check an anchored receipt's inclusion proof against the chain alone, without the service.

    Exit 0 ANCHORED or ACKNOWLEDGED; 1 DISPUTED, NOT_ANCHORED or MISMATCH; 2 usage, I/O or chain-access error.
    The output names the node read and its head block as the check began; every read of the check is of
    that block.
    """
    from dxl.payload import rpc_timeout
    from node.endpoint import pin_to_head
    from verifier import jsontext
    from verifier.receipt_check import AnchorsReader, check_receipt
    from verifier.receipts import ReceiptProof

    try:
        try:
            raw = jsontext.loads(proof_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigurationError(f"cannot read {proof_file}: {e}") from None
        if not isinstance(raw, dict):
            raise ConfigurationError(f"{proof_file} holds no receipt proof object")
        rpc, chain_id, anchors = _target(rpc, chain_id, anchors)
        proof = ReceiptProof.from_answer(raw, anchors=anchors)
        reader = AnchorsReader(rpc, anchors, chain_id=chain_id, timeout=rpc_timeout())
        head = pin_to_head(reader.rpc)
        verdict = check_receipt(proof, reader)
    except DxlError as exc:
        raise cli_error(exc, as_json) from exc
    if as_json:
        typer.echo(json.dumps({**verdict.to_dict(), "node": head.to_dict()}))
    else:
        typer.echo(f"{verdict.status.value}: receipt {verdict.delivery_id} (grant {verdict.grant_id}, "
                   f"sequence {verdict.sequence}): {verdict.detail}")  # fmt: skip
        typer.echo(f"  node {head} (its head as the check began)")
    raise typer.Exit(0 if verdict.status.ok else 1)


def _target(rpc: str | None, chain_id: int | None, anchors: str | None) -> tuple[str, int | None, str]:
    """The flags, else the deployment record's anchors and the node every command reads
    (:func:`node.endpoint.configured_node`).

    Raises:
        NoLedgerError: no ``--anchors`` and no deployment record (a proof has nothing to check offline).
        ConfigurationError: no ``--anchors`` and a deployment record naming none.
    """
    from node.settings import load_settings

    settings = load_settings()
    if anchors is None:
        from node.deploy import NoLedgerError, deployment_path, load_deployment

        if not deployment_path(settings.home).is_file():
            raise NoLedgerError(
                deployment_path(settings.home),
                "name the receipt anchors with --anchors ADDRESS (and --rpc URL), or DXL_HOME the home "
                "`dxl deploy` recorded them in (a receipt's proof is checked on chain only: there is no "
                "--offline)",
            )
        deployment = load_deployment(settings.home)
        if deployment.receipt_anchors is None:
            raise ConfigurationError("the deployment record names no receipt anchors; pass --anchors")
        anchors = deployment.receipt_anchors.address
        chain_id = chain_id if chain_id is not None else deployment.chain_id
    if rpc is None:
        from node.endpoint import configured_node

        rpc = configured_node(settings).rpc_url
        if settings.rpc_url and chain_id is None:
            chain_id = settings.chain_id
    return rpc, chain_id, anchors


def bench_receipts(
    quick: Annotated[
        bool, typer.Option("--quick", help="Short modes (15 s each; a few minutes in all).")
    ] = False,
    seconds: Annotated[
        float | None,
        typer.Option(
            "--seconds",
            help="Seconds per HTTP mode (default 60, or 15 with --quick); without --quick the batched mode "
            "goes on until it recorded 1,000,000 receipts.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the results as JSON to this file.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Receipts per second through HTTP (one and 1,000 per request) beside one transaction per receipt, with
    time to final, gas per receipt, peak RSS and the node's and SHA-256's own limits, on a fresh node."""
    from api.bench import run_receipts_benchmark, table, write

    results = run_receipts_benchmark(
        quick=quick,
        seconds=seconds,
        environ=os.environ,
        progress=(lambda _m: None) if as_json else typer.echo,
    )
    write(results, out)
    typer.echo(json.dumps(results) if as_json else table(results))


def register(app: typer.Typer) -> None:
    from dxl.commands.bench import bench_app

    app.command("verify-receipt")(verify_receipt)
    bench_app.command("receipts")(bench_receipts)
