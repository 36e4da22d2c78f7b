"""Time the lists read from the audit index, ``?limit=500``, on a ledger that holds ``--deliveries``
deliveries (default 600) and ``--records`` access requests, catalog resources and governance proposals each
(default 300).

A throw-away ``DXL_HOME`` with the embedded node (1 s blocks), the demo consortium and the API served by
uvicorn in a process of its own (as ``dxl bench receipts`` runs it, audit follower every second): one
agreement PSB → HRSS and one grant, the deliveries recorded in batches of 200; HRSS's requests for a resource
of PSB, resources of PSB and HRSS, and open ``grant_auditor`` proposals of the first governor, each written
through the API by 16 clients at once. Then each list is timed ``--repeats`` times for the auditor and for a
department (for proposals: a governor). The first request passes ``min_block`` of the last write, so it also
times bringing the audit index up to that block; the ones after read the index as it is. The same script
times a checkout whose lists still read the chain (``PYTHONPATH=<that checkout>``): it passes nothing those
lists do not take but ``min_block``, which they ignore.

``--demands`` demands (default 0: none) are published by PSB and HRSS to each other (every fourth answered:
declined) and ``GET /demands`` is timed whole, by publisher and ``?open=true``; ``--inspections`` inspections
(default 0) of the evaluation periods holding the deliveries (the node's clock moved to their end) are opened,
drawn and their sampled deliveries' outcomes recorded (``--sample`` each, not presented), and ``GET
/inspections`` is timed for the auditor and for PSB (the deliveries' provider). ``--evaluations`` agreements
PSB → HRSS (default 0: none) each get a delivery and are scored by both sides, and ``GET
/agreements/{id}/evaluations`` of the first is timed for the auditor and for PSB. ``--departments``
departments (default 0: none) are admitted through governance beside the demo consortium's, and ``GET
/departments?limit=500`` is timed for the auditor and for PSB. These lists take no ``min_block``: each request
brings the index to the head itself. ``--idle-blocks`` empty blocks (default 0) are mined at once before these
lists are timed, as the weeks between two periods' scores add to a ledger, and the audit follower is waited
for until it indexed them.

Usage: ``.venv/bin/python scripts/list-timing.py [--deliveries 600] [--records 300] [--demands 0]
[--inspections 0] [--sample 4] [--evaluations 0] [--departments 0] [--idle-blocks 0] [--repeats 3]``;
prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from api.bench import DemoService, demo_grants, demo_service
from node.anvil import EmbeddedNode, NodeSettings, free_port
from node.rpc import JsonRpc
from node.types import MIN_PRESENT_WITHIN_S, new_delivery_id


def _b32() -> str:
    return "0x" + os.urandom(32).hex()


def _written(service: DemoService, n: int, write: Callable[[int], tuple[str, str, dict[str, Any]]]) -> int:
    """Makes ``n`` writes (``write(i)``: path, token, body), 16 at a time; the last block they are in."""

    def post(i: int) -> int:
        path, who, body = write(i)
        return int(service.call("POST", path, who, body)["transaction"]["block_number"])

    with ThreadPoolExecutor(16) as pool:
        return max(pool.map(post, range(n)), default=0)


def _practice(service: DemoService, args: argparse.Namespace, recorded_at: list[int], rpc_url: str) -> None:
    """The demands and the inspections (opened, drawn, each sampled delivery's outcome recorded) to list."""
    due = int(time.time()) + 30 * 86400

    hrss = service.report.departments["HRSS"]

    def demand(i: int) -> dict[str, Any]:
        who, to = (("demo-psb", "HRSS"), ("demo-hrss", "PSB"))[i % 2]
        document = {"title": f"list timing {i}", "purpose": "timing", "legal_basis": "none"}
        body = {"document": document, "addressee": to, "due_by": due}
        return dict(service.call("POST", "/demands", who, body)["record"])

    with ThreadPoolExecutor(16) as pool:
        published = list(pool.map(demand, range(args.demands)))

    def answer(i: int) -> tuple[str, str, dict[str, Any]]:
        d = published[4 * i]
        who = "demo-hrss" if d["addressee"] == hrss else "demo-psb"
        return f"/demands/{d['id']}/answer", who, {"answer": "declined", "decline_reason": "not_held"}

    _written(service, len(published[::4]), answer)
    if not args.inspections:
        return
    # An inspection covers whole evaluation periods, over: the node's clock is moved to the end of those
    # holding the deliveries (a day or 30 away, never waited for).
    length = int(service.call("GET", "/evaluation-period", "demo-auditor")["length_seconds"])
    start, end = min(recorded_at) // length * length, (max(recorded_at) // length + 1) * length
    with JsonRpc(rpc_url) as rpc:
        rpc.call("evm_setNextBlockTimestamp", end)
        rpc.call("evm_mine")
    # The least time to present the service takes (the presentation notice and a day), passed below by moving
    # the clock: a sample drawn with less left is never recorded not presented.
    body = {"period_from": start, "period_to": end, "sample_size": args.sample, "seed_delay_blocks": 2,
            "present_within": MIN_PRESENT_WITHIN_S}  # fmt: skip
    _written(service, args.inspections, lambda _i: ("/inspections", "demo-auditor", body))
    time.sleep(3)  # seed blocks mined (1 s blocks)
    _written(service, args.inspections, lambda i: (f"/inspections/{i + 1}/draw", "demo-auditor", {}))
    # Not presented by the deadline: the outcome to record. The clock is moved past it, not waited for.
    deadline = max(int(service.call("GET", f"/inspections/{i}", "demo-auditor")["present_by"])
                   for i in range(1, args.inspections + 1))  # fmt: skip
    with JsonRpc(rpc_url) as rpc:
        rpc.call("evm_setNextBlockTimestamp", deadline + 1)
        rpc.call("evm_mine")
    sampled = [
        (i, s["delivery_id"])
        for i in range(1, args.inspections + 1)
        for s in service.call("GET", f"/inspections/{i}", "demo-auditor")["sample"]
    ]
    _written(
        service, len(sampled),
        lambda n: (f"/inspections/{sampled[n][0]}/outcomes", "demo-auditor", {"delivery_id": sampled[n][1]}),
    )  # fmt: skip


def _evaluated(service: DemoService, n: int) -> int:
    """``n`` agreements PSB → HRSS, each with a grant and a delivery under it, scored by both sides (HRSS
    scores the provider, PSB the consumer); the first agreement's id."""
    psb = service.report.departments["PSB"]

    def scored(_i: int) -> int:
        (grant,) = demo_grants(service.call, 1)
        delivery = "0x" + new_delivery_id(psb).hex()
        body = {"delivery_id": delivery, "grant_id": grant, "commitment": _b32(), "byte_size": 1000}
        service.call("POST", "/deliveries", "demo-psb", body)
        agreement = int(service.call("GET", f"/grants/{grant}", "demo-psb")["agreement_id"])
        path = f"/agreements/{agreement}/evaluations"
        scores = {"delivery_id": delivery, "timeliness": 4, "completeness": 5, "accuracy": 3}
        service.call("POST", path, "demo-hrss", scores)
        service.call("POST", path, "demo-psb", {"delivery_id": delivery, "purpose_compliance": 5})
        return agreement

    with ThreadPoolExecutor(16) as pool:
        return min(pool.map(scored, range(n)))


def _admitted(service: DemoService, n: int) -> None:
    """``n`` departments admitted (the first governor proposes, the second approves), 16 at a time."""

    def admit(i: int) -> None:
        body = {"action": "admit_department", "code": f"LT{i}", "name": f"list timing {i}",
                "signer": "0x" + os.urandom(20).hex(), "encryption_key": _b32()}  # fmt: skip
        proposal = service.call("POST", "/governance/proposals", "demo-governor-1", body)["record"]["id"]
        service.call("POST", f"/governance/proposals/{proposal}/approve", "demo-governor-2")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(admit, range(n)))


def _idle(service: DemoService, rpc_url: str, blocks: int) -> None:
    """Mine ``blocks`` empty blocks at once, then wait until the audit index holds the head (the follower runs
    every second), so the lists timed next do not time that catching up."""
    with JsonRpc(rpc_url) as rpc:
        rpc.call("anvil_mine", hex(blocks))
        head = rpc.block_number()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        auditor = {"Authorization": f"Bearer {service.tokens['demo-auditor']}"}
        r = service.api.get("/deliveries", params={"limit": 1}, headers=auditor)
        if int(r.headers.get("X-Indexed-Block", 0)) >= head:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the audit index did not reach block {head}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=600)
    parser.add_argument("--records", type=int, default=300, help="requests, resources and proposals, each")
    parser.add_argument("--demands", type=int, default=0)
    parser.add_argument("--inspections", type=int, default=0)
    parser.add_argument("--sample", type=int, default=4, help="deliveries sampled by each inspection")
    parser.add_argument("--evaluations", type=int, default=0, help="agreements scored by both sides")
    parser.add_argument("--departments", type=int, default=0, help="departments admitted")
    parser.add_argument("--idle-blocks", type=int, default=0, help="empty blocks mined before timing")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.inspections and args.deliveries < args.sample:
        parser.error("--inspections needs at least --sample deliveries to draw from")
    result: dict[str, Any] = {
        "deliveries": args.deliveries,
        "records": args.records,
        "demands": args.demands,
        "inspections": args.inspections,
        "evaluations": args.evaluations,
        "departments": args.departments,
        "idle_blocks": args.idle_blocks,
        "load_average_at_start": list(os.getloadavg()),
    }
    with tempfile.TemporaryDirectory(prefix="dxl-list-timing-") as tmp:
        home = Path(tmp)
        with EmbeddedNode(home, NodeSettings(port=free_port(), block_time=1.0)) as node:
            endpoint = node.endpoint
            with demo_service(
                home, endpoint, env_extra={"DXL_AUDIT_FOLLOW_INTERVAL": "1"}, timeout=600
            ) as service:
                api, tokens = service.api, service.tokens
                (grant,) = demo_grants(service.call, 1)
                psb = service.report.departments["PSB"]
                last_block = 0
                recorded_at: list[int] = []
                for start in range(0, args.deliveries, 200):
                    items = [
                        {"delivery_id": "0x" + new_delivery_id(psb).hex(), "grant_id": grant,
                         "commitment": _b32(), "byte_size": 1000 + i, "record_count": 10}
                        for i in range(min(200, args.deliveries - start))
                    ]  # fmt: skip
                    written = service.call("POST", "/deliveries/batch", "demo-psb", {"deliveries": items})
                    last_block = written["transaction"]["block_number"]
                    recorded_at += [int(d["recorded_at"]) for d in written["records"]]
                body = {"metadata_hash": _b32(), "schema_hash": _b32(), "share_type": "conditional"}
                wanted = service.call("POST", "/resources", "demo-psb", body)["record"]["id"]
                now = int(time.time())

                def request(i: int) -> tuple[str, str, dict[str, Any]]:
                    return "/requests", "demo-hrss", {
                        "resource_id": wanted, "purpose": f"list timing {i}", "scope_hash": _b32(),
                        "terms_hash": _b32(), "valid_from": now - 3600, "valid_until": now + 30 * 86400,
                    }  # fmt: skip

                def resource(i: int) -> tuple[str, str, dict[str, Any]]:
                    return "/resources", ("demo-psb", "demo-hrss")[i % 2], {
                        "metadata_hash": _b32(), "schema_hash": _b32(), "sensitivity": i % 4,
                        "share_type": ("unconditional", "conditional", "not_shared")[i % 3],
                    }  # fmt: skip

                def proposal(i: int) -> tuple[str, str, dict[str, Any]]:
                    account = "0x" + os.urandom(20).hex()
                    return (
                        "/governance/proposals",
                        "demo-governor-1",
                        {"action": "grant_auditor", "account": account},
                    )

                for write in (request, resource, proposal):
                    last_block = max(last_block, _written(service, args.records, write))
                _practice(service, args, recorded_at, endpoint.rpc_url)
                evaluated = _evaluated(service, args.evaluations) if args.evaluations else 0
                if args.departments:
                    _admitted(service, args.departments)
                if args.idle_blocks:
                    _idle(service, endpoint.rpc_url, args.idle_blocks)
                lists = {
                    "/deliveries": ("demo-auditor", "demo-psb"),
                    "/requests": ("demo-auditor", "demo-hrss"),
                    "/resources": ("demo-auditor", "demo-psb"),
                    "/governance/proposals": ("demo-auditor", "demo-governor-1"),
                }
                made = {"/deliveries": args.deliveries, "/requests": args.records, "/resources": args.records,
                        "/governance/proposals": args.records}  # fmt: skip
                for path, readers in lists.items():
                    if made[path] == 0:
                        continue
                    result[path] = {}
                    for who in readers:
                        timings = []
                        for i in range(args.repeats):
                            params: dict[str, Any] = {"limit": 500}
                            if i == 0:
                                params["min_block"] = last_block
                            started = time.perf_counter()
                            r = api.get(
                                path, params=params, headers={"Authorization": f"Bearer {tokens[who]}"}
                            )
                            timings.append(time.perf_counter() - started)
                            if r.status_code != 200 or len(r.json()) < min(500, made[path]):
                                raise RuntimeError(f"GET {path} as {who}: {r.status_code}, {r.text[:300]}")
                        result[path][who] = {"rows": len(r.json()), "seconds": [round(t, 3) for t in timings],
                                             "median_s": round(statistics.median(timings), 3)}  # fmt: skip
                hrss = service.report.departments["HRSS"]
                scores = f"/agreements/{evaluated}/evaluations"
                practice_lists = {
                    "/demands": ("demo-auditor", args.demands, {"limit": 500}),
                    f"/demands?publisher={hrss}": ("demo-psb", args.demands, {"limit": 500}),
                    "/demands?open=true": ("demo-psb", args.demands, {"limit": 100}),
                    "/inspections": ("demo-auditor", args.inspections, {"limit": 100}),
                    "/inspections ": ("demo-psb", args.inspections, {"limit": 100}),
                    scores: ("demo-auditor", args.evaluations, {"limit": 100}),
                    f"{scores} ": ("demo-psb", args.evaluations, {"limit": 100}),
                    "/departments": ("demo-auditor", args.departments, {"limit": 500}),
                    "/departments ": ("demo-psb", args.departments, {"limit": 500}),
                }
                for label, (who, count, params) in practice_lists.items():
                    if count == 0:
                        continue
                    path, _, query = label.strip().partition("?")
                    params = {**params, **dict(q.split("=") for q in query.split("&") if q)}
                    timings = []
                    for _ in range(args.repeats):
                        started = time.perf_counter()
                        r = api.get(path, params=params, headers={"Authorization": f"Bearer {tokens[who]}"})
                        timings.append(time.perf_counter() - started)
                        if r.status_code != 200 or not r.json():
                            raise RuntimeError(f"GET {label} as {who}: {r.status_code}, {r.text[:300]}")
                    result[f"{label.strip()} as {who}"] = {
                        "rows": len(r.json()), "seconds": [round(t, 3) for t in timings],
                        "median_s": round(statistics.median(timings), 3),
                    }  # fmt: skip
    result["load_average_at_end"] = list(os.getloadavg())
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
