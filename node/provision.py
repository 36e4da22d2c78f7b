"""Demo consortium: governors, an auditor, five departments and a small catalog, provisioned idempotently.

Every step first reads the chain and only sends what is missing, so re-running changes nothing, and a run
interrupted between a governance proposal and its approval is completed by the next run (the pending proposal
is found and approved instead of proposing twice).

Principals and their keys (``DXL_HOME/keys/``, see :mod:`node.keys`):

* ``governor-1``, ``governor-2``: the M-of-N governance (threshold 2 of 2); ``governor-1`` also deploys.
* ``auditor``: appointed through a ``GrantAuditor`` proposal.
* ``dept-psb``, ``dept-hrss``, ``dept-health``, ``dept-civil``, ``dept-samr``: department signing keys, each
  with an X25519 payload-encryption key (``<name>.x25519.pem``, encrypted with the keystore passphrase) whose
  public half is registered on chain.

The result is also written to ``DXL_HOME/demo.json`` (names, addresses, department and resource ids) for the
API and for people trying the demo.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.crypto import keccak

from node.chain import LedgerClient, PendingTx
from node.compiler import load_artifact
from node.deploy import (
    LEDGER_ARTIFACT,
    Deployment,
    chain_build,
    deploy_ledger,
    deploy_receipt_anchors,
    deploy_sharing_practice,
)
from node.endpoint import NodeEndpoint
from node.errors import ConfigurationError
from node.keys import KeyStore
from node.types import (
    Department,
    GovernanceAction,
    Proposal,
    Resource,
    ShareType,
    admission_data,
    encode_code,
)
from verifier.catalog import document_hash

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from node.settings import Settings

GOVERNORS = ("governor-1", "governor-2")
THRESHOLD = 2
AUDITOR = "auditor"
DEMO_FILE = "demo.json"
#: Funding per account when the chain charges for gas (dev chains only; free-gas chains need none).
FUNDING_WEI = 10**21
#: anvil's first prefunded development account (its well-known mnemonic); used only to fund demo accounts on
#: an embedded node that charges for gas. Never valid on a production network.
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


@dataclass(frozen=True)
class DemoDepartment:
    key: str  # keystore name
    code: str
    name: str


@dataclass(frozen=True)
class DemoResource:
    owner: str  # department code
    title: str  # the name provisioning reports it by
    share_type: ShareType
    sensitivity: int
    #: (name, datatype, description) of each field.
    columns: tuple[tuple[str, str, str], ...]
    catalog_title: str
    description: str
    periodicity: str
    legal_basis: str
    contact: str
    access_rights: str | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.columns)

    def metadata(self) -> dict[str, Any]:
        """The catalog document (DCAT terms) whose canonical hash is the resource's metadata hash."""
        document: dict[str, Any] = {
            "dct:title": self.catalog_title,
            "dct:description": self.description,
            "csvw:column": [
                {"csvw:name": n, "csvw:datatype": t, "dct:description": d} for n, t, d in self.columns
            ],
            "dcat:mediaType": "application/jsonl",
            "dct:accrualPeriodicity": self.periodicity,
            "dcat:contactPoint": {"vcard:fn": self.contact},
            "dcatap:applicableLegislation": self.legal_basis,
        }
        if self.access_rights is not None:
            document["dct:accessRights"] = self.access_rights
        return document

    def metadata_hash(self) -> bytes:
        return document_hash(self.metadata())

    def schema_hash(self) -> bytes:
        return keccak(json.dumps(sorted(self.fields), separators=(",", ":")).encode())


DEPARTMENTS: tuple[DemoDepartment, ...] = (
    DemoDepartment("dept-psb", "PSB", "Public Security Bureau"),
    DemoDepartment("dept-hrss", "HRSS", "Human Resources and Social Security Bureau"),
    DemoDepartment("dept-health", "HEALTH", "Health Commission"),
    DemoDepartment("dept-civil", "CIVIL", "Civil Affairs Bureau"),
    DemoDepartment("dept-samr", "SAMR", "Market Regulation Administration"),
)

RESOURCES: tuple[DemoResource, ...] = (
    DemoResource(
        "PSB", "Household registration", ShareType.UNCONDITIONAL, 2,
        (("person_id", "string", "公民身份号码"), ("name", "string", "姓名"),
         ("household_id", "string", "户号"), ("address", "string", "户籍地址"),
         ("registered_on", "date", "登记日期")),
        "户籍人口基本信息",
        "本市户籍人口的身份与户籍登记信息，供各部门核验身份、户籍所在地。",
        "daily",
        "《中华人民共和国户口登记条例》",
        "市公安局人口管理处",
    ),
    DemoResource(
        "HRSS", "Social insurance records", ShareType.CONDITIONAL, 3,
        (("person_id", "string", "公民身份号码"), ("insurance_type", "string", "险种"),
         ("contribution_base", "decimal", "缴费基数（元）"), ("months_paid", "integer", "累计缴费月数"),
         ("status", "string", "参保状态")),
        "社会保险参保缴费信息",
        "职工与城乡居民社会保险的参保、缴费记录。",
        "monthly",
        "《中华人民共和国社会保险法》",
        "市人力资源和社会保障局信息中心",
        "申请部门须说明法定职责依据和使用目的，并仅用于所申请的事项。",
    ),
    DemoResource(
        "HEALTH", "Medical records", ShareType.NOT_SHARED, 5,
        (("person_id", "string", "公民身份号码"), ("visit_date", "date", "就诊日期"),
         ("diagnosis_code", "string", "诊断编码（ICD-10）"), ("facility", "string", "医疗机构")),
        "门诊就诊记录",
        "医疗机构门诊就诊记录；涉及个人隐私，不予共享。",
        "daily",
        "《中华人民共和国基本医疗卫生与健康促进法》",
        "市卫生健康委员会统计信息中心",
    ),
)  # fmt: skip


@dataclass
class ProvisionReport:
    """What the demo ledger holds after provisioning, and how many transactions this run sent."""

    principals: dict[str, str] = field(default_factory=dict)  # keystore name -> address
    departments: dict[str, int] = field(default_factory=dict)  # code -> department id
    resources: dict[str, int] = field(default_factory=dict)  # title -> resource id
    auditor: str = ""
    transactions: int = 0
    funded: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def principal_names() -> list[str]:
    return [*GOVERNORS, AUDITOR, *(d.key for d in DEPARTMENTS)]


def ensure_principals(keystore: KeyStore) -> dict[str, str]:
    """Create every demo key that does not exist yet; returns name -> address."""
    addresses = {name: keystore.ensure(name) for name in principal_names()}
    for dept in DEPARTMENTS:
        keystore.ensure_encryption_key(dept.key)
    return addresses


def gas_is_free(client: LedgerClient) -> bool:
    return all(v == 0 for v in client.fee_fields().values())


def fund_accounts(
    client: LedgerClient, addresses: Sequence[str], *, funder: LocalAccount | None = None
) -> list[str]:
    """Top up accounts below half of :data:`FUNDING_WEI` when gas costs something; returns those funded.

    Raises:
        ConfigurationError: gas is not free and no funder is given (fund the accounts on that network).
    """
    if gas_is_free(client):
        return []
    needy = [a for a in addresses if client.balance(a) < FUNDING_WEI // 2]
    if needy and funder is None:
        raise ConfigurationError(
            f"the chain charges for gas and these accounts hold too little to pay: {', '.join(needy)}; "
            "fund them on the network, or use a free-gas network (Besu --min-gas-price=0)"
        )
    for address in needy:
        assert funder is not None
        client.transfer(funder, address, FUNDING_WEI)
    return needy


def _admission_data(keystore: KeyStore, dept: DemoDepartment) -> bytes:
    return admission_data(
        dept.code, dept.name, keystore.address(dept.key), keystore.ensure_encryption_key(dept.key)
    )


def _open_proposals(client: LedgerClient) -> dict[tuple[int, bytes], int]:
    """(action, data) -> id of proposals not executed and not expired, newest last."""
    found: dict[tuple[int, bytes], int] = {}
    latest = client.w3.eth.get_block("latest")
    for pid in range(1, int(client.call("proposalCount")) + 1):
        p = Proposal.read(client, pid)
        if not p.executed and not p.cancelled and p.expires_at > latest["timestamp"]:
            found[(int(p.action), p.data)] = pid
    return found


def _govern(
    client: LedgerClient, governors: Sequence[LocalAccount], actions: Sequence[tuple[GovernanceAction, bytes]]
) -> int:
    """Carry ``actions`` through proposal and approvals (proposals and approvals each sent as one batch);
    resumes open proposals with the same action and data. Returns the number of transactions sent."""
    if not actions:
        return 0
    open_ = _open_proposals(client)
    ids: list[int] = []
    new = [(a, d) for a, d in actions if (int(a), d) not in open_]
    proposer = governors[0]
    pending = [client.submit(proposer, client.build(proposer.address, "propose", int(a), d)) for a, d in new]
    created = iter(r.event("ProposalCreated").args["proposalId"] for r in client.wait_all(pending))
    for action, data in actions:
        key = (int(action), data)
        ids.append(open_[key] if key in open_ else next(created))
    sent = len(pending)
    for governor in governors:
        batch: list[PendingTx] = []
        for pid in ids:
            if Proposal.read(client, pid).executed or client.call("hasApproved", pid, governor.address):
                continue
            batch.append(client.submit(governor, client.build(governor.address, "approve", pid)))
        client.wait_all(batch)
        sent += len(batch)
    return sent


def provision_demo(
    client: LedgerClient,
    keystore: KeyStore,
    *,
    home: Path,
    funder: LocalAccount | None = None,
) -> ProvisionReport:
    """Bring the deployed ledger to the demo state; sends only what is missing.

    Raises:
        ConfigurationError: a department code is registered to another signer (a different DXL_HOME's
            keys), or gas costs something and no funder is given.
        LedgerRevertError: the ledger refuses a step (e.g. the governors in the keystore are not the
            ledger's governors).
        NodeError: the node is unreachable.
    """
    report = ProvisionReport(principals=ensure_principals(keystore))
    report.funded = fund_accounts(client, list(report.principals.values()), funder=funder)
    governors = [keystore.unlock(name) for name in GOVERNORS]
    for governor in governors:
        if not client.call("hasRole", client.call("GOVERNOR_ROLE"), governor.address):
            raise ConfigurationError(
                f"{governor.address} (keystore) is not a governor of the ledger at {client.address}; "
                "the keys and the deployment record come from different DXL_HOMEs"
            )

    actions: list[tuple[GovernanceAction, bytes]] = []
    for dept in DEPARTMENTS:
        dept_id = int(client.call("departmentByCode", encode_code(dept.code)))
        if dept_id:
            registered = Department.read(client, dept_id).signer
            if registered != report.principals[dept.key]:
                raise ConfigurationError(
                    f"department {dept.code} is registered to {registered}, not to this keystore's "
                    f"{dept.key} ({report.principals[dept.key]})"
                )
            continue
        actions.append((GovernanceAction.ADMIT_DEPARTMENT, _admission_data(keystore, dept)))
    auditor = report.principals[AUDITOR]
    if not client.call("hasRole", client.call("AUDITOR_ROLE"), auditor):
        actions.append((GovernanceAction.GRANT_AUDITOR, abi_encode(["address"], [auditor])))
    report.transactions += _govern(client, governors, actions)
    report.auditor = auditor
    for dept in DEPARTMENTS:
        report.departments[dept.code] = int(client.call("departmentByCode", encode_code(dept.code)))

    existing: dict[tuple[int, bytes], int] = {}
    for rid in range(1, int(client.call("resourceCount")) + 1):
        resource = Resource.read(client, rid)
        existing[(resource.owner, resource.metadata_hash)] = rid
    pending: list[tuple[str, PendingTx]] = []
    by_code = {d.code: d for d in DEPARTMENTS}
    for res in RESOURCES:
        owner_id = report.departments[res.owner]
        known = existing.get((owner_id, res.metadata_hash()))
        if known is not None:
            report.resources[res.title] = known
            continue
        signer = keystore.unlock(by_code[res.owner].key)
        args = (res.metadata_hash(), res.schema_hash(), int(res.share_type), res.sensitivity)
        pending.append(
            (res.title, client.submit(signer, client.build(signer.address, "registerResource", *args)))
        )
    for (title, _), result in zip(pending, client.wait_all([p for _, p in pending]), strict=True):
        report.resources[title] = int(result.event("ResourceRegistered").args["resourceId"])
    report.transactions += len(pending)
    _write_demo_file(home / DEMO_FILE, report)
    return report


def _write_demo_file(path: Path, report: ProvisionReport) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = json.loads(report.to_json())
    record.pop("transactions")
    record.pop("funded")
    record["resource_metadata"] = {r.title: r.metadata() for r in RESOURCES}
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def department_codes(client: LedgerClient) -> list[str]:
    """Codes of every admitted department, in id order (for status output and tests)."""
    return [Department.read(client, i).code for i in range(1, int(client.call("departmentCount")) + 1)]


@dataclass(frozen=True)
class LedgerSetup:
    client: LedgerClient
    deployment: Deployment
    report: ProvisionReport
    keystore: KeyStore


def setup_ledger(
    endpoint: NodeEndpoint, settings: Settings, *, dev_funding: bool = False, force_deploy: bool = False
) -> LedgerSetup:
    """Keys, funding, deployment and demo data on ``endpoint``: everything ``dxl run`` does before serving.

    ``dev_funding`` allows funding from anvil's well-known development account (embedded node only).

    Raises:
        ConfigurationError, DeploymentMismatchError, LedgerRevertError, NodeError: as the steps do.
    """
    keystore = KeyStore.from_settings(settings)
    principals = ensure_principals(keystore)
    # The build the chain's rules run (Cancun, or London on geth's Clique); both have the same ABI.
    artifact = load_artifact(LEDGER_ARTIFACT, chain_build(endpoint).artifacts_dir)
    client = LedgerClient(
        endpoint,
        artifact.abi,
        request_timeout=settings.rpc_timeout,
        catch_up_timeout=settings.catch_up_timeout,
        stall_timeout=settings.stall_timeout,
    )
    funder = Account.from_key(ANVIL_DEV_KEY) if dev_funding else None
    fund_accounts(client, list(principals.values()), funder=funder)
    governors = [principals[name] for name in GOVERNORS]
    deployment = deploy_ledger(
        client,
        governors,
        THRESHOLD,
        deployer=keystore.unlock(GOVERNORS[0]),
        home=settings.home,
        force=force_deploy,
        artifact=artifact,
        confirmations=settings.confirmations,
    )
    deployer, depth = keystore.unlock(GOVERNORS[0]), settings.confirmations
    anchors = deploy_receipt_anchors(client, deployer=deployer, home=settings.home, confirmations=depth)
    practice = deploy_sharing_practice(
        client, deployer=deployer, home=settings.home, evaluation_period=settings.evaluation_period,
        confirmations=depth,
    )  # fmt: skip
    deployment = replace(deployment, receipt_anchors=anchors, sharing_practice=practice)
    report = provision_demo(client, keystore, home=settings.home, funder=funder)
    return LedgerSetup(client, deployment, report, keystore)
