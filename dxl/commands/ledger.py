"""``dxl run``, ``dxl deploy`` and ``dxl status``: bring the ledger up, and say where everything is.

``dxl run`` is what ``make run`` calls: the embedded node (or the node at ``DXL_RPC_URL``), an idempotent
deployment, the demo consortium, then the API in the foreground. Ctrl-C (or SIGTERM) stops the API and the
embedded node cleanly; the chain state stays in ``DXL_HOME``, so the next ``dxl run`` resumes the same ledger.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dxl.commands.common import BlockTimeOption, JsonOption, cli_error
from node.errors import DxlError, NodeError
from verifier.text import counted

if TYPE_CHECKING:
    from api.settings import ApiSettings
    from node.anvil import EmbeddedNode
    from node.endpoint import NodeEndpoint


@contextlib.contextmanager
def _chain(
    settings: ApiSettings, *, start_embedded: bool
) -> Iterator[tuple[NodeEndpoint, EmbeddedNode | None]]:
    """The configured node: ``DXL_RPC_URL`` if set (or, of it and ``DXL_RPC_FAILOVER_URLS``, the first that
    does not lag behind the others: :func:`~node.endpoint.configured_node`; a home's local network comes here
    as those, :func:`~node.network.on_home_network`), else the embedded node (started here if asked and not
    already running; stopped on exit only if started here). A node that never reaches
    the confirmation depth is refused before anything is written
    (:func:`~node.endpoint.refuse_unreachable_depth`)."""
    from node.anvil import EmbeddedNode, NodeSettings
    from node.endpoint import configured_node, refuse_unreachable_depth

    if settings.rpc_url:
        endpoint = configured_node(settings)
        endpoint.verify()
        refuse_unreachable_depth(endpoint, settings.confirmations)
        yield endpoint, None
        return
    node = EmbeddedNode(settings.home, NodeSettings(port=settings.node_port))
    if node.pid is not None or not start_embedded:
        refuse_unreachable_depth(node.endpoint, settings.confirmations)
        yield node.endpoint, None
        return
    endpoint = node.start()
    try:
        refuse_unreachable_depth(endpoint, settings.confirmations)
        yield endpoint, node
    finally:
        node.stop()


def _api_module() -> Any | None:
    """The API package's ``api.app`` module, or None if it is not installed."""
    try:
        import api.app

        return api.app
    except ModuleNotFoundError as exc:
        if exc.name in ("api", "api.app"):
            return None
        raise


def _load_api_app(settings: ApiSettings) -> Any | None:
    """The API's ASGI app for ``settings`` (``create_app(settings)``, else the module's ``app``), or None."""
    module = _api_module()
    if module is None:
        return None
    create = getattr(module, "create_app", None)
    return create(settings) if callable(create) else getattr(module, "app", None)


def _print_new_tokens(settings: ApiSettings) -> None:
    """Issue missing demo API tokens and print them (shown once; kept in DXL_HOME/secrets)."""
    if _api_module() is None:
        return
    from api.demo import ensure_demo_tokens

    fresh = {name: token for name, token in ensure_demo_tokens(settings).items() if token}
    if fresh:
        typer.secho("demo API tokens (shown once; also in DXL_HOME/secrets/demo-tokens.json):", bold=True)
        width = max(len(n) for n in fresh)
        for name, token in sorted(fresh.items()):
            typer.echo(f"  {name:<{width}}  {token}")
    else:
        typer.echo(f"demo API tokens: see {_demo_tokens_file(settings)}")


def _demo_tokens_file(settings: ApiSettings) -> Path:
    from api.demo import DEMO_TOKENS_FILE

    return settings.secrets_dir / DEMO_TOKENS_FILE


def _serve(
    app: Any, settings: ApiSettings, stop: threading.Event, *, on_ready: Callable[[], None] = lambda: None
) -> None:
    """Run the API until ``stop`` is set; ``on_ready`` is called once it listens.

    The app's start-up and shut-down (its lifespan) run here around uvicorn's server, not inside it: uvicorn
    logs a failed start-up as a page of traceback and exits, while here the failure (the disk full, the
    database unusable) is raised to the caller, which says it in one line.

    Raises:
        NodeError: the API stopped by itself (it could not listen, say: uvicorn logged why).
        Exception: what the app's start-up raised.
    """
    import asyncio

    import uvicorn

    from api.server import server_config

    config = server_config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        trusted_proxies=settings.api_trusted_proxies,
        log_level="info",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    failed: list[BaseException] = []

    async def serve() -> None:
        async with app.router.lifespan_context(app):
            await server.serve()

    def run() -> None:
        try:
            with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
                runner.run(serve())
        except BaseException as exc:  # handed to the main thread, which decides what it means
            failed.append(exc)

    # Served from a thread, uvicorn leaves signal handling to us: Ctrl-C must stop the node too.
    thread = threading.Thread(target=run, name="dxl-api", daemon=True)
    thread.start()
    ready = False
    while not stop.wait(0.5 if ready else 0.05):
        if not ready and server.started:
            ready = True
            on_ready()
        if not thread.is_alive():
            if failed and not isinstance(failed[0], SystemExit):  # uvicorn exits after logging why
                raise failed[0]
            raise NodeError(f"the API on {settings.listen_url} stopped unexpectedly (see its log above)")
    server.should_exit = True
    thread.join(timeout=15)


def run_command(
    force_deploy: Annotated[
        bool, typer.Option("--force-deploy", help="Deploy a new ledger even if DXL_HOME records one.")
    ] = False,
    no_api: Annotated[
        bool, typer.Option("--no-api", help="Do not start the API; keep the node running.")
    ] = False,
    network: Annotated[
        bool,
        typer.Option(
            "--network",
            help="Run against the local proof-of-authority network (`dxl network up`; started here if down).",
        ),
    ] = False,
) -> None:
    """Start the node, deploy the ledger, provision the demo consortium and serve the API until Ctrl-C."""
    from api.settings import load_api_settings
    from node.network import on_home_network

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        settings = load_api_settings()
        with contextlib.ExitStack() as stack:
            # Without --network, a home that has a network runs on it too (up already: --network starts it).
            settings = stack.enter_context(_on_network(settings)) if network else on_home_network(settings)
            _run(settings, stop, force_deploy=force_deploy, no_api=no_api)
    except DxlError as exc:
        raise cli_error(exc, False) from exc
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _on_network(settings: ApiSettings) -> Iterator[ApiSettings]:
    """``settings`` pointed at the local network (first signer, the others as failover URLs); the network is
    started here if none of it runs, and then stopped on exit."""
    from node.compiler import LONDON, load_config
    from node.network import LocalNetwork, check_evm, writing_to

    # The network runs the London build (chosen at deployment by the chain's rules): refuse before starting
    # anything if that profile was changed to an EVM the network cannot run.
    check_evm(str(load_config(LONDON.settings_file).settings.get("evmVersion", "")))
    local = LocalNetwork(settings.home, binary=settings.geth)
    started = not local.created or local.status().running == 0
    endpoint = local.up()
    try:
        yield writing_to(settings, endpoint)
    finally:
        if started:
            local.down()


def _run(settings: ApiSettings, stop: threading.Event, *, force_deploy: bool, no_api: bool) -> None:
    with _chain(settings, start_embedded=True) as (endpoint, node):
        from node.provision import setup_ledger

        setup = setup_ledger(endpoint, settings, dev_funding=node is not None, force_deploy=force_deploy)
        _warn_newer_builds(setup.deployment)
        app = None if no_api else _load_api_app(settings)

        def announce() -> None:
            _print_summary(settings, endpoint, setup, node is not None, app is not None, no_api)

        if app is not None:
            _print_new_tokens(settings)
            # "dxl is running" once the API answers at the URL it names, not while it is still starting.
            _serve(app, settings, stop, on_ready=announce)
        else:
            announce()
            stop.wait()
        typer.echo("stopping" + (" (node state kept in " + str(settings.home / "node") + ")" if node else ""))


def _warn_newer_builds(deployment: Any) -> None:
    """One line when this version of dxl carries newer code for a contract already deployed: the deployed one
    is kept (what it holds stays verifiable at its address), and the operator learns the new code is not
    running."""
    from node.deploy import newer_builds

    newer = newer_builds(deployment)
    if newer:
        typer.secho(
            f"newer code exists for {', '.join(newer)}: the contracts deployed for this ledger are kept "
            "(records there stay verifiable); the newer code runs only on a new ledger "
            "(`dxl deploy --force`)",
            err=True,
            fg=typer.colors.YELLOW,
        )


def _print_summary(
    settings: ApiSettings, endpoint: NodeEndpoint, setup: Any, embedded: bool, api: bool, no_api: bool
) -> None:
    dep, report = setup.deployment, setup.report
    lines = [
        ("node", f"{endpoint.rpc_url} ({'embedded, state in ' + str(settings.home / 'node') if embedded else 'external'})"),  # noqa: E501
        ("chain id", str(endpoint.chain_id)),
        # On a restart the deployment block is old news: the same ledger, and where the chain is now.
        ("ledger", f"{dep.address} (deployed at block {dep.block_number}{', reused' if dep.reused else ''})"),
        ("head block", f"{setup.client.block_number()} (the chain's latest block now)"),
        ("anchors", dep.receipt_anchors.address if dep.receipt_anchors else "not deployed"),
        ("practice", dep.sharing_practice.address if dep.sharing_practice else "not deployed"),
        ("DXL_HOME", str(settings.home)),
        ("keystore", f"{settings.keys_dir} ({counted(len(report.principals), 'key')})"),
        ("departments", ", ".join(f"{code}={i}" for code, i in report.departments.items())),
        ("resources", ", ".join(f"{title}={i}" for title, i in report.resources.items())),
        ("demo file", str(settings.home / "demo.json")),
    ]  # fmt: skip
    if api:
        lines += [
            ("API", settings.listen_url),
            ("API docs", f"{settings.listen_url}/docs"),
            # Tokens are printed on the first start only: the file holds them on every later one.
            (
                "console",
                f"{settings.listen_url}/ "
                f"(sign in with a token; demo tokens in {_demo_tokens_file(settings)})",
            ),
        ]
    else:
        lines.append(
            ("API", "not started (--no-api)" if no_api else "not available: the api package is missing")
        )
    width = max(len(k) for k, _ in lines)
    typer.secho("dxl is running", bold=True)
    for key, value in lines:
        typer.echo(f"  {key:<{width}}  {value}")
    typer.echo("Press Ctrl-C to stop.")


def deploy_command(
    force: Annotated[
        bool, typer.Option("--force", help="Deploy anew and replace the deployment record.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Deploy the ledger (idempotent) with the keystore's governors, on a running node."""
    from api.settings import load_api_settings
    from node.deploy import deploy_ledger, deploy_receipt_anchors, deploy_sharing_practice, ledger_client
    from node.keys import KeyStore
    from node.network import on_home_network
    from node.provision import GOVERNORS, THRESHOLD, ensure_principals

    try:
        # Without DXL_RPC_URL, the home's network if it has one, with its confirmation depth.
        settings = on_home_network(load_api_settings())
        with _chain(settings, start_embedded=False) as (endpoint, _):
            keystore = KeyStore.from_settings(settings)
            principals = ensure_principals(keystore)
            deployment = deploy_ledger(
                endpoint,
                [principals[g] for g in GOVERNORS],
                THRESHOLD,
                deployer=keystore.unlock(GOVERNORS[0]),
                home=settings.home,
                force=force,
                confirmations=settings.confirmations,
                request_timeout=settings.rpc_timeout,
                catch_up_timeout=settings.catch_up_timeout,
            )
            ledger = ledger_client(
                endpoint,
                settings.home,
                request_timeout=settings.rpc_timeout,
                catch_up_timeout=settings.catch_up_timeout,
            )
            deployer, depth = keystore.unlock(GOVERNORS[0]), settings.confirmations
            deployment = replace(
                deployment,
                receipt_anchors=deploy_receipt_anchors(
                    ledger, deployer=deployer, home=settings.home, confirmations=depth
                ),
                sharing_practice=deploy_sharing_practice(
                    ledger,
                    deployer=deployer,
                    home=settings.home,
                    evaluation_period=settings.evaluation_period,
                    confirmations=depth,
                ),
            )
    except DxlError as exc:
        raise cli_error(exc, as_json) from exc
    if as_json:
        typer.echo(json.dumps({**json.loads(deployment.to_json()), "reused": deployment.reused}))
    else:
        verb = "reused" if deployment.reused else "deployed"
        typer.echo(f"{verb} {deployment.artifact} at {deployment.address} on chain {deployment.chain_id}")


def status_command(as_json: JsonOption = False) -> None:
    """Whether the node answers, its chain id and block, and the recorded deployment. Exit 1 if not usable.

    The department and resource counts are read at the block reported."""
    from api.settings import load_api_settings
    from node.deploy import NotDeployedError, deployment_path, ledger_client, load_deployment, newer_builds
    from node.endpoint import configured_node, refuse_unreachable_depth

    status: dict[str, Any] = {"reachable": False}
    try:
        settings = load_api_settings()
        # The node every reading command reads: without DXL_RPC_URL, the home's network if it has one.
        endpoint = configured_node(settings)
        refuse_unreachable_depth(endpoint, settings.confirmations)
        status.update(rpc_url=endpoint.rpc_url, chain_id=endpoint.chain_id, home=str(settings.home))
        status["block"] = endpoint.verify()
        status["reachable"] = True
        if deployment_path(settings.home).exists():
            client = ledger_client(
                endpoint,
                settings.home,
                request_timeout=settings.rpc_timeout,
                catch_up_timeout=settings.catch_up_timeout,
            )
            status["ledger"] = client.address
            # At the block named above: a department or resource added a block later is not counted.
            status["departments"] = int(client.call("departmentCount", block=status["block"]))
            status["resources"] = int(client.call("resourceCount", block=status["block"]))
            # Contracts kept at their deployed build although this version carries newer code.
            status["newer_code"] = newer_builds(load_deployment(settings.home))
        else:  # the node is fine; say what is missing, not only "ledger: None" and exit 1
            status["ledger"] = None
            raise NotDeployedError(deployment_path(settings.home))
    except DxlError as exc:
        status["error"] = {"code": exc.code, "message": exc.message}
    if as_json:
        typer.echo(json.dumps(status))
    else:
        for key, value in status.items():
            shown = value["message"] if key == "error" else value
            typer.echo(f"{key:>11}: {shown}")
    raise typer.Exit(0 if status["reachable"] and status.get("ledger") and "error" not in status else 1)


def bench_chain(
    count: Annotated[int, typer.Option("--count", help="Transactions per measurement.")] = 1000,
    block_time: BlockTimeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Signing/sending throughput of the chain client in batch mode, on a throw-away embedded node."""
    import tempfile
    import time
    from pathlib import Path

    from eth_account import Account

    from node.anvil import DEFAULT_BLOCK_TIME_S, EmbeddedNode, NodeSettings, free_port
    from node.chain import LedgerClient
    from node.compiler import load_artifact
    from node.deploy import LEDGER_ARTIFACT
    from node.settings import load_settings
    from node.types import GovernanceAction, admission_data

    block_time = DEFAULT_BLOCK_TIME_S if block_time is None else block_time
    try:
        wait = load_settings().rpc_timeout  # the throw-away node is waited for as any other (DXL_RPC_TIMEOUT)
    except DxlError as exc:
        raise cli_error(exc, as_json) from exc
    results: dict[str, Any] = {"count": count, "block_time_s": block_time}
    with tempfile.TemporaryDirectory(prefix="dxl-bench-") as home:
        node = EmbeddedNode(Path(home), NodeSettings(port=free_port(), block_time=block_time))
        with node:
            artifact = load_artifact(LEDGER_ARTIFACT)
            client = LedgerClient(node.endpoint, artifact.abi, request_timeout=wait)
            governor, dept, sink = Account.create(), Account.create(), Account.create()
            client.at(str(client.deploy(governor, artifact.bytecode, [governor.address], 1).contract_address))
            admit = admission_data("BENCH", "Bench", dept.address, b"\x01" * 32)
            client.transact(governor, "propose", int(GovernanceAction.ADMIT_DEPARTMENT), admit)
            jobs: dict[str, Callable[[int], dict[str, Any]]] = {
                "transfer": lambda i: client.build(dept.address, "", to=sink.address, gas=21_000),
                "registerResource": lambda i: client.build(
                    dept.address, "registerResource", i.to_bytes(32, "big"), b"\x02" * 32, 0, 1, gas=200_000
                ),
            }
            for name, build in jobs.items():
                started = time.perf_counter()
                pending = [client.submit(dept, build(i + 1)) for i in range(count)]
                sent = time.perf_counter()
                mined = client.wait_all(pending, timeout=max(60.0, count / 10))
                done = time.perf_counter()
                blocks = mined[-1].block_number - mined[0].block_number + 1
                results[name] = {
                    "sign_send_tx_per_s": round(count / (sent - started), 1),
                    "mined_tx_per_s": round(count / (done - started), 1),
                    "blocks": blocks,
                    "gas_per_tx": mined[-1].gas_used,
                }
    if as_json:
        typer.echo(json.dumps(results))
        return
    typer.echo(f"{counted(count, 'transaction')} per kind, batch mode, {block_time:g} s blocks:")
    for name in ("transfer", "registerResource"):
        r = results[name]
        typer.echo(
            f"  {name:<17} sign+send {r['sign_send_tx_per_s']:>7} tx/s   mined {r['mined_tx_per_s']:>7} tx/s"
            f"   in {counted(r['blocks'], 'block')}, {r['gas_per_tx']} gas/tx"
        )


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
    app.command("deploy")(deploy_command)
    app.command("status")(status_command)
    from dxl.commands.bench import bench_app

    bench_app.command("chain")(bench_chain)
