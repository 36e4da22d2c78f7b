"""Access requests, the signing of their terms, and agreements: from a consumer's request to the agreement
both departments signed."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from web3.exceptions import ContractLogicError

from api import models as m
from api.auth import Principal
from api.db import PendingSignature
from api.errors import ApiError
from api.ledger.catalog import CatalogService
from api.ledger.core import (
    Finish,
    Listed,
    ListPage,
    b32,
    journaled,
    status_name,
    to_hex,
)
from node.audit import queries as audit_queries
from node.audit.queries import ListFilter
from node.audit.scorecard import add_working_days, answered_late
from node.chain import DecodedEvent, LedgerRevertError
from node.types import (
    AccessRequest,
    Agreement,
    AgreementStatus,
    Department,
    DepartmentStatus,
    RequestStatus,
    Resource,
    SharingTerms,
)
from verifier.catalog import document_hash
from verifier.eth import to_checksum_address

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from node.audit.service import AuditContext


log = logging.getLogger("dxl.api.ledger")

#: How long after the provider's decision both signatures stay valid (the terms' ``deadline``). Derived, not
#: chosen, so the typed data handed to an external signer and the one the service signs are identical; once a
#: signature is kept, its deadline is the terms' (:meth:`ExchangeService._terms`).
SIGNING_WINDOW_S = 7 * 24 * 3600


def request_public(
    r: AccessRequest, terms: m.StoredText | None, *, deadline_days: int, now: int
) -> m.RequestPublic:
    """``r`` as the API shows it, with its answer deadline and whether it is overdue at block time ``now``."""
    answer_by = add_working_days(r.requested_at, deadline_days)
    overdue: bool | None
    if r.status is RequestStatus.PENDING:
        overdue = answered_late(answer_by, None, now)
    elif r.decided_at:
        overdue = answered_late(answer_by, r.decided_at, now)
    else:  # withdrawn undecided: when is in the audit trail, not in the request's record
        overdue = None
    return m.RequestPublic(
        id=r.id, resource_id=r.resource_id, consumer=r.consumer, provider=r.provider,
        status=status_name(r.status), requested_at=r.requested_at, decided_at=r.decided_at,
        answer_by=answer_by, overdue=overdue, reason_code=r.reason_code, valid_from=r.valid_from,
        valid_until=r.valid_until,
        purpose_hash=to_hex(r.purpose_hash), scope_hash=to_hex(r.scope_hash), terms_hash=to_hex(r.terms_hash),
        terms=terms,
    )  # fmt: skip


def agreement_public(a: Agreement, terms: m.StoredText | None = None) -> m.AgreementPublic:
    return m.AgreementPublic(
        id=a.id, request_id=a.request_id, resource_id=a.resource_id, provider=a.provider, consumer=a.consumer,
        status=status_name(a.status), valid_from=a.valid_from, valid_until=a.valid_until,
        terms_digest=to_hex(a.terms_digest), terms=terms,
    )  # fmt: skip


def _terms_json(terms: SharingTerms) -> dict[str, Any]:
    """The EIP-712 message of ``terms`` as JSON (bytes32 as hex), as it is kept beside a signature."""
    return {k: (to_hex(v) if isinstance(v, bytes) else v) for k, v in terms.message().items()}


def _without_deadline(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "deadline"}


#: Half the order of secp256k1: OpenZeppelin's ECDSA, which ``concludeAgreement`` runs, takes no ``s`` above
#: it (the other of the two signatures every key has for a message) and no ``v`` but 27 and 28.
_SECP256K1_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def _recovers_to(typed: dict[str, Any], signature: bytes, signer: str) -> bool:
    """Whether ``signature`` over the typed data recovers to ``signer`` as the ledger recovers it: 65 bytes,
    ``v`` 27 or 28 and a lower-half ``s`` (eth-account also takes ``v`` 0 or 1 and the high-``s`` twin,
    which, kept, would make a pair the ledger refuses on every counter-signature). False too when it does
    not parse."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        return False
    if int.from_bytes(signature[32:64], "big") > _SECP256K1_HALF_ORDER:
        return False
    try:
        recovered = Account.recover_message(encode_typed_data(full_message=typed), signature=signature)
    except Exception:  # malformed r/s/v: eth-keys raises several types
        return False
    return to_checksum_address(recovered) == signer


#: ERC-1271's answer for a valid signature: ``isValidSignature.selector``, left-aligned in a ``bytes32``.
ERC1271_MAGIC = bytes.fromhex("1626ba7e") + bytes(28)


class ExchangeService(CatalogService):
    """Requests, signatures and agreements."""

    def _signed_by(self, typed: dict[str, Any], signature: bytes, department: Department) -> bool:
        """Whether ``concludeAgreement`` takes ``signature`` over the typed terms as ``department``'s,
        checked as the ledger checks it (OpenZeppelin's SignatureChecker): an ECDSA signature recovering to
        its signer, or, only for a department admitted with ``contract_signer``, its signer contract's
        ERC-1271 ``isValidSignature`` answering the magic value. An unreachable node raises, never "invalid".
        """
        if _recovers_to(typed, signature, department.signer):
            return True
        if not department.contract_signer:
            return False
        signable = encode_typed_data(full_message=typed)
        digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
        call = ERC1271_MAGIC[:4] + abi_encode(["bytes32", "bytes"], [digest, signature])
        try:
            answer = bytes(self.client.w3.eth.call({"to": department.signer, "data": call}))
        except ContractLogicError:  # the wallet reverted: it does not take the signature
            return False
        return answer[:32] == ERC1271_MAGIC

    # --- requests ----------------------------------------------------------------------------------------

    def request(self, request_id: int, *, principal: Principal | None = None) -> m.RequestPublic:
        record = self._exchange_record(AccessRequest, request_id, principal=principal)
        return request_public(
            record, self._stored_terms(record.terms_hash), deadline_days=self.response_deadline_days,
            now=self._chain_time(),
        )  # fmt: skip

    def _stored_terms(self, terms_hash: bytes) -> m.StoredText | None:
        """The terms document stored under ``terms_hash``, None when the service has none."""
        return self.documents.stored([to_hex(terms_hash)]).get(to_hex(terms_hash).lower())

    def _requests_public(self, rows: list[AccessRequest]) -> list[m.RequestPublic]:
        """``rows`` made public with their terms documents, read in one query."""
        stored = self.documents.stored(to_hex(r.terms_hash) for r in rows)
        now, days = self._chain_time(), self.response_deadline_days
        return [
            request_public(r, stored.get(to_hex(r.terms_hash).lower()), deadline_days=days, now=now)
            for r in rows
        ]

    def requests(
        self,
        *,
        principal: Principal,
        index: AuditContext,
        flt: ListFilter,
        page: ListPage,
    ) -> Listed[m.RequestPublic]:
        """Requests newest first, one page, read from the audit index (:meth:`_listed`), each in the status
        the ledger's ``request(id)`` view computes, from what the index holds
        (:func:`node.audit.queries.requests`).

        Raises:
            ApiError: FORBIDDEN for a governor; VALIDATION_ERROR for a malformed cursor; INDEX_BEHIND.
        """
        return self._listed(
            audit_queries.requests, self._requests_public,
            principal=principal, index=index, flt=flt, page=page,
        )  # fmt: skip

    @journaled
    def create_request(self, *, principal: Principal, body: m.RequestCreate) -> m.Written[m.RequestPublic]:
        me = self.department_id_of(principal)
        resource = self._resource(body.resource_id)
        if resource.owner == me:
            raise ApiError("OWN_RESOURCE", f"resource {body.resource_id} is your own", field="resource_id")
        if resource.share_type is m.ShareTypeName.NOT_SHARED:
            raise ApiError("RESOURCE_NOT_SHARED", f"resource {body.resource_id} is classified as not shared")
        if body.valid_from >= body.valid_until:
            raise ApiError("INVALID_PERIOD", "valid_from must be before valid_until", field="valid_until")
        # The ledger refuses it too, but only after the terms below would have been stored.
        if body.valid_until <= self._chain_time():
            raise ApiError(
                "INVALID_PERIOD", "valid_until is already past by the chain's clock", field="valid_until"
            )
        documents: list[dict[str, Any]] = []
        if body.terms is None:
            scope_hash, terms_hash = b32(str(body.scope_hash)), b32(str(body.terms_hash))
        else:
            self._check_data_list(body.terms, resource)
            scope_hash = document_hash(body.terms.scope())
            # Stored once the estimate took the request, before it is sent, as catalog documents are.
            documents.append(body.terms.stored(body.purpose))
            terms_hash = document_hash(documents[0])
        args = (body.resource_id, body.purpose, scope_hash, terms_hash, body.valid_from,
                body.valid_until)  # fmt: skip
        finish = Finish("request", event="AccessRequested", arg="requestId")
        return cast(
            m.Written[m.RequestPublic],
            self._complete(self.department_account(me), "requestAccess", args, finish, principal, documents),
        )

    def _check_data_list(self, terms: m.TermsDocument, resource: m.ResourcePublic) -> None:
        """Every field of the data list is one the resource's catalog document lists (names compared by
        :func:`api.models.field_key`), when the service holds that document as the chain registered it (a
        resource registered by hash alone lists no fields).

        Raises:
            ApiError: TERMS_FIELD_UNKNOWN naming the first field that is not listed.
        """
        catalogued = self.documents.attach([resource])[0]
        columns = (catalogued.metadata or {}).get("csvw:column") if catalogued.verified else None
        if not isinstance(columns, list):
            return
        listed = {c.get("csvw:name") for c in columns if isinstance(c, dict)}
        # Compared as the catalog and the data list count names: the consumer's system may write an accent
        # decomposed where the catalog has it composed (or the other way), and the name is the same.
        keys = {m.field_key(n) for n in listed if isinstance(n, str)}
        for position, column in enumerate(terms.columns):
            if m.field_key(column.name) not in keys:
                raise ApiError(
                    "TERMS_FIELD_UNKNOWN",
                    f"resource {resource.id} lists no field {column.name!r}; its fields: "
                    + ", ".join(sorted(str(n) for n in listed)),
                    field=f"terms.csvw:column.{position}.csvw:name",
                )

    @journaled
    def decide_request(
        self, *, principal: Principal, request_id: int, reason_code: int | None
    ) -> m.Written[m.RequestPublic]:
        current = self._exchange_record(AccessRequest, request_id, principal=principal)
        me = self._acting(principal, current.provider, "decide this request (its provider)")
        if current.status is not RequestStatus.PENDING:
            raise ApiError(
                "REQUEST_STATUS_MISMATCH",
                f"request {request_id} is {status_name(current.status)}, not pending",
            )
        fn, args = ("approveRequest", (request_id,)) if reason_code is None else \
            ("rejectRequest", (request_id, reason_code))  # fmt: skip
        return cast(
            m.Written[m.RequestPublic],
            self._complete(self.department_account(me), fn, args, Finish("request", request_id), principal),
        )

    @journaled
    def withdraw_request(self, *, principal: Principal, request_id: int) -> m.Written[m.RequestPublic]:
        """The consumer withdraws its request, or the provider its approval, before an agreement is concluded;
        signatures kept for it are dropped.

        Raises:
            ApiError: NOT_A_PARTY, REQUEST_STATUS_MISMATCH (not pending or approved), NO_CUSTODIED_KEY.
        """
        current = self._exchange_record(AccessRequest, request_id, principal=principal)
        me = self.department_id_of(principal)
        if current.status not in (RequestStatus.PENDING, RequestStatus.APPROVED):
            raise ApiError(
                "REQUEST_STATUS_MISMATCH",
                f"request {request_id} is {status_name(current.status)}; only pending or approved requests "
                "are withdrawn",
            )
        written = cast(
            m.Written[m.RequestPublic],
            self._complete(
                self.department_account(me), "withdrawRequest", (request_id,), Finish("request", request_id),
                principal,
            ),
        )  # fmt: skip
        self._drop_signatures(request_id)
        return written

    def _drop_signatures(self, request_id: int) -> None:
        """Forget every signature kept for a request that will not conclude here (withdrawn, or concluded by
        someone else)."""
        with self._sessions()() as session:
            session.execute(delete(PendingSignature).where(PendingSignature.request_id == request_id))
            session.commit()

    # --- signing and agreements --------------------------------------------------------------------------

    def _terms(self, request: AccessRequest) -> SharingTerms:
        """The terms of a request already read, with the resource's catalog entry and both departments' key
        epochs as they are now: what the ledger checks the signatures against.

        The deadline is the one of a signature kept over these same terms, else the decision's time plus
        :data:`SIGNING_WINDOW_S`. The decision's time is its block's: when the node loses that block and the
        journal mines the decision again, later, the derived deadline moves, and a kept signature over the
        first one would no longer match (the counter-signature would drop it, and with it a signature that was
        answered as kept). The ledger binds the deadline to nothing but the signatures.
        """
        terms = SharingTerms.from_ledger(
            request,
            Resource.read(self.client, request.resource_id),
            self._department_record(request.provider),
            self._department_record(request.consumer),
            deadline=request.decided_at + SIGNING_WINDOW_S,
        )
        kept = self._kept_deadline(terms)
        return terms if kept is None else replace(terms, deadline=kept)

    def _kept_deadline(self, terms: SharingTerms) -> int | None:
        """The deadline of the first signature kept for the request over ``terms`` in all but the deadline;
        None when none is."""
        wanted = _without_deadline(_terms_json(terms))
        with self._sessions()() as session:
            kept = session.scalars(
                select(PendingSignature.terms)
                .where(PendingSignature.request_id == terms.request_id)
                .order_by(PendingSignature.id)
            )
            for signed in kept:
                deadline = signed.get("deadline")
                if isinstance(deadline, int) and _without_deadline(signed) == wanted:
                    return deadline
        return None

    def _conclusion_of_request(self, request_id: int) -> DecodedEvent | None:
        found = next(self._logs("AgreementConcluded", None, request_id.to_bytes(32, "big")), None)
        return found[0] if found else None

    def _agreement_of_request(self, request_id: int) -> int | None:
        found = self._conclusion_of_request(request_id)
        return int(found.args["agreementId"]) if found else None

    def signing(self, *, principal: Principal, request_id: int) -> m.SigningPublic:
        current = self._exchange_record(AccessRequest, request_id, principal=principal)
        if current.status not in (RequestStatus.APPROVED, RequestStatus.CONCLUDED):
            raise ApiError(
                "REQUEST_STATUS_MISMATCH",
                f"request {request_id} is {status_name(current.status)}; only approved requests are signed",
            )
        terms = self._terms(current)
        with self._sessions()() as session:
            roles = sorted(
                session.scalars(
                    select(PendingSignature.role).where(PendingSignature.request_id == request_id)
                )
            )
        concluded = current.status is RequestStatus.CONCLUDED
        agreement_id = self._agreement_of_request(request_id) if concluded else None
        return m.SigningPublic(
            request_id=request_id,
            digest=to_hex(self.client.call("termsDigest", terms.as_tuple())),
            typed_data=self._typed_data(terms),
            signed_by=["provider", "consumer"] if agreement_id else roles,  # type: ignore[arg-type]
            agreement_id=agreement_id,
            terms=self._stored_terms(current.terms_hash),
        )

    def _typed_data(self, terms: SharingTerms) -> dict[str, Any]:
        data = terms.typed_data(chain_id=self.chain_id, verifying_contract=self.address)
        # bytes32 values as hex so the document is JSON; eth-account accepts hex strings for bytes32.
        data["message"] = _terms_json(terms)
        return data

    def _lock_for(self, request_id: int) -> threading.Lock:
        with self._locks_guard:
            return self._sign_locks.setdefault(request_id, threading.Lock())

    @journaled
    def sign(self, *, principal: Principal, request_id: int, signature: str | None) -> m.SignatureOutcome:
        """Adds the calling department's signature (its own, or made with its custodied key); concludes the
        agreement on chain once both parties signed. The signature the department already has kept, sent
        again (a retry whose first answer was lost or a 5xx), goes on as if it were the first: the answer is
        the exchange's outcome now.

        Raises:
            ApiError: not a party (NOT_A_PARTY), request not approved (REQUEST_STATUS_MISMATCH), signature not
                the department's signer's (INVALID_SIGNATURE), another signature of the department still
                valid is kept (ALREADY_SIGNED), the department suspended (DEPARTMENT_NOT_ACTIVE), no key.
        """
        current = self._exchange_record(AccessRequest, request_id, principal=principal)
        me = self.department_id_of(principal)
        role = "provider" if me == current.provider else "consumer"
        if current.status is RequestStatus.CONCLUDED:
            # Anyone may relay both signatures to the ledger: someone did, so the agreement is what to report.
            # A posted signature is still checked: a forged one is refused, never answered as if it counted.
            if signature is not None and not self._signed_by(
                self._typed_data(self._terms(current)),
                bytes.fromhex(signature[2:]),
                self._department_record(me),
            ):
                raise ApiError(
                    "INVALID_SIGNATURE",
                    f"the signature does not recover to department {me}'s signer over these terms",
                    field="signature",
                )
            return self._concluded_elsewhere(principal, request_id)
        if current.status is not RequestStatus.APPROVED:
            raise ApiError(
                "REQUEST_STATUS_MISMATCH",
                f"request {request_id} is {status_name(current.status)}; only approved requests are signed",
            )
        # The terms are read under the lock: their deadline may be a kept signature's (:meth:`_terms`), and a
        # party signing at the same moment must see the one kept first.
        with self._lock_for(request_id):
            terms = self._terms(current)
            typed = self._typed_data(terms)
            department = self._department_record(me)
            if department.status is not DepartmentStatus.ACTIVE:
                # The ledger takes a signature only from an active department, when the agreement is
                # concluded: kept now, it would conclude the agreement once the department is reinstated,
                # signed while governance had it suspended (its key or its token possibly in other hands).
                raise ApiError(
                    "DEPARTMENT_NOT_ACTIVE",
                    f"department {me} is suspended: it signs no terms until it is reinstated",
                )
            if signature is None:
                raw = bytes(self.department_account(me).sign_typed_data(full_message=typed).signature)
            else:
                raw = bytes.fromhex(signature[2:])
                if not self._signed_by(typed, raw, department):
                    raise ApiError(
                        "INVALID_SIGNATURE",
                        f"the signature is not department {me}'s signer {department.signer}'s over these "
                        "terms",
                        field="signature",
                    )
            with self._sessions()() as session:
                message = _terms_json(terms)
                session.add(
                    PendingSignature(
                        request_id=request_id, role=role, department_id=me, terms=message, signature=raw
                    )
                )
                try:
                    session.commit()
                except IntegrityError:
                    session.rollback()
                    self._replace_stale(session, request_id, role, typed, department, raw, message)
                signatures = {
                    row.role: bytes(row.signature)
                    for row in session.scalars(
                        select(PendingSignature).where(PendingSignature.request_id == request_id)
                    )
                }
            other_role = "consumer" if role == "provider" else "provider"
            other = current.consumer if role == "provider" else current.provider
            if other_role in signatures and not self._signed_by(
                typed, signatures[other_role], self._department_record(other)
            ):
                # Kept over terms that changed since (a party was re-keyed, and the terms carry both key
                # epochs): the ledger would refuse the pair. That party signs again.
                self._drop_signature(request_id, other_role)
                del signatures[other_role]
            if set(signatures) != {"provider", "consumer"}:
                return m.SignatureOutcome(
                    status="awaiting_counter_signature",
                    signing=self.signing(principal=principal, request_id=request_id),
                )
            submitter = self._submitter(me, current.consumer if me == current.provider else current.provider)
            args = (terms.as_tuple(), signatures["provider"], signatures["consumer"])
            finish = Finish("signature", request_id, event="AgreementConcluded", arg="agreementId")
            try:
                return cast(
                    m.SignatureOutcome,
                    self._complete(submitter, "concludeAgreement", args, finish, principal),
                )
            except ApiError as exc:
                if exc.code != "TRANSACTION_PENDING":
                    self._drop_signature(request_id, role)
                raise
            except LedgerRevertError:
                if self._exchange_record(AccessRequest, request_id).status is RequestStatus.CONCLUDED:
                    # Relayed by someone else between this request's checks and its transaction.
                    return self._concluded_elsewhere(principal, request_id)
                self._drop_signature(request_id, role)
                raise
            except Exception:
                self._drop_signature(request_id, role)
                raise

    def _concluded_elsewhere(self, principal: Principal, request_id: int) -> m.SignatureOutcome:
        """The outcome of signing a request whose agreement is already on chain (another party relayed
        ``concludeAgreement``): that agreement, and no signature kept for it any more. The ledger concludes a
        request only with both parties' signatures over its terms, so the agreement of this request is this
        party's. Its transaction is journaled first (:meth:`~api.journal.JournaledSender.adopt`), so a block
        the node loses takes the agreement no more than one this service concluded.

        Raises:
            ApiError: AGREEMENT_NOT_FOUND when the concluding event cannot be found from the deployment block;
                DATABASE_UNAVAILABLE; TRANSACTION_PENDING when the conclusion is not under the confirmation
                depth in time.
        """
        conclusion = self._conclusion_of_request(request_id)
        if conclusion is None:
            raise ApiError(
                "AGREEMENT_NOT_FOUND", f"request {request_id} is concluded, its agreement was not found"
            )
        agreement_id = int(conclusion.args["agreementId"])
        if not self.sender.adopt(conclusion.tx_hash):
            log.warning(
                "request %s was concluded by %s, whose signed bytes the node does not serve: not journaled",
                request_id, conclusion.tx_hash,
            )  # fmt: skip
        elif self.sender.confirmations:
            # The agreement's id as the block under the confirmation depth numbers it, as for a conclusion
            # this service sent (:meth:`~api.journal.JournaledSender.wait`).
            mined = self.sender.wait(conclusion.tx_hash)
            agreement_id = int(mined.event("AgreementConcluded").args["agreementId"])
        self._drop_signatures(request_id)
        return m.SignatureOutcome(
            status="concluded",
            signing=self.signing(principal=principal, request_id=request_id),
            agreement=self.agreement(agreement_id),
        )

    def _drop_signature(self, request_id: int, role: str) -> None:
        """Forget a signature whose agreement was not concluded (a revert, the node, nothing sent): the party
        can sign again and that retry concludes, instead of being told it already signed. A journaled
        transaction still pending keeps it: reconciliation concludes the agreement with it."""
        with self._sessions()() as session:
            session.execute(
                delete(PendingSignature).where(
                    PendingSignature.request_id == request_id, PendingSignature.role == role
                )
            )
            session.commit()

    def _replace_stale(
        self,
        session: Session,
        request_id: int,
        role: str,
        typed: dict[str, Any],
        department: Department,
        raw: bytes,
        message: dict[str, Any],
    ) -> None:
        """A party signs again: the same signature is kept as it is (a retry: signing goes on to the outcome);
        another one is refused while the kept signature is still good, and replaces it when it is no longer
        the department's current signer's (the department was re-keyed since).

        Raises:
            ApiError: ALREADY_SIGNED when another signature of the party, still valid, is kept.
        """
        row = session.scalar(
            select(PendingSignature).where(
                PendingSignature.request_id == request_id, PendingSignature.role == role
            )
        )
        if row is not None:
            if bytes(row.signature) == raw:
                # Checked against these terms already (made over them, or verified above): nothing to change.
                return
            # A kept signature that does not even parse is as stale as one that does not match.
            if self._signed_by(typed, row.signature, department):
                raise ApiError("ALREADY_SIGNED", f"the {role} already signed request {request_id}")
            row.signature, row.terms = raw, message
        else:
            session.add(
                PendingSignature(
                    request_id=request_id, role=role, department_id=department.id, terms=message,
                    signature=raw,
                )
            )  # fmt: skip
        session.commit()

    def _submitter(self, me: int, other: int) -> LocalAccount:
        """Who sends ``concludeAgreement``: the signatures are the authorisation, so any custodied party key
        will do — the caller's, else the other party's (a department that signs only externally can still be
        the second to sign)."""
        try:
            return self.department_account(me)
        except ApiError:
            return self.department_account(other)

    def agreement(self, agreement_id: int, *, principal: Principal | None = None) -> m.AgreementPublic:
        record = self._exchange_record(Agreement, agreement_id, principal=principal)
        # The agreement holds only the EIP-712 digest; the terms hash is its request's.
        request = self._exchange_record(AccessRequest, record.request_id)
        return agreement_public(record, self._stored_terms(request.terms_hash))

    def agreements(
        self,
        *,
        principal: Principal,
        index: AuditContext,
        flt: ListFilter,
        page: ListPage,
    ) -> Listed[m.AgreementPublic]:
        """Agreements newest first, one page, read from the audit index (:meth:`_listed`), each in the status
        its latest suspension, reinstatement or revocation the index holds left it.

        Raises:
            ApiError: FORBIDDEN for a governor; VALIDATION_ERROR for a malformed cursor; INDEX_BEHIND.
        """

        def public(rows: list[Agreement]) -> list[m.AgreementPublic]:
            # The terms hashes from the index's request events, the documents in one query: no chain read.
            hashes = audit_queries.terms_hashes(index.engine, [a.request_id for a in rows])
            stored = self.documents.stored(to_hex(h) for h in hashes.values())
            return [
                agreement_public(a, stored.get(to_hex(hashes[a.request_id]).lower()))
                if a.request_id in hashes
                else agreement_public(a)
                for a in rows
            ]

        return self._listed(
            audit_queries.agreements, public,
            principal=principal, index=index, flt=flt, page=page,
        )  # fmt: skip

    @journaled
    def change_agreement(
        self, *, principal: Principal, agreement_id: int, fn: str
    ) -> m.Written[m.AgreementPublic]:
        current = self._exchange_record(Agreement, agreement_id, principal=principal)
        me = self._acting(principal, current.provider, "change this agreement (its provider)")
        active, suspended = AgreementStatus.ACTIVE, AgreementStatus.SUSPENDED
        allowed, done = {"suspendAgreement": ((active,), "suspended"),
                         "reinstateAgreement": ((suspended,), "reinstated"),
                         "revokeAgreement": ((active, suspended), "revoked")}[fn]  # fmt: skip
        if current.status not in allowed:
            # The code says "not in the status this needs"; the message says which status that is, so that
            # reinstating an active agreement does not read "agreement 2 is active" and nothing more.
            raise ApiError(
                "AGREEMENT_NOT_ACTIVE",
                f"agreement {agreement_id} is {status_name(current.status)}; only "
                f"{' or '.join(status_name(s) for s in allowed)} agreements are {done}",
            )
        return cast(
            m.Written[m.AgreementPublic],
            self._complete(
                self.department_account(me), fn, (agreement_id,), Finish("agreement", agreement_id), principal
            ),
        )
