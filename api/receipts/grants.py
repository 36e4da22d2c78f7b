"""What a receipt's checks need of its grant (:class:`GrantState`), read from the ledger at most once per
:data:`GRANT_CACHE_TTL_S` (:class:`GrantCache`), not one ``eth_call`` per receipt."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from api.errors import ApiError, not_found
from node.chain import LedgerClient, LedgerRevertError
from node.types import (
    Agreement,
    AgreementStatus,
    Department,
    DepartmentStatus,
    Grant,
    Resource,
    ShareType,
)
from verifier.text import iso_time

#: How long checked grant state is trusted. The contract checks again on every anchor, so a grant revoked
#: within this window refuses its batch instead of recording it.
GRANT_CACHE_TTL_S = 1.0


class CacheClock:
    """The clock the service's short caches of chain state age by (:class:`GrantCache`, the auditor's standing
    in :class:`api.ledger.core.LedgerCore`): this machine's monotonic clock, plus how far it was moved on.

    One per service, owned by its :class:`~api.ledger.core.LedgerCore` and handed to the receipts' cache, so
    that what ages the cached state is one thing a test can move past :data:`GRANT_CACHE_TTL_S` at once, as it
    moves the node's clock, instead of sleeping through it. Nothing in the service moves it: unmoved, it
    reads ``time.monotonic()``."""

    def __init__(self) -> None:
        self._moved = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return time.monotonic() + self._moved

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` on: every entry cached at least that long before now reads stale."""
        if seconds < 0:
            raise ValueError("a monotonic clock does not go back")
        with self._lock:
            self._moved += seconds


@dataclass(frozen=True, slots=True)
class GrantState:
    """What a receipt's checks need of its grant, read from the ledger at ``fetched_at`` (by the service's
    :class:`CacheClock`)."""

    grant_id: int
    provider: int
    consumer: int
    expires_at: int
    #: Why the grant is unusable regardless of time and caller (revoked, agreement or a party not active).
    refusal: tuple[str, str] | None
    fetched_at: float
    #: How far the chain's clock ran ahead of this machine's when read (0 if it did not): the grant expires on
    #: the chain's clock, and a receipt accepted by the wall clock on a node whose clock runs ahead would be
    #: answered 202 and its batch refused later.
    clock_ahead: int = 0

    def check(self, department: int, now: float) -> None:
        """Raise the ApiError ``POST /deliveries`` would answer ``department`` for this grant; ``now`` is
        this machine's clock (``time.time()``)."""
        if department not in (self.provider, self.consumer):
            # Not its exchange: the answer of a grant that does not exist, so grant ids cannot be probed.
            raise not_found("grant", self.grant_id)
        if department != self.provider:
            raise ApiError(
                "NOT_A_PARTY",
                f"only department {self.provider} may deliver under grant {self.grant_id} (its provider); "
                f"you are department {department}",
            )
        if self.refusal is not None:
            raise ApiError(*self.refusal)
        if self.expires_at <= now + self.clock_ahead:
            raise ApiError("GRANT_EXPIRED", f"grant {self.grant_id} expired at {iso_time(self.expires_at)}")


def _no_batch(grant_id: int, first_sequence: int) -> ApiError:
    """The one answer for a batch that does not exist and for one of an exchange the caller is not in."""
    return ApiError("RECEIPT_BATCH_NOT_FOUND", f"no batch of grant {grant_id} starts at {first_sequence}")


class GrantCache:
    """Grant, agreement, resource and department state per grant, read with five ``eth_call``s at most once
    per TTL."""

    def __init__(
        self,
        ledger: LedgerClient,
        *,
        clock: CacheClock,
        ttl: float = GRANT_CACHE_TTL_S,
        gate: Callable[[], object] | None = None,
    ) -> None:
        """``clock``: the service's (:class:`CacheClock`), which ages the cached states. ``gate``: the
        transaction journal's (:meth:`api.journal.JournaledSender.gate`), passed before a grant is called
        unknown."""
        self._ledger = ledger
        self.clock = clock
        self.ttl = ttl
        self._gate = gate
        self._states: dict[int, GrantState] = {}

    def _read(self, grant_id: int) -> Grant:
        try:
            return Grant.read(self._ledger, grant_id)
        except LedgerRevertError as exc:
            if exc.error_name == "GrantUnknown":
                raise not_found("grant", grant_id) from None
            raise

    def fresh(self, grant_id: int) -> GrantState | None:
        """The grant's cached state, or None when none was read within the TTL by :attr:`clock`."""
        state = self._states.get(grant_id)
        return state if state is not None and self.clock() - state.fetched_at < self.ttl else None

    def load(self, grant_id: int) -> GrantState:
        """Read the grant's state from the ledger (blocking).

        Raises:
            ApiError: GRANT_NOT_FOUND for a grant that does not exist.
            NodeError: the node is unreachable.
        """
        fetched = self.clock()
        try:
            grant = self._read(grant_id)
        except ApiError:
            if self._gate is None:
                raise
            # An acknowledged grant whose block the node lost exists again once the journal has re-mined it:
            # through the journal's gate (which has lost blocks healed and re-mined first), then read again.
            self._gate()
            fetched = self.clock()
            grant = self._read(grant_id)
        refusal: tuple[str, str] | None = None
        if grant.revoked:
            refusal = ("GRANT_REVOKED", f"grant {grant_id} was revoked")
        else:
            agreement = Agreement.read(self._ledger, grant.agreement_id)
            if agreement.status is not AgreementStatus.ACTIVE:
                refusal = (
                    "AGREEMENT_NOT_ACTIVE",
                    f"the agreement {grant.agreement_id} of grant {grant_id} is not active",
                )
            # Reclassified not shared, a resource takes no more deliveries under its grants (nor anchors).
            elif Resource.read(self._ledger, agreement.resource_id).share_type is ShareType.NOT_SHARED:
                refusal = (
                    "RESOURCE_NOT_SHARED",
                    f"resource {agreement.resource_id} of grant {grant_id} is classified as not shared",
                )
            for dept in (grant.provider, grant.consumer):
                if refusal is not None:
                    break
                if Department.read(self._ledger, dept).status is not DepartmentStatus.ACTIVE:
                    refusal = ("DEPARTMENT_NOT_ACTIVE", f"department {dept} is not active")
        clock_ahead = max(0, self._ledger.next_block_time() - int(time.time()))
        state = GrantState(
            grant_id, grant.provider, grant.consumer, grant.expires_at, refusal, fetched, clock_ahead
        )
        self._states[grant_id] = state
        return state
