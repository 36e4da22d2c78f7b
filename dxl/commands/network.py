"""``dxl network up|down|status``: the local proof-of-authority network (three geth Clique signers).

A multi-node test engine (see :mod:`node.network`): ``dxl run --network`` runs the service against it, talking
to the first signer and failing over to the others.
"""

from __future__ import annotations

import json

import typer

from dxl.commands.common import JsonOption, cli_error
from node.errors import DxlError

network_app = typer.Typer(
    help="Run a local 3-signer proof-of-authority network (geth Clique) under DXL_HOME/network/.",
    no_args_is_help=True,
)


@network_app.command("up")
def network_up(as_json: JsonOption = False) -> None:
    """Create the network on first use, start its signers and wait until they are peered and sealing."""
    from node.network import LocalNetwork

    network = LocalNetwork()
    try:
        endpoint = network.up()
    except DxlError as exc:
        raise cli_error(exc, as_json) from exc
    if as_json:
        typer.echo(json.dumps(network.describe()))
        return
    typer.echo(f"network running: chain id {endpoint.chain_id}, data in {network.data_dir}")
    for member in network.status().members:
        typer.echo(f"  node{member.index}  {member.rpc_url}  signer {member.address}  pid {member.pid}")
    typer.echo(
        f"use it: dxl run --network, or DXL_RPC_URL={endpoint.rpc_url} DXL_CHAIN_ID={endpoint.chain_id} "
        f"DXL_RPC_FAILOVER_URLS={','.join(endpoint.failover_urls)}"
    )


@network_app.command("down")
def network_down(as_json: JsonOption = False) -> None:
    """Stop every signer (the chain stays on disk for the next `dxl network up`)."""
    from node.network import LocalNetwork

    stopped = LocalNetwork().down()
    if as_json:
        typer.echo(json.dumps({"stopped": stopped}))
    else:
        typer.echo(f"stopped {stopped} node(s)" if stopped else "no node of the network was running")


@network_app.command("status")
def network_status(as_json: JsonOption = False) -> None:
    """Show which signers run, their block and peers; exit 1 unless all run."""
    from node.network import LocalNetwork

    network = LocalNetwork()
    try:
        status = network.status()
    except DxlError as exc:
        raise cli_error(exc, as_json) from exc
    if as_json:
        typer.echo(json.dumps(network.describe()))
    elif not status.created:
        typer.echo(f"no network under {status.data_dir} (`dxl network up` creates it)")
    else:
        typer.echo(
            f"chain id {status.chain_id}, {status.running}/{len(status.members)} running, {status.data_dir}"
        )
        for m in status.members:
            state = f"pid {m.pid}, block {m.block}, {m.peers} peer(s)" if m.running else "stopped"
            typer.echo(f"  node{m.index}  {m.rpc_url}  {state}")
    raise typer.Exit(0 if status.created and status.running == len(status.members) else 1)


def register(app: typer.Typer) -> None:
    app.add_typer(network_app, name="network")
