"""Grants and deliveries: the provider's expiring access grants under an agreement, the deliveries it records
under them (one by one or in a batch), and the consumer's acknowledgement or dispute."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, cast

from api import models as m
from api.auth import Principal
from api.errors import ApiError, not_found, revert_to_api_error
from api.ledger.core import (
    Finish,
    Listed,
    ListPage,
    b32,
    journaled,
    status_name,
    to_hex,
)
from api.ledger.exchanges import ExchangeService
from node.audit import queries as audit_queries
from node.audit.queries import ListFilter
from node.chain import LedgerRevertError
from node.types import (
    Agreement,
    AgreementStatus,
    DeliveryReceipt,
    DeliveryStatus,
    Grant,
    HashAlgorithm,
    delivery_id_provider,
)
from verifier.text import iso_time

if TYPE_CHECKING:
    from node.audit.service import AuditContext

    pass

_HASH_NAMES = {HashAlgorithm.SHA256: m.HashAlgorithmName.SHA256, HashAlgorithm.SM3: m.HashAlgorithmName.SM3}
_HASH_IDS = {v: k for k, v in _HASH_NAMES.items()}
_HASH_NAMES_BY_ID = {int(k): v for k, v in _HASH_NAMES.items()}


def _grant_public(g: Grant) -> m.GrantPublic:
    return m.GrantPublic(
        id=g.id, agreement_id=g.agreement_id, provider=g.provider, consumer=g.consumer,
        expires_at=g.expires_at, revoked=g.revoked,
    )  # fmt: skip


def _at_item(exc: ApiError | LedgerRevertError, index: int | None, item: m.DeliveryCreate | None) -> ApiError:
    """The error of one item of a batch, naming it (the same code as the single route would answer)."""
    api = exc if isinstance(exc, ApiError) else revert_to_api_error(exc)
    if index is None or item is None:
        return api
    return ApiError(
        api.code,
        f"deliveries[{index}]: {api.message}",
        field=f"deliveries.{index}" + (f".{api.field}" if api.field else ""),
        **{**api.details, "index": index, "delivery_id": item.delivery_id},
    )


def _failed_item(args: dict[str, Any], items: list[m.DeliveryCreate], grants: dict[int, Grant]) -> int | None:
    """The first item a revert's arguments point at (the contract stops at the first failing record), or None
    when they name nothing the items carry."""

    def applies(item: m.DeliveryCreate) -> bool:
        grant = grants[item.grant_id]
        if "deliveryId" in args:
            return b32(item.delivery_id) == bytes(args["deliveryId"])
        if "grantId" in args:
            return item.grant_id == int(args["grantId"])
        if "agreementId" in args:
            return grant.agreement_id == int(args["agreementId"])
        if "departmentId" in args:
            return int(args["departmentId"]) in (grant.provider, grant.consumer)
        return False

    return next((i for i, item in enumerate(items) if applies(item)), None)


class DeliveryService(ExchangeService):
    """Grants and deliveries."""

    # --- grants ------------------------------------------------------------------------------------------

    def grant(self, grant_id: int, *, principal: Principal | None = None) -> m.GrantPublic:
        return _grant_public(self._exchange_record(Grant, grant_id, principal=principal))

    def grants(
        self,
        *,
        principal: Principal,
        index: AuditContext,
        flt: ListFilter,
        page: ListPage,
    ) -> Listed[m.GrantPublic]:
        """Grants newest first, one page, read from the audit index (:meth:`_listed`); revoked once the index
        holds the grant's revocation or its agreement's, as ``GET /grants/{id}`` reads it from the chain.

        Raises:
            ApiError: FORBIDDEN for a governor; VALIDATION_ERROR for a malformed cursor; INDEX_BEHIND.
        """
        return self._listed(
            audit_queries.grants, lambda rows: [_grant_public(g) for g in rows],
            principal=principal, index=index, flt=flt, page=page,
        )  # fmt: skip

    @journaled
    def issue_grant(self, *, principal: Principal, body: m.GrantCreate) -> m.Written[m.GrantPublic]:
        agreement = self._exchange_record(Agreement, body.agreement_id, principal=principal)
        me = self._acting(principal, agreement.provider, "issue grants under this agreement (its provider)")
        if agreement.status is not AgreementStatus.ACTIVE:
            raise ApiError(
                "AGREEMENT_NOT_ACTIVE", f"agreement {body.agreement_id} is {status_name(agreement.status)}"
            )
        if body.expires_at > agreement.valid_until:
            raise ApiError(
                "INVALID_EXPIRY",
                f"expires_at {iso_time(body.expires_at)} is after the agreement's end "
                f"{iso_time(agreement.valid_until)}",
                field="expires_at",
            )
        return cast(
            m.Written[m.GrantPublic],
            self._complete(
                self.department_account(me), "issueGrant", (body.agreement_id, body.expires_at),
                Finish("grant", event="GrantIssued", arg="grantId"), principal,
            ),
        )  # fmt: skip

    @journaled
    def revoke_grant(self, *, principal: Principal, grant_id: int) -> m.Written[m.GrantPublic]:
        current = self._exchange_record(Grant, grant_id, principal=principal)
        me = self._acting(principal, current.provider, "revoke this grant (its provider)")
        if current.revoked:
            raise ApiError("GRANT_REVOKED", f"grant {grant_id} is already revoked")
        return cast(
            m.Written[m.GrantPublic],
            self._complete(
                self.department_account(me), "revokeGrant", (grant_id,), Finish("grant", grant_id), principal
            ),
        )

    # --- deliveries --------------------------------------------------------------------------------------

    def _delivery(self, delivery_id: bytes) -> tuple[DeliveryReceipt, int]:
        found = next(self._logs("DeliveryRecorded", delivery_id, newest_first=True), None)
        if found is None:
            raise not_found("delivery", to_hex(delivery_id))
        event, block = found
        return DeliveryReceipt.from_event_args(int(event.args["grantId"]), event.args), block

    def _delivery_public(
        self, delivery_id: bytes, receipt: DeliveryReceipt, block: int, status: DeliveryStatus | None = None
    ) -> m.DeliveryPublic:
        """The public record; ``status`` is read from the chain unless given (a list's, from the index)."""
        if status is None:
            status = DeliveryStatus(int(self.client.call("deliveryStatus", delivery_id)))
        return m.DeliveryPublic(
            delivery_id=to_hex(delivery_id), grant_id=receipt.grant_id, provider=receipt.provider,
            consumer=receipt.consumer, commitment=to_hex(receipt.commitment),
            # The chain is read as it is: an algorithm id this service does not know is shown, not a failure.
            hash_algorithm=_HASH_NAMES_BY_ID.get(receipt.hash_algorithm),
            hash_algorithm_id=receipt.hash_algorithm,
            byte_size=receipt.byte_size, record_count=receipt.record_count, recorded_at=receipt.recorded_at,
            recorded_in_block=block, status=status_name(status),
        )  # fmt: skip

    def delivery(self, delivery_id: str, *, principal: Principal) -> m.DeliveryPublic:
        raw = b32(delivery_id)
        receipt, block = self._delivery(raw)
        self._party_check(principal, "delivery", to_hex(raw), receipt.provider, receipt.consumer)
        return self._delivery_public(raw, receipt, block)

    def deliveries(
        self,
        *,
        principal: Principal,
        index: AuditContext,
        flt: ListFilter,
        page: ListPage,
    ) -> Listed[m.DeliveryPublic]:
        """Deliveries newest first, one page, read from the audit index (:meth:`_listed`): a department sees
        the ones it provided or consumed, an auditor all. Statuses are the index's (the acknowledgements and
        disputes it indexed); ``min_block`` first brings the index up to that block.

        Raises:
            ApiError: FORBIDDEN for a governor; VALIDATION_ERROR for a malformed cursor; INDEX_BEHIND.
        """
        return self._listed(
            audit_queries.deliveries,
            lambda rows: [
                self._delivery_public(d.delivery_id, d.receipt, d.block_number, d.status) for d in rows
            ],
            principal=principal, index=index, flt=flt, page=page,
        )  # fmt: skip

    def _checked_delivery(
        self, *, principal: Principal, body: m.DeliveryCreate, grants: dict[int, Grant], now: int
    ) -> tuple[int, tuple[Any, ...]]:
        """What ``recordDelivery`` would refuse and can be known without sending anything.

        ``grants`` caches grants by id across the items of one batch (filled here); ``now`` is the chain's
        time the transaction can land at (``next_block_time``, read once per request).

        Returns:
            The acting department's id and the record as the contract takes it (``recordDelivery``'s
            arguments, in order; also a ``DeliveryRecord`` tuple).

        Raises:
            ApiError: GRANT_NOT_FOUND (unknown, or not the caller's exchange), NOT_A_PARTY (the grant's
                consumer), GRANT_REVOKED, GRANT_EXPIRED, DUPLICATE_DELIVERY (already on the ledger),
                DELIVERY_ID_IN_USE (one of the provider's receipts),
                INVALID_FIELD (a zero id or commitment).
        """
        grant = grants.get(body.grant_id) or self._exchange_record(Grant, body.grant_id, principal=principal)
        grants[body.grant_id] = grant
        me = self._acting(principal, grant.provider, "deliver under this grant (its provider)")
        if grant.revoked:
            raise ApiError("GRANT_REVOKED", f"grant {body.grant_id} was revoked")
        # The chain's clock decides, not this machine's: the block this transaction lands in is stamped no
        # earlier than next_block_time, which runs ahead of time.time() on a node whose clock does.
        if grant.expires_at <= now:
            raise ApiError("GRANT_EXPIRED", f"grant {body.grant_id} expired at {iso_time(grant.expires_at)}")
        raw_id = b32(body.delivery_id)
        if raw_id == bytes(32) or b32(body.commitment) == bytes(32):
            raise ApiError("INVALID_FIELD", "delivery_id and commitment must not be zero")
        if delivery_id_provider(raw_id) != grant.provider:
            raise ApiError(
                "DELIVERY_ID_NOT_PROVIDERS",
                f"a delivery id of department {grant.provider} starts with its id as 4 big-endian bytes "
                f"(0x{grant.provider:08x}…)",
                field="delivery_id",
            )
        if int(self.client.call("deliveryStatus", raw_id)) != DeliveryStatus.NONE:
            raise ApiError("DUPLICATE_DELIVERY", f"delivery {body.delivery_id} was already recorded")
        if self.receipt_ids is not None and self.receipt_ids(grant.provider, [raw_id]):
            raise ApiError(
                "DELIVERY_ID_IN_USE",
                f"{body.delivery_id} is one of the provider's receipts (POST /receipts); a ledger delivery "
                "takes an id of its own",
                field="delivery_id",
            )
        return me, (
            raw_id, body.grant_id, b32(body.commitment), int(_HASH_IDS[body.hash_algorithm]), body.byte_size,
            body.record_count,
        )  # fmt: skip

    def _delivering(self, delivery_ids: Sequence[str]) -> AbstractContextManager[None]:
        """Hold the ids as being recorded as single deliveries while they are checked and sent, until mined or
        refused: a receipt posted meanwhile with one of them is refused, and one journaled before is seen
        by the check (:mod:`api.delivery_ids`)."""
        if self.delivering is None:
            return nullcontext()
        return self.delivering([b32(d) for d in delivery_ids])

    @journaled
    def record_delivery(self, *, principal: Principal, body: m.DeliveryCreate) -> m.Written[m.DeliveryPublic]:
        with self._delivering([body.delivery_id]):
            me, record = self._checked_delivery(
                principal=principal, body=body, grants={}, now=self.client.next_block_time()
            )
            return cast(
                m.Written[m.DeliveryPublic],
                self._complete(
                    self.department_account(me), "recordDelivery", record,
                    Finish("delivery", body.delivery_id), principal,
                ),
            )  # fmt: skip

    @journaled
    def record_deliveries(
        self, *, principal: Principal, body: m.DeliveryBatchCreate
    ) -> m.DeliveryBatchPublic:
        """Records every item in one ``recordDeliveries`` transaction, all or none. Each item is checked as
        :meth:`record_delivery` checks it before anything is signed; an error names the failing item
        (``index``, ``delivery_id``), also when the contract's revert is what found it.

        Raises:
            ApiError: VALIDATION_ERROR for a delivery id repeated within the batch; otherwise as
                :meth:`record_delivery`, for the first failing item.
        """
        items = body.deliveries
        first_seen: dict[bytes, int] = {}
        for i, item in enumerate(items):
            raw_id = b32(item.delivery_id)
            if raw_id in first_seen:
                raise ApiError(
                    "VALIDATION_ERROR",
                    f"deliveries[{i}].delivery_id repeats deliveries[{first_seen[raw_id]}].delivery_id",
                    field=f"deliveries.{i}.delivery_id",
                    index=i,
                    delivery_id=item.delivery_id,
                )
            first_seen[raw_id] = i
        with self._delivering([item.delivery_id for item in items]):
            return self._record_checked_deliveries(principal, items)

    def _record_checked_deliveries(
        self, principal: Principal, items: list[m.DeliveryCreate]
    ) -> m.DeliveryBatchPublic:
        grants: dict[int, Grant] = {}
        records: list[tuple[Any, ...]] = []
        me, now = 0, self.client.next_block_time()
        for i, item in enumerate(items):
            try:
                me, record = self._checked_delivery(principal=principal, body=item, grants=grants, now=now)
            except (ApiError, LedgerRevertError) as exc:
                raise _at_item(exc, i, item) from exc
            records.append(record)
        try:
            return cast(
                m.DeliveryBatchPublic,
                self._complete(
                    self.department_account(me),
                    "recordDeliveries",
                    (records,),
                    Finish("deliveries"),
                    principal,
                ),
            )
        except LedgerRevertError as exc:
            # The ledger may change between the checks and mining (a grant revoked meanwhile): the revert
            # names a delivery, grant, agreement or department, which finds the first item it applies to.
            index = _failed_item(exc.error_args, items, grants)
            raise _at_item(exc, index, items[index] if index is not None else None) from exc

    @journaled
    def settle_delivery(
        self, *, principal: Principal, delivery_id: str, consumer_commitment: str | None, dispute: bool
    ) -> m.Written[m.DeliveryPublic]:
        raw_id = b32(delivery_id)
        receipt, _ = self._delivery(raw_id)
        self._party_check(principal, "delivery", to_hex(raw_id), receipt.provider, receipt.consumer)
        me = self._acting(principal, receipt.consumer, "settle this delivery (its consumer)")
        commitment = b32(consumer_commitment) if consumer_commitment else receipt.commitment
        if dispute and commitment == receipt.commitment:
            raise ApiError(
                "VALIDATION_ERROR",
                "a dispute needs a consumer commitment that differs from the recorded one; use acknowledge",
                field="consumer_commitment",
            )
        status = DeliveryStatus(int(self.client.call("deliveryStatus", raw_id)))
        if status in (DeliveryStatus.ACKNOWLEDGED, DeliveryStatus.DISPUTED):
            raise ApiError(
                "DELIVERY_ALREADY_SETTLED", f"delivery {delivery_id} is already {status_name(status)}"
            )
        return cast(
            m.Written[m.DeliveryPublic],
            self._complete(
                self.department_account(me), "acknowledgeDelivery", (raw_id, receipt.as_tuple(), commitment),
                Finish("delivery", delivery_id), principal,
            ),
        )  # fmt: skip
