"""The chain-access core of the ledger service (:mod:`api.ledger`): reads records, checks parties, signs with
custodied keys, sends writes. Every area builds on :class:`LedgerCore`; it knows none of them.

Routes call keyword-only methods of :class:`~api.ledger.service.LedgerService`; every write method validates
what it cheaply can (known ids, the caller being the right party, a signature recovering to the right signer)
*before* signing, so a request that fails validation sends nothing to the chain. The contract still checks
everything again.

Writes: every transaction goes through the journal (:mod:`api.journal`), and each write names how its
response is built from the mined transaction (:class:`Finish`, kept in the journal row). A request that runs
under an idempotency claim whose transaction is already journaled — a retry after a lost answer, a crash or a
healed block — skips its checks and finishes that transaction instead (:func:`journaled`): its checks would
now see its own effect (a delivery "already recorded") and a second transaction must never be signed.

Custody: the service holds keys in a :class:`~node.keys.KeyStore`. A department's key is the keystore entry
whose address is the department's on-chain signer (so no naming convention is assumed); governors' keys are
those of the addresses the deployment record lists. Keys are unlocked at start (a wrong passphrase fails the
start) and never leave here.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast

from sqlalchemy.orm import Session, sessionmaker

from api import catalog
from api import models as m
from api.auth import Principal, Role
from api.errors import ApiError, not_found, revert_to_api_error
from api.journal import Claim, Journal, JournaledSender, Reconciler, TxStatus, pending
from api.receipts.grants import GRANT_CACHE_TTL_S, CacheClock
from node.audit.errors import InvalidQueryError
from node.audit.queries import MAX_LIMIT, IndexPage, ListFilter
from node.chain import LedgerClient, LedgerRevertError, TxResult
from node.keys import KeyStore
from node.settings import Settings
from node.types import (
    AccessRequest,
    Agreement,
    Department,
    Grant,
    encode_code,
)
from verifier.eth import to_checksum_address
from verifier.onchain import ChainCheckError, LedgerReader

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from node.audit.service import AuditContext

_Item = TypeVar("_Item")
_Row = TypeVar("_Row")


@dataclass(frozen=True)
class ListPage:
    """Which page of a list read from the audit index to answer: at most ``limit`` records, after ``cursor``
    (the ``next`` link of the page before; None: the first page), once the index holds ``min_block`` (a write
    just made; None: as the index is)."""

    limit: int = 100
    cursor: str | None = None
    min_block: int | None = None


@dataclass(frozen=True)
class Listed(Generic[_Item]):
    """One page of a list read from the audit index: the records, the cursor of the next page (None on the
    last), and the last block the index held when it was read (what the page can include)."""

    items: list[_Item]
    next_cursor: str | None
    indexed_block: int | None


@dataclass(frozen=True)
class AtBlock(Generic[_Item]):
    """One record read from the chain with every read of it made at one block, the node's head as the read
    began (:func:`node.endpoint.read_head`): the record held there, whatever was mined meanwhile, and
    ``block`` says where (a single-item route answers it in :data:`api.deps.CHAIN_BLOCK_HEADER`)."""

    item: _Item
    block: int


def store_then_send(store: catalog.DocumentStore, documents: Sequence[Mapping[str, Any]]) -> None:
    """Stores the documents a write's hashes name, called between its transaction's estimate and its sending:
    after the estimate, which refuses what the contract would, so a refused write stores nothing (a
    department could fill the database with texts no record names, one refused write at a time); before the
    sending, so the record is readable the moment it is mined. A transaction that reverts although its
    estimate passed leaves its document with nothing on the chain naming it, never shown."""
    for document in documents:
        store.put(document)


def to_hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def b32(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def tx_public(result: TxResult) -> m.TransactionPublic:
    return m.TransactionPublic(hash=result.tx_hash, block_number=result.block_number)


def status_name(enum_value: Any) -> str:
    return str(enum_value.name).lower()


#: The revert each look-up view answers an unknown id with.
_UNKNOWN_REVERTS = {"request": "RequestUnknown", "agreement": "AgreementUnknown", "grant": "GrantUnknown"}
#: A record between two departments, read by id and checked for the caller being a party.
_ExchangeRecord = TypeVar("_ExchangeRecord", AccessRequest, Agreement, Grant)


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


def journaled(method: _Write) -> _Write:
    """A write that, under a claim whose transaction is already journaled, finishes that transaction instead
    of running again (see the module docstring)."""

    @functools.wraps(method)
    def run(self: LedgerCore, *, principal: Principal, **kwargs: Any) -> Any:
        resumed = self._resume(principal)
        return resumed if resumed is not None else method(self, principal=principal, **kwargs)

    return cast(_Write, run)


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
        """The keystore name of every key held, by checksummed address, as the keystore directory holds them
        now (:meth:`~node.keys.KeyStore.addresses`: one scan, reading only files changed since the last)."""
        return {address: name for name, address in self.keystore.addresses().items()}

    def unlock_all(self) -> int:
        """Unlocks every key once, so a wrong passphrase fails the start instead of the first request.

        Raises:
            KeystoreError: a key cannot be unlocked (the message names the key, never its material).
        """
        names = self.keystore.names()
        for name in names:
            self.keystore.unlock(name)
        return len(names)


@dataclass
class _AuditorStanding:
    """Which custodied key holds the ledger's auditor role (None: none does), as read at a moment of the
    service's :class:`~api.receipts.grants.CacheClock`; one for the service, shared by every request's view
    (:meth:`LedgerCore.bound` copies the reference)."""

    seen: tuple[str | None, float] = (None, -GRANT_CACHE_TTL_S)


class LedgerCore:
    """What every area of :class:`~api.ledger.service.LedgerService` builds on: the client and its journaled
    sender, key custody, principals and party checks, and the raw reads of the chain."""

    def __init__(
        self,
        *,
        client: LedgerClient,
        custody: Custody,
        sessions: Callable[[], sessionmaker[Session]],
        from_block: int = 0,
        confirmations: int = 0,
    ) -> None:
        self.client = client
        self.custody = custody
        self._sessions = sessions
        self.from_block = from_block
        #: Working days a provider has to decide a request (``audit_response_deadline_days``, set by the app):
        #: each request read says when its answer is due and whether it is overdue, as the scorecard counts.
        self.response_deadline_days: int = Settings.model_fields["audit_response_deadline_days"].default
        self._code_ids: dict[str, int] = {}
        #: What ages the service's caches of chain state: the auditor's standing here, the receipts' grant
        #: states (:class:`~api.receipts.grants.GrantCache`, handed this clock by the app).
        self.cache_clock = CacheClock()
        self._auditor = _AuditorStanding()
        self._sign_locks: dict[int, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.journal = Journal(sessions)
        self.documents = catalog.DocumentStore(sessions)
        self.catalog_index = catalog.CatalogIndex(sessions)
        self.sender = JournaledSender(client, self.journal, confirmations=confirmations)
        self.sender.account_of = self._custodied_account
        self.reconciler = Reconciler(self.sender)
        #: The idempotency claim of the request this view serves (:meth:`bound`).
        self.claim: Claim | None = None
        #: Those of some delivery ids that a provider posted as receipts (the receipt journal's look-up, set
        #: when receipts are served): one id names one delivery, so a ledger delivery may not take a
        #: receipt's id. None: no receipts served here.
        self.receipt_ids: Callable[[int, Sequence[bytes]], set[bytes]] | None = None
        #: Holds ids as being recorded as single deliveries, for a ``with`` block
        #: (:meth:`api.delivery_ids.DeliveryIds.delivering`, set by the app with ``receipt_ids``): the receipt
        #: journal's writer refuses them meanwhile. None: no receipts to keep apart.
        self.delivering: Callable[[Sequence[bytes]], AbstractContextManager[None]] | None = None

    def bound(self, claim: Claim | None, *, write: bool = False) -> Self:
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

    def chain_reader(self) -> LedgerReader:
        """A read-only reader of this ledger with the proof code's own client
        (:class:`verifier.onchain.LedgerReader`, what ``POST /verify`` and an inspection's sample read), on
        the node the service's client uses now: after a failover the node it moved to, not the endpoint's
        first, which a reader made there would read stalled or gone. Its reads wait as the client's do
        (:attr:`~node.chain.LedgerClient.request_timeout`).

        Raises:
            ApiError: NODE_UNAVAILABLE when the node does not answer, serves another chain, or holds no code
                at the ledger's address.
        """
        try:
            return LedgerReader(
                self.client.rpc_url, self.address, chain_id=self.chain_id, from_block=self.from_block,
                abi=[dict(e) for e in self.client.abi], timeout=self.client.request_timeout,
            )  # fmt: skip
        except ChainCheckError as e:
            raise ApiError("NODE_UNAVAILABLE", e.message) from None

    # --- journaled writes --------------------------------------------------------------------------------

    def _complete(
        self,
        account: LocalAccount,
        fn: str,
        args: tuple[Any, ...],
        finish: Finish,
        principal: Principal,
        documents: Sequence[Mapping[str, Any]] = (),
    ) -> Any:
        """Send ``fn(*args)`` through the journal, await it, and build the response ``finish`` names.
        ``documents`` (what the arguments' hashes name: a catalog document, sharing terms) are stored once the
        estimate took the transaction, before it is sent (:func:`store_then_send`).

        Raises:
            LedgerRevertError: estimation or the mined transaction reverted.
            ApiError: DATABASE_UNAVAILABLE (nothing sent), TRANSACTION_PENDING (journaled, not confirmed).
        """
        request = self.client.build(str(account.address), fn, *args)
        store_then_send(self.documents, documents)
        signed = self.sender.send(account, request, claim=self.claim, finish=finish.as_json())
        return self._answer(self.sender.wait(signed.tx_hash), finish, principal)

    def _resume(self, principal: Principal) -> Any | None:
        """The response of the claim's journaled transaction, finished now; None when the claim has none that
        can still be mined (the write runs)."""
        if self.claim is None or self.claim.tx_hash is None:
            return None
        entry = self.journal.entry(self.claim.tx_hash)
        if entry is None or entry.finish is None or entry.status is TxStatus.SUPERSEDED:
            return None
        result = self.sender.resume(entry)
        return None if result is None else self._answer(result, Finish.from_json(entry.finish), principal)

    def _answer(self, result: TxResult, finish: Finish, principal: Principal) -> Any:
        """:meth:`_finish`, except that a record the mined transaction wrote and the node does not show is
        not a 404: its block was replaced since the receipt was read (a short reorganisation of a
        proof-of-authority chain, or a failover to a node one block behind). The journal mines it again; the
        answer is TRANSACTION_PENDING, and the retry with the same key answers the record.

        Raises:
            ApiError: TRANSACTION_PENDING as above; otherwise as :meth:`_finish`.
        """
        try:
            return self._finish(result, finish, principal)
        except (ApiError, LedgerRevertError) as exc:
            code = exc.code if isinstance(exc, ApiError) else revert_to_api_error(exc).code
            if not code.endswith("_NOT_FOUND"):
                raise
            why = f"mined in block {result.block_number}, but the node no longer shows what it wrote ({code})"
            raise pending(result.tx_hash, why) from None

    def _finish(self, result: TxResult, finish: Finish, principal: Principal) -> Any:
        """The response of a write once its transaction is mined, as ``finish`` names it: built by the
        composed service (:meth:`api.ledger.service.LedgerService._finish`), which knows every area's
        records."""
        raise NotImplementedError

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

    def department_named(self, code_or_id: str) -> int:
        """The id of the admitted department a query names by its code (``HRSS``) or its id (``2``), as the
        catalog's ``owner`` filter takes it.

        Raises:
            ApiError: DEPARTMENT_NOT_FOUND for a code or an id no department was admitted under (an id outside
                uint32 included), not an empty answer that reads as a department with nothing.
        """
        if not code_or_id.isdigit():
            return self.department_id_by_code(code_or_id)
        ident = int(code_or_id)
        if not 1 <= ident <= 2**32 - 1:
            raise not_found("department", ident)
        return self._department_record(ident).id

    def agreement_of_grant(self, grant_id: int) -> int:
        """Raises: ApiError GRANT_NOT_FOUND for an unknown grant."""
        return self._exchange_record(Grant, grant_id).agreement_id

    def _custodied_name(self, address: str, held: Mapping[str, str] | None = None) -> str | None:
        """The keystore name of ``address``'s key, looked up in ``held`` (a :meth:`Custody.names_by_address`
        taken once for many look-ups, as for a page) or else in the keystore as it is now."""
        held = self.custody.names_by_address() if held is None else held
        return held.get(to_checksum_address(address))

    def _custodied_account(self, address: str) -> LocalAccount | None:
        name = self._custodied_name(address)
        return None if name is None else self.custody.keystore.unlock(name)

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

    def auditor_address(self) -> str | None:
        """The address of the custodied key that holds the ledger's auditor role (the first by address), or
        None when none does (governance revoked it, or the service holds no auditor's key): the auditor the
        ``auditor`` principal acts as. Read from the chain at most once per :data:`GRANT_CACHE_TTL_S`, the
        freshness of the department and grant state the receipts' door checks: an auditor governance revoked
        is refused within that second, without anyone revoking its tokens.

        Raises:
            NodeError: the node does not answer (the standing is not taken on trust past its second).
        """
        address, read_at = self._auditor.seen
        now = self.cache_clock()
        if now - read_at < GRANT_CACHE_TTL_S:
            return address
        role = self.client.call("AUDITOR_ROLE")
        held = sorted(self.custody.names_by_address())
        # The auditor seen last asked first: one call a second while it stands.
        if address in held and self.client.call("hasRole", role, address):
            found: str | None = address
        else:
            found = next((a for a in held if self.client.call("hasRole", role, a)), None)
        self._auditor.seen = (found, now)
        return found

    def auditor_account(self, prefer: str | None = None) -> LocalAccount:
        """The custodied key of the auditor the ``auditor`` principal acts as (:meth:`auditor_address`), or
        ``prefer``'s when the service holds that key too and it is an auditor: an inspection's opener, the
        only auditor the practice contract lets record its outcomes while it is one (a service holding two
        auditors' keys acts as the first by address when it starts, which may not be the opener).

        Raises:
            ApiError: NO_CUSTODIED_KEY when the service holds no key that holds the auditor role.
        """
        address = self.auditor_address()
        if (
            prefer is not None
            and address is not None
            and prefer.lower() != address.lower()
            and self._custodied_name(prefer) is not None
            and self.client.call("hasRole", self.client.call("AUDITOR_ROLE"), prefer)
        ):
            address = prefer
        name = None if address is None else self._custodied_name(address)
        if name is None:
            raise ApiError("NO_CUSTODIED_KEY", "this service holds no auditor key")
        return self.custody.keystore.unlock(name)

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
                id (:func:`not_found`); FORBIDDEN to anyone but departments and auditors.
        """
        if principal.role is Role.AUDITOR:
            return
        if principal.role is not Role.DEPARTMENT:
            raise ApiError("FORBIDDEN", "only departments party to an exchange and auditors may read it")
        if self.department_id_of(principal) not in parties:
            raise not_found(kind, ident)

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
            ApiError: ``<KIND>_NOT_FOUND`` (:func:`not_found`) for an id never created, and to a department
                not party to it.
        """
        try:
            record = kind.read(self.client, ident)
        except LedgerRevertError as exc:
            if exc.error_name == _UNKNOWN_REVERTS[kind.VIEW]:
                raise not_found(kind.VIEW, ident) from None
            raise
        if principal is not None:
            self._party_check(principal, kind.VIEW, ident, record.provider, record.consumer)
        return record

    def _listed(
        self,
        query: Callable[..., IndexPage[_Row]],
        public: Callable[[list[_Row]], list[_Item]],
        *,
        principal: Principal,
        index: AuditContext,
        flt: ListFilter,
        page: ListPage,
    ) -> Listed[_Item]:
        """One page of a list of exchanges read from the audit index by ``query`` (of
        :mod:`node.audit.queries`), narrowed to the reader's own (a department's; an auditor reads all), the
        page's rows made public by ``public`` (all at once, so what it adds is read in one query).

        Raises:
            ApiError: FORBIDDEN for anyone but departments and auditors; as :meth:`_indexed`.
        """
        me = self._reader(principal)
        return self._indexed(
            query,
            public,
            index=index,
            flt=replace(flt, party=me),
            page=page,
        )

    def _indexed(
        self,
        query: Callable[..., IndexPage[_Row]],
        public: Callable[[list[_Row]], list[_Item]],
        *,
        index: AuditContext,
        flt: ListFilter,
        page: ListPage,
        keep: Callable[[_Item], bool] | None = None,
    ) -> Listed[_Item]:
        """One page of a list read from the audit index by ``query``, its rows made public by ``public`` (all
        of a page at once). ``keep`` narrows by what only the public record shows (a record's current status,
        its document): pages are read until ``page.limit`` records are kept or the index has no more, and the
        next page starts right after the last record kept, so no record is skipped or listed twice.

        Raises:
            ApiError: VALIDATION_ERROR for a malformed cursor; INDEX_BEHIND (:meth:`_indexed_up_to`).
        """
        indexed = self._indexed_up_to(index, page.min_block)
        # Filtering after the index: read in the largest pages, each read costs about what a small one does.
        batch = page.limit if keep is None else MAX_LIMIT
        cursor, kept = page.cursor, []
        while True:
            try:
                rows = query(index.engine, flt, cursor=cursor, limit=batch)
            except InvalidQueryError as exc:
                raise ApiError("VALIDATION_ERROR", exc.message, field=exc.field) from None
            items = public(rows.items)
            if keep is None:
                return Listed(items, rows.next_cursor, indexed)
            for position, item in enumerate(items):
                if not keep(item):
                    continue
                kept.append(item)
                if len(kept) == page.limit:
                    last = position == len(items) - 1 and rows.next_cursor is None
                    return Listed(kept, None if last else rows.cursors[position], indexed)
            if rows.next_cursor is None:
                return Listed(kept, None, indexed)
            cursor = rows.next_cursor

    def _indexed_up_to(self, index: AuditContext, min_block: int | None) -> int | None:
        """The last block the audit index holds, brought up to ``min_block`` first when it is behind it: a
        caller that just wrote passes its transaction's block and reads its own write.

        Raises:
            ApiError: VALIDATION_ERROR for a block beyond the chain's head; INDEX_BEHIND when the index keeps
                its confirmation depth behind the head and so stops short of ``min_block`` for now.
            NodeError: the node fails while the index catches up.
        """
        if min_block is None:
            return index.indexed_block()
        indexed = index.catch_up(min_block)
        if indexed is not None and indexed >= min_block:
            return indexed
        head = int(self.client.w3.eth.block_number)
        if min_block > head:
            raise ApiError(
                "VALIDATION_ERROR",
                f"min_block {min_block} is beyond the chain's head {head}",
                field="min_block",
            )
        raise ApiError(
            "INDEX_BEHIND", f"the audit index holds blocks up to {indexed}, not yet {min_block}",
            field="min_block", indexed_block=indexed,
        )  # fmt: skip

    def _logs(
        self, event: str, *topics: bytes | None, newest_first: bool = False
    ) -> Iterator[tuple[Any, int]]:
        return self.client.get_logs(event, *topics, from_block=self.from_block, newest_first=newest_first)

    def _reader(self, principal: Principal) -> int | None:
        """The department whose exchanges a list is narrowed to; None for an auditor, who reads them all.

        Raises:
            ApiError: FORBIDDEN for anyone but a department or an auditor.
        """
        if principal.role not in (Role.AUDITOR, Role.DEPARTMENT):
            raise ApiError("FORBIDDEN", "only departments and auditors read exchanges")
        return self.department_id_of(principal) if principal.role is Role.DEPARTMENT else None

    def _chain_time(self) -> int:
        """The latest block's timestamp: proposals expire by the chain's clock, not this machine's."""
        return self.client.head_time()


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
