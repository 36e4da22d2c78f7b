"""Demo provisioning on a real node (idempotence, resuming half-done governance) and `dxl run` end to end:
start, deploy, provision, stop on SIGINT, start again on the same ledger."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from eth_utils.crypto import keccak

from api.settings import load_api_settings
from dxl.commands.ledger import _print_new_tokens
from node.anvil import EmbeddedNode, free_port
from node.deploy import deploy_ledger, deployment_path, ledger_client
from node.errors import ConfigurationError
from node.keys import KeyStore
from node.paths import PROJECT_ROOT
from node.provision import (
    DEMO_FILE,
    DEPARTMENTS,
    GOVERNORS,
    RESOURCES,
    LedgerSetup,
    department_codes,
    ensure_principals,
    provision_demo,
    setup_ledger,
)
from node.settings import load_settings
from node.types import DepartmentStatus, GovernanceAction, admission_data, encode_code
from tests.api.api_helpers import TEST_SCRYPT_N
from tests.cli import dxl
from tests.rpc_proxy import RpcProxy


def test_demo_consortium_is_on_chain(demo_ledger: LedgerSetup, demo_keys: KeyStore) -> None:
    client = demo_ledger.client
    assert department_codes(client) == [d.code for d in DEPARTMENTS]
    for dept in DEPARTMENTS:
        signer, status, _code, encryption_key, name, key_epoch, contract_signer = client.call(
            "department", client.call("departmentByCode", encode_code(dept.code))
        )
        assert (signer, DepartmentStatus(status), name) == (
            demo_keys.address(dept.key),
            DepartmentStatus.ACTIVE,
            dept.name,
        )
        assert encryption_key == demo_keys.encryption_key(dept.key).public
        assert (key_epoch, contract_signer) == (0, False)
    assert client.call("hasRole", client.call("AUDITOR_ROLE"), demo_keys.address("auditor"))
    assert (client.call("threshold"), client.call("governorCount")) == (2, 2)
    for res in RESOURCES:
        owner, share_type, sensitivity, metadata_hash, _ = client.call(
            "resource", demo_ledger.report.resources[res.title]
        )
        assert (owner, share_type, sensitivity, metadata_hash) == (
            demo_ledger.report.departments[res.owner],
            res.share_type,
            res.sensitivity,
            res.metadata_hash(),
        )
    # Every proposal went through both governors.
    for pid in range(1, client.call("proposalCount") + 1):
        assert tuple(client.call("proposal", pid)[2:4]) == (2, True)
    demo = json.loads((demo_keys.directory.parent / DEMO_FILE).read_text())
    assert demo["departments"] == demo_ledger.report.departments and demo["auditor"] == demo_keys.address(
        "auditor"
    )


def test_provisioning_again_changes_nothing(demo_ledger: LedgerSetup, demo_keys: KeyStore) -> None:
    client = demo_ledger.client
    block = client.block_number()
    again = provision_demo(client, demo_keys, home=demo_keys.directory.parent)
    assert again.transactions == 0 and again.funded == []
    assert (again.departments, again.resources, again.principals) == (
        demo_ledger.report.departments,
        demo_ledger.report.resources,
        demo_ledger.report.principals,
    )
    assert client.block_number() == block


def test_provisioning_completes_a_half_done_admission(embedded_node: EmbeddedNode, tmp_path: Path) -> None:
    keys = KeyStore.from_settings(load_settings(home=tmp_path), scrypt_n=TEST_SCRYPT_N)
    principals = ensure_principals(keys)
    governor = keys.unlock(GOVERNORS[0])
    deploy_ledger(
        embedded_node.endpoint, [principals[g] for g in GOVERNORS], 2, deployer=governor, home=tmp_path
    )
    client = ledger_client(embedded_node.endpoint, tmp_path)
    psb = DEPARTMENTS[0]
    data = admission_data(psb.code, psb.name, principals[psb.key], keys.ensure_encryption_key(psb.key))
    # A previous run proposed the admission and died before the second governor approved it.
    client.transact(governor, "propose", int(GovernanceAction.ADMIT_DEPARTMENT), data)

    report = provision_demo(client, keys, home=tmp_path)
    assert client.call("proposalCount") == len(DEPARTMENTS) + 1  # no second PSB proposal
    assert client.call("proposal", 1)[3] is True
    assert report.departments[psb.code] == client.call("departmentByCode", encode_code(psb.code))


def test_keys_of_another_home_are_refused(demo_ledger: LedgerSetup, tmp_path: Path) -> None:
    shutil.copy(deployment_path(demo_ledger.keystore.directory.parent), deployment_path(tmp_path))
    strangers = KeyStore.from_settings(load_settings(home=tmp_path), scrypt_n=TEST_SCRYPT_N)
    with pytest.raises(ConfigurationError, match="not a governor"):
        provision_demo(demo_ledger.client, strangers, home=tmp_path)


# --- dxl run end to end -------------------------------------------------------------------------------------


def _dxl(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "dxl"), *args]


def _run_until_ready(
    env: dict[str, str], *args: str, timeout: float = 120.0
) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        _dxl("run", *args), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            return proc, "".join(lines)
    proc.kill()
    proc.wait()
    pytest.fail("dxl run did not become ready:\n" + "".join(lines))


def _stop(proc: subprocess.Popen[str], node: EmbeddedNode, how: signal.Signals = signal.SIGINT) -> str:
    """Stops `dxl run` as README says it stops cleanly, by Ctrl-C (SIGINT) or SIGTERM: exit 0, node gone."""
    pid = node.pid
    assert pid is not None
    proc.send_signal(how)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert node.pid is None and not Path(f"/proc/{pid}").exists()
    return out


def _status(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """`dxl status --json` as a process with ``env`` would run it (DXL_HOME and the ports; no DXL_RPC_URL),
    in this one: the command's own code, without a Python start-up and its imports (some 0.8 s of CPU a
    call, four calls in this module's `dxl run` and `dxl node start` tests). The exit status, stdout and
    stderr."""
    for key in ("DXL_HOME", "DXL_NODE_PORT", "DXL_API_PORT"):
        if key in env:
            monkeypatch.setenv(key, env[key])
    monkeypatch.delenv("DXL_RPC_URL", raising=False)
    return dxl("status", "--json")


def _get_status(url: str, timeout: float = 30.0) -> int:
    """HTTP status of ``url``, retrying while the API is still starting."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _field(summary: str, key: str) -> str:
    for line in summary.splitlines():
        if line.strip().startswith(key + " "):
            return line.split(None, len(key.split()))[-1].strip()
    raise AssertionError(f"{key!r} missing from:\n{summary}")


def _labels(summary: str) -> list[str]:
    """The labels of the lines between ``dxl is running`` and ``Press Ctrl-C to stop.``, in order."""
    lines = summary.split("dxl is running\n", 1)[1].split("Press Ctrl-C to stop.", 1)[0].splitlines()
    return [re.split(r"\s{2,}", line.strip())[0] for line in lines if line.startswith("  ")]


def _readme_summary() -> str:
    """What README's "What `make run` does" shows `dxl run` printing."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("It prints where everything is:\n\n```text\n", 1)[1].split("```", 1)[0]


def _readme_state_entries() -> set[str]:
    """What README's "Where state lives" table says DXL_HOME holds: the first component of each path."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Where state lives: `DXL_HOME`", 1)[1]
    table = section.split("| Path | What |", 1)[1].split("\n\n", 1)[0]
    return {re.split(r"[/`]", row.split("`", 2)[1])[0] for row in table.splitlines() if row.startswith("| `")}


def test_dxl_run_restarts_on_the_same_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DXL_HOME": str(tmp_path),
        "DXL_NODE_PORT": str(port),
        "DXL_API_PORT": str(free_port()),
    }
    env.pop("DXL_RPC_URL", None)
    node = EmbeddedNode(tmp_path)
    proc, summary = _run_until_ready(env, "--no-api")
    try:
        assert "deployed at block" in summary and f"http://127.0.0.1:{port}" in summary
        address = _field(summary, "ledger").split()[0]
        code, out, err = _status(env, monkeypatch)
        assert code == 0, out + err
        reported = json.loads(out)
        assert (reported["ledger"], reported["departments"], reported["resources"]) == (address, 5, 3)
        assert reported["newer_code"] == [] and "newer code exists" not in summary
    finally:
        if proc.poll() is None:
            _stop(proc, node, signal.SIGTERM)  # README: Ctrl-C or SIGTERM; the next start resumes the ledger

    # An upgrade whose anchors contract changed since it was deployed (the record's build hash is not the
    # current artifact's): the next start keeps the deployed anchors, where the receipts are, and says so.
    anchors = _field(summary, "anchors")
    record = json.loads((tmp_path / "deployment.json").read_text())
    record["receipt_anchors"]["bytecode_hash"] = "0x" + "11" * 32
    (tmp_path / "deployment.json").write_text(json.dumps(record))

    # Second start, now with the API: same ledger, and the API answers where the summary says, as soon as it
    # says so (no retry).
    proc, summary = _run_until_ready(env)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{env['DXL_API_PORT']}/healthz", timeout=10) as health:
            assert health.status == 200
        deployed_at = int(_field(summary, "ledger").split("deployed at block ")[1].split(",")[0])
        assert f"{address} (deployed at block {deployed_at}, reused)" in summary
        assert _field(summary, "anchors") == anchors
        assert (
            "newer code exists for ReceiptAnchors: the contracts deployed for this ledger are kept" in summary
        )
        code, out, _ = _status(env, monkeypatch)
        assert code == 0 and json.loads(out)["newer_code"] == ["ReceiptAnchors"]
        assert int(_field(summary, "head block").split()[0]) > deployed_at
        assert _field(summary, "departments") == "PSB=1, HRSS=2, HEALTH=3, CIVIL=4, SAMR=5"
        docs = _field(summary, "API docs")
        assert docs == f"http://127.0.0.1:{env['DXL_API_PORT']}/docs"
        assert _get_status(docs) == 200
        console = _field(summary, "console").split()[0]
        assert console == f"http://127.0.0.1:{env['DXL_API_PORT']}/" and _get_status(console) == 200
        # The first start with the API printed the tokens; later starts name the file that keeps them.
        tokens = tmp_path / "secrets" / "demo-tokens.json"
        assert _field(summary, "console").endswith(f"(sign in with a token; demo tokens in {tokens})")
        assert "demo API tokens (shown once; also in DXL_HOME/secrets/demo-tokens.json):\n" in summary
        kept = json.loads(tokens.read_text())
        assert len(kept) == 8 and all(
            re.search(rf"^  {re.escape(name)} +{re.escape(entry['token'])}$", summary, re.MULTILINE)
            for name, entry in kept.items()
        ), summary
        # README shows the same lines, in the same order, and the web server's own before them.
        assert _labels(summary) == _labels(_readme_summary())
        for line in _readme_summary().splitlines():
            if line.startswith("INFO:"):
                shape = re.sub(r"\d+", r"\\d+", re.escape(line))  # a pid, a port
                assert re.search(f"^{shape}$", summary, re.MULTILINE), (line, summary)
        # What DXL_HOME holds is what README's table says it holds (SQLite's journal files aside; the local
        # network's directory only once `dxl network up` made it).
        kept = {p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))}
        assert kept == _readme_state_entries() - {"network"}
    finally:
        out = _stop(proc, node)
    assert "node state kept" in out
    code, out, _ = _status(env, monkeypatch)
    assert code == 1 and json.loads(out)["reachable"] is False
    # A later start prints no token again: it names the file (what `dxl run` prints before serving). Read in
    # this process, whose environment _status set to ``env``'s: a Python process of its own for it cost some
    # 1.5 s of CPU, nearly all of it importing the API.
    printed, warned = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(warned):
        _print_new_tokens(load_api_settings())
    assert printed.getvalue() == f"demo API tokens: see {tokens}\n", printed.getvalue() + warned.getvalue()


def test_dxl_node_start_listens_on_dxl_node_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dxl node start` without --port serves on DXL_NODE_PORT, where `dxl status` and the API look for it."""
    port = free_port()
    env = {**os.environ, "DXL_HOME": str(tmp_path), "DXL_NODE_PORT": str(port)}
    env.pop("DXL_RPC_URL", None)
    node = EmbeddedNode(tmp_path)
    started = subprocess.run(
        _dxl("node", "start", "--json"), env=env, capture_output=True, text=True, timeout=120, check=False
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert json.loads(started.stdout)["rpc_url"] == f"http://127.0.0.1:{port}"
        code, out, _ = _status(env, monkeypatch)
        reported = json.loads(out)
        assert (code, reported["reachable"], reported["ledger"]) == (1, True, None), out
        assert reported["error"]["code"] == "NOT_DEPLOYED"  # and why it is not usable, not only exit 1
    finally:
        stopped = subprocess.run(_dxl("node", "stop"), env=env, capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0 and node.pid is None


def test_status_counts_at_the_block_it_names(
    embedded_node: EmbeddedNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resource registered just after ``dxl status`` read the head is not counted: its counts are of the
    block it names. Read at the head of each read, they were of a block after it."""
    settings = load_settings(home=tmp_path, keystore_passphrase="test passphrase, not a secret")
    ensure_principals(KeyStore.from_settings(settings, scrypt_n=TEST_SCRYPT_N))
    setup = setup_ledger(embedded_node.endpoint, settings)  # a ledger of its own: a resource is added
    resources = int(setup.client.call("resourceCount"))
    provider = setup.keystore.unlock(DEPARTMENTS[0].key)
    registered: list[int] = []

    def register() -> None:
        if not looked:  # the first look is the check that the node answers; the second, the block named
            looked.append(True)
            proxy.after_head = register
            return
        name = keccak(b"registered after the head was read")
        registered.append(setup.client.transact(provider, "registerResource", name, name, 0, 1).block_number)

    looked: list[bool] = []

    monkeypatch.setenv("DXL_HOME", str(tmp_path))
    monkeypatch.setenv("DXL_CHAIN_ID", str(embedded_node.endpoint.chain_id))
    with RpcProxy(embedded_node.endpoint.rpc_url) as proxy:
        monkeypatch.setenv("DXL_RPC_URL", proxy.url)
        proxy.head_methods, proxy.after_head = ("eth_blockNumber",), register
        code, out, err = dxl("status", "--json")
    status = json.loads(out)
    assert code == 0 and registered and status["block"] == registered[0] - 1, out + err
    assert status["resources"] == resources, status
    assert int(setup.client.call("resourceCount")) == resources + 1
