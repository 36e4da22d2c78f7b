"""What every ``dxl`` command shares: the ``--json`` option and its answer (:func:`emit`), and how a
:class:`~node.errors.DxlError` ends a command (its stable code on stdout for machines, or one red line on
stderr; exit code 2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from node.errors import DxlError

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
# The default is the embedded node's own (node.anvil.DEFAULT_BLOCK_TIME_S), named in the help rather than
# imported: the help must not load the node package at start-up.
BlockTimeOption = Annotated[
    float | None,
    typer.Option(
        "--block-time",
        help="Seconds between blocks while transactions wait (default: the embedded node's, 0.25).",
    ),
]


def emit(data: Any, as_json: bool, text: str) -> None:
    """A command's answer: ``data`` as JSON for ``--json`` (Chinese text as written, not escaped), else
    ``text``, the lines people read."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else text)


@contextmanager
def exits_on_error(as_json: bool) -> Iterator[None]:
    """Turn a :class:`DxlError` raised inside the block into the command's exit 2 (see :func:`cli_error`)."""
    try:
        yield
    except DxlError as exc:
        raise cli_error(exc, as_json) from None


def cli_error(exc: DxlError, as_json: bool) -> typer.Exit:
    """The exit for a command that failed with ``exc``; use as ``raise cli_error(exc, as_json) from exc``."""
    if as_json:
        typer.echo(json.dumps({"error": exc.code, "message": exc.message}))
    else:
        typer.secho(f"error: {exc.message}", err=True, fg=typer.colors.RED)
    return typer.Exit(2)
