"""``dxl compile`` and ``dxl node start|stop|status``: the Solidity build and the embedded dev chain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dxl.commands.common import BlockTimeOption, cli_error, exits_on_error
from node.errors import DxlError
from verifier.text import counted

node_app = typer.Typer(
    help="Run the embedded development chain (anvil) under DXL_HOME/node/.", no_args_is_help=True
)


def compile_command(
    check: Annotated[
        bool, typer.Option("--check", help="Do not write; exit 1 listing how committed artifacts differ.")
    ] = False,
    solc: Annotated[
        Path | None,
        typer.Option(
            "--solc",
            help="Native solc executable of the pinned version instead of solcjs.",
            envvar="DXL_SOLC",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Compile contracts/src into contracts/artifacts/ (Cancun) and contracts/artifacts-london/ (London).

    The settings are contracts/compiler.json and contracts/compiler-london.json; the London build serves
    chains without PUSH0 (the local Clique network)."""
    from concurrent.futures import ThreadPoolExecutor

    from node.compiler import PROFILES, Solc, check_artifacts, compile_project

    try:
        compiler = Solc(solc)
        # One compiler process per profile at once: each build is a separate solc run of some 20 s of one
        # core (viaIR, 1,000 optimizer runs), so two cores finish both in the time of one.
        with ThreadPoolExecutor(len(PROFILES)) as pool:
            if check:
                found = pool.map(lambda p: check_artifacts(solc=compiler, profile=p), PROFILES)
                per_profile = dict(zip(PROFILES, found, strict=True))
            else:
                built = pool.map(lambda p: compile_project(solc=compiler, profile=p), PROFILES)
                builds = dict(zip(PROFILES, built, strict=True))
        if check:
            differences = [
                f"{profile.artifacts_dir.name}/{line}"
                for profile, lines in per_profile.items()
                for line in lines
            ]
            if as_json:
                typer.echo(json.dumps({"up_to_date": not differences, "differences": differences}))
            elif differences:
                typer.echo("artifacts differ from sources (run `dxl compile`):")
                for line in differences:
                    typer.echo(f"  {line}")
            else:
                typer.echo("artifacts are up to date")
            raise typer.Exit(1 if differences else 0)
    except DxlError as exc:
        raise cli_error(exc, as_json) from exc
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "artifacts": sorted(builds[PROFILES[0]].files),
                    "profiles": {p.name: str(p.artifacts_dir) for p in builds},
                    "warnings": [w for b in builds.values() for w in b.warnings],
                }
            )
        )
    else:
        for profile, build in builds.items():
            for warning in build.warnings:
                typer.secho(warning, err=True, fg=typer.colors.YELLOW)
            wrote = counted(len(build.files), "file")
            typer.echo(f"wrote {wrote} to {profile.artifacts_dir} ({profile.name})")


PortOption = Annotated[
    int | None, typer.Option("--port", help="RPC port on 127.0.0.1 (default: DXL_NODE_PORT, else 8545).")
]


@node_app.command("start")
def node_start(
    port: PortOption = None,
    block_time: BlockTimeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Start the node in the background and wait until it answers."""
    from node.anvil import DEFAULT_BLOCK_TIME_S, EmbeddedNode, NodeSettings
    from node.settings import load_settings

    try:
        # The home and port `dxl run` and the API use (DXL_* or .env), so a node started here is theirs.
        settings = load_settings()
        port = settings.node_port if port is None else port
        block_time = DEFAULT_BLOCK_TIME_S if block_time is None else block_time
        node = EmbeddedNode(settings.home, NodeSettings(port=port, block_time=block_time))
        endpoint = node.start()
    except DxlError as exc:
        raise cli_error(exc, as_json) from exc
    if as_json:
        typer.echo(json.dumps(node.describe()))
    else:
        typer.echo(
            f"node running: {endpoint.rpc_url} (chain id {endpoint.chain_id}), data in {node.data_dir}"
        )


@node_app.command("stop")
def node_stop(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Stop the node gracefully (its state is written to disk first)."""
    from node.anvil import EmbeddedNode

    with exits_on_error(as_json):
        stopped = EmbeddedNode(_home()).stop()
    if as_json:
        typer.echo(json.dumps({"stopped": stopped}))
    else:
        typer.echo("node stopped" if stopped else "no node was running")


@node_app.command("status")
def node_status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show whether the node runs; exit 1 if it does not."""
    from node.anvil import EmbeddedNode

    with exits_on_error(as_json):
        node = EmbeddedNode(_home())
    status = node.status()
    if as_json:
        typer.echo(json.dumps(node.describe()))
    elif status.running:
        typer.echo(
            f"running: pid {status.pid}, {status.rpc_url} (chain id {status.chain_id}), {status.data_dir}"
        )
    else:
        typer.echo(f"not running ({status.data_dir})")
    raise typer.Exit(0 if status.running else 1)


def _home() -> Path:
    """``DXL_HOME`` as the settings read it (the environment or a .env file), as every command takes it."""
    from node.settings import load_settings

    return load_settings().home


def register(app: typer.Typer) -> None:
    app.command("compile")(compile_command)
    app.add_typer(node_app, name="node")
