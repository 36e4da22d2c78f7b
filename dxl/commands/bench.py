"""``dxl bench``: the benchmarks behind the README's performance figures.

Speed and memory targets are measured here, never asserted by timed tests. Each area adds its benchmark as
a sub-command of :data:`bench_app` (``dxl bench commit``, ``dxl bench audit``, ...); plain ``dxl bench``
runs them all with their default sizes.
"""

from __future__ import annotations

import typer

bench_app = typer.Typer(
    help="Run the benchmarks behind the README's performance figures (plain `dxl bench` runs them all).",
    invoke_without_command=True,
)


@bench_app.callback()
def _run_all(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is not None:
        return
    group = typer.main.get_group(bench_app)
    for name, command in sorted(group.commands.items()):
        typer.echo(f"== dxl bench {name}")
        ctx.invoke(command)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
