"""The API's view of the ledger: reads records, checks parties, signs with custodied keys, sends writes.

Routes call keyword-only methods of :class:`LedgerService`; every write method validates what it cheaply can
(known ids, the caller being the right party, a signature recovering to the right signer) *before* signing, so
a request that fails validation sends nothing to the chain. The contract still checks everything again.

Writes: every transaction goes through the journal (:mod:`api.journal`), and each write names how its
response is built from the mined transaction (:class:`Finish`, kept in the journal row). A request that runs
under an idempotency claim whose transaction is already journaled — a retry after a lost answer, a crash or a
healed block — skips its checks and finishes that transaction instead (:func:`_journaled`): its checks would
now see its own effect (a delivery "already recorded") and a second transaction must never be signed.

Custody: the service holds keys in a :class:`~node.keys.KeyStore`. A department's key is the keystore entry
whose address is the department's on-chain signer (so no naming convention is assumed); governors' keys are
given by the deployment. Keys are unlocked at start (a wrong passphrase fails the start) and never leave here.
"""

from __future__ import annotations

import copy
import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import requests
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api import catalog
from api import models as m
from api.auth import Principal, Role
from api.db import PendingSignature
from api.errors import ApiError, revert_to_api_error
from api.journal import Claim, Journal, JournaledSender, Reconciler, TxStatus
from node.chain import LedgerClient, LedgerRevertError, TxResult
from node.errors import NodeError
from node.keys import KeyStore, KeystoreError
from node.types import (
    AccessRequest,
    Agreement,
    AgreementStatus,
    DeliveryReceipt,
    DeliveryStatus,
    Department,
    GovernanceAction,
    Grant,
    HashAlgorithm,
    Proposal,
    RequestStatus,
    Resource,
    ShareType,
    SharingTerms,
    decode_code,
    delivery_id_provider,
    encode_code,
)
from verifier.catalog import document_hash

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from api.practice import PracticeService

#: How long after the provider's decision both signatures stay valid (the terms' ``deadline``). Derived, not
#: stored, so the typed data handed to an external signer and the one the service signs are always identical.
SIGNING_WINDOW_S = 7 * 24 * 3600
#: Newest ids scanned by list endpoints (they read records one by one; the indexer serves large histories).
LIST_SCAN_LIMIT = 1000

_SHARE_NAMES = {
    ShareType.UNCONDITIONAL: m.ShareTypeName.UNCONDITIONAL,
    ShareType.CONDITIONAL: m.ShareTypeName.CONDITIONAL,
    ShareType.NOT_SHARED: m.ShareTypeName.NOT_SHARED,
}
_SHARE_TYPES = {v: k for k, v in _SHARE_NAMES.items()}
_HASH_NAMES = {HashAlgorithm.SHA256: m.HashAlgorithmName.SHA256, HashAlgorithm.SM3: m.HashAlgorithmName.SM3}
_HASH_IDS = {v: k for k, v in _HASH_NAMES.items()}
_HASH_NAMES_BY_ID = {int(k): v for k, v in _HASH_NAMES.items()}
#: Each governance action's arguments (name, ABI type), in the order of its proposal's ``data`` (see
#: ``GovernanceAction`` in contracts/src/types/Ledger.sol). Names are the fields of ``ProposalParameters``.
_ACTION_ARGS: dict[GovernanceAction, tuple[tuple[str, str], ...]] = {
    GovernanceAction.ADMIT_DEPARTMENT: (
        ("code", "bytes32"), ("name", "string"), ("signer", "address"), ("encryption_key", "bytes32"),
        ("contract_signer", "bool"),
    ),
    GovernanceAction.SUSPEND_DEPARTMENT: (("department_id", "uint32"),),
    GovernanceAction.REINSTATE_DEPARTMENT: (("department_id", "uint32"),),
    GovernanceAction.REKEY_DEPARTMENT: (
        ("department_id", "uint32"), ("signer", "address"), ("encryption_key", "bytes32"),
    ),
    GovernanceAction.GRANT_AUDITOR: (("account", "address"),),
    GovernanceAction.REVOKE_AUDITOR: (("account", "address"),),
    GovernanceAction.ADD_GOVERNOR: (("account", "address"),),
    GovernanceAction.REMOVE_GOVERNOR: (("account", "address"),),
    GovernanceAction.SET_THRESHOLD: (("threshold", "uint8"),),
    GovernanceAction.SUSPEND_AGREEMENT: (("agreement_id", "uint64"),),
    GovernanceAction.REVOKE_AGREEMENT: (("agreement_id", "uint64"),),
    GovernanceAction.REINSTATE_AGREEMENT: (("agreement_id", "uint64"),),
}  # fmt: skip


def _decode_parameters(action: GovernanceAction, data: bytes) -> m.ProposalParameters | None:
    """A proposal's arguments as typed fields; None when ``data`` does not decode as the action's."""
    args = _ACTION_ARGS.get(action)
    if args is None:
        return None
    try:
        values = abi_decode([t for _, t in args], data)
    except Exception:  # eth-abi raises several decoding error types for malformed data
        return None
    fields: dict[str, Any] = {}
    for (name, abi_type), value in zip(args, values, strict=True):
        if name == "code":
            fields[name] = decode_code(value)
        elif abi_type == "address":
            fields[name] = to_checksum_address(value)
        elif abi_type == "bytes32":
            fields[name] = _hex(value)
        else:
            fields[name] = value
    return m.ProposalParameters(**fields)


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _b32(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def _tx(result: TxResult) -> m.TransactionPublic:
    return m.TransactionPublic(hash=result.tx_hash, block_number=result.block_number)


def _status_name(enum_value: Any) -> str:
    return str(enum_value.name).lower()


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
            return _b32(item.delivery_id) == bytes(args["deliveryId"])
        if "grantId" in args:
            return item.grant_id == int(args["grantId"])
        if "agreementId" in args:
            return grant.agreement_id == int(args["agreementId"])
        if "departmentId" in args:
            return int(args["departmentId"]) in (grant.provider, grant.consumer)
        return False

    return next((i for i, item in enumerate(items) if applies(item)), None)


#: The revert each look-up view answers an unknown id with.
_UNKNOWN_REVERTS = {"request": "RequestUnknown", "agreement": "AgreementUnknown", "grant": "GrantUnknown"}
#: A record between two departments, read by id and checked for the caller being a party.
_ExchangeRecord = TypeVar("_ExchangeRecord", AccessRequest, Agreement, Grant)


def _request_public(r: AccessRequest) -> m.RequestPublic:
    return m.RequestPublic(
        id=r.id, resource_id=r.resource_id, consumer=r.consumer, provider=r.provider,
        status=_status_name(r.status), requested_at=r.requested_at, decided_at=r.decided_at,
        reason_code=r.reason_code, valid_from=r.valid_from, valid_until=r.valid_until,
        purpose_hash=_hex(r.purpose_hash), scope_hash=_hex(r.scope_hash), terms_hash=_hex(r.terms_hash),
    )  # fmt: skip


def _agreement_public(a: Agreement) -> m.AgreementPublic:
    return m.AgreementPublic(
        id=a.id, request_id=a.request_id, resource_id=a.resource_id, provider=a.provider, consumer=a.consumer,
        status=_status_name(a.status), valid_from=a.valid_from, valid_until=a.valid_until,
        terms_digest=_hex(a.terms_digest),
    )  # fmt: skip


def _grant_public(g: Grant) -> m.GrantPublic:
    return m.GrantPublic(
        id=g.id, agreement_id=g.agreement_id, provider=g.provider, consumer=g.consumer,
        expires_at=g.expires_at, revoked=g.revoked,
    )  # fmt: skip


def _not_found(kind: str, ident: object) -> ApiError:
    """The one answer for an id that does not exist and for one in an exchange the caller is not party to:
    same status, code and body, so a department cannot probe which ids other departments' exchanges use."""
    return ApiError(f"{kind.upper()}_NOT_FOUND", f"no {kind} {ident}")


def _recovers_to(typed: dict[str, Any], signature: bytes, signer: str) -> bool:
    """Whether ``signature`` over the typed data recovers to ``signer`` (False too when it does not parse)."""
    try:
        recovered = Account.recover_message(encode_typed_data(full_message=typed), signature=signature)
    except Exception:  # malformed r/s/v: eth-keys raises several types
        return False
    return to_checksum_address(recovered) == signer


@dataclass(frozen=True)
class Finish:
    """How a write's response is built from its mined transaction: the record ``view`` (``resource``,
    ``request``, ``agreement``, ``grant``, ``proposal``, ``delivery``, ``deliveries``, ``signature``; and
    ``practice.demand``, ``practice.evaluation``, ``practice.inspection`` of :mod:`api.practice`) whose id is
    ``record_id`` or the ``arg`` of the transaction's ``event``. Stored as JSON in the journal row."""

    view: str
    record_id: int | str | None = None
    event: str | None = None
    arg: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finish:
        return cls(**data)


_Write = TypeVar("_Write", bound=Callable[..., Any])


def _journaled(method: _Write) -> _Write:
    """A write that, under a claim whose transaction is already journaled, finishes that transaction instead
    of running again (see the module docstring)."""

    @functools.wraps(method)
    def run(self: LedgerService, *, principal: Principal, **kwargs: Any) -> Any:
        resumed = self._resume(principal)
        return resumed if resumed is not None else method(self, principal=principal, **kwargs)

    return cast(_Write, run)


#: A record between two departments, as the list endpoints filter it.
_Exchange = TypeVar("_Exchange", m.RequestPublic, m.AgreementPublic, m.GrantPublic)
_Known = TypeVar("_Known", m.DepartmentPublic, m.AgreementPublic)


@dataclass(frozen=True)
class Custody:
    """Which keys the service holds: keystore names by address, and governor index → keystore name.

    No key is found by its name: a department's is the entry of its on-chain signer, a governor's the entry of
    the address the deployment record lists for it, the auditor's an entry holding the ledger's auditor role.
    """

    keystore: KeyStore
    governors: dict[int, str]

    @classmethod
    def of_deployment(cls, keystore: KeyStore, governors: Sequence[str]) -> Custody:
        """The custody of ``keystore`` where governor N (from 1) is the N-th address of ``governors`` (the
        deployment record's ``governors``); a governor whose key is not in the keystore is not custodied."""
        names = cls(keystore, {}).names_by_address()
        return cls(
            keystore=keystore,
            governors={
                i: names[to_checksum_address(address)]
                for i, address in enumerate(governors, start=1)
                if to_checksum_address(address) in names
            },
        )

    def names_by_address(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name in self.keystore.names():
            try:
                found[to_checksum_address(self.keystore.address(name))] = name
            except KeystoreError:
                continue
        return found

    def unlock_all(self) -> int:
        """Unlocks every key once, so a wrong passphrase fails the start instead of the first request.

        Raises:
            KeystoreError: a key cannot be unlocked (the message names the key, never its material).
        """
        names = self.keystore.names()
        for name in names:
            self.keystore.unlock(name)
        return len(names)


class LedgerService:
    """Everything the routes do on the ledger, for one deployment and one key custody."""

    def __init__(
        self,
        *,
        client: LedgerClient,
        custody: Custody,
        sessions: Callable[[], sessionmaker[Session]],
        from_block: int = 0,
    ) -> None:
        self.client = client
        self.custody = custody
        self._sessions = sessions
        self.from_block = from_block
        self._code_ids: dict[str, int] = {}
        self._addresses: dict[str, str] = custody.names_by_address()
        self._sign_locks: dict[int, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.journal = Journal(sessions)
        self.documents = catalog.DocumentStore(sessions)
        self.sender = JournaledSender(client, self.journal)
        self.reconciler = Reconciler(self.sender)
        #: The idempotency claim of the request this view serves (:meth:`bound`).
        self.claim: Claim | None = None
        #: Demands and evaluations (:mod:`api.practice`), when ``SharingPractice`` is deployed beside it.
        self.practice: PracticeService | None = None

    def attach_practice(self, practice: LedgerClient, *, from_block: int) -> None:
        """Serve demand lists and evaluations from ``practice``. Its errors join the ledger client's decoder:
        a practice transaction that reverts once mined is replayed through the journal's client."""
        from api.practice import PracticeService
        from node.chain import ErrorDecoder

        self.client.errors = ErrorDecoder(
            [*self.client.abi, *(e for e in practice.abi if e.get("type") == "error")]
        )
        self.practice = PracticeService(client=practice, ledger=self, from_block=from_block)

    def practice_service(self) -> PracticeService:
        """Raises: ApiError PRACTICE_NOT_DEPLOYED when no ``SharingPractice`` is deployed beside it."""
        if self.practice is None:
            raise ApiError("PRACTICE_NOT_DEPLOYED", "no sharing practice contract beside this ledger")
        return self.practice

    def bound(self, claim: Claim | None, *, write: bool = False) -> LedgerService:
        """This service for one request: its writes are journaled under ``claim``. A write's first read of
        the chain passes the journal's gate (:meth:`JournaledSender.gate`): its checks (the request exists,
        the grant is usable) then wait, after the node lost blocks, until the journal has re-mined them,
        rather than refusing a write over a record that was acknowledged and is only not back yet."""
        view = copy.copy(self)
        view.claim = claim
        if write:
            view.client = cast(LedgerClient, _GatedReads(self.client, self.sender.gate))
        return view

    @property
    def chain_id(self) -> int:
        return int(self.client.chain_id)

    @property
    def address(self) -> str:
        return str(self.client.address)

    # --- journaled writes --------------------------------------------------------------------------------

    def _complete(
        self, account: LocalAccount, fn: str, args: tuple[Any, ...], finish: Finish, principal: Principal
    ) -> Any:
        """Send ``fn(*args)`` through the journal, await it, and build the response ``finish`` names.

        Raises:
            LedgerRevertError: estimation or the mined transaction reverted.
            ApiError: DATABASE_UNAVAILABLE (nothing sent), TRANSACTION_PENDING (journaled, not confirmed).
        """
        request = self.client.build(str(account.address), fn, *args)
        signed = self.sender.send(account, request, claim=self.claim, finish=finish.as_json())
        return self._finish(self.sender.wait(signed.tx_hash), finish, principal)

    def _resume(self, principal: Principal) -> Any | None:
        """The response of the claim's journaled transaction, finished now; None when the claim has none that
        can still be mined (the write runs)."""
        if self.claim is None or self.claim.tx_hash is None:
            return None
        entry = self.journal.entry(self.claim.tx_hash)
        if entry is None or entry.finish is None or entry.status is TxStatus.SUPERSEDED:
            return None
        result = self.sender.resume(entry)
        return None if result is None else self._finish(result, Finish.from_json(entry.finish), principal)

    def _finish(self, result: TxResult, finish: Finish, principal: Principal) -> Any:
        if finish.view.startswith("practice."):
            # Demands, evaluations, inspections: built from the practice contract's events.
            return self.practice_service().finish(self, result, finish)
        ident: Any = finish.record_id
        if finish.event is not None and finish.arg is not None:
            ident = result.event(finish.event).args[finish.arg]
        tx = _tx(result)
        if finish.view == "signature":
            request_id = int(str(finish.record_id))
            return m.SignatureOutcome(
                status="concluded",
                signing=self.signing(principal=principal, request_id=request_id),
                transaction=tx,
                agreement=self.agreement(int(ident)),
            )
        if finish.view == "deliveries":
            return m.DeliveryBatchPublic(
                transaction=tx,
                records=[
                    self._delivery_public(
                        bytes(ev.args["deliveryId"]),
                        DeliveryReceipt.from_event_args(int(ev.args["grantId"]), ev.args),
                        result.block_number,
                    )
                    for ev in result.events_named("DeliveryRecorded")
                ],
            )
        if finish.view == "delivery":
            raw_id = _b32(str(ident))
            receipt, block = self._delivery(raw_id)
            return m.Written(transaction=tx, record=self._delivery_public(raw_id, receipt, block))
        readers: dict[str, Callable[[int], Any]] = {
            "resource": self.resource, "request": self.request, "agreement": self.agreement,
            "grant": self.grant, "proposal": self.proposal,
        }  # fmt: skip
        return m.Written(transaction=tx, record=readers[finish.view](int(ident)))

    # --- principals and keys ----------------------------------------------------------------------------

    def department_id_of(self, principal: Principal) -> int:
        """The on-chain id of a department principal.

        Raises:
            ApiError: FORBIDDEN for a non-department; DEPARTMENT_NOT_FOUND if the code is not admitted.
        """
        if principal.role is not Role.DEPARTMENT or principal.department is None:
            raise ApiError("FORBIDDEN", "only a department may do this")
        code = principal.department
        if code not in self._code_ids:
            dept_id = int(self.client.call("departmentByCode", encode_code(code)))
            if dept_id == 0:
                raise ApiError("DEPARTMENT_NOT_FOUND", f"department {code} is not admitted on the ledger")
            self._code_ids[code] = dept_id
        return self._code_ids[code]

    def department_id_by_code(self, code: str) -> int:
        """Raises: ApiError DEPARTMENT_NOT_FOUND for a code not admitted."""
        dept_id = int(self.client.call("departmentByCode", encode_code(code)))
        if dept_id == 0:
            raise ApiError("DEPARTMENT_NOT_FOUND", f"department {code} is not admitted on the ledger")
        return dept_id

    def agreement_of_grant(self, grant_id: int) -> int:
        """Raises: ApiError GRANT_NOT_FOUND for an unknown grant."""
        return self._exchange_record(Grant, grant_id).agreement_id

    def _custodied_name(self, address: str) -> str | None:
        address = to_checksum_address(address)
        if address not in self._addresses:
            self._addresses = self.custody.names_by_address()
        return self._addresses.get(address)

    def department_account(self, department_id: int) -> LocalAccount:
        """The custodied signing account of a department.

        Raises:
            ApiError: NO_CUSTODIED_KEY when the service does not hold the department's current key.
        """
        signer = self._department_record(department_id).signer
        name = self._custodied_name(signer)
        if name is None:
            raise ApiError(
                "NO_CUSTODIED_KEY",
                f"this service holds no key for department {department_id}'s signer {signer}; "
                "sign externally and post the signature, or have the key custodied",
            )
        return self.custody.keystore.unlock(name)

    def auditor_account(self) -> LocalAccount:
        """A custodied key of an account that holds the ledger's auditor role (the first by address).

        Raises:
            ApiError: NO_CUSTODIED_KEY when the service holds no auditor's key.
        """
        role = self.client.call("AUDITOR_ROLE")
        for address, name in sorted(self.custody.names_by_address().items()):
            if self.client.call("hasRole", role, address):
                return self.custody.keystore.unlock(name)
        raise ApiError("NO_CUSTODIED_KEY", "this service holds no auditor key")

    def governor_account(self, principal: Principal) -> LocalAccount:
        if principal.role is not Role.GOVERNOR or principal.governor is None:
            raise ApiError("FORBIDDEN", "only a governor may do this")
        name = self.custody.governors.get(principal.governor)
        if name is None:
            raise ApiError("NO_CUSTODIED_KEY", f"this service holds no key for governor {principal.governor}")
        return self.custody.keystore.unlock(name)

    def _party_check(self, principal: Principal, kind: str, ident: object, *parties: int) -> None:
        """Auditors read everything; departments only what they are party to; governors read none of it.

        Raises:
            ApiError: ``<KIND>_NOT_FOUND`` to a department not party to the record, exactly as for an unknown
                id (:func:`_not_found`); FORBIDDEN to anyone but departments and auditors.
        """
        if principal.role is Role.AUDITOR:
            return
        if principal.role is not Role.DEPARTMENT:
            raise ApiError("FORBIDDEN", "only departments party to an exchange and auditors may read it")
        if self.department_id_of(principal) not in parties:
            raise _not_found(kind, ident)

    def _acting(self, principal: Principal, expected: int, what: str) -> int:
        me = self.department_id_of(principal)
        if me != expected:
            raise ApiError("NOT_A_PARTY", f"only department {expected} may {what}; you are department {me}")
        return me

    # --- raw reads ---------------------------------------------------------------------------------------

    def _department_record(self, department_id: int) -> Department:
        return Department.read(self.client, department_id)

    def _exchange_record(
        self, kind: type[_ExchangeRecord], ident: int, *, principal: Principal | None = None
    ) -> _ExchangeRecord:
        """A request, agreement or grant as the chain holds it; with ``principal``, only to its parties.

        Raises:
            ApiError: ``<KIND>_NOT_FOUND`` (:func:`_not_found`) for an id never created, and to a department
                not party to it.
        """
        try:
            record = kind.read(self.client, ident)
        except LedgerRevertError as exc:
            if exc.error_name == _UNKNOWN_REVERTS[kind.VIEW]:
                raise _not_found(kind.VIEW, ident) from None
            raise
        if principal is not None:
            self._party_check(principal, kind.VIEW, ident, record.provider, record.consumer)
        return record

    def _logs(
        self, event: str, *topics: bytes | None, newest_first: bool = False
    ) -> Iterator[tuple[Any, int]]:
        return self.client.get_logs(event, *topics, from_block=self.from_block, newest_first=newest_first)

    # --- departments -------------------------------------------------------------------------------------

    def department(self, department_id: int) -> m.DepartmentPublic:
        d = self._department_record(department_id)
        return m.DepartmentPublic(
            id=department_id,
            code=d.code,
            name=d.name,
            signer=d.signer,
            status=_status_name(d.status),
            encryption_key=_hex(d.encryption_key),
            key_epoch=d.key_epoch,
            contract_signer=d.contract_signer,
            custodied=self._custodied_name(d.signer) is not None,
        )

    def departments(self) -> list[m.DepartmentPublic]:
        count = int(self.client.call("departmentCount"))
        return [self.department(i) for i in range(1, count + 1)]

    # --- catalog -----------------------------------------------------------------------------------------

    def resource(self, resource_id: int) -> m.ResourcePublic:
        """One catalog entry with its stored metadata document and whether the chain vouches for it."""
        return self.documents.attach([self._resource(resource_id)])[0]

    def _resource(self, resource_id: int, *, owner_codes: dict[int, str] | None = None) -> m.ResourcePublic:
        """One catalog entry as the chain holds it. ``owner_codes`` caches owners' codes across the entries
        of one list (filled here), so a list reads each owning department once, not once per resource."""
        r = Resource.read(self.client, resource_id)
        codes = {} if owner_codes is None else owner_codes
        if r.owner not in codes:
            codes[r.owner] = self._department_record(r.owner).code
        return m.ResourcePublic(
            id=resource_id,
            owner=r.owner,
            owner_code=codes[r.owner],
            share_type=_SHARE_NAMES[r.share_type],
            sensitivity=r.sensitivity,
            metadata_hash=_hex(r.metadata_hash),
            schema_hash=_hex(r.schema_hash),
        )

    def resources(
        self, *, owner: int | None = None, share_type: m.ShareTypeName | None = None, text: str | None = None
    ) -> list[m.ResourcePublic]:
        """The catalog, newest first, with documents; ``text`` searches titles, descriptions, keywords and
        fields (case-insensitive)."""
        count = int(self.client.call("resourceCount"))
        codes: dict[int, str] = {}
        found = [
            self._resource(i, owner_codes=codes) for i in range(count, max(0, count - LIST_SCAN_LIMIT), -1)
        ]
        found = [
            r for r in found
            if (owner is None or r.owner == owner) and (share_type is None or r.share_type is share_type)
        ]  # fmt: skip
        listed = self.documents.attach(found)
        return listed if not text else [r for r in listed if catalog.matches(r, text)]

    def import_catalog(self, *, body: m.CatalogImport) -> m.CatalogImported:
        """Stores the documents of an exported catalog, each only if it hashes to its resource's metadata hash
        on this chain; one bad entry refuses the whole import (nothing stored).

        Raises:
            ApiError: VALIDATION_ERROR for a malformed document, CATALOG_DOCUMENT_MISMATCH when one does not
            hash to its resource's chain value, RESOURCE_NOT_FOUND for an unknown id.
        """
        documents = []
        for index, entry in enumerate(catalog.entries_of(body)):
            try:
                document = m.CatalogDocument.model_validate(entry.metadata or {}).as_json()
            except ValidationError as exc:
                raise ApiError(
                    "VALIDATION_ERROR", f"resources[{index}].metadata: {exc.errors()[0]['msg']}",
                    field=f"resources.{index}.metadata",
                ) from None  # fmt: skip
            on_chain = self._resource(entry.id).metadata_hash.lower()
            digest = _hex(document_hash(document))
            if digest != on_chain:
                raise ApiError(
                    "CATALOG_DOCUMENT_MISMATCH",
                    f"resources[{index}]: the document hashes to {digest}, resource {entry.id}: {on_chain}",
                    field=f"resources.{index}.metadata", resource_id=entry.id,
                )  # fmt: skip
            documents.append(document)
        for document in documents:
            self.documents.put(document)
        return m.CatalogImported(imported=len(documents))

    @_journaled
    def register_resource(
        self, *, principal: Principal, body: m.ResourceCreate
    ) -> m.Written[m.ResourcePublic]:
        me = self.department_id_of(principal)
        if body.metadata is not None:
            self.documents.put(body.metadata.as_json())
        args = (_b32(body.chain_metadata_hash), _b32(body.schema_hash), int(_SHARE_TYPES[body.share_type]),
                body.sensitivity)  # fmt: skip
        finish = Finish("resource", event="ResourceRegistered", arg="resourceId")
        return cast(
            m.Written[m.ResourcePublic],
            self._complete(self.department_account(me), "registerResource", args, finish, principal),
        )

    @_journaled
    def update_resource(
        self, *, principal: Principal, resource_id: int, body: m.ResourceUpdate
    ) -> m.Written[m.ResourcePublic]:
        current = self._resource(resource_id)
        me = self.department_id_of(principal)
        if current.owner != me:
            raise ApiError(
                "NOT_RESOURCE_OWNER", f"resource {resource_id} belongs to department {current.owner}"
            )
        if body.metadata is not None:
            self.documents.put(body.metadata.as_json())
        args = (resource_id, _b32(body.chain_metadata_hash), _b32(body.schema_hash),
                int(_SHARE_TYPES[body.share_type]), body.sensitivity)  # fmt: skip
        return cast(
            m.Written[m.ResourcePublic],
            self._complete(
                self.department_account(me),
                "updateResource",
                args,
                Finish("resource", resource_id),
                principal,
            ),
        )

    # --- requests ----------------------------------------------------------------------------------------

    def request(self, request_id: int, *, principal: Principal | None = None) -> m.RequestPublic:
        return _request_public(self._exchange_record(AccessRequest, request_id, principal=principal))

    def requests(self, *, principal: Principal, limit: int) -> list[m.RequestPublic]:
        count = int(self.client.call("counts")[0])
        return list(self._scan(count, limit, self.request, principal))

    def _reader(self, principal: Principal) -> int | None:
        """The department whose exchanges a list is narrowed to; None for an auditor, who reads them all.

        Raises:
            ApiError: FORBIDDEN for anyone but a department or an auditor.
        """
        if principal.role not in (Role.AUDITOR, Role.DEPARTMENT):
            raise ApiError("FORBIDDEN", "only departments and auditors read exchanges")
        return self.department_id_of(principal) if principal.role is Role.DEPARTMENT else None

    def _scan(
        self, count: int, limit: int, read: Callable[[int], _Exchange], principal: Principal
    ) -> Iterator[_Exchange]:
        me = self._reader(principal)
        found = 0
        for i in range(count, max(0, count - LIST_SCAN_LIMIT), -1):
            if found >= limit:
                return
            record = read(i)
            if me is None or me in (record.consumer, record.provider):
                found += 1
                yield record

    @_journaled
    def create_request(self, *, principal: Principal, body: m.RequestCreate) -> m.Written[m.RequestPublic]:
        me = self.department_id_of(principal)
        resource = self._resource(body.resource_id)
        if resource.owner == me:
            raise ApiError("OWN_RESOURCE", f"resource {body.resource_id} is your own", field="resource_id")
        if resource.share_type is m.ShareTypeName.NOT_SHARED:
            raise ApiError("RESOURCE_NOT_SHARED", f"resource {body.resource_id} is classified as not shared")
        if body.valid_from >= body.valid_until:
            raise ApiError("INVALID_PERIOD", "valid_from must be before valid_until", field="valid_until")
        args = (body.resource_id, body.purpose, _b32(body.scope_hash), _b32(body.terms_hash), body.valid_from,
                body.valid_until)  # fmt: skip
        finish = Finish("request", event="AccessRequested", arg="requestId")
        return cast(
            m.Written[m.RequestPublic],
            self._complete(self.department_account(me), "requestAccess", args, finish, principal),
        )

    @_journaled
    def decide_request(
        self, *, principal: Principal, request_id: int, reason_code: int | None
    ) -> m.Written[m.RequestPublic]:
        current = self._exchange_record(AccessRequest, request_id, principal=principal)
        me = self._acting(principal, current.provider, "decide this request (its provider)")
        if current.status is not RequestStatus.PENDING:
            raise ApiError(
                "REQUEST_STATUS_MISMATCH",
                f"request {request_id} is {_status_name(current.status)}, not pending",
            )
        fn, args = ("approveRequest", (request_id,)) if reason_code is None else \
            ("rejectRequest", (request_id, reason_code))  # fmt: skip
        return cast(
            m.Written[m.RequestPublic],
            self._complete(self.department_account(me), fn, args, Finish("request", request_id), principal),
        )

    @_journaled
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
                f"request {request_id} is {_status_name(current.status)}; only pending or approved requests "
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
        epochs as they are now: what the ledger checks the signatures against."""
        return SharingTerms.from_ledger(
            request,
            Resource.read(self.client, request.resource_id),
            self._department_record(request.provider),
            self._department_record(request.consumer),
            deadline=request.decided_at + SIGNING_WINDOW_S,
        )

    def _agreement_of_request(self, request_id: int) -> int | None:
        found = next(self._logs("AgreementConcluded", None, request_id.to_bytes(32, "big")), None)
        return int(found[0].args["agreementId"]) if found else None

    def signing(self, *, principal: Principal, request_id: int) -> m.SigningPublic:
        current = self._exchange_record(AccessRequest, request_id, principal=principal)
        if current.status not in (RequestStatus.APPROVED, RequestStatus.CONCLUDED):
            raise ApiError(
                "REQUEST_STATUS_MISMATCH",
                f"request {request_id} is {_status_name(current.status)}; only approved requests are signed",
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
            digest=_hex(self.client.call("termsDigest", terms.as_tuple())),
            typed_data=self._typed_data(terms),
            signed_by=["provider", "consumer"] if agreement_id else roles,  # type: ignore[arg-type]
            agreement_id=agreement_id,
        )

    def _typed_data(self, terms: SharingTerms) -> dict[str, Any]:
        data = terms.typed_data(chain_id=self.chain_id, verifying_contract=self.address)
        # bytes32 values as hex so the document is JSON; eth-account accepts hex strings for bytes32.
        data["message"] = {k: (_hex(v) if isinstance(v, bytes) else v) for k, v in data["message"].items()}
        return data

    def _lock_for(self, request_id: int) -> threading.Lock:
        with self._locks_guard:
            return self._sign_locks.setdefault(request_id, threading.Lock())

    @_journaled
    def sign(self, *, principal: Principal, request_id: int, signature: str | None) -> m.SignatureOutcome:
        """Adds the calling department's signature (its own, or made with its custodied key); concludes the
        agreement on chain once both parties signed.

        Raises:
            ApiError: not a party (NOT_A_PARTY), request not approved (REQUEST_STATUS_MISMATCH), signature not
                the department's signer's (INVALID_SIGNATURE), already signed (ALREADY_SIGNED), no key.
        """
        current = self._exchange_record(AccessRequest, request_id, principal=principal)
        me = self.department_id_of(principal)
        role = "provider" if me == current.provider else "consumer"
        if current.status is RequestStatus.CONCLUDED:
            # Anyone may relay both signatures to the ledger: someone did, so the agreement is what to report.
            # A posted signature is still checked: a forged one is refused, never answered as if it counted.
            if signature is not None and not _recovers_to(
                self._typed_data(self._terms(current)),
                bytes.fromhex(signature[2:]),
                self._department_record(me).signer,
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
                f"request {request_id} is {_status_name(current.status)}; only approved requests are signed",
            )
        terms = self._terms(current)
        typed = self._typed_data(terms)
        signer = self._department_record(me).signer
        if signature is None:
            raw = bytes(self.department_account(me).sign_typed_data(full_message=typed).signature)
        else:
            raw = bytes.fromhex(signature[2:])
            if not _recovers_to(typed, raw, signer):
                raise ApiError(
                    "INVALID_SIGNATURE",
                    f"the signature does not recover to department {me}'s signer {signer} over these terms",
                    field="signature",
                )
        with self._lock_for(request_id):
            with self._sessions()() as session:
                message = {
                    k: (v if not isinstance(v, bytes) else _hex(v)) for k, v in terms.message().items()
                }
                session.add(
                    PendingSignature(
                        request_id=request_id, role=role, department_id=me, terms=message, signature=raw
                    )
                )
                try:
                    session.commit()
                except IntegrityError:
                    session.rollback()
                    self._replace_stale(session, request_id, role, typed, signer, raw, me)
                signatures = {
                    row.role: bytes(row.signature)
                    for row in session.scalars(
                        select(PendingSignature).where(PendingSignature.request_id == request_id)
                    )
                }
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
        ``concludeAgreement``): that agreement, and no signature kept for it any more.

        Raises:
            ApiError: AGREEMENT_NOT_FOUND when the concluding event cannot be found from the deployment block.
        """
        self._drop_signatures(request_id)
        agreement_id = self._agreement_of_request(request_id)
        if agreement_id is None:
            raise ApiError(
                "AGREEMENT_NOT_FOUND", f"request {request_id} is concluded, its agreement was not found"
            )
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
        signer: str,
        raw: bytes,
        department_id: int,
    ) -> None:
        """A party signs again: refused while its kept signature is still good; replaced when it no longer
        recovers to the department's current signer (the department was re-keyed since).

        Raises:
            ApiError: ALREADY_SIGNED when the kept signature is still valid.
        """
        row = session.scalar(
            select(PendingSignature).where(
                PendingSignature.request_id == request_id, PendingSignature.role == role
            )
        )
        if row is not None:
            # A kept signature that does not even parse is as stale as one that does not match.
            if _recovers_to(typed, row.signature, signer):
                raise ApiError("ALREADY_SIGNED", f"the {role} already signed request {request_id}")
            row.signature = raw
        else:
            session.add(
                PendingSignature(request_id=request_id, role=role, department_id=0, terms={}, signature=raw)
            )
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
        return _agreement_public(self._exchange_record(Agreement, agreement_id, principal=principal))

    def agreements(self, *, principal: Principal, limit: int) -> list[m.AgreementPublic]:
        count = int(self.client.call("counts")[1])
        return list(self._scan(count, limit, self.agreement, principal))

    @_journaled
    def change_agreement(
        self, *, principal: Principal, agreement_id: int, fn: str
    ) -> m.Written[m.AgreementPublic]:
        current = self._exchange_record(Agreement, agreement_id, principal=principal)
        me = self._acting(principal, current.provider, "change this agreement (its provider)")
        active, suspended = AgreementStatus.ACTIVE, AgreementStatus.SUSPENDED
        allowed = {"suspendAgreement": (active,), "reinstateAgreement": (suspended,),
                   "revokeAgreement": (active, suspended)}[fn]  # fmt: skip
        if current.status not in allowed:
            raise ApiError(
                "AGREEMENT_NOT_ACTIVE", f"agreement {agreement_id} is {_status_name(current.status)}"
            )
        return cast(
            m.Written[m.AgreementPublic],
            self._complete(
                self.department_account(me), fn, (agreement_id,), Finish("agreement", agreement_id), principal
            ),
        )

    # --- grants ------------------------------------------------------------------------------------------

    def grant(self, grant_id: int, *, principal: Principal | None = None) -> m.GrantPublic:
        return _grant_public(self._exchange_record(Grant, grant_id, principal=principal))

    def grants(self, *, principal: Principal, limit: int) -> list[m.GrantPublic]:
        count = int(self.client.call("counts")[2])
        return list(self._scan(count, limit, self.grant, principal))

    @_journaled
    def issue_grant(self, *, principal: Principal, body: m.GrantCreate) -> m.Written[m.GrantPublic]:
        agreement = self._exchange_record(Agreement, body.agreement_id, principal=principal)
        me = self._acting(principal, agreement.provider, "issue grants under this agreement (its provider)")
        if agreement.status is not AgreementStatus.ACTIVE:
            raise ApiError(
                "AGREEMENT_NOT_ACTIVE", f"agreement {body.agreement_id} is {_status_name(agreement.status)}"
            )
        if body.expires_at > agreement.valid_until:
            raise ApiError(
                "INVALID_EXPIRY",
                f"expires_at is after the agreement's end {agreement.valid_until}",
                field="expires_at",
            )
        return cast(
            m.Written[m.GrantPublic],
            self._complete(
                self.department_account(me), "issueGrant", (body.agreement_id, body.expires_at),
                Finish("grant", event="GrantIssued", arg="grantId"), principal,
            ),
        )  # fmt: skip

    @_journaled
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
            raise _not_found("delivery", _hex(delivery_id))
        event, block = found
        return DeliveryReceipt.from_event_args(int(event.args["grantId"]), event.args), block

    def _delivery_public(self, delivery_id: bytes, receipt: DeliveryReceipt, block: int) -> m.DeliveryPublic:
        status = DeliveryStatus(int(self.client.call("deliveryStatus", delivery_id)))
        return m.DeliveryPublic(
            delivery_id=_hex(delivery_id), grant_id=receipt.grant_id, provider=receipt.provider,
            consumer=receipt.consumer, commitment=_hex(receipt.commitment),
            # The chain is read as it is: an algorithm id this service does not know is shown, not a failure.
            hash_algorithm=_HASH_NAMES_BY_ID.get(receipt.hash_algorithm),
            hash_algorithm_id=receipt.hash_algorithm,
            byte_size=receipt.byte_size, record_count=receipt.record_count, recorded_at=receipt.recorded_at,
            recorded_in_block=block, status=_status_name(status),
        )  # fmt: skip

    def delivery(self, delivery_id: str, *, principal: Principal) -> m.DeliveryPublic:
        raw = _b32(delivery_id)
        receipt, block = self._delivery(raw)
        self._party_check(principal, "delivery", _hex(raw), receipt.provider, receipt.consumer)
        return self._delivery_public(raw, receipt, block)

    def deliveries(self, *, principal: Principal, limit: int) -> list[m.DeliveryPublic]:
        me = self._reader(principal)
        out: list[m.DeliveryPublic] = []
        for event, block in self._logs("DeliveryRecorded", newest_first=True):
            receipt = DeliveryReceipt.from_event_args(int(event.args["grantId"]), event.args)
            if me is not None and me not in (receipt.provider, receipt.consumer):
                continue
            out.append(self._delivery_public(bytes(event.args["deliveryId"]), receipt, block))
            if len(out) >= limit:
                break
        return out

    def _checked_delivery(
        self, *, principal: Principal, body: m.DeliveryCreate, grants: dict[int, Grant]
    ) -> tuple[int, tuple[Any, ...]]:
        """What ``recordDelivery`` would refuse and can be known without sending anything.

        ``grants`` caches grants by id across the items of one batch (filled here).

        Returns:
            The acting department's id and the record as the contract takes it (``recordDelivery``'s
            arguments, in order; also a ``DeliveryRecord`` tuple).

        Raises:
            ApiError: GRANT_NOT_FOUND (unknown, or not the caller's exchange), NOT_A_PARTY (the grant's
                consumer), GRANT_REVOKED, GRANT_EXPIRED, DUPLICATE_DELIVERY (already on the ledger),
                INVALID_FIELD (a zero id or commitment).
        """
        grant = grants.get(body.grant_id) or self._exchange_record(Grant, body.grant_id, principal=principal)
        grants[body.grant_id] = grant
        me = self._acting(principal, grant.provider, "deliver under this grant (its provider)")
        if grant.revoked:
            raise ApiError("GRANT_REVOKED", f"grant {body.grant_id} was revoked")
        # Wall clock, not the latest block's time: on a quiet chain that lags, and the block this transaction
        # lands in will be at least as late as now.
        if grant.expires_at <= int(time.time()):
            raise ApiError("GRANT_EXPIRED", f"grant {body.grant_id} expired at {grant.expires_at}")
        raw_id = _b32(body.delivery_id)
        if raw_id == bytes(32) or _b32(body.commitment) == bytes(32):
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
        return me, (
            raw_id, body.grant_id, _b32(body.commitment), int(_HASH_IDS[body.hash_algorithm]), body.byte_size,
            body.record_count,
        )  # fmt: skip

    @_journaled
    def record_delivery(self, *, principal: Principal, body: m.DeliveryCreate) -> m.Written[m.DeliveryPublic]:
        me, record = self._checked_delivery(principal=principal, body=body, grants={})
        return cast(
            m.Written[m.DeliveryPublic],
            self._complete(
                self.department_account(me), "recordDelivery", record, Finish("delivery", body.delivery_id),
                principal,
            ),
        )  # fmt: skip

    @_journaled
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
            raw_id = _b32(item.delivery_id)
            if raw_id in first_seen:
                raise ApiError(
                    "VALIDATION_ERROR",
                    f"deliveries[{i}].delivery_id repeats deliveries[{first_seen[raw_id]}].delivery_id",
                    field=f"deliveries.{i}.delivery_id",
                    index=i,
                    delivery_id=item.delivery_id,
                )
            first_seen[raw_id] = i
        grants: dict[int, Grant] = {}
        records: list[tuple[Any, ...]] = []
        me = 0
        for i, item in enumerate(items):
            try:
                me, record = self._checked_delivery(principal=principal, body=item, grants=grants)
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

    @_journaled
    def settle_delivery(
        self, *, principal: Principal, delivery_id: str, consumer_commitment: str | None, dispute: bool
    ) -> m.Written[m.DeliveryPublic]:
        raw_id = _b32(delivery_id)
        receipt, _ = self._delivery(raw_id)
        self._party_check(principal, "delivery", _hex(raw_id), receipt.provider, receipt.consumer)
        me = self._acting(principal, receipt.consumer, "settle this delivery (its consumer)")
        commitment = _b32(consumer_commitment) if consumer_commitment else receipt.commitment
        if dispute and commitment == receipt.commitment:
            raise ApiError(
                "VALIDATION_ERROR",
                "a dispute needs a consumer commitment that differs from the recorded one; use acknowledge",
                field="consumer_commitment",
            )
        status = DeliveryStatus(int(self.client.call("deliveryStatus", raw_id)))
        if status in (DeliveryStatus.ACKNOWLEDGED, DeliveryStatus.DISPUTED):
            raise ApiError(
                "DELIVERY_ALREADY_SETTLED", f"delivery {delivery_id} is already {_status_name(status)}"
            )
        return cast(
            m.Written[m.DeliveryPublic],
            self._complete(
                self.department_account(me), "acknowledgeDelivery", (raw_id, receipt.as_tuple(), commitment),
                Finish("delivery", delivery_id), principal,
            ),
        )  # fmt: skip

    # --- governance --------------------------------------------------------------------------------------

    def _chain_time(self) -> int:
        """The latest block's timestamp: proposals expire by the chain's clock, not this machine's."""
        try:
            return int(self.client.w3.eth.get_block("latest")["timestamp"])
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise NodeError(f"node at {self.client.rpc_url} is unreachable") from exc

    def proposal(
        self, proposal_id: int, *, now: int | None = None, threshold: int | None = None
    ) -> m.ProposalPublic:
        """One proposal with its decoded arguments and the department or agreement it concerns.

        ``now`` and ``threshold`` are read from the chain unless a list hands them in (once for all).

        Raises:
            LedgerRevertError: GovernanceUnknownProposal for an id never created.
        """
        p = Proposal.read(self.client, proposal_id)
        now = self._chain_time() if now is None else now
        parameters = _decode_parameters(p.action, p.data)
        department = agreement = None
        if parameters is not None and parameters.department_id is not None:
            department = self._known(self.department, parameters.department_id)
        if parameters is not None and parameters.agreement_id is not None:
            agreement = self._known(self.agreement, parameters.agreement_id)
        if p.executed:
            status = m.ProposalStatus.EXECUTED
        elif p.cancelled:
            status = m.ProposalStatus.CANCELLED
        else:
            status = m.ProposalStatus.OPEN if now < p.expires_at else m.ProposalStatus.EXPIRED
        return m.ProposalPublic(
            id=proposal_id, action=_status_name(p.action), proposer=p.proposer, approvals=p.approvals,
            threshold=int(self.client.call("threshold")) if threshold is None else threshold,
            executed=p.executed, expires_at=p.expires_at, status=status, data=_hex(p.data),
            parameters=parameters, department=department, agreement=agreement,
        )  # fmt: skip

    @staticmethod
    def _known(read: Callable[[int], _Known], ident: int) -> _Known | None:
        """The record, or None when the chain has no such id (a proposal may name one that never existed)."""
        try:
            return read(ident)
        except LedgerRevertError:
            return None
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def proposals(self, *, status: m.ProposalStatus | None, limit: int) -> list[m.ProposalPublic]:
        """Proposals newest first, optionally only those in ``status``."""
        count = int(self.client.call("proposalCount"))
        now, threshold = self._chain_time(), int(self.client.call("threshold"))
        found: list[m.ProposalPublic] = []
        for proposal_id in range(count, max(0, count - LIST_SCAN_LIMIT), -1):
            if len(found) >= limit:
                break
            proposal = self.proposal(proposal_id, now=now, threshold=threshold)
            if status is None or proposal.status is status:
                found.append(proposal)
        return found

    @_journaled
    def propose(self, *, principal: Principal, body: m.ProposalCreate) -> m.Written[m.ProposalPublic]:
        account = self.governor_account(principal)
        action = GovernanceAction[body.action.upper()]
        if isinstance(body, m.AdmitDepartment):
            values: list[Any] = [encode_code(body.code), body.name, to_checksum_address(body.signer),
                                 _b32(body.encryption_key), body.contract_signer]  # fmt: skip
        elif isinstance(body, m.DepartmentAction):
            self.department(body.department_id)
            values = [body.department_id]
        elif isinstance(body, m.AuditorAction):
            values = [to_checksum_address(body.account)]
        else:
            self.agreement(body.agreement_id)
            values = [body.agreement_id]
        return cast(
            m.Written[m.ProposalPublic],
            self._complete(
                account, "propose", (int(action), abi_encode([t for _, t in _ACTION_ARGS[action]], values)),
                Finish("proposal", event="ProposalCreated", arg="proposalId"), principal,
            ),
        )  # fmt: skip

    @_journaled
    def approve_proposal(self, *, principal: Principal, proposal_id: int) -> m.Written[m.ProposalPublic]:
        account = self.governor_account(principal)
        current = self.proposal(proposal_id)
        if current.executed:
            raise ApiError("PROPOSAL_EXECUTED", f"proposal {proposal_id} already took effect")
        if self.client.call("hasApproved", proposal_id, account.address):
            raise ApiError(
                "ALREADY_APPROVED", f"governor {principal.governor} already approved {proposal_id}"
            )
        return cast(
            m.Written[m.ProposalPublic],
            self._complete(account, "approve", (proposal_id,), Finish("proposal", proposal_id), principal),
        )

    def execute_proposal(self, *, principal: Principal, proposal_id: int) -> m.Written[m.ProposalPublic]:
        """Carry out a proposal whose standing approvals reach the threshold but did not take effect when the
        last one came (the threshold was lowered since, or an approving governor's term ended and began
        again). The contract lets anyone execute; through the API a governor's key sends it."""
        account = self.governor_account(principal)
        if self.proposal(proposal_id).executed:
            raise ApiError("PROPOSAL_EXECUTED", f"proposal {proposal_id} already took effect")
        return cast(
            m.Written[m.ProposalPublic],
            self._complete(account, "execute", (proposal_id,), Finish("proposal", proposal_id), principal),
        )

    def cancel_proposal(self, *, principal: Principal, proposal_id: int) -> m.Written[m.ProposalPublic]:
        """Withdraw a proposal: only its proposer, while still a governor, and only before it took effect."""
        account = self.governor_account(principal)
        if self.proposal(proposal_id).executed:
            raise ApiError("PROPOSAL_EXECUTED", f"proposal {proposal_id} already took effect")
        return cast(
            m.Written[m.ProposalPublic],
            self._complete(account, "cancel", (proposal_id,), Finish("proposal", proposal_id), principal),
        )


class _GatedReads:
    """A ledger client whose first ``call`` or ``build`` passes ``gate`` first (once per request). Only
    the request's own view holds it; the service and the journal keep the plain client."""

    def __init__(self, client: LedgerClient, gate: Callable[[], object]) -> None:
        self._client = client
        self._gate: Callable[[], object] | None = gate

    def __getattr__(self, name: str) -> Any:
        if name in ("call", "build") and self._gate is not None:
            gate, self._gate = self._gate, None
            gate()
        return getattr(self._client, name)
