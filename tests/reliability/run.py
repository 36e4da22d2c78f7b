"""``make reliability``: bring up a node and the RPC proxy (or the local proof-of-authority network) and
``dxl run`` (``--network``) in a fresh DXL_HOME, run the load with the faults, recover, replay, count on the
chain, fuzz, report. Exit 1 when any counter is nonzero, 2 when the
run itself could not be carried out (a harness error, or a run short of its profile: faults, writes or
schemathesis pairs not reached)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from node.anvil import DXL_CHAIN_ID, free_port
from node.network import NETWORK_CHAIN_ID
from tests.reliability.counting import judge, read_events, receipts
from tests.reliability.faults import FaultInjector, schedule
from tests.reliability.fuzz import fuzz
from tests.reliability.load import ExchangeWalker, LoadState, ServiceClient
from tests.reliability.processes import (
    ApiConfig,
    ApiProcess,
    HarnessError,
    NetworkProcess,
    NodeProcess,
    PostgresCluster,
    SmallDisk,
)
from tests.reliability.profile import Profile, selected_profile
from tests.reliability.proxy import RpcProxy
from tests.reliability.receipts import LOOKUP_PAGE, ReceiptVerdict, judge_receipts, posted, read_batches
from tests.reliability.records import WriteRecord
from tests.reliability.report import Summary, shortfall, summarize

#: The database's filesystem. A full run's database reaches some 25 MiB, and SQLite's WAL beside it grows to
#: 160 MB between two checkpoints (api/db.py): on 64 MiB the WAL filled the disk by itself, outside the
#: injected faults, and a restart could not replay it. The faults fill whatever is free, whatever the size.
DISK_MIB = 256
PROGRESS_EVERY_S = 15.0


def say(text: str) -> None:
    print(f"[reliability {time.strftime('%H:%M:%S')}] {text}", flush=True)


@dataclass(frozen=True)
class Ledger:
    address: str
    block: int


async def run(profile: Profile, workdir: Path, seed: int, started: float) -> Summary:
    home = workdir / "home"
    home.mkdir(parents=True)
    disk = SmallDisk(workdir / "db", DISK_MIB)
    postgres = (
        PostgresCluster(Path(tempfile.gettempdir()) / f"{workdir.name}-postgres")
        if profile.postgres
        else None
    )
    if postgres is None and not disk.mount():
        say(f"disk-full faults skipped: cannot mount a tmpfs ({disk.why_not})")
    chain: NodeProcess | NetworkProcess
    proxy: RpcProxy | None = None
    if profile.network:
        chain, chain_id = NetworkProcess(home), NETWORK_CHAIN_ID
    else:
        chain, chain_id = NodeProcess(home, free_port()), DXL_CHAIN_ID
        proxy = RpcProxy(chain.rpc_url, delay_s=profile.rpc_delay_s)
    api: ApiProcess | None = None
    try:
        await chain.start()
        # On the network the service talks to the signers themselves (`dxl run --network` sets its URLs).
        api_rpc_url = await proxy.start() if proxy is not None else chain.rpc_url
        if postgres is not None:
            database_url = await postgres.start()
            say(f"the service's database: PostgreSQL at {database_url}")
        else:
            database_url = f"sqlite:///{disk.path if disk.mounted else home}/dxl.sqlite3"
        api = ApiProcess(
            ApiConfig(home, free_port(), api_rpc_url, chain_id, database_url, workdir / "api.log",
                      network=profile.network)
        )  # fmt: skip
        how = "via proxy" if proxy is not None else "on the network's first signer, the others as failover"
        say(f"dxl run starting: DXL_HOME {home}, node {chain.rpc_url}, API {how} {api_rpc_url}")
        took = await api.start()
        say(f"dxl run healthy after {took:.1f} s on {api.config.url}")
        return await _attack(profile, seed, chain, proxy, api, disk, postgres, home, started)
    finally:
        if api is not None:
            await api.stop()
        if proxy is not None:
            await proxy.stop()
        await chain.stop()
        if postgres is not None:
            await postgres.stop(keep_log=workdir / "postgres.log")
        if disk.mounted:  # the API's database is evidence: keep it beside the logs
            shutil.copytree(disk.path, workdir / "api-db", dirs_exist_ok=True)
        disk.unmount()


async def _attack(
    profile: Profile,
    seed: int,
    chain: NodeProcess | NetworkProcess,
    proxy: RpcProxy | None,
    api: ApiProcess,
    disk: SmallDisk,
    database: PostgresCluster | None,
    home: Path,
    started: float,
) -> Summary:
    tokens = {
        name.removeprefix("demo-"): entry["token"]
        for name, entry in json.loads((home / "secrets" / "demo-tokens.json").read_text()).items()
    }
    deployment = json.loads((home / "deployment.json").read_text())
    ledger = Ledger(str(deployment["address"]), int(deployment["block_number"]))
    rng = random.Random(seed)
    state = LoadState()
    clients = [
        ServiceClient(api.config.url, tokens, state, random.Random(rng.random()))
        for _ in range(profile.clients)
    ]
    injector = FaultInjector(
        profile,
        chain if isinstance(chain, NodeProcess) else None,
        chain if isinstance(chain, NetworkProcess) else None,
        api,
        proxy,
        disk,
        random.Random(rng.random()),
        database,
    )
    plan = schedule(profile, rng, disk_available=disk.mounted)
    say(f"load: {profile.clients} clients, target {profile.target_writes} writes; faults: {len(plan)}")
    began = time.monotonic()
    walkers = [asyncio.create_task(ExchangeWalker(c, c.rng).run()) for c in clients]
    faults = asyncio.create_task(injector.run(plan))
    try:
        await _until_done(profile, state, injector, faults, len(plan), began)
        load_s = time.monotonic() - began
        # What the load reached when it ended, before recovery adds to it.
        injected, reached = sum(1 for f in injector.done if f.injected), state.acknowledged_writes()
        state.stopping.set()
        state.give_up_at = time.monotonic() + profile.recovery_s
        if not faults.done():
            faults.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await faults
        elif faults.exception() is not None:
            raise faults.exception()  # type: ignore[misc]
        await _ensure_up(chain, api, injector)
        say("load stopped; clients finish their writes with the same keys")
        # A client stuck in one request past the recovery time is cut off: its write stays unresolved.
        _, stuck = await asyncio.wait(walkers, timeout=profile.recovery_s)
        for task in stuck:
            task.cancel()
        unsettled = [w for w in state.writes if not w.settled]
        say(f"recovery: {len(unsettled)} writes without a final answer are asked again")
        state.give_up_at = time.monotonic() + profile.recovery_s
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(clients[i % len(clients)].settle(w) for i, w in enumerate(unsettled))),
                profile.recovery_s,
            )
        replay_differs = await _replay(clients, state.writes) + _twins_differ(state.twins)
        txpool_left = await _quiesce(chain.rpc_urls)
        await chain.ensure_running()  # on the network: every member on one chain before it is counted
        say("counting the chain's events")
        events = await asyncio.to_thread(read_events, chain.rpc_url, ledger.address, ledger.block)
        verdict = judge(state.writes, events)
        receipt_verdict = await _judge_receipts(clients[0], chain.rpc_url, deployment, ledger, profile)
        lost_receipts = await asyncio.to_thread(receipts, chain.rpc_url, verdict.lost_transactions)
        for key, text in replay_differs:
            verdict.answer_differs(key, text)
        # At least a minute of fuzzing, whatever the load left of the run's budget.
        budget = max(60.0, min(profile.fuzz_budget_s, profile.run_budget_s - (time.monotonic() - started)))
        say(f"schemathesis as {len(tokens) + 1} roles (budget {budget:.0f} s)")
        fuzzed = await asyncio.to_thread(
            fuzz, api.config.url, tokens, examples=profile.fuzz_examples, budget_s=budget
        )
    finally:
        for task in walkers:
            task.cancel()
        for client in clients:
            await client.aclose()
    return summarize(
        profile=profile.name, writes=state.writes, reads=state.reads, twins=[t for _, t in state.twins],
        faults=injector.done,
        kills=injector.kills, verdict=verdict, receipts=receipt_verdict, fuzz=fuzzed,
        short=shortfall(profile, planned=len(plan), injected=injected, writes=reached, fuzz=fuzzed),
        extra={
            "seed": seed, "load_s": round(load_s, 1), "clients": profile.clients,
            "chain_events": len(events), "txpool_left": txpool_left,
            "lost_transaction_receipts": lost_receipts,
            "api_restart_s": [round(s, 1) for s in injector.api_restart_s],
            "member_rejoin_s": [round(s, 1) for s in injector.member_rejoin_s],
            "api_failovers": {str(cause): n for cause, n in api.failovers().items()},
            "chain": "local network, 3 geth Clique signers" if profile.network else "embedded anvil",
            "database": "PostgreSQL" if profile.postgres else "SQLite",
            "disk_full": "tmpfs" if disk.mounted else f"not injected: {disk.why_not or 'not in the profile'}",
        },
    )  # fmt: skip


async def _until_done(
    profile: Profile,
    state: LoadState,
    injector: FaultInjector,
    faults: asyncio.Task[None],
    planned: int,
    began: float,
) -> None:
    last = began
    while True:
        await asyncio.sleep(1.0)
        now = time.monotonic()
        if faults.done() and (
            faults.exception() is not None or state.acknowledged_writes() >= profile.target_writes
        ):
            return
        if now - began > profile.max_load_s:
            say(f"load capped at {profile.max_load_s:g} s")
            return
        if now - last >= PROGRESS_EVERY_S:
            last = now
            say(
                f"{now - began:5.0f} s: {state.acknowledged_writes()} writes acknowledged, "
                f"{len(injector.done)}/{planned} faults, {len(state.reads)} reads"
            )


async def _ensure_up(chain: NodeProcess | NetworkProcess, api: ApiProcess, injector: FaultInjector) -> None:
    """After a cancelled fault: the nodes and the API run again (a paused node was resumed by the fault)."""
    await chain.ensure_running()
    if api.pid is None:
        await api.start()
    await injector.wait_healthy()


async def _judge_receipts(
    client: ServiceClient, rpc_url: str, deployment: dict[str, Any], ledger: Ledger, profile: Profile
) -> ReceiptVerdict:
    """Waits (up to the recovery time) for every acknowledged receipt to be final, then counts them against
    the batches the chain anchored."""
    acknowledged, undecided = posted(client.state.writes)
    anchors = (deployment.get("receipt_anchors") or {}).get("address")
    if not acknowledged:
        return ReceiptVerdict()
    if anchors is None:
        raise HarnessError("receipts were acknowledged but the deployment names no ReceiptAnchors contract")
    say(f"receipts: waiting for {len(acknowledged)} acknowledged receipts to be anchored")
    ids = sorted(acknowledged)
    deadline = time.monotonic() + profile.recovery_s
    answers: dict[str, dict[str, Any]] = {}
    while True:
        answers = {}
        for start in range(0, len(ids), LOOKUP_PAGE):
            body = {"delivery_ids": ids[start : start + LOOKUP_PAGE]}
            attempt, parsed = await client.ask("auditor", "/receipts/lookup", body)
            if attempt.status == 200 and isinstance(parsed, dict):
                answers |= {str(r["delivery_id"]).lower(): r for r in parsed["receipts"]}
        final = sum(1 for r in answers.values() if r.get("status") == "final")
        if final == len(ids) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)
    batches = await asyncio.to_thread(read_batches, rpc_url, str(anchors), ledger.block)
    return judge_receipts(acknowledged, undecided, answers, batches)


async def _replay(clients: list[ServiceClient], writes: list[WriteRecord]) -> list[tuple[str, str]]:
    """Every acknowledged write sent again with its key: the answer must be the same 2xx, same transaction and
    record. Returns the differences."""
    differs: list[tuple[str, str]] = []
    gate = asyncio.Semaphore(8)
    acknowledged = [w for w in writes if w.acknowledged and w.markers]

    async def one(client: ServiceClient, write: WriteRecord) -> None:
        async with gate:
            # No answer at all (a pooled connection to an API process killed earlier) is not an answer that
            # differs: asked again, as any client would.
            for _ in range(3):
                attempt, body = await client.replay(write)
                if attempt.status is not None:
                    break
        again = WriteRecord(write.key, write.kind, write.principal, write.method, write.path, write.body, [])
        again.final_status, again.final_body = attempt.status, body
        if (attempt.status, again.answered_hash(), again.answered_id()) != (
            write.final_status,
            write.answered_hash(),
            write.answered_id(),
        ):
            differs.append(
                (
                    write.key,
                    f"{write.kind} {write.key}: answered {write.final_status} tx {write.answered_hash()} "
                    f"id {write.answered_id()}, replayed {attempt.status} "
                    f"{attempt.code or attempt.error or ''} "
                    f"tx {again.answered_hash()} id {again.answered_id()}",
                )
            )

    say(f"replaying {len(acknowledged)} acknowledged writes with their keys")
    await asyncio.gather(*(one(clients[i % len(clients)], w) for i, w in enumerate(acknowledged)))
    return differs


def _twins_differ(twins: list[tuple[WriteRecord, WriteRecord]]) -> list[tuple[str, str]]:
    """Two sends of one key at once must end with the same answer (when both ended)."""
    return [
        (
            first.key,
            f"{first.kind} {first.key}: sent twice at once, answered {first.final_status} "
            f"{first.answered_hash()} and {twin.final_status} {twin.answered_hash()}",
        )
        for first, twin in twins
        if first.settled
        and twin.settled
        and (first.final_status, first.answered_hash(), first.answered_id())
        != (twin.final_status, twin.answered_hash(), twin.answered_id())
    ]


async def _quiesce(rpc_urls: list[str], *, timeout: float = 60.0) -> int:
    """Waits until the pools of every node have been empty for 3 s; returns what is left in them at the
    timeout."""
    left = -1
    quiet_since: float | None = None
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=10.0) as client:
        while time.monotonic() < deadline:
            left = 0
            for url in rpc_urls:
                answer = await client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "txpool_status"})
                status: dict[str, Any] = answer.json().get("result", {})
                left += int(status.get("pending", "0x0"), 16) + int(status.get("queued", "0x0"), 16)
            if left:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= 3.0:
                return 0
            await asyncio.sleep(0.5)
    return left


async def _main(profile: Profile, workdir: Path, seed: int, started: float) -> Summary:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await run(profile, workdir, seed, started)


def main() -> int:
    try:
        profile = selected_profile()
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    seed = int(os.environ.get("RELIABILITY_SEED") or time.time_ns() % 2**32)
    workdir = Path(tempfile.mkdtemp(prefix="dxl-reliability-"))
    report = Path(os.environ.get("RELIABILITY_REPORT") or workdir / "report.json")
    say(f"profile {profile.name}, seed {seed}, work directory {workdir}")
    started = time.monotonic()
    try:
        summary = asyncio.run(_main(profile, workdir, seed, started))
    except HarnessError as exc:
        print(f"reliability run could not be carried out: {exc}", file=sys.stderr)
        return 2
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("reliability run interrupted; its processes are stopped", file=sys.stderr)
        return 2
    finally:
        network_logs = (workdir / "home" / "network").glob("node*.log")
        for log in [workdir / "home" / "node" / "anvil.log", *network_logs]:
            if log.exists():
                shutil.copy(log, workdir / log.name)
        if not os.environ.get("RELIABILITY_KEEP"):
            shutil.rmtree(workdir / "home", ignore_errors=True)
    summary.details["duration_s"] = round(time.monotonic() - started, 1)
    summary.write_json(report)
    say(f"report {report}; logs in {workdir}")
    if "api_failovers" in summary.details:
        say(f"the service moved to another node: {summary.details['api_failovers']} (by cause)")
    if summary.short:
        say(f"short of the {profile.name} profile: {'; '.join(summary.short)}")
    print(summary.line(), flush=True)
    return summary.exit_status()
