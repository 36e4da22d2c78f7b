"""The dxl department API: ``create_app(settings)`` for tests and tools, ``app`` for ``uvicorn api.app:app``.

On start the app opens its database (creating its tables), connects to the node named by the settings (the
embedded node of ``DXL_HOME`` unless ``DXL_RPC_URL`` is set), loads the verified deployment record, and
unlocks every custodied key. A wrong keystore passphrase, a missing deployment or a mismatched chain stop the
start with a message that says which; keys never appear in it.

Which keys govern comes from the deployment record, never from the demo's key names: the demo consortium's
tokens and catalog documents are seeded by :mod:`api.demo` (``dxl run`` calls it), the only place here that
knows them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api.auth import principal_key
from api.console import install_console
from api.db import hold_database, init_db, make_engine, session_factory
from api.deps import AppState
from api.errors import MethodGuardMiddleware, install_error_handlers
from api.headers import SecurityHeadersMiddleware
from api.idempotency import IdempotencyMiddleware, IdempotencyStore, purge_expired
from api.journal import ChainWatcher, JournalChain
from api.ledger import Custody, LedgerService
from api.limits import (
    BODY_TIMEOUT_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    BodyLimitMiddleware,
    Identify,
    RateLimitMiddleware,
)
from api.openapi import install_openapi
from api.practice import InspectionDrawer
from api.receipts import ReceiptService
from api.receipts.anchorer import journaled_reverted, journaled_submit, journaled_void
from api.routes import (
    agreements,
    audit,
    catalog,
    deliveries,
    demands,
    departments,
    evaluations,
    grants,
    health,
    inspections,
    receipts,
    requests,
    verify,
)
from api.settings import ApiSettings, load_api_settings
from node.errors import DxlError, NodeError

if TYPE_CHECKING:
    from node.endpoint import NodeEndpoint

log = logging.getLogger("dxl.api")


#: The routers whose routes the app serves, in the order they are matched (after ``POST /receipts``'s direct
#: route). An app serves their routes as they were built once, at import, not through ``include_router``:
#: FastAPI (0.165) builds an included router's routes again for each app that includes it (dependencies, body
#: and response fields, per inclusion), on the app's first request, some 80 ms of CPU, for the same routes and
#: the same OpenAPI document. No route here depends on an app's ``dependency_overrides``.
ROUTERS = (
    health.router,
    departments.router,
    catalog.router,
    requests.router,
    agreements.router,
    grants.router,
    deliveries.router,
    receipts.router,
    demands.router,
    evaluations.router,
    inspections.router,
    audit.router,
    verify.router,
    evaluations.period_router,
)


def connect_ledger(settings: ApiSettings, sessions: Callable[[], sessionmaker[Session]]) -> LedgerService:
    """The ledger service for ``settings``: node endpoint, verified deployment, unlocked custodied keys.

    Raises:
        KeystoreError: a key cannot be unlocked (wrong passphrase or corrupt keystore).
        NotDeployedError, DeploymentMismatchError: no deployment record, or one for another ledger.
        NodeError: the node is unreachable or serves another chain.
        ConfigurationError: unusable settings, among them a confirmation depth the node never reaches
            (:func:`~node.endpoint.refuse_unreachable_depth`).
    """
    from node.anvil import EmbeddedNode
    from node.deploy import ledger_client, load_deployment
    from node.endpoint import NodeEndpoint, refuse_unreachable_depth
    from node.keys import KeyStore

    settings.check()
    if settings.rpc_url:
        assert settings.chain_id is not None  # settings.check() guarantees it
        # A node that lags behind the others (cut off from the signers) is not started on: the watcher would
        # leave it only a stall timeout later, after reconciling the journal there.
        endpoint = NodeEndpoint(settings.rpc_url, settings.chain_id, settings.failover_urls).choose(
            settings.stall_timeout
        )
    else:
        endpoint = EmbeddedNode(settings.home).endpoint
    refuse_unreachable_depth(endpoint, settings.confirmations)
    keystore = KeyStore.from_settings(settings)
    deployment = load_deployment(settings.home)
    custody = Custody.of_deployment(keystore, deployment.governors)
    unlocked = custody.unlock_all()
    client = ledger_client(
        endpoint,
        settings.home,
        request_timeout=settings.rpc_timeout,
        catch_up_timeout=settings.catch_up_timeout,
        stall_timeout=settings.stall_timeout,
    )
    log.info("ledger %s on chain %s; %d custodied keys unlocked", client.address, client.chain_id, unlocked)
    service = LedgerService(
        client=client,
        custody=custody,
        sessions=sessions,
        from_block=deployment.block_number,
        confirmations=settings.confirmations,
    )
    service.response_deadline_days = settings.audit_response_deadline_days
    # On the node the ledger's client settled on: it holds the whole deployment (a node behind it was left).
    _attach_practice(service, client.endpoint_in_use, settings)
    return service


def _attach_practice(service: LedgerService, endpoint: NodeEndpoint, settings: ApiSettings) -> None:
    """Demand lists and evaluations on the recorded ``SharingPractice``; without one (a record older than the
    contract) their routes answer 503 PRACTICE_NOT_DEPLOYED, with a warning here."""
    from node.deploy import load_deployment, practice_client

    try:
        practice = practice_client(endpoint, settings.home, request_timeout=settings.rpc_timeout)
    except DxlError as exc:
        log.warning("demand lists and evaluations are not served: %s", exc)
        return
    practice.follow(service.client)
    record = load_deployment(settings.home).sharing_practice
    service.attach_practice(practice, from_block=record.block_number if record else 0)


def start_receipts(settings: ApiSettings, ledger: LedgerService, engine: Engine) -> ReceiptService | None:
    """The receipts component (journal and anchorer threads) on the recorded ``ReceiptAnchors``; None, with a
    warning, when the deployment record names none (``dxl deploy`` deploys it)."""
    from node.chain import ErrorDecoder
    from node.deploy import anchors_client, load_deployment

    try:
        anchors = anchors_client(
            ledger.client.endpoint_in_use, settings.home, request_timeout=settings.rpc_timeout
        )
    except DxlError as exc:
        log.warning("receipts are not served: %s", exc)
        return None
    # Anchors are signed by the providers' keys, which the journaled writes use too: one counter per key, or
    # each would hand out nonces the other already used (a re-signed write, a refused anchor); and one
    # journal, so an anchor the node lost is re-sent in nonce order with the writes behind it.
    anchors.nonces = ledger.client.nonces
    # And one node: the anchors' state read where the ledger's writes go, wherever the ledger's client moves.
    anchors.follow(ledger.client)
    # Acknowledgements and disputes are the journal's writes too: a revert it replays through the ledger's
    # client is named only if that client knows the anchors' errors.
    ledger.client.errors.by_selector.update(ErrorDecoder(anchors.abi).by_selector)
    record = load_deployment(settings.home).receipt_anchors
    service = ReceiptService(
        engine=engine,
        ledger=ledger.client,
        anchors=anchors,
        account_of=ledger.department_account,
        # The grant states the door checks age by the clock the ledger's auditor standing ages by.
        cache_clock=ledger.cache_clock,
        batch_size=settings.receipt_batch_size,
        batch_age=settings.receipt_batch_age,
        from_block=record.block_number if record else 0,
        submit=journaled_submit(ledger.sender),
        on_receipt=ledger.sender.record_receipt,
        gate=ledger.sender.gate,
        confirmations=settings.confirmations,
        void=journaled_void(ledger.sender),
        reverted=journaled_reverted(ledger.sender),
    )
    # Anchors the journal sent again after lost blocks are followed again by the anchorer.
    ledger.sender.on_reopened = service.anchorer.rewound
    service.start()
    return service


def _indexed_up_to(engine: Engine) -> int | None:
    """The last block the audit index has followed (None: none yet)."""
    from node.audit.indexer import read_progress

    progress = read_progress(engine)
    return None if progress is None else progress.last_block


def _reconcile_at_start(ledger: LedgerService, interval: float) -> ChainWatcher | None:
    """Heals the chain from the journal before the first request (re-sends what the node lost, rebuilds the
    nonce counters) and starts watching the node; an unreachable node is reconciled when it answers.

    Raises:
        JournalChainMismatchError: the API database journals another chain's transactions.
    """
    client = ledger.client
    ledger.journal.bind_chain(JournalChain(client.chain_id, client.genesis_hash), rpc_url=client.rpc_url)
    reconciled = True
    try:
        # A write of a lost block the node's pool refused for now goes first: the watcher sends it again.
        reconciled = not ledger.reconciler.reconcile().waiting
    except NodeError as exc:
        log.warning("journal not reconciled at start (node unavailable: %s); will retry", exc)
        reconciled = False
    if interval <= 0:
        return None
    if not reconciled:
        ledger.sender.hold()  # until the watcher has reconciled: journaled transactions go first
    return ChainWatcher(ledger.reconciler, interval, reconciled=reconciled).start()


def create_app(
    settings: ApiSettings | None = None,
    *,
    ledger: Callable[[ApiSettings, AppState], LedgerService] | None = None,
    connect: bool = True,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_timeout: float = BODY_TIMEOUT_SECONDS,
    idempotency_wait: float = 60.0,
) -> FastAPI:
    """A new app. ``settings`` default to the environment (read at start, not at import).

    ``ledger`` replaces :func:`connect_ledger` (tests hand in a service on their own deployment);
    ``connect=False`` starts without a ledger (every ledger route answers 503 ``NODE_UNAVAILABLE``);
    ``idempotency_wait`` is how long a retry waits for the first request with its key before a 409;
    ``body_timeout`` how long a request's body may take to arrive (:data:`api.limits.BODY_TIMEOUT_SECONDS`).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from node.network import on_home_network

        # Without DXL_RPC_URL, a home's local network (dxl network up) is where its ledger is, not 8545.
        conf = on_home_network(settings or load_api_settings())
        engine = make_engine(conf.effective_database_url)
        if conf.effective_database_url.startswith("sqlite"):
            conf.home.mkdir(parents=True, exist_ok=True)  # the database's and its hold's directory
        try:
            # Before the database is migrated or read: a second service on it stops here, having done
            # nothing (it would sign at the nonces this one hands out and take over its claims).
            with hold_database(engine):
                async with serving(app, conf, engine):
                    yield
        finally:
            engine.dispose()

    @asynccontextmanager
    async def serving(app: FastAPI, conf: ApiSettings, engine: Engine) -> AsyncIterator[None]:
        from api.delivery_ids import DeliveryIds
        from node.audit.follower import start_follower, stop_follower
        from node.audit.queries import recorded_delivery_ids

        init_db(engine)
        state = AppState(engine=engine, sessions=session_factory(engine), settings=conf)
        purge_expired(state.sessions)
        app.state.dxl = state
        watcher: ChainWatcher | None = None
        if connect:
            factory = ledger or (lambda s, st: connect_ledger(s, lambda: st.sessions))
            state.ledger = factory(conf, state)
            watcher = _reconcile_at_start(state.ledger, conf.chain_watch_interval)
            state.extra["chain_watcher"] = watcher
            receipts = start_receipts(conf, state.ledger, engine)
            if receipts is not None:
                state.extra["receipts"] = receipts
                # One id names one delivery: each kind is refused the other's ids (the contracts cannot
                # tell, the anchors see roots only), from the receipt journal and the audit index.
                state.ledger.receipt_ids = receipts.reader.posted_by
                delivery_ids = DeliveryIds(
                    state.ledger.client,
                    indexed=lambda ids: recorded_delivery_ids(audit.get_audit(state).engine, ids),
                    indexed_up_to=lambda: _indexed_up_to(audit.get_audit(state).engine),
                    from_block=state.ledger.from_block,
                )
                receipts.journal.ids = delivery_ids
                receipts.anchorer.taken_lately = delivery_ids.taken_lately
                state.ledger.delivering = delivery_ids.delivering
            if state.ledger.practice is not None and conf.inspection_draw_interval > 0:
                state.extra["inspection_drawer"] = InspectionDrawer(
                    state.ledger, conf.inspection_draw_interval
                ).start()
        # After the journal met the chain: requests of a dead process are finished by their clients' retries.
        IdempotencyStore(state.sessions, state.claims).adopt_orphans()
        # The follower indexes the same audit context the /audit routes read (opened on first use).
        follower = start_follower(lambda: audit.get_audit(state), conf.audit_follow_interval)
        state.extra["audit_follower"] = follower
        try:
            yield
        finally:
            drawer = state.extra.get("inspection_drawer")
            if isinstance(drawer, InspectionDrawer):
                drawer.stop()
            if watcher is not None:
                watcher.stop()
            stop_follower(follower)
            running = state.extra.get("receipts")
            if isinstance(running, ReceiptService):
                running.stop()
                if running.journal.ids is not None:
                    running.journal.ids.close()
            if state.ledger is not None:  # after the anchorer, whose receipts it places
                state.ledger.sender.close()

    app = FastAPI(
        title="dxl department API",
        version="0.1.0",
        description=(
            "Data Exchange Ledger: departments catalogue resources, request access, sign sharing agreements, "
            "issue grants and record deliveries; auditors read everything. Every write returns the "
            'transaction hash, block number and resulting record; errors are `{"error": {"code", '
            '"message"}}` with stable codes. Authenticate with `Authorization: Bearer <token>`.'
        ),
        lifespan=lifespan,
        # FastAPI's OpenTelemetry hooks are unused here, and asking whether they are costs every request a
        # look at the environment (a sixth of the event loop's time on POST /receipts, one receipt each).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # A path with a slash too many or too few is an unknown path (404 NOT_FOUND), not a 307 to the other
        # spelling: a client that follows the redirect repeats the write with its Idempotency-Key on another
        # path, refused 422 IDEMPOTENCY_KEY_REUSED against the bodiless 307 kept as that key's answer, and the
        # Location was built from the request's Host header.
        redirect_slashes=False,
    )
    install_error_handlers(app)
    receipts.install_direct_route(app)
    for router in ROUTERS:
        app.router.routes.extend(router.routes)
    install_openapi(app)
    install_console(app)
    # Added last = outermost: a method no route takes is refused first; then the body limit runs and hands
    # the buffered body to idempotency. The security headers go on every answer, those refusals' included.
    app.add_middleware(
        IdempotencyMiddleware,
        sessions=lambda: app.state.dxl.sessions,
        owner=lambda: app.state.dxl.claims,
        api=app,
        wait_timeout=idempotency_wait,
    )
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=max_body_bytes, body_timeout=body_timeout)
    # A request over its rate is refused before its body is read or its key claimed: nothing is recorded.
    app.add_middleware(
        RateLimitMiddleware, limits=lambda: _settings_of(app).rate_limits, identify=lambda: _identify(app)
    )
    app.add_middleware(MethodGuardMiddleware, api=app)
    app.add_middleware(SecurityHeadersMiddleware)
    return app


def _identify(app: FastAPI) -> Identify:
    """Whose a bearer token is, for the rate limits; None also while the API database cannot be read (the
    route's own look-up answers for that)."""
    sessions = app.state.dxl.sessions

    def identify(token: str) -> str | None:
        try:
            return principal_key(sessions, token)
        except SQLAlchemyError as exc:
            log.warning("rate limits: cannot tell whose a token is: %s", exc)
            return None

    return identify


def _settings_of(app: FastAPI) -> ApiSettings:
    state: AppState = app.state.dxl
    return state.settings


app = create_app()
