"""The ``dxl`` command line. Each area registers its own commands; this module only assembles them."""

from __future__ import annotations

import functools

import typer
from typer.core import TyperGroup

app = typer.Typer(
    name="dxl",
    help="dxl - Data Exchange Ledger: auditable data exchange between government departments.",
    no_args_is_help=True,
    add_completion=False,
)

# One line per area; each module exposes register(app). Keep the imports inside so `dxl --help` stays fast.
_AREAS: tuple[str, ...] = (
    "dxl.commands.bench",
    "dxl.commands.ledger",
    "dxl.commands.toolchain",
    "dxl.commands.network",
    "dxl.commands.tokens",
    "dxl.bench",
    "dxl.commands.audit",
    "dxl.commands.practice",
    "dxl.commands.exchanges",
    "dxl.commands.catalog",
    "dxl.receipts",
    "dxl.catalog",
)


def _register_all() -> None:
    import importlib

    for name in _AREAS:
        importlib.import_module(name).register(app)


_register_all()


@functools.cache
def command() -> TyperGroup:
    """The command group that runs :data:`app` (what calling ``app`` runs: no completion options, so typer's
    ``get_command`` is ``get_group``), built once a process: typer builds it again on every call of ``app``,
    20 ms for these commands, which a process that runs many commands paid each time."""
    return typer.main.get_group(app)
