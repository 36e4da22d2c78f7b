"""Idempotent deployment of the ledger contract, remembered in ``DXL_HOME/deployment.json``.

The record says which chain, which address, which build: a second deployment on the same chain reuses the
contract when the code at the recorded address is the code recorded at deployment and the record's build is
the current artifact. The on-chain code is compared by its own hash, not the artifact's ``deployedBytecode``,
because the EIP-712 domain is held in immutables that the constructor writes into the runtime code.

A record that does not match (another chain, code missing or other code at the address) is an error, never a
silent redeployment: it may be someone's live ledger. ``force=True`` (``dxl deploy --force``) deploys anew and
replaces the record.

A newer build of a contract already deployed (its artifact changed with an upgrade of dxl) never replaces the
deployed one: the ledger's history, the receipt batches anchored at the anchors contract and the evaluations
held by the practice contract live at the recorded addresses, and another address would report them lost. The
deployed contracts are kept as long as they offer every function this version calls, and :func:`newer_builds`
names those for which newer code exists (``dxl run`` says so in one line, ``dxl status`` lists them). One that
lacks a function this version calls is refused (:class:`DeploymentMismatchError`).

The build deployed depends on the chain's rules (:func:`chain_build`): the Cancun build where ``PUSH0`` runs
(anvil, Besu QBFT), the London build where it is refused (geth's Clique). The record names the build, so the
companions and every later check load the artifacts of the build that is on chain.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from node.endpoint import NodeEndpoint, rpc_call
from node.errors import ConfigurationError, NodeError
from verifier.eth import keccak, to_checksum_address
from verifier.text import counted, iso_time

# The chain client and the compiler load web3: imported where a deployment is made or opened, so that reading
# the record (``dxl verify``, ``dxl status``) stays fast.
if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from node.chain import LedgerClient, TxResult
    from node.compiler import Artifact, BuildProfile

LEDGER_ARTIFACT = "DataExchangeLedger"
ANCHORS_ARTIFACT = "ReceiptAnchors"
PRACTICE_ARTIFACT = "SharingPractice"
#: Length of a mutual-evaluation period of ``SharingPractice`` by default (``DXL_EVALUATION_PERIOD``), fixed
#: at its deployment: each side of an agreement is scored at most once per period, and an inspection covers
#: whole periods. 30 days, the monthly rhythm of departmental assessments.
EVALUATION_PERIOD_S = 30 * 86400
#: The shortest evaluation period dxl deploys: inspections cover whole periods so that no auditor chooses the
#: population it samples, and a grid of seconds would let it choose one again, down to a single delivery.
EVALUATION_PERIOD_MIN_S = 86400
DEPLOYMENT_FILE = "deployment.json"
RECORD_VERSION = 1


class DeploymentMismatchError(ConfigurationError):
    """Thrown when the deployment record does not describe the ledger on the connected chain."""

    code = "DEPLOYMENT_MISMATCH"

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(
            f"deployment record {path} does not match the node: {reason}. "
            "Point DXL_HOME at the right directory or DXL_RPC_URL at the right node (for the local network, "
            "the variables `dxl network up` prints), or run `dxl deploy --force` to deploy a new ledger "
            "(the record is replaced)"
        )


class NotDeployedError(ConfigurationError):
    """Thrown when no deployment record exists where one is needed."""

    code = "NOT_DEPLOYED"

    def __init__(self, path: Path) -> None:
        super().__init__(f"no ledger deployment recorded at {path}; run `dxl deploy` or `dxl run` first")


class NoLedgerError(ConfigurationError):
    """Thrown when a check of the chain is named no ledger: no address given and no deployment record. The
    check is refused rather than made without the chain, whose exit 0 a script would read as "on the
    ledger"; ``ways`` are the command's own means of naming one, and of asking for no chain."""

    code = "NO_LEDGER"

    def __init__(self, path: Path, ways: str) -> None:
        super().__init__(
            f"no ledger to check against: no deployment record at {path} (is DXL_HOME right?); {ways}"
        )


# Init code ``PUSH0 STOP``: executed by a Shanghai-or-later chain, an invalid opcode before.
_PUSH0_PROBE = "0x5f00"


def runs_push0(endpoint: NodeEndpoint) -> bool:
    """Whether the chain at ``endpoint`` executes ``PUSH0`` (Shanghai rules or later), asked by an
    ``eth_call`` of a contract creation whose init code is ``PUSH0 STOP``: the chain's own rules decide,
    not its name.

    Raises:
        NodeError: the node is unreachable or refuses the call for another reason.
    """
    try:
        rpc_call(endpoint.rpc_url, "eth_call", [{"data": _PUSH0_PROBE}, "latest"])
    except NodeError as exc:
        if "invalid opcode" in str(exc).lower():
            return False
        raise
    return True


def chain_build(endpoint: NodeEndpoint) -> BuildProfile:
    """The build that runs on ``endpoint``'s chain: Cancun where ``PUSH0`` runs, London where it does not.

    Raises:
        NodeError: as :func:`runs_push0`.
    """
    from node.compiler import CANCUN, LONDON

    return CANCUN if runs_push0(endpoint) else LONDON


def _artifact_of(name: str, build: str) -> Artifact:
    from node.compiler import load_artifact, profile_named

    return load_artifact(name, profile_named(build).artifacts_dir)


def refuse_newer_evm(endpoint: NodeEndpoint, artifact: Artifact) -> None:
    """Refuse to deploy ``artifact`` where its code could not run: a build after London on a chain without
    ``PUSH0``.

    Raises:
        EvmVersionError: it is such a build on such a chain.
        NodeError: as :func:`runs_push0`.
    """
    from node.network import check_evm

    if not runs_push0(endpoint):
        check_evm(artifact.evm_version)


def _hex_hash(data: bytes | str) -> str:
    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else data
    return "0x" + keccak(raw).hex()


@dataclass(frozen=True)
class AnchorsDeployment:
    """Where a contract deployed beside a ledger (``ReceiptAnchors``, ``SharingPractice``) lives, and which
    build it is."""

    address: str
    tx_hash: str
    block_number: int
    bytecode_hash: str
    code_hash: str


@dataclass(frozen=True)
class Deployment:
    """What ``deployment.json`` records (``reused`` only says what the last call did; it is not stored)."""

    chain_id: int
    address: str
    tx_hash: str
    block_number: int
    block_hash: str
    deployer: str
    artifact: str
    bytecode_hash: str
    code_hash: str
    compiler_version: str
    governors: list[str]
    threshold: int
    deployed_at: str
    version: int = RECORD_VERSION
    #: The build profile (``node.compiler.PROFILES``) the contracts were deployed from; records written before
    #: there were two are of the Cancun build.
    build: str = "cancun"
    #: The ``ReceiptAnchors`` contract beside the ledger (:func:`deploy_receipt_anchors`); records written
    #: before it existed lack it, and the next start deploys it.
    receipt_anchors: AnchorsDeployment | None = None
    #: The ``SharingPractice`` contract beside the ledger (:func:`deploy_sharing_practice`); optional too.
    sharing_practice: AnchorsDeployment | None = None
    reused: bool = field(default=False, compare=False)

    @property
    def newest_block(self) -> int:
        """The newest block holding one of the recorded contracts' deployments: a node holds them all only
        once it has imported that block."""
        companions = (self.receipt_anchors, self.sharing_practice)
        return max([self.block_number, *(c.block_number for c in companions if c is not None)])

    def to_json(self) -> str:
        record = asdict(self)
        record.pop("reused")
        for companion in ("receipt_anchors", "sharing_practice"):
            if record[companion] is None:
                record.pop(companion)
        return json.dumps(record, indent=2, sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: Path) -> Deployment:
        """Read a record.

        Raises:
            NotDeployedError: the file does not exist.
            ConfigurationError: it is unreadable or incomplete.
        """
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotDeployedError(path) from None
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"deployment record {path} is unreadable: {exc}") from None
        try:
            known = {f for f in cls.__dataclass_fields__ if f != "reused"}
            missing = known - {"version", "build", "receipt_anchors", "sharing_practice"} - set(raw)
            if missing:
                raise KeyError(", ".join(sorted(missing)))
            fields = {k: v for k, v in raw.items() if k in known}
            for companion in ("receipt_anchors", "sharing_practice"):
                if fields.get(companion) is not None:
                    fields[companion] = AnchorsDeployment(**fields[companion])
            return cls(**fields)
        except (KeyError, TypeError) as exc:
            raise ConfigurationError(f"deployment record {path} lacks {exc}") from None


def deployment_path(home: Path) -> Path:
    return home / DEPLOYMENT_FILE


def load_deployment(home: Path) -> Deployment:
    """The recorded deployment of ``home``.

    Raises:
        NotDeployedError: nothing deployed yet.
        ConfigurationError: the record is unreadable.
    """
    return Deployment.load(deployment_path(home))


def _write_record(path: Path, deployment: Deployment) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(deployment.to_json(), encoding="utf-8")
    os.replace(tmp, path)


#: Functions a contract gained after its first release that this version calls only where the deployed build
#: has them (:func:`offers_function`): a deployment of an older build is kept and serves everything else.
#: ``SharingPractice``'s evaluation on the evidence of an anchored receipt batch: where it is missing, only a
#: ledger delivery is evidence (``api.practice``); its ``sampleVersion``: where it is missing, inspections
#: draw the ledger's deliveries alone (``verifier.sampling``, version 1) and no receipt outcome is taken. Its
#: rejection of an answer and withdrawal of a demand (and their views): where they are missing, a publisher
#: can do neither (``api.practice``) and its demands have no rejections or withdrawals to read.
LATER_FUNCTIONS: dict[str, frozenset[str]] = {
    PRACTICE_ARTIFACT: frozenset(
        {
            "scoreProviderForBatch",
            "scoreConsumerForBatch",
            "anchors",
            "sampleVersion",
            "rejectAnswer",
            "withdrawDemand",
            "rejectionCodeMax",
            "demandWithdrawnAt",
            "answerRejected",
        }
    ),
}


def _selector_in(code: bytes, entry: dict[str, Any]) -> bool:
    signature = f"{entry['name']}({','.join(_abi_type(i) for i in entry.get('inputs', []))})"
    # A selector with leading zero bytes is pushed with a shorter PUSH: look for its significant bytes.
    return keccak(signature.encode())[:4].lstrip(b"\0") in code


def _lacking_functions(code: bytes, artifact: Artifact) -> list[str]:
    """The functions of ``artifact``'s ABI whose selector is nowhere in ``code``, but those it may lack
    (:data:`LATER_FUNCTIONS`): the dispatcher of a Solidity contract holds the selector of every external
    function, so a contract built from an older source that lacks one cannot serve it."""
    later = LATER_FUNCTIONS.get(artifact.name, frozenset())
    lacking = []
    for entry in artifact.abi:
        if entry.get("type") != "function" or entry["name"] in later:
            continue
        if not _selector_in(code, entry):
            lacking.append(entry["name"])
    return sorted(lacking)


def offers_function(code: bytes, abi: Sequence[Mapping[str, Any]], name: str) -> bool:
    """Whether the contract whose runtime code is ``code`` offers the function ``name`` of ``abi`` (one of
    :data:`LATER_FUNCTIONS`, which a deployed older build may lack)."""
    return any(e.get("type") == "function" and e["name"] == name and _selector_in(code, dict(e)) for e in abi)


def _abi_type(param: dict[str, Any]) -> str:
    kind: str = param["type"]
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param.get("components", [])) + ")" + kind[len("tuple") :]
    return kind


def _refuse_lacking(path: Path, address: str, code: bytes, artifact: Artifact) -> None:
    lacking = _lacking_functions(code, artifact)
    if lacking:
        raise DeploymentMismatchError(
            path,
            f"the {artifact.name} at {address} is of an older build that lacks {', '.join(lacking)}, "
            "which this version of dxl calls",
        )


def verify_deployment(client: LedgerClient, deployment: Deployment, artifact: Artifact, path: Path) -> None:
    """Check that ``deployment`` describes the contract on ``client``'s chain, and that the contract offers
    every function of ``artifact`` (the current build; the deployed one may be older, see the module's
    docstring). A node below the deployment's block is not taken for one without the contract: the client
    moves to a node of the endpoint that holds the block, or waits for one (:meth:`LedgerClient.reach`).

    Raises:
        DeploymentMismatchError: another chain, no or other code at the address, or a deployed build that
            lacks a function of ``artifact``.
        NodeBehindError: no node of the endpoint reached the deployment's block in time.
    """
    if deployment.chain_id != client.chain_id:
        raise DeploymentMismatchError(
            path, f"it is for chain id {deployment.chain_id}, the node serves chain id {client.chain_id}"
        )
    client.reach(deployment.block_number, what=f"the {deployment.artifact} deployment")
    code = client.code_at(deployment.address)
    if not code:
        raise DeploymentMismatchError(path, f"no contract code at {deployment.address} on this chain")
    if _hex_hash(code) != deployment.code_hash:
        raise DeploymentMismatchError(path, f"the code at {deployment.address} is not the recorded ledger")
    _refuse_lacking(path, deployment.address, code, artifact)


def newer_builds(deployment: Deployment) -> list[str]:
    """The deployed contracts of ``deployment`` whose artifact (of the recorded build) has changed since they
    were deployed: newer code exists, the deployed contract is kept (module docstring).

    Raises:
        ConfigurationError: an artifact is unreadable.
    """
    recorded = [(deployment.artifact, deployment.bytecode_hash)]
    for name, companion in (
        (ANCHORS_ARTIFACT, deployment.receipt_anchors),
        (PRACTICE_ARTIFACT, deployment.sharing_practice),
    ):
        if companion is not None:
            recorded.append((name, companion.bytecode_hash))
    return [
        name
        for name, bytecode_hash in recorded
        if _hex_hash(_artifact_of(name, deployment.build).bytecode) != bytecode_hash
    ]


def _deployed(client: LedgerClient, result: TxResult, confirmations: int) -> tuple[TxResult, bytes]:
    """The mined deployment ``result`` as the node's chain holds it once ``confirmations`` blocks are on top
    of its block, and the code it put at its address.

    Read at the head right after the receipt, the address can still be empty: on a proof-of-authority chain
    a competing block of the same height may replace the one holding the deployment (geth's Clique under load:
    a signer seals out of turn when the block in turn is late, and drops its own block when that one comes;
    the transaction goes back to its pool and is mined in a later block). Recorded, that empty code would
    have every later start refuse the contract (DEPLOYMENT_MISMATCH) and the record would name a block no
    longer on the chain. So the code and the receipt are read again until the code is there, the receipt's
    block is the node's block at that height and the confirmation depth (``DXL_CONFIRMATIONS``, 3 on
    Clique) is on top of it: the companions' deployments, and the service at start, read this code at the
    head again, and a block the depth holds is no longer replaced.

    Raises:
        TransactionTimeoutError: not so within the client's receipt timeout.
        LedgerRevertError: mined again, the deployment reverted.
    """
    from node.chain import TransactionTimeoutError, receipt_poll_delays

    assert result.contract_address is not None
    deadline = time.monotonic() + client.receipt_timeout
    delays = receipt_poll_delays()
    while True:
        code = client.code_at(result.contract_address)
        receipt = client.receipt(result.tx_hash)
        if code and receipt is not None:
            now = client.outcome(receipt)
            if (
                client.block_number() >= now.block_number + confirmations
                and client.block_hash(now.block_number) == now.block_hash
            ):
                return now, code
        if time.monotonic() > deadline:
            raise TransactionTimeoutError(result.tx_hash, client.receipt_timeout)
        time.sleep(next(delays))


def deploy_ledger(
    target: LedgerClient | NodeEndpoint,
    governors: list[str],
    threshold: int,
    *,
    deployer: LocalAccount,
    home: Path,
    force: bool = False,
    artifact: Artifact | None = None,
    confirmations: int = 0,
    **client_options: Any,
) -> Deployment:
    """Deploy ``DataExchangeLedger(governors, threshold)`` once per chain and data directory.

    ``target`` is the client to deploy with, or an endpoint to make one of, with ``client_options``
    (:class:`~node.chain.LedgerClient`'s ``request_timeout``, ``catch_up_timeout``, …: the settings' values,
    passed down, since this layer reads no settings of its own).

    An existing record that verifies (:func:`verify_deployment`) is reused, whatever ``governors`` say; the
    result's ``reused`` tells which happened. A new one is recorded once ``confirmations`` blocks are on top
    of its block (:func:`_deployed`).

    Raises:
        DeploymentMismatchError: a record exists for another chain/code/build and ``force`` is not set.
        ConfigurationError: bad governors or threshold, or an unreadable record or artifact.
        LedgerRevertError: the constructor rejects the arguments.
        NodeError: the node is unreachable or refuses the transaction.
    """
    from node.chain import LedgerClient
    from node.compiler import load_artifact

    endpoint = target.endpoint if isinstance(target, LedgerClient) else target
    artifact = artifact or load_artifact(LEDGER_ARTIFACT, chain_build(endpoint).artifacts_dir)
    client = (
        target if isinstance(target, LedgerClient) else LedgerClient(target, artifact.abi, **client_options)
    )
    path = deployment_path(home)
    if path.exists() and not force:
        existing = Deployment.load(path)
        verify_deployment(client, existing, artifact, path)
        client.at(existing.address)
        return replace(existing, reused=True)

    if not governors or not 0 < threshold <= len(governors):
        raise ConfigurationError(
            f"threshold must be 1..{len(governors)} for {counted(len(governors), 'governor')}"
        )
    checksummed = [to_checksum_address(g) for g in governors]
    refuse_newer_evm(endpoint, artifact)
    result, code = _deployed(
        client, client.deploy(deployer, artifact.bytecode, checksummed, threshold), confirmations
    )
    assert result.contract_address is not None
    deployment = Deployment(
        chain_id=client.chain_id,
        address=to_checksum_address(result.contract_address),
        tx_hash=result.tx_hash,
        block_number=result.block_number,
        block_hash=result.block_hash,
        deployer=str(deployer.address),
        artifact=artifact.name,
        bytecode_hash=_hex_hash(artifact.bytecode),
        code_hash=_hex_hash(code),
        compiler_version=artifact.compiler_version,
        build=artifact.evm_version,
        governors=checksummed,
        threshold=threshold,
        deployed_at=iso_time(int(time.time())),
    )
    _write_record(path, deployment)
    client.at(deployment.address)
    return deployment


def _anchors_record_matches(
    client: LedgerClient, record: AnchorsDeployment, artifact: Artifact, path: Path
) -> bool:
    """Whether the recorded companion is on chain (the recorded code at its address), of whichever build; a
    node below its block is not taken for one without it (:meth:`LedgerClient.reach`), which would have it
    deployed a second time.

    Raises:
        DeploymentMismatchError: it is, but lacks a function of ``artifact``.
        NodeBehindError: no node of the endpoint reached its block in time.
    """
    client.reach(record.block_number, what=f"the {artifact.name} deployment")
    code = client.code_at(record.address)
    if not code or _hex_hash(code) != record.code_hash:
        return False
    _refuse_lacking(path, record.address, code, artifact)
    return True


def anchors_abi(artifact: Artifact, ledger_artifact: Artifact) -> list[dict[str, Any]]:
    """The anchors' ABI plus the ledger's errors: a ledger view the anchors call (``grant``) may revert with
    one of those, and it reaches the caller unchanged."""
    own = {(e.get("type"), e.get("name")) for e in artifact.abi}
    extra = [
        e for e in ledger_artifact.abi if e.get("type") == "error" and ("error", e.get("name")) not in own
    ]
    return [*artifact.abi, *extra]


def deploy_receipt_anchors(
    client: LedgerClient, *, deployer: LocalAccount, home: Path, confirmations: int = 0
) -> AnchorsDeployment:
    """Deploy ``ReceiptAnchors(ledger)`` beside the recorded ledger, once: a recorded anchors contract whose
    code and build still match is reused. The record is kept in ``deployment.json``.

    A recorded one is kept when a newer build exists (the batches anchored there must stay verifiable, see
    the module's docstring); one whose code is not at the recorded address is replaced, since the ledger
    itself was verified first.

    Raises:
        NotDeployedError: no ledger recorded.
        DeploymentMismatchError: the ledger record does not match the node.
        NodeError: the node is unreachable or refuses the transaction.
    """
    return _deploy_companion(client, deployer, home, confirmations, ANCHORS_ARTIFACT, "receipt_anchors")


def anchors_client(endpoint: NodeEndpoint, home: Path, **kwargs: Any) -> LedgerClient:
    """A client bound to the recorded, verified ``ReceiptAnchors`` of ``home``'s ledger on ``endpoint``.

    Raises:
        NotDeployedError: nothing deployed yet.
        DeploymentMismatchError: the record does not match the node, or names no (matching) anchors contract.
    """
    return _companion_client(
        endpoint, home, ANCHORS_ARTIFACT, lambda d: d.receipt_anchors, "receipt anchors", **kwargs
    )


def _companion_client(
    endpoint: NodeEndpoint,
    home: Path,
    artifact_name: str,
    record_of: Callable[[Deployment], AnchorsDeployment | None],
    label: str,
    **kwargs: Any,
) -> LedgerClient:
    """A client bound to a recorded contract beside the ledger (anchors, practice), checked against its code;
    its ABI holds the ledger's errors too (the companion reverts with them when it checks a party)."""
    from node.chain import LedgerClient

    path = deployment_path(home)
    deployment = Deployment.load(path)
    artifact = _artifact_of(artifact_name, deployment.build)
    client = LedgerClient(
        endpoint, anchors_abi(artifact, _artifact_of(deployment.artifact, deployment.build)), **kwargs
    )
    record = record_of(deployment)
    if record is None:
        raise DeploymentMismatchError(path, f"it names no {label} contract (run `dxl deploy`)")
    if not _anchors_record_matches(client, record, artifact, path):
        raise DeploymentMismatchError(path, f"the code at {record.address} is not the recorded {label}")
    return client.at(record.address)


def ledger_client(endpoint: NodeEndpoint, home: Path, **kwargs: Any) -> LedgerClient:
    """A client bound to the recorded, verified ledger of ``home`` on ``endpoint``, on a node that holds every
    recorded contract (the ledger's writes and the companions' go to the same chain).

    Raises:
        NotDeployedError: nothing deployed yet.
        DeploymentMismatchError: the record does not match the node.
        NodeBehindError: no node of the endpoint reached the deployment's newest block in time.
        NodeError, ChainIdMismatchError: as :class:`LedgerClient`.
    """
    path = deployment_path(home)
    deployment = Deployment.load(path)
    from node.chain import LedgerClient

    artifact = _artifact_of(deployment.artifact, deployment.build)
    client = LedgerClient(endpoint, artifact.abi, **kwargs)
    if deployment.chain_id == client.chain_id:
        client.reach(deployment.newest_block, what="the deployment of the ledger and its companions")
    verify_deployment(client, deployment, artifact, path)
    return client.at(deployment.address)


def deploy_sharing_practice(
    client: LedgerClient,
    *,
    deployer: LocalAccount,
    home: Path,
    evaluation_period: int = EVALUATION_PERIOD_S,
    confirmations: int = 0,
) -> AnchorsDeployment:
    """Deploy ``SharingPractice(ledger, evaluation_period, anchors)`` beside the recorded ledger, once,
    exactly as :func:`deploy_receipt_anchors` does (a recorded one whose code is on chain is kept, of
    whichever build). ``anchors`` is the recorded ``ReceiptAnchors`` (deploy it first: its anchored batches
    are evidence of delivery for mutual evaluation), or the zero address when none is recorded.

    Raises:
        NotDeployedError: no ledger recorded.
        DeploymentMismatchError: the ledger record does not match the node.
        NodeError: the node is unreachable or refuses the transaction.
    """
    recorded = Deployment.load(deployment_path(home)).receipt_anchors
    anchors = recorded.address if recorded is not None else "0x" + "00" * 20
    return _deploy_companion(
        client,
        deployer,
        home,
        confirmations,
        PRACTICE_ARTIFACT,
        "sharing_practice",
        evaluation_period,
        anchors,
    )


def _deploy_companion(
    client: LedgerClient,
    deployer: LocalAccount,
    home: Path,
    confirmations: int,
    artifact_name: str,
    record_field: Literal["receipt_anchors", "sharing_practice"],
    *constructor_args: Any,
) -> AnchorsDeployment:
    """Deploy a contract that serves the recorded ledger (its constructor takes the ledger's address first),
    unless the record's ``record_field`` names one whose code is on chain (kept, of whichever build); record
    it."""
    path = deployment_path(home)
    deployment = Deployment.load(path)
    ledger_artifact = _artifact_of(deployment.artifact, deployment.build)
    verify_deployment(client, deployment, ledger_artifact, path)
    artifact = _artifact_of(artifact_name, deployment.build)
    existing: AnchorsDeployment | None = getattr(deployment, record_field)
    if existing is not None and _anchors_record_matches(client, existing, artifact, path):
        return existing
    companion = client.for_abi(anchors_abi(artifact, ledger_artifact))
    result, code = _deployed(
        companion,
        companion.deploy(deployer, artifact.bytecode, deployment.address, *constructor_args),
        confirmations,
    )
    assert result.contract_address is not None
    record = AnchorsDeployment(
        address=to_checksum_address(result.contract_address),
        tx_hash=result.tx_hash,
        block_number=result.block_number,
        bytecode_hash=_hex_hash(artifact.bytecode),
        code_hash=_hex_hash(code),
    )
    if record_field == "receipt_anchors":
        _write_record(path, replace(deployment, receipt_anchors=record))
    else:
        _write_record(path, replace(deployment, sharing_practice=record))
    return record


def practice_client(endpoint: NodeEndpoint, home: Path, **kwargs: Any) -> LedgerClient:
    """A client bound to the recorded, verified ``SharingPractice`` of ``home``'s ledger on ``endpoint``; its
    ABI holds the ledger's errors too (the practice contract reverts with them when it checks a party).

    Raises:
        NotDeployedError: nothing deployed yet.
        DeploymentMismatchError: the record does not match the node, or names no (matching) practice contract.
    """
    return _companion_client(
        endpoint, home, PRACTICE_ARTIFACT, lambda d: d.sharing_practice, "sharing practice", **kwargs
    )
