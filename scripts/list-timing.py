"""Time ``GET /deliveries?limit=500`` on a ledger that holds ``--deliveries`` deliveries (default 600).

A throw-away ``DXL_HOME`` with the embedded node (1 s blocks), the demo consortium and the API served by
uvicorn in a process of its own (as ``dxl bench receipts`` runs it, audit follower every second): one
agreement PSB → HRSS, one grant, the deliveries recorded in batches of 200, then each list timed
``--repeats`` times for the auditor and for the provider. The first request passes ``min_block`` of the last
write, so it also times bringing the audit index up to that block; the ones after read the index as it is.

Usage: ``.venv/bin/python scripts/list-timing.py [--deliveries 600] [--repeats 3]``; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from api.bench import demo_grants, demo_service
from node.anvil import EmbeddedNode, NodeSettings, free_port
from node.types import new_delivery_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result: dict[str, Any] = {"deliveries": args.deliveries, "load_average_at_start": list(os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="dxl-list-timing-") as tmp:
        home = Path(tmp)
        with EmbeddedNode(home, NodeSettings(port=free_port(), block_time=1.0)) as node:
            endpoint = node.endpoint
            with demo_service(
                home, endpoint, env_extra={"DXL_AUDIT_FOLLOW_INTERVAL": "1"}, timeout=600
            ) as service:
                report, api, tokens = service.report, service.api, service.tokens
                (grant,) = demo_grants(service.call, 1)
                psb = report.departments["PSB"]
                last_block = 0
                for start in range(0, args.deliveries, 200):
                    items = [
                        {"delivery_id": "0x" + new_delivery_id(psb).hex(), "grant_id": grant,
                         "commitment": "0x" + os.urandom(32).hex(), "byte_size": 1000 + i, "record_count": 10}
                        for i in range(min(200, args.deliveries - start))
                    ]  # fmt: skip
                    written = service.call("POST", "/deliveries/batch", "demo-psb", {"deliveries": items})
                    last_block = written["transaction"]["block_number"]
                for who in ("demo-auditor", "demo-psb"):
                    timings = []
                    for i in range(args.repeats):
                        params: dict[str, Any] = {"limit": 500}
                        if i == 0:
                            params["min_block"] = last_block
                        started = time.perf_counter()
                        r = api.get(
                            "/deliveries", params=params, headers={"Authorization": f"Bearer {tokens[who]}"}
                        )
                        timings.append(time.perf_counter() - started)
                        if r.status_code != 200 or len(r.json()) != min(500, args.deliveries):
                            raise RuntimeError(
                                f"GET /deliveries as {who}: {r.status_code}, {len(r.json())} items"
                            )
                    result[who] = {"seconds": [round(t, 3) for t in timings],
                                   "median_s": round(statistics.median(timings), 3)}  # fmt: skip
    result["load_average_at_end"] = list(os.getloadavg())
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
