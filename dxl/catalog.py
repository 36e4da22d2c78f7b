"""``dxl bench catalog``: catalog search and export latency through HTTP as the catalog grows."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from dxl.commands.common import JsonOption


def bench_catalog(
    sizes: Annotated[
        str, typer.Option("--sizes", help="Catalog sizes to time at, comma-separated (generated resources).")
    ] = "1000,2500,5000",
    repeats: Annotated[
        int, typer.Option("--repeats", min=1, help="Timed requests of each kind per size.")
    ] = 5,
    quick: Annotated[
        bool, typer.Option("--quick", help="Sizes 100 and 300, 3 requests each (some 10 s).")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the results as JSON to this file.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """GET /resources (first page, text searches, share-type and owner filters) and the JSON and CSV export,
    timed through HTTP at growing catalog sizes, on a fresh node and service."""
    from api.catalog_bench import run_catalog_benchmark, table

    try:
        wanted = [100, 300] if quick else [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise typer.BadParameter(f"{sizes!r} is not a list of numbers", param_hint="--sizes") from None
    if not wanted or min(wanted) < 1:
        raise typer.BadParameter("give at least one size of 1 or more", param_hint="--sizes")
    results = run_catalog_benchmark(
        sizes=wanted,
        repeats=3 if quick else repeats,
        environ=os.environ,
        progress=(lambda _m: None) if as_json else typer.echo,
    )
    if out is not None:
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    typer.echo(json.dumps(results) if as_json else table(results))


def register(app: typer.Typer) -> None:
    from dxl.commands.bench import bench_app

    bench_app.command("catalog")(bench_catalog)
