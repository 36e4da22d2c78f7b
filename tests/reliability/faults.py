"""Fault injection during the load: one fault at a time, at random moments, each recorded with its target.

After each fault the harness brings the service back as an operator would (restart the killed process, resume
the paused node, free the disk) and waits until ``/healthz`` is ok before the next gap starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field

import httpx

from node.chain import Failover
from tests.reliability.processes import (
    ApiProcess,
    HarnessError,
    NetworkProcess,
    NodeProcess,
    PostgresCluster,
    SmallDisk,
)
from tests.reliability.profile import Profile
from tests.reliability.proxy import RpcFault, RpcProxy
from tests.reliability.records import FaultKind, FaultRecord
from verifier.text import counted

#: The embedded node's ``--state-interval`` (node.anvil.DEFAULT_STATE_INTERVAL_S).
STATE_INTERVAL_S = 5.0
#: How long before the predicted state save a "before save" kill lands: almost a whole interval is unsaved.
BEFORE_SAVE_MARGIN_S = 0.3


def schedule(profile: Profile, rng: random.Random, *, disk_available: bool) -> list[FaultKind]:
    """Every fault of the profile, in random order; node kills alternate between any moment and just before a
    state save."""
    kinds = [FaultKind.API_KILL] * profile.api_kills
    kinds += [
        FaultKind.NODE_KILL_BEFORE_SAVE if i % 2 else FaultKind.NODE_KILL for i in range(profile.node_kills)
    ]
    kinds += [FaultKind.RPC_LOST] * profile.rpc_lost + [FaultKind.RPC_DELAYED] * profile.rpc_delayed
    kinds += [FaultKind.NODE_PAUSE] * profile.node_pauses
    kinds += [FaultKind.MEMBER_KILL] * profile.member_kills
    kinds += [FaultKind.MEMBER_STALL] * profile.member_stalls
    kinds += [FaultKind.DATABASE_KILL] * profile.database_kills
    kinds += [FaultKind.DATABASE_PAUSE] * profile.database_pauses
    if disk_available:
        kinds += [FaultKind.DISK_FULL] * profile.disk_full
    rng.shuffle(kinds)
    return kinds


@dataclass
class FaultInjector:
    """Faults the embedded node and its proxy (``node``, ``proxy``) or the network (``network``), whichever
    the profile runs (the other is None)."""

    profile: Profile
    node: NodeProcess | None
    network: NetworkProcess | None
    api: ApiProcess
    proxy: RpcProxy | None
    disk: SmallDisk
    rng: random.Random
    #: The service's PostgreSQL server (the ``postgres`` profile), else None.
    database: PostgresCluster | None = None
    done: list[FaultRecord] = field(default_factory=list)
    #: Seconds each API restart took to be healthy again.
    api_restart_s: list[float] = field(default_factory=list)
    #: Seconds each restarted network member took to be peered on one chain with the others again.
    member_rejoin_s: list[float] = field(default_factory=list)

    async def run(self, plan: list[FaultKind], *, min_gap_s: float = 2.0, max_gap_s: float = 8.0) -> None:
        for kind in plan:
            await asyncio.sleep(self.rng.uniform(min_gap_s, max_gap_s))
            started = time.monotonic()
            target, detail, injected = await self._inject(kind)
            self.done.append(FaultRecord(kind, started, time.monotonic(), target, detail, injected))
            print(
                f"[reliability {time.strftime('%H:%M:%S')}] fault {len(self.done)}/{len(plan)} {kind.value}: "
                f"{target}, {detail}",
                flush=True,
            )
            await self.wait_healthy()

    @property
    def kills(self) -> int:
        killing = {
            FaultKind.API_KILL,
            FaultKind.NODE_KILL,
            FaultKind.NODE_KILL_BEFORE_SAVE,
            FaultKind.MEMBER_KILL,
            FaultKind.DATABASE_KILL,
        }
        return sum(1 for f in self.done if f.kind in killing)

    async def _inject(self, kind: FaultKind) -> tuple[str, str, bool]:
        """Injects one fault and heals it; returns its target, what happened, and whether it hit anything."""
        match kind:
            case FaultKind.API_KILL:
                pid = await self.api.kill()
                took = await self.api.start()
                self.api_restart_s.append(took)
                return f"dxl run pid {pid}", f"healthy again after {took:.1f} s", True
            case FaultKind.NODE_KILL | FaultKind.NODE_KILL_BEFORE_SAVE:
                node = self._node()
                detail = "at a random moment"
                if kind is FaultKind.NODE_KILL_BEFORE_SAVE:
                    save_at = await node.next_state_save(STATE_INTERVAL_S)
                    wait = save_at - BEFORE_SAVE_MARGIN_S - time.monotonic()
                    await asyncio.sleep(max(0.0, wait))
                    detail = f"{BEFORE_SAVE_MARGIN_S:g} s before the predicted state save"
                unsaved_s = time.time() - node.state_file.stat().st_mtime
                pid = await node.kill()
                await asyncio.sleep(self.rng.uniform(0.5, 3.0))
                await node.start()
                return f"anvil pid {pid}", f"{detail}; state file last written {unsaved_s:.1f} s before", True
            case FaultKind.MEMBER_KILL:
                network = self._network()
                # In turn from the service's own node (the first; the others are its failover URLs, tried in
                # this order): each kill then hits the node the service moved to after the one before, unless
                # an API restart put it back on the first.
                index = sum(1 for f in self.done if f.kind is FaultKind.MEMBER_KILL) % network.members
                pid = await network.kill(index)
                await asyncio.sleep(self.rng.uniform(0.5, 3.0))
                took = await network.restart(index)
                self.member_rejoin_s.append(took)
                role = " (the service's node)" if index == 0 else ""
                detail = f"peered on one chain again {took:.1f} s after its restart"
                return f"geth node{index}{role} pid {pid}", detail, True
            case FaultKind.MEMBER_STALL:
                network = self._network()
                index = network.index_of(self.api.node_in_use() or network.rpc_url)
                before = self.api.failovers()[Failover.STALLED]
                took = await network.stall(index, self.profile.stall_s)
                self.member_rejoin_s.append(took)
                left = self.api.failovers()[Failover.STALLED] - before
                detail = (
                    f"cut off from the others for {self.profile.stall_s:g} s, the service left it "
                    f"{counted(left, 'time')} for a stall; peered on one chain again "
                    f"{took:.1f} s after it was joined"
                )
                return f"geth node{index} (the service's node)", detail, True
            case FaultKind.DATABASE_KILL:
                database = self._database()
                pids = await database.kill()
                await asyncio.sleep(self.rng.uniform(0.5, 3.0))
                await database.restart()
                return f"postgres pid {pids[0]}", f"with its {len(pids) - 1} backends, then restarted", True
            case FaultKind.DATABASE_PAUSE:
                database = self._database()
                pids = database.pause()
                try:
                    await asyncio.sleep(self.profile.pause_s)
                finally:
                    database.resume(pids)
                detail = f"with its {len(pids) - 1} backends, SIGSTOP for {self.profile.pause_s:g} s"
                return f"postgres pid {pids[0]}", detail, True
            case FaultKind.RPC_LOST | FaultKind.RPC_DELAYED:
                proxy = self._proxy()
                fault = RpcFault.LOST if kind is FaultKind.RPC_LOST else RpcFault.DELAYED
                hit = proxy.arm(fault)
                try:
                    outcome = await asyncio.wait_for(hit, 120.0)
                except TimeoutError:
                    proxy.disarm()
                    return "eth_sendRawTransaction", "no transaction was sent within 120 s", False
                if fault is RpcFault.DELAYED:
                    await asyncio.sleep(proxy.delay_s)
                return (
                    "eth_sendRawTransaction",
                    f"answer {fault.value} (node answered {outcome.upstream_status})",
                    True,
                )
            case FaultKind.DISK_FULL:
                held = await asyncio.to_thread(self.disk.fill)
                try:
                    await asyncio.sleep(self.profile.disk_full_s)
                finally:
                    self.disk.drain()
                return str(self.disk.path), f"{held} bytes taken for {self.profile.disk_full_s:g} s", True
            case FaultKind.NODE_PAUSE:
                node = self._node()
                pid = node.pause()
                try:
                    await asyncio.sleep(self.profile.pause_s)
                finally:
                    node.resume(pid)
                return f"anvil pid {pid}", f"SIGSTOP for {self.profile.pause_s:g} s", True

    def _node(self) -> NodeProcess:
        if self.node is None:
            raise HarnessError("this profile runs no embedded node to fault")
        return self.node

    def _network(self) -> NetworkProcess:
        if self.network is None:
            raise HarnessError("this profile runs no network whose members could be killed")
        return self.network

    def _database(self) -> PostgresCluster:
        if self.database is None:
            raise HarnessError("this profile runs no PostgreSQL server to kill")
        return self.database

    def _proxy(self) -> RpcProxy:
        if self.proxy is None:
            raise HarnessError("this profile runs no JSON-RPC proxy to fault")
        return self.proxy

    async def wait_healthy(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=5.0) as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    answer = await client.get(f"{self.api.config.url}/healthz")
                    if answer.status_code == 200 and answer.json().get("status") == "ok":
                        return
                await asyncio.sleep(0.25)
