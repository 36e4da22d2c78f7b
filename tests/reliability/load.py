"""The load: concurrent clients walking whole exchanges (resource → request → approval → both signatures →
grant → deliveries, single and batched) with reads in between, every write under its own Idempotency-Key and
retried with that same key, as a real client would, until a final answer that is not a 5xx."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.reliability.records import (
    Attempt,
    Marker,
    WriteKind,
    WriteRecord,
    error_code,
    is_final,
)

DEPARTMENTS = ("psb", "hrss", "health", "civil", "samr")
#: Retries of an answer that says "not settled yet" (409 TRANSACTION_PENDING / IDEMPOTENCY_IN_FLIGHT) before
#: the client takes it as the final answer; the recovery pass asks once more.
SETTLE_RETRIES = 4
#: Share of writes sent twice at once under one key (a client's retry racing its first send).
TWIN_RATIO = 0.05
#: Share of a grant's deliveries posted as receipts (anchored in batches) rather than recorded one by one.
RECEIPT_RATIO = 0.3
#: A client's patience for one HTTP answer: above the API's own 60 s wait for a transaction to be mined.
CLIENT_TIMEOUT_S = 90.0


def b32() -> str:
    return "0x" + secrets.token_hex(32)


@dataclass
class LoadState:
    """What the clients share: their log, and when to stop starting work and stop retrying."""

    writes: list[WriteRecord] = field(default_factory=list)
    reads: list[Attempt] = field(default_factory=list)
    #: Writes sent twice at once: the logged one, and its twin with the same key and body (not logged).
    twins: list[tuple[WriteRecord, WriteRecord]] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    #: Monotonic time after which a client stops retrying a write (set when the recovery phase starts).
    give_up_at: float = float("inf")

    def acknowledged_writes(self) -> int:
        return sum(1 for w in self.writes if w.acknowledged and w.markers)


class ServiceClient:
    """One principal-agnostic HTTP client of the API, recording every exchange."""

    def __init__(self, base_url: str, tokens: dict[str, str], state: LoadState, rng: random.Random) -> None:
        self.tokens = tokens
        self.state = state
        self.rng = rng
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=CLIENT_TIMEOUT_S,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    def headers(self, who: str, key: str | None = None) -> dict[str, str]:
        base = {"Authorization": f"Bearer {self.tokens[who]}"}
        return base | {"Idempotency-Key": key} if key else base

    async def _exchange(
        self, method: str, path: str, headers: dict[str, str], body: Any, *, write: bool
    ) -> tuple[Attempt, Any]:
        started = time.monotonic()
        try:
            answer = await self.http.request(method, path, headers=headers, json=body)
        except httpx.HTTPError as exc:
            return Attempt(started, time.monotonic() - started, None, None, write, type(exc).__name__), None
        latency = time.monotonic() - started
        try:
            parsed = answer.json()
        except ValueError:
            parsed = None
        return Attempt(started, latency, answer.status_code, error_code(parsed), write), parsed

    async def write(
        self, kind: WriteKind, who: str, path: str, body: dict[str, Any] | None, markers: Sequence[Marker]
    ) -> WriteRecord:
        record = WriteRecord(
            key=f"rel-{uuid.uuid4()}", kind=kind, principal=who, method="POST", path=path,
            body=body, markers=list(markers),
        )  # fmt: skip
        self.state.writes.append(record)
        if self.rng.random() < TWIN_RATIO:
            twin = WriteRecord(record.key, kind, who, record.method, path, body, [])
            self.state.twins.append((record, twin))
            await asyncio.gather(self.settle(record), self.settle(twin))
        else:
            await self.settle(record)
        return record

    async def settle(self, record: WriteRecord, *, retries_409: int = SETTLE_RETRIES) -> None:
        """Send ``record``'s request with its key until a final answer, or until the run gives up."""
        headers = self.headers(record.principal, record.key)
        tries = pending = 0
        while True:
            attempt, parsed = await self._exchange(
                record.method, record.path, headers, record.body, write=True
            )
            record.attempts.append(attempt)
            if attempt.status is not None:
                record.final_status, record.final_body = attempt.status, parsed
                if is_final(attempt.status, attempt.code):
                    return
                if attempt.status == 409:
                    pending += 1
                    if pending > retries_409:
                        return
            if time.monotonic() >= self.state.give_up_at:
                return
            tries += 1
            await asyncio.sleep(min(5.0, 0.25 * 2 ** min(tries, 5)) * self.rng.uniform(0.5, 1.0))

    async def replay(self, record: WriteRecord) -> tuple[Attempt, Any]:
        """The same request under the same key once more, after recovery: it must answer what it answered."""
        headers = self.headers(record.principal, record.key)
        return await self._exchange(record.method, record.path, headers, record.body, write=True)

    async def ask(self, who: str, path: str, body: Any) -> tuple[Attempt, Any]:
        """A POST that writes nothing (a lookup), not logged among the load's reads."""
        return await self._exchange("POST", path, self.headers(who), body, write=False)

    async def read(self, who: str, path: str) -> Attempt:
        attempt, _ = await self._exchange("GET", path, self.headers(who), None, write=False)
        self.state.reads.append(attempt)
        return attempt


class ExchangeWalker:
    """One client: walks exchanges between random pairs of departments until told to stop."""

    def __init__(self, client: ServiceClient, rng: random.Random, *, read_ratio: float = 0.5) -> None:
        self.client = client
        self.rng = rng
        self.read_ratio = read_ratio

    async def run(self) -> None:
        while not self.client.state.stopping.is_set():
            provider, consumer = self.rng.sample(DEPARTMENTS, 2)
            await self.exchange(provider, consumer)

    async def maybe_read(self, who: str, paths: Sequence[str]) -> None:
        if self.rng.random() < self.read_ratio:
            await self.client.read(who, self.rng.choice(paths))

    async def exchange(self, provider: str, consumer: str) -> None:
        write, rng = self.client.write, self.rng
        conditional = rng.random() < 0.8
        metadata = b32()
        resource = await write(
            WriteKind.RESOURCE, provider, "/resources",
            {"metadata_hash": metadata, "schema_hash": b32(),
             "share_type": "conditional" if conditional else "unconditional", "sensitivity": 2},
            [Marker("ResourceRegistered", (("metadataHash", metadata),), "resourceId")],
        )  # fmt: skip
        resource_id = resource.answered_id()
        if not resource.acknowledged or resource_id is None:
            return
        await self.maybe_read(consumer, [f"/resources/{resource_id}", "/resources?limit=20"])

        now = int(time.time())
        valid_until = now + 30 * 86400 + rng.randint(0, 86400)
        terms = b32()
        request = await write(
            WriteKind.REQUEST, consumer, "/requests",
            {"resource_id": resource_id, "purpose": "benefit eligibility check", "scope_hash": b32(),
             "terms_hash": terms, "valid_from": now - 3600, "valid_until": valid_until},
            [Marker("AccessRequested", (("termsHash", terms),), "requestId")],
        )  # fmt: skip
        request_id = request.answered_id()
        if not request.acknowledged or request_id is None:
            return
        if conditional:
            approval = await write(
                WriteKind.APPROVE, provider, f"/requests/{request_id}/approve", None,
                [Marker("RequestApproved", (("requestId", request_id), ("automatic", False)))],
            )  # fmt: skip
            if not approval.acknowledged:
                return
        await self.maybe_read(provider, [f"/requests/{request_id}", f"/requests/{request_id}/terms"])

        signatures = f"/requests/{request_id}/signatures"
        first = await write(WriteKind.SIGN, consumer, signatures, {}, [])
        if not first.acknowledged:
            return
        conclusion = await write(
            WriteKind.CONCLUDE, provider, signatures, {},
            [Marker("AgreementConcluded", (("requestId", request_id),), "agreementId")],
        )  # fmt: skip
        agreement_id = conclusion.answered_id()
        if not conclusion.acknowledged or agreement_id is None:
            return

        expires_at = valid_until - rng.randint(1, 86400)
        grant = await write(
            WriteKind.GRANT, provider, "/grants", {"agreement_id": agreement_id, "expires_at": expires_at},
            [Marker("GrantIssued", (("agreementId", agreement_id), ("expiresAt", expires_at)), "grantId")],
        )  # fmt: skip
        grant_id = grant.answered_id()
        if not grant.acknowledged or grant_id is None:
            return
        record = grant.final_body.get("record") if isinstance(grant.final_body, dict) else None
        provider_id = int(record["provider"]) if isinstance(record, dict) else 0
        await self.maybe_read(consumer, [f"/agreements/{agreement_id}", f"/grants/{grant_id}"])

        for _ in range(rng.randint(4, 14)):
            if self.client.state.stopping.is_set():
                return
            if rng.random() < RECEIPT_RATIO:
                receipts = [self._delivery(grant_id, provider_id) for _ in range(rng.randint(1, 50))]
                await write(WriteKind.RECEIPTS, provider, "/receipts", {"receipts": receipts}, [])
                continue
            count = rng.randint(2, 10) if rng.random() < 0.3 else 1
            items = [self._delivery(grant_id, provider_id) for _ in range(count)]
            markers = [Marker("DeliveryRecorded", (("deliveryId", d["delivery_id"]),)) for d in items]
            if len(items) == 1:
                await write(WriteKind.DELIVERY, provider, "/deliveries", items[0], markers)
            else:
                await write(WriteKind.BATCH, provider, "/deliveries/batch", {"deliveries": items}, markers)
            await self.maybe_read(
                self.rng.choice((provider, consumer)),
                [f"/deliveries/{items[0]['delivery_id']}", "/deliveries?limit=20", "/grants?limit=20"],
            )

    def _delivery(self, grant_id: int, provider_id: int) -> dict[str, Any]:
        # A delivery id starts with its provider's department id (4 bytes, big-endian): the ledger's rule.
        delivery_id = "0x" + provider_id.to_bytes(4, "big").hex() + secrets.token_hex(28)
        return {
            "delivery_id": delivery_id, "grant_id": grant_id, "commitment": b32(),
            "byte_size": self.rng.randint(1, 1 << 30), "record_count": self.rng.randint(0, 10_000),
        }  # fmt: skip
