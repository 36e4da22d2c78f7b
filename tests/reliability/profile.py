"""How hard a run pushes: ``RELIABILITY_PROFILE=quick`` (under 10 minutes), ``network`` (under 10 minutes,
against ``dxl run --network``: three geth Clique signers), ``postgres`` (the quick profile with the service's
database in PostgreSQL) or the default ``full`` profile."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    #: Concurrent clients during the load.
    clients: int
    #: The load runs until this many write requests were answered 2xx and every fault was injected.
    target_writes: int
    #: Hard cap on the load phase, whatever is left undone (the report says what was reached).
    max_load_s: float
    api_kills: int
    #: Node kills; every other one is timed just before the node's periodic state save.
    node_kills: int
    #: ``eth_sendRawTransaction`` forwarded to the node but its answer dropped.
    rpc_lost: int
    #: ``eth_sendRawTransaction`` forwarded to the node and its answer held for ``rpc_delay_s``.
    rpc_delayed: int
    disk_full: int
    node_pauses: int
    #: ``kill -9`` of a member of the local proof-of-authority network, restarted 0.5 to 3 s later; the
    #: members are hit in turn, the service's own node (the first) first.
    member_kills: int = 0
    #: The member the service uses cut off from the others for ``stall_s`` (it answers and mines nothing, as
    #: in a network partition), then joined again.
    member_stalls: int = 0
    #: ``kill -9`` of the service's PostgreSQL server with its backends, restarted on its data 0.5 to 3 s
    #: later (the ``postgres`` profile only).
    database_kills: int = 0
    #: ``SIGSTOP`` of that server with its backends for ``pause_s`` (the ``postgres`` profile only).
    database_pauses: int = 0
    #: Against ``dxl run --network`` (node.network, three signers; the others are the service's failover
    #: URLs) instead of the embedded node behind the JSON-RPC proxy.
    network: bool = False
    #: The service's database (its journal, keys, receipts and audit index): a private PostgreSQL cluster
    #: started for the run (``scripts/ci-postgres.sh``) instead of SQLite on the small disk.
    postgres: bool = False
    rpc_delay_s: float = 30.0
    pause_s: float = 15.0
    #: How long a stalled member stays cut off: three stall timeouts (``DXL_STALL_TIMEOUT``, 5 s), so the
    #: service leaves it and writes go on elsewhere for a while before it is back.
    stall_s: float = 15.0
    disk_full_s: float = 10.0
    #: How long clients keep retrying unsettled writes once the load stops (then again for the recovery pass).
    recovery_s: float = 300.0
    #: Generated examples per operation and role for schemathesis.
    fuzz_examples: int = 1
    #: Wall-clock budget of the schemathesis pass.
    fuzz_budget_s: float = 150.0
    #: The whole run's budget: schemathesis gets at most what is left of it (the rest is reported skipped).
    run_budget_s: float = float("inf")

    @property
    def kills(self) -> int:
        return self.api_kills + self.node_kills + self.member_kills + self.database_kills


QUICK = Profile(
    name="quick", clients=12, target_writes=200, max_load_s=210.0,
    api_kills=2, node_kills=2, rpc_lost=1, rpc_delayed=1, disk_full=1, node_pauses=1,
    pause_s=10.0, disk_full_s=8.0, recovery_s=90.0, fuzz_examples=1, fuzz_budget_s=240.0, run_budget_s=570.0,
)  # fmt: skip

FULL = Profile(
    name="full", clients=24, target_writes=5000, max_load_s=3600.0,
    api_kills=10, node_kills=10, rpc_lost=10, rpc_delayed=10, disk_full=10, node_pauses=10,
    fuzz_examples=3, fuzz_budget_s=900.0,
)  # fmt: skip

#: No proxy between the service and its nodes here (it talks to the signers themselves), so no lost or delayed
#: answers; no node pause either (a stopped signer is a killed one to the others, and one that stops
#: answering the service a dead one after its request timeout). A member that answers while its head stands
#: still is a member cut off from the others: the stalls.
NETWORK = Profile(
    name="network", clients=12, target_writes=400, max_load_s=300.0,
    api_kills=2, node_kills=0, rpc_lost=0, rpc_delayed=0, disk_full=0, node_pauses=0, member_kills=9,
    member_stalls=2,
    recovery_s=90.0, fuzz_examples=1, fuzz_budget_s=120.0, run_budget_s=570.0, network=True,
)  # fmt: skip

#: The quick profile's load and faults with ``DXL_DATABASE_URL`` pointing at PostgreSQL: the journal's claims
#: and sends then race under PostgreSQL's row locks and READ COMMITTED instead of SQLite's one writer, and the
#: database server itself crashes twice and hangs once. No disk-full fault: the database lives in its own
#: server, not on the tmpfs that fault fills.
POSTGRES = Profile(
    name="postgres", clients=12, target_writes=200, max_load_s=210.0,
    api_kills=2, node_kills=2, rpc_lost=1, rpc_delayed=1, disk_full=0, node_pauses=1, database_kills=2,
    database_pauses=1,
    pause_s=10.0, recovery_s=90.0, fuzz_examples=1, fuzz_budget_s=240.0, run_budget_s=570.0, postgres=True,
)  # fmt: skip

PROFILES = {p.name: p for p in (QUICK, NETWORK, POSTGRES, FULL)}


def selected_profile() -> Profile:
    """The profile named by ``RELIABILITY_PROFILE`` (default ``full``).

    Raises:
        ValueError: an unknown profile name.
    """
    name = os.environ.get("RELIABILITY_PROFILE", "full").strip().lower() or "full"
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"RELIABILITY_PROFILE must be one of {sorted(PROFILES)}, got {name!r}") from None
