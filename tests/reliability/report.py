"""The run's report: one summary line, and the whole record as JSON."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability.counting import Verdict
from tests.reliability.fuzz import FuzzResult
from tests.reliability.profile import Profile
from tests.reliability.receipts import ReceiptVerdict
from tests.reliability.records import Attempt, FaultRecord, WriteRecord, is_server_error


def percentiles_ms(latencies: list[float]) -> dict[str, float]:
    if len(latencies) < 2:
        only = round(latencies[0] * 1000, 1) if latencies else 0.0
        return {"p50": only, "p95": only, "p99": only}
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "p50": round(cuts[49] * 1000, 1),
        "p95": round(cuts[94] * 1000, 1),
        "p99": round(cuts[98] * 1000, 1),
    }


@dataclass
class Summary:
    profile: str
    lost: int
    doubled: int
    server_errors: int
    kills: int
    writes: int
    p99_ms: float
    mismatched: int
    #: Receipts answered 202 and proven anchored once on the chain.
    receipts: int = 0
    #: What of its profile the run did not carry out (:func:`shortfall`); empty for a complete run.
    short: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any((self.lost, self.doubled, self.server_errors, self.mismatched))

    def exit_status(self) -> int:
        """1 when a counter is nonzero; else 2 when the run fell short of its profile (it could not be carried
        out: its clean counters prove less than the profile claims); else 0."""
        return 1 if self.failed else 2 if self.short else 0

    def line(self) -> str:
        return (
            f"lost={self.lost} doubled={self.doubled} 5xx={self.server_errors} kills={self.kills} "
            f"writes={self.writes} receipts={self.receipts} p99_ms={self.p99_ms:.0f} "
            f"mismatched={self.mismatched}"
        )

    def write_json(self, path: Path) -> None:
        payload = asdict(self) | {"summary": self.line()}
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def shortfall(
    profile: Profile, *, planned: int, injected: int, writes: int, fuzz: FuzzResult | None
) -> list[str]:
    """What the run lacked of its profile: faults of the plan not injected and acknowledged writes below the
    target when the load phase ended (its time cap reached first), and schemathesis's operation-role pairs
    not run (its time budget out) or whose run raised. A service that hangs every write reaches few faults
    and writes, and its line would otherwise read as clean as a complete run's."""
    short = []
    if injected < planned:
        short.append(f"{injected} of its {planned} faults injected")
    if writes < profile.target_writes:
        short.append(f"{writes} of its {profile.target_writes} writes acknowledged")
    if fuzz is None:
        short.append("schemathesis not run")
    elif fuzz.skipped or fuzz.errors:
        pairs = fuzz.operations * fuzz.roles
        short.append(
            f"schemathesis ran {pairs - fuzz.skipped - fuzz.errors} of its {pairs} operation-role pairs"
        )
    return short


def summarize(
    *,
    profile: str,
    writes: list[WriteRecord],
    reads: list[Attempt],
    twins: list[WriteRecord],
    faults: list[FaultRecord],
    kills: int,
    verdict: Verdict,
    receipts: ReceiptVerdict,
    fuzz: FuzzResult | None,
    short: list[str],
    extra: dict[str, Any],
) -> Summary:
    attempts = [a for w in writes + twins for a in w.attempts] + reads
    answered = [a for a in attempts if a.status is not None]
    server_errors = [a for a in answered if is_server_error(a.status, a.code)]
    unresolved_5xx = sum(
        1 for w in writes if not w.settled and (w.final_status is None or w.final_status >= 500)
    )
    statuses = Counter(str(a.status) if a.status is not None else (a.error or "no answer") for a in attempts)
    acknowledged = [w for w in writes if w.acknowledged and w.markers]
    details: dict[str, Any] = {
        "latency_ms": {
            "all": percentiles_ms([a.latency_s for a in answered]),
            "writes": percentiles_ms([a.latency_s for a in answered if a.write]),
            "reads": percentiles_ms([a.latency_s for a in answered if not a.write]),
            "write_until_final": percentiles_ms(
                [
                    w.attempts[-1].started + w.attempts[-1].latency_s - w.attempts[0].started
                    for w in acknowledged
                ]
            ),
        },
        "requests": {"total": len(attempts), "by_status": dict(sorted(statuses.items()))},
        "writes": {
            "keys": len(writes),
            "acknowledged": len(acknowledged),
            "acknowledged_records": sum(len(w.markers) for w in acknowledged),
            "refused": sum(1 for w in writes if w.settled and not w.acknowledged),
            "retried": sum(1 for w in writes if len(w.attempts) > 1),
            "sent_twice_at_once": len(twins),
            "by_kind": dict(Counter(str(w.kind) for w in acknowledged)),
            "refusal_codes": dict(
                Counter(
                    (w.attempts[-1].code or str(w.final_status))
                    for w in writes
                    if w.settled and not w.acknowledged
                )
            ),
        },
        "server_errors": {
            "during_load": len(server_errors),
            "unresolved_keys": unresolved_5xx,
            "fuzz": fuzz.server_errors if fuzz else None,
            "examples": [f"{a.status} {a.code}" for a in server_errors[:20]],
        },
        "verdict": asdict(verdict)
        | {"flagged": len(verdict.flagged), "lost_transactions": sorted(verdict.lost_transactions)},
        "receipts": asdict(receipts),
        "faults": [asdict(f) | {"duration_s": round(f.ended - f.started, 2)} for f in faults],
        "fault_counts": dict(Counter(str(f.kind) for f in faults if f.injected)),
        "faults_without_target": sum(1 for f in faults if not f.injected),
        "fuzz": asdict(fuzz) if fuzz else None,
    } | extra
    return Summary(
        profile=profile,
        lost=verdict.lost + receipts.lost,
        doubled=verdict.doubled + receipts.doubled,
        server_errors=len(server_errors) + unresolved_5xx + (fuzz.server_errors if fuzz else 0),
        kills=kills,
        writes=len(acknowledged),
        p99_ms=details["latency_ms"]["all"]["p99"],
        mismatched=verdict.mismatched,
        receipts=receipts.confirmed,
        short=short,
        details=details,
    )
