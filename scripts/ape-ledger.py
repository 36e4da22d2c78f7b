"""`ape run ape-ledger --network ethereum:dxl-local:node`: the recorded ledger's departments, via ape.

A smoke check that ape sees the deployed contract with the project's ABIs: it reads the address from
``$DXL_HOME/deployment.json`` (default ``./.dxl``), refuses a record made on another chain, and reads
``departmentCount()`` and each ``department(id)``. Runs under the separate ape venv (``make ape``), not
``.venv``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from ape import chain, project
from ape.cli import ConnectedProviderCommand, network_option


def _deployment() -> dict[str, object]:
    record = Path(os.environ.get("DXL_HOME") or ".dxl").resolve() / "deployment.json"
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise click.ClickException(
            f"no usable deployment record at {record} ({exc}); run `dxl deploy`"
        ) from exc
    if not isinstance(data, dict) or "address" not in data:
        raise click.ClickException(f"{record} has no contract address")
    return data


@click.command(cls=ConnectedProviderCommand)
@network_option()
def cli() -> None:
    record = _deployment()
    if record.get("chain_id") != chain.chain_id:
        raise click.ClickException(
            f"deployment record is for chain {record.get('chain_id')}, connected to {chain.chain_id}: "
            "point DXL_HOME at this network's record"
        )
    ledger = project.DataExchangeLedger.at(record["address"])
    count = ledger.departmentCount()
    click.echo(f"chain {chain.chain_id} block {chain.blocks.head.number} ledger {ledger.address}")
    click.echo(f"departmentCount() = {count}")
    for department_id in range(1, count + 1):
        department = ledger.department(department_id)
        code = bytes(department.code).rstrip(b"\0").decode("utf-8", "replace")
        click.echo(f"  {department_id}: {code} {department.name} signer={department.signer}")
