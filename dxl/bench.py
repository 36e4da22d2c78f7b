"""``dxl bench commit`` and ``dxl bench cli``: the command line as a user meets it, timed as whole processes.

Every figure is the wall time of a complete ``dxl`` process (interpreter start, imports, work, exit) started
with :mod:`subprocess`, repeated and reduced to the median, because that is what a script calling ``dxl``
per delivery pays. ``openssl dgst -sha256`` runs on the same page-cached file in the same run, alternating
with ``dxl commit``, so the ratio compares whole tools on one machine at one moment. Peak memory comes from
``wait4`` of one more ``dxl commit`` started by a small launcher (see :func:`peak_rss`).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from verifier.units import format_size, parse_size

_WRITE_BLOCK = 4 << 20
#: ``python -m dxl``: the installed entry point's code, without depending on where the script was put.
DXL = (sys.executable, "-m", "dxl")
#: The timed processes run as an installed dxl does, with its bytecode cached (the untimed warm-up run writes
#: what is missing); a shell that sets PYTHONDONTWRITEBYTECODE would otherwise recompile dxl on every run.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def make_payload(path: Path, size_bytes: int) -> None:
    """Write ``size_bytes`` of random data in bounded blocks (random so no layer can compress it)."""
    block = os.urandom(_WRITE_BLOCK)
    with open(path, "wb") as f:
        left = size_bytes
        while left > 0:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
            # Vary the block cheaply so the payload is not one block repeated.
            block = block[1:] + block[:1]


#: Runs a command and prints its peak RSS in KiB. On Linux a process's ``ru_maxrss`` also counts what its
#: parent had resident when it forked (exec keeps the old memory's high-water mark), so a child of this
#: process, typer and all, would seem to use at least as much as the bench itself; a child of this small
#: interpreter is floored at about 11 MiB instead, below what any dxl command uses.
_PEAK_RSS_LAUNCHER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_pid, status, usage = os.wait4(p.pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)"
)


@dataclass(frozen=True)
class ProcessRun:
    """One finished process: wall seconds and CPU seconds (user + system)."""

    seconds: float
    cpu_seconds: float


def run_process(command: Sequence[str], *, expect: int = 0) -> ProcessRun:
    """Run ``command`` to the end with its output discarded and measure it.

    Raises:
        RuntimeError: it exited with another status than ``expect``.
    """
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_ENV)
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    if process.returncode != expect:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}: {stderr.strip()}")
    return ProcessRun(seconds, usage.ru_utime + usage.ru_stime)


def peak_rss(command: Sequence[str]) -> int:
    """Peak resident set size of one run of ``command``, in bytes (see :data:`_PEAK_RSS_LAUNCHER`).

    Raises:
        RuntimeError: it exited with another status than 0.
    """
    done = subprocess.run(
        [sys.executable, "-S", "-c", _PEAK_RSS_LAUNCHER, *command],
        capture_output=True,
        text=True,
        env=_ENV,
        check=False,
    )
    status, kib = (int(x) for x in done.stdout.split())
    if status != 0:
        raise RuntimeError(f"{' '.join(command)} exited {status}")
    return kib * 1024


def median_times(command: Sequence[str], repeats: int, *, expect: int = 0) -> dict[str, float]:
    """Median wall and CPU seconds of ``repeats`` runs of ``command`` after one untimed warm-up run.

    CPU time is reported beside wall time because on a busy machine the wall time mostly measures the wait
    for a core; the CPU time is what the process itself costs.
    """
    run_process(command, expect=expect)
    runs = [run_process(command, expect=expect) for _ in range(repeats)]
    return {
        "seconds": statistics.median(r.seconds for r in runs),
        "cpu_seconds": statistics.median(r.cpu_seconds for r in runs),
    }


def bench_commit_processes(size_bytes: int, *, path: Path | None = None, repeats: int = 5) -> dict[str, Any]:
    """``dxl commit FILE`` against ``openssl dgst -sha256 FILE``, alternating, ``repeats`` times each.

    Returns:
        ``size_bytes``, the median seconds and GB/s of both, ``ratio`` (openssl seconds / dxl seconds, so
        above 1 means dxl is faster), every run's seconds, and ``peak_rss`` of dxl commit in bytes.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise FileNotFoundError("openssl is not on PATH")
    with tempfile.TemporaryDirectory(prefix="dxl-bench-") as tmp:
        if path is None:
            path = Path(tmp) / "payload.bin"
            make_payload(path, size_bytes)
        size_bytes = path.stat().st_size
        ours_cmd = [*DXL, "commit", str(path), "--out", str(Path(tmp) / "payload.manifest.json")]
        theirs_cmd = [openssl, "dgst", "-sha256", str(path)]
        run_process(theirs_cmd)  # the first read may fill the page cache; it is not timed
        ours: list[ProcessRun] = []
        theirs: list[ProcessRun] = []
        for _ in range(max(1, repeats)):
            theirs.append(run_process(theirs_cmd))
            ours.append(run_process(ours_cmd))
        ours_rss = peak_rss(ours_cmd)
    ours_s, theirs_s = (
        statistics.median(r.seconds for r in ours),
        statistics.median(r.seconds for r in theirs),
    )
    return {
        "size_bytes": size_bytes,
        "dxl_commit_seconds": ours_s,
        "openssl_seconds": theirs_s,
        "dxl_commit_gbps": size_bytes / ours_s / 1e9,
        "openssl_gbps": size_bytes / theirs_s / 1e9,
        "ratio": theirs_s / ours_s,
        "dxl_commit_cpu_seconds": statistics.median(r.cpu_seconds for r in ours),
        "openssl_cpu_seconds": statistics.median(r.cpu_seconds for r in theirs),
        "runs": {"dxl_commit": [r.seconds for r in ours], "openssl": [r.seconds for r in theirs]},
        "peak_rss": ours_rss,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }


def _record_delivery(node_endpoint: Any, payload: Path, manifest: Path, *, rpc_timeout: float) -> list[str]:
    """Deploy a fresh ledger on ``node_endpoint``, take one exchange up to a grant, commit ``payload`` signed
    by the provider into ``manifest`` and record it; the ``--rpc/--chain-id/--contract`` that find it."""
    from eth_account import Account

    from node.chain import LedgerClient
    from node.compiler import load_artifact
    from node.deploy import LEDGER_ARTIFACT
    from node.types import GovernanceAction, ShareType, SharingTerms, admission_data
    from verifier.commitment import commit_payload, new_salt
    from verifier.delivery_ids import new_delivery_id
    from verifier.leaves import Chunking, PayloadFormat
    from verifier.manifest import build_manifest, sign_manifest, write_manifest

    artifact = load_artifact(LEDGER_ARTIFACT)
    client = LedgerClient(node_endpoint, artifact.abi, request_timeout=rpc_timeout)
    governor, provider, consumer = Account.create(), Account.create(), Account.create()
    client.at(str(client.deploy(governor, artifact.bytecode, [governor.address], 1).contract_address))
    ids = {}
    for code, account in (("PROV", provider), ("CONS", consumer)):
        data = admission_data(code, code, account.address, os.urandom(32))
        result = client.transact(governor, "propose", int(GovernanceAction.ADMIT_DEPARTMENT), data)
        ids[code] = int(result.event("DepartmentAdmitted").args["departmentId"])
    resource = (
        client.transact(
            provider, "registerResource", os.urandom(32), os.urandom(32), int(ShareType.UNCONDITIONAL), 1
        )
        .event("ResourceRegistered")
        .args["resourceId"]
    )
    now = int(client.w3.eth.get_block("latest")["timestamp"])
    request_id = (
        client.transact(
            consumer,
            "requestAccess",
            resource,
            "benchmark",
            os.urandom(32),
            os.urandom(32),
            now,
            now + 86_400,
        )
        .event("AccessRequested")
        .args["requestId"]
    )
    terms = SharingTerms.read(client, request_id, deadline=now + 3_600)
    typed = terms.typed_data(chain_id=client.chain_id, verifying_contract=str(client.address))
    signatures = [bytes(a.sign_typed_data(full_message=typed).signature) for a in (provider, consumer)]
    agreement = (
        client.transact(consumer, "concludeAgreement", terms.as_tuple(), *signatures)
        .event("AgreementConcluded")
        .args["agreementId"]
    )
    grant = (
        client.transact(provider, "issueGrant", agreement, now + 86_400).event("GrantIssued").args["grantId"]
    )
    c = commit_payload(
        payload, salt=new_salt(), chunking=Chunking(PayloadFormat.JSONL, 1 << 20), keep_leaf_hashes=True
    )
    m = build_manifest(
        c, delivery_id=new_delivery_id(ids["PROV"]), grant_id=grant, provider="PROV", consumer="CONS"
    )
    write_manifest(manifest, sign_manifest(m, provider))
    client.transact(
        provider, "recordDelivery", m.delivery_id, grant, m.root, int(m.alg), m.byte_size, m.record_count
    )
    return [
        "--rpc",
        node_endpoint.rpc_url,
        "--chain-id",
        str(client.chain_id),
        "--contract",
        str(client.address),
    ]


def bench_cli_processes(repeats: int = 10, *, rpc_timeout: float) -> dict[str, Any]:
    """Median wall times of ``dxl --help``, ``dxl commit --help``, ``dxl commit`` of a small file and
    ``dxl verify`` of it against a delivery recorded on a throw-away embedded node (a MATCH, exit 0)."""
    from node.anvil import EmbeddedNode, NodeSettings, free_port

    result: dict[str, Any] = {"repeats": repeats, "cpus": os.cpu_count()}
    result["help"] = median_times([*DXL, "--help"], repeats)
    result["commit_help"] = median_times([*DXL, "commit", "--help"], repeats)
    with tempfile.TemporaryDirectory(prefix="dxl-bench-") as tmp:
        payload, manifest = Path(tmp) / "small.jsonl", Path(tmp) / "small.jsonl.manifest.json"
        payload.write_bytes(b"".join(b'{"id": %d, "benefit": "yes"}\n' % i for i in range(1000)))
        result["payload_bytes"] = payload.stat().st_size
        result["commit"] = median_times(
            [*DXL, "commit", str(payload), "--out", str(Path(tmp) / "other.json")], repeats
        )
        with EmbeddedNode(Path(tmp) / "home", NodeSettings(port=free_port(), block_time=None)) as node:
            chain = _record_delivery(node.endpoint, payload, manifest, rpc_timeout=rpc_timeout)
            verify = [*DXL, "verify", str(payload), "--manifest", str(manifest), *chain]
            result["verify"] = median_times(verify, repeats)
    result["load_average"] = os.getloadavg()[0]
    return result


def render_cli(result: dict[str, Any]) -> str:
    def row(label: str, key: str, note: str = "") -> str:
        t = result[key]
        return f"{label:<19} {t['seconds'] * 1000:6.0f} ms wall {t['cpu_seconds'] * 1000:6.0f} ms CPU{note}"

    return "\n".join(
        [
            f"median of {result['repeats']} whole processes, {result['cpus']} CPUs, load average "
            f"{result['load_average']:.1f}",
            row("dxl --help", "help"),
            row("dxl commit --help", "commit_help"),
            row("dxl commit", "commit", f"  ({format_size(result['payload_bytes'])} JSON lines)"),
            row("dxl verify", "verify", "  (that payload, a MATCH against a local node)"),
        ]
    )


def render_commit(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"payload        {format_size(result['size_bytes'])}, page-cached, {result['cpus']} CPUs, "
            f"load average {result['load_average']:.1f}",
            f"dxl commit     {result['dxl_commit_gbps']:.2f} GB/s ({result['dxl_commit_seconds']:.3f} s, "
            "median whole process)",
            f"openssl dgst   {result['openssl_gbps']:.2f} GB/s ({result['openssl_seconds']:.3f} s, median)",
            f"CPU time       dxl commit {result['dxl_commit_cpu_seconds']:.3f} s, "
            f"openssl {result['openssl_cpu_seconds']:.3f} s",
            f"ratio          {result['ratio']:.2f}x openssl",
            f"peak RSS       {format_size(result['peak_rss'])}",
        ]
    )


JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON result on stdout.")]


def bench_commit(
    size: Annotated[str, typer.Option("--size", help="Payload size to generate, e.g. 100M, 1G.")] = "1G",
    path: Annotated[
        Path | None, typer.Option("--path", help="Benchmark this existing file instead of generating one.")
    ] = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timed runs of each tool.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Whole-process `dxl commit` against `openssl dgst -sha256` on one file (median of alternating runs)."""
    try:
        size_bytes = parse_size(size)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    result = bench_commit_processes(size_bytes, path=path, repeats=repeats)
    typer.echo(json.dumps(result, indent=2) if as_json else render_commit(result))


def bench_cli(
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timed runs of each command.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Start-up and small-payload times of `dxl --help`, `dxl commit` and `dxl verify` (whole processes)."""
    from dxl.commands.common import cli_error
    from node.errors import DxlError
    from node.settings import load_settings

    try:
        wait = load_settings().rpc_timeout  # the throw-away node is waited for as any other (DXL_RPC_TIMEOUT)
    except DxlError as exc:
        raise cli_error(exc, as_json) from exc
    result = bench_cli_processes(repeats, rpc_timeout=wait)
    typer.echo(json.dumps(result, indent=2) if as_json else render_cli(result))


def register(app: typer.Typer) -> None:
    from dxl.commands.bench import bench_app

    bench_app.command("commit")(bench_commit)
    bench_app.command("cli")(bench_cli)
