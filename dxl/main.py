"""The ``dxl`` entry point: reads the command name and loads only what that command needs.

``dxl``, ``dxl --help`` and the payload commands (``commit``, ``verify``, ``reconcile``, parsed with argparse
in :mod:`dxl.payload`) never import typer, pydantic, web3 or eth-account: a provider's script runs
``dxl commit`` once per delivery and an auditor ``dxl verify`` once per payload, and those imports alone took
over a second. Every other command is a typer app (:mod:`dxl.app`), imported only when named.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from node.errors import ConfigurationError

#: The commands ``dxl --help`` lists, with their summaries: for the typer commands the first line of their
#: help, for the payload commands :data:`dxl.payload.COMMANDS` (``tests/test_dxl_cli.py`` holds them equal).
OVERVIEW: tuple[tuple[str, str], ...] = (
    (
        "run",
        "Start the node, deploy the ledger, provision the demo consortium and serve the API until Ctrl-C.",
    ),
    (
        "status",
        "Whether the node answers, its chain id and block, and the recorded deployment. "
        "Exit 1 if not usable.",
    ),
    ("deploy", "Deploy the ledger (idempotent) with the keystore's governors, on a running node."),
    ("node", "Run the embedded development chain (anvil) under DXL_HOME/node/."),
    ("network", "Run a local 3-signer proof-of-authority network (geth Clique) under DXL_HOME/network/."),
    (
        "compile",
        "Compile contracts/src into contracts/artifacts/ (Cancun) and contracts/artifacts-london/ (London).",
    ),
    ("token", "Issue, revoke and list API tokens."),
    ("commit", "Commit to PAYLOAD offline and write its delivery manifest (no chain needed)."),
    ("verify", "Check PAYLOAD against its manifest and the ledger (exit 0 MATCH, 1 not, 2 error)."),
    ("reconcile", "Verify a directory of deliveries: payload X pairs with manifest X.manifest.json."),
    (
        "verify-receipt",
        "Check an anchored receipt's inclusion proof against the chain alone, without the service.",
    ),
    ("audit", "Audit trail: index, check, history, provenance, scorecards, reports."),
    (
        "catalog",
        "The catalog: register a resource with its metadata document, read and search entries, export and "
        "import the whole catalog (JSON or CSV).",
    ),
    ("request", "Access requests: ask a department for a resource under terms both sides sign."),
    (
        "demand",
        "Demand lists: publish what data your department needs, answer demands made of it, reject an "
        "answer that does not meet your demand, withdraw a demand you no longer need.",
    ),
    ("evaluation", "Mutual evaluation: score the other party of an agreement after a delivery."),
    (
        "inspection",
        "Sampling inspections: open, draw, present, record outcomes; recompute a sample from the chain.",
    ),
    (
        "bench",
        "Run the benchmarks behind the README's performance figures (plain `dxl bench` runs them all).",
    ),
)
PAYLOAD_COMMANDS = frozenset({"commit", "verify", "reconcile"})


def overview() -> str:
    """The text of ``dxl --help``."""
    width = max(len(name) for name, _ in OVERVIEW)
    lines = [
        "usage: dxl COMMAND [ARGS]...",
        "",
        "dxl - Data Exchange Ledger: auditable data exchange between government departments.",
        "",
        "commands:",
        *(f"  {name:<{width}}  {summary}" for name, summary in OVERVIEW),
        "",
        "`dxl COMMAND --help` explains a command.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dxl`` with ``argv`` (default: the process's arguments) and return its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(overview())
        return 0
    if args[0] in PAYLOAD_COMMANDS:
        from dxl import payload

        try:
            code = payload.main(args)
            sys.stdout.flush()  # output shorter than the pipe's buffer meets a closed pipe only here
            return code
        except SystemExit as e:  # argparse's --help and usage errors
            return e.code if isinstance(e.code, int) else 2
        except BrokenPipeError:
            return _reader_gone()
    from dxl.app import command

    try:
        command().main(args=args, prog_name="dxl")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    except Exception as exc:
        return _storage_full(exc, as_json="--json" in args)
    return 0


def _unreachable_database(exc: BaseException, url: str) -> ConfigurationError | None:
    """The error to end a command with when ``exc`` is a database that could not be opened at all (SQLAlchemy
    raises that with no statement: the server refused, the file's directory does not exist): a host, port or
    path of DXL_DATABASE_URL that is wrong, or its server down. None for any other error."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from node.errors import ConfigurationError

    if not isinstance(exc, OperationalError) or exc.statement is not None:
        return None
    shown = make_url(url).render_as_string(hide_password=True) if url else "DXL_DATABASE_URL"
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return ConfigurationError(f"the database {shown} (DXL_DATABASE_URL) cannot be opened: {reason}")


def _storage_full(exc: Exception, *, as_json: bool) -> int:
    """End a command that failed for want of disk space with one line (exit 2, as every DxlError ends a
    command) wherever the write was: the node's files, the keystore, the API database, its start-up; and one
    whose database could not be opened at all (:func:`_unreachable_database`).

    Raises:
        Exception: ``exc`` itself, when it is neither.
    """
    from pathlib import Path

    from dxl.commands.common import cli_error
    from dxl.home import dxl_home
    from node.errors import StorageFullError, storage_full_cause

    try:
        from api.settings import load_api_settings

        settings = load_api_settings()
        home, url = settings.home, settings.effective_database_url
    except Exception:  # settings that do not load: the command failed on them first
        home, url = dxl_home(), ""
    # Where dxl's SQLite databases are: SQLite's I/O errors count as "disk full" only where a disk is full.
    places = [home, *([Path(url.removeprefix("sqlite:///"))] if url.startswith("sqlite:///") else [])]
    cause = storage_full_cause(exc, places=places)
    if cause is not None:
        return cli_error(StorageFullError(home, cause), as_json).exit_code
    unreachable = _unreachable_database(exc, url)
    if unreachable is None:
        raise exc
    return cli_error(unreachable, as_json).exit_code


def _reader_gone() -> int:
    """End a command whose output's reader went away (``dxl reconcile --json | head``) as click ends the typer
    commands: exit 1, no traceback. Standard output is pointed at /dev/null first, so that the interpreter's
    last flush of what is still buffered does not fail on the closed pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 1


def run() -> None:
    """Console-script entry point (also ``python -m dxl``)."""
    payload_command = len(sys.argv) > 1 and sys.argv[1] in PAYLOAD_COMMANDS
    if payload_command:
        # The modules a payload command loads make some 10,000 objects, and the cyclic garbage collector
        # scanned them a dozen times while they loaded (1-2 ms of the 25 ms `dxl commit` takes to start, which
        # the whole-process comparison with `openssl dgst` counts). The command turns it back on once they
        # are in, leaving them out of its scans (dxl.payload.loaded).
        gc.disable()
    code = main()
    if payload_command:
        # A payload command has closed its files; once its output is flushed, what is left is the
        # interpreter's teardown of every module it loaded: 7 ms of a 1 GiB `dxl commit`'s 0.45 s, which the
        # whole-process comparison with `openssl dgst` counts. (An output that cannot be flushed ends as
        # every other command does.)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:
            sys.exit(code)
        os._exit(code)
    sys.exit(code)
