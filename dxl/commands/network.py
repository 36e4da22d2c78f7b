"""``dxl network up|down|status``: the local proof-of-authority network (three geth Clique signers).

A multi-node test engine (see :mod:`node.network`): ``dxl run --network`` runs the service against it, talking
to the first signer and failing over to the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dxl.commands.common import JsonOption, cli_error
from node.errors import DxlError
from verifier.text import counted

network_app = typer.Typer(
    help="Run a local 3-signer proof-of-authority network (geth Clique) under DXL_HOME/network/.",
    no_args_is_help=True,
)


@network_app.command("up")
def network_up(
    rpc_port: Annotated[
        int | None,
        typer.Option(
            "--rpc-port",
            min=0,
            max=65_435,
            help="RPC port of the first signer on 127.0.0.1, the next ones for the others (their engine API "
            "100 above); 0 picks free ports. Chosen when the network is created (default: 8645).",
        ),
    ] = None,
    p2p_port: Annotated[
        int | None,
        typer.Option(
            "--p2p-port",
            min=1,
            max=65_533,
            help="Peer-to-peer port of the first signer, the next ones for the others (default: 30411).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create the network on first use, start its signers and wait until they are peered and sealing."""
    from node.errors import ConfigurationError
    from node.network import DEFAULT_P2P_PORT, DEFAULT_RPC_PORT, LocalNetwork
    from node.settings import load_settings

    try:
        settings = load_settings()
        network = LocalNetwork(
            settings.home,
            rpc_port=DEFAULT_RPC_PORT if rpc_port is None else rpc_port,
            p2p_port=DEFAULT_P2P_PORT if p2p_port is None else p2p_port,
            binary=settings.geth,
        )
        if network.created and (rpc_port is not None or p2p_port is not None):
            # Ports are recorded at creation and bound again at every start: another choice later is refused
            # rather than silently ignored.
            first = network.members()[0]
            if (rpc_port not in (None, 0, first.rpc_port)) or (p2p_port not in (None, first.p2p_port)):
                raise ConfigurationError(
                    f"the network under {network.data_dir} was created with RPC port {first.rpc_port} and "
                    f"peer-to-peer port {first.p2p_port} for node0; ports are chosen when a network is "
                    "created (stop it and delete that directory to create another)"
                )
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

    try:
        stopped = LocalNetwork(_home()).down()
    except DxlError as exc:
        raise cli_error(exc, as_json) from exc
    if as_json:
        typer.echo(json.dumps({"stopped": stopped}))
    else:
        typer.echo(f"stopped {counted(stopped, 'node')}" if stopped else "no node of the network was running")


@network_app.command("status")
def network_status(as_json: JsonOption = False) -> None:
    """Show which signers run, their block and peers; exit 1 unless all run."""
    from node.network import LocalNetwork

    try:
        network = LocalNetwork(_home())
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
            peers = "peers unknown" if m.peers is None else counted(m.peers, "peer")
            state = f"pid {m.pid}, block {m.block}, {peers}" if m.running else "stopped"
            typer.echo(f"  node{m.index}  {m.rpc_url}  {state}")
    raise typer.Exit(0 if status.created and status.running == len(status.members) else 1)


def _home() -> Path:
    """``DXL_HOME`` as the settings read it (the environment or a .env file), as every command takes it."""
    from node.settings import load_settings

    return load_settings().home


def register(app: typer.Typer) -> None:
    app.add_typer(network_app, name="network")
