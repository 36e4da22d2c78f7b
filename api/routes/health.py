"""``GET /healthz`` (no authentication): is the node reachable, which chain, which contracts."""

from __future__ import annotations

from fastapi import APIRouter

from api import models as m
from api.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=m.HealthPublic)
def healthz(state: StateDep) -> m.HealthPublic:
    ledger = state.ledger
    if ledger is None:
        return m.HealthPublic(status="degraded", node_reachable=False, detail=state.startup_error)
    try:
        block = ledger.client.block_number()
    except Exception as exc:  # any transport failure means "not reachable"; the type is all we report
        return m.HealthPublic(
            status="degraded", node_reachable=False, chain_id=ledger.chain_id,
            contracts={"ledger": ledger.address}, detail=f"node unreachable ({type(exc).__name__})",
        )  # fmt: skip
    return m.HealthPublic(
        status="ok", node_reachable=True, chain_id=ledger.chain_id, latest_block=block,
        contracts={"ledger": ledger.address},
    )  # fmt: skip
