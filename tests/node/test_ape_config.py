"""ape-config.yaml agrees with the node and the artifacts, without ape installed: the networks name the chain
and port dxl runs, and the ABI files ape reads are exactly the compiled ABIs (scripts/ape-abis.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from urllib.parse import urlparse

import pytest
import yaml

from node.anvil import DEFAULT_PORT, DXL_CHAIN_ID, EmbeddedNode, NodeSettings
from node.errors import ConfigurationError
from node.paths import ARTIFACTS_DIR, PROJECT_ROOT
from node.settings import Settings

APE_CONFIG = PROJECT_ROOT / "ape-config.yaml"
ABI_SCRIPT = PROJECT_ROOT / "scripts" / "ape-abis.py"


def _load_script() -> ModuleType:
    # The script's file name has a hyphen (the scripts/ape-* convention), so it is loaded by path.
    spec = importlib.util.spec_from_file_location("ape_abis", ABI_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ape_abis = _load_script()


@pytest.fixture(scope="module")
def config() -> dict[str, object]:
    loaded = yaml.safe_load(APE_CONFIG.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _network(config: dict[str, object], name: str) -> dict[str, object]:
    networks = config["networks"]["custom"]  # type: ignore[index]
    matches = [n for n in networks if n["name"] == name]
    assert len(matches) == 1, f"network {name} declared {len(matches)} times"
    return matches[0]  # type: ignore[no-any-return]


def _uri(config: dict[str, object], name: str) -> str:
    return config["node"]["ethereum"][name]["uri"]  # type: ignore[index,no-any-return]


@pytest.mark.parametrize("network", ["dxl-local", "dxl-network"])
def test_network_is_the_dxl_chain_via_attaching_provider(config: dict[str, object], network: str) -> None:
    declared = _network(config, network)
    assert declared["ecosystem"] == "ethereum"
    assert declared["chain_id"] == DXL_CHAIN_ID
    # ape's "node" provider attaches to a URL; ape's "foundry" provider would start an anvil of its own.
    assert declared["default_provider"] == "node"


def test_embedded_network_points_at_the_embedded_node(config: dict[str, object]) -> None:
    uri = urlparse(_uri(config, "dxl-local"))
    assert (uri.scheme, uri.hostname, uri.port) == ("http", "127.0.0.1", DEFAULT_PORT)
    assert Settings.model_fields["node_port"].default == DEFAULT_PORT


def test_external_network_reads_the_url_dxl_reads(config: dict[str, object]) -> None:
    env_name = f"{Settings.model_config['env_prefix']}RPC_URL".upper()
    assert "rpc_url" in Settings.model_fields
    assert _uri(config, "dxl-network") in (f"${env_name}", f"${{{env_name}}}")


def test_abi_files_ape_reads_are_the_artifacts_abis(config: dict[str, object]) -> None:
    abi_dir = PROJECT_ROOT / str(config["contracts_folder"])
    have = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in abi_dir.glob("*.json")}
    want = {}
    for artifact in ARTIFACTS_DIR.glob("*.json"):
        data = json.loads(artifact.read_text(encoding="utf-8"))
        if data.get("abi"):
            want[artifact.stem] = data["abi"]
    assert "DataExchangeLedger" in want
    assert have == want
    # Anything else in contracts_folder would be "compiled" by ape too.
    assert sorted(p.name for p in abi_dir.iterdir()) == sorted(f"{name}.json" for name in want)


def test_check_reports_in_sync_repository() -> None:
    result = subprocess.run(
        [sys.executable, str(ABI_SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.fixture
def copies(tmp_path: Path) -> tuple[Path, Path]:
    artifacts = tmp_path / "artifacts"
    abis = tmp_path / "abi"
    shutil.copytree(ARTIFACTS_DIR, artifacts)
    shutil.copytree(PROJECT_ROOT / "contracts" / "abi", abis)
    return artifacts, abis


def _edit_abi(path: Path) -> None:
    path.write_text(json.dumps(json.loads(path.read_text(encoding="utf-8"))[:-1]), encoding="utf-8")


def _edit_artifact(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data["abi"] = data["abi"][1:]
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "stale"),
    [
        (lambda art, abi: None, []),
        (lambda art, abi: _edit_abi(abi / "DataExchangeLedger.json"), ["DataExchangeLedger.json"]),
        (lambda art, abi: _edit_artifact(art / "DataCatalog.json"), ["DataCatalog.json"]),
        (lambda art, abi: (abi / "DepartmentRegistry.json").unlink(), ["DepartmentRegistry.json"]),
        (lambda art, abi: (abi / "Removed.json").write_text("[]"), ["Removed.json"]),
        (lambda art, abi: (art / "SharingAgreements.json").unlink(), ["SharingAgreements.json"]),
    ],
    ids=["in-sync", "abi-edited", "artifact-changed", "abi-missing", "abi-orphaned", "artifact-removed"],
)
def test_stale_files_found_and_rewritten(
    copies: tuple[Path, Path], change: Callable[[Path, Path], object], stale: list[str]
) -> None:
    artifacts, abis = copies
    change(artifacts, abis)
    assert ape_abis.stale_files(abis, artifacts) == stale
    assert ape_abis.write_abis(abis, artifacts) == stale
    assert ape_abis.stale_files(abis, artifacts) == []


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda art: shutil.rmtree(art), "no artifacts directory"),
        (lambda art: (art / "Broken.json").write_text("{not json"), "Broken.json is not a contract artifact"),
        (lambda art: (art / "NoAbi.json").write_text("{}"), "NoAbi.json is not a contract artifact"),
        (lambda art: (art / "Odd.json").write_text('{"abi": {}}'), "'abi' is a dict, expected a list"),
    ],
    ids=["no-artifacts", "not-json", "no-abi-key", "abi-not-list"],
)
def test_unusable_artifacts_refused(
    copies: tuple[Path, Path], setup: Callable[[Path], object], message: str
) -> None:
    artifacts, abis = copies
    setup(artifacts)
    with pytest.raises(ConfigurationError, match=message):
        ape_abis.stale_files(abis, artifacts)


def test_readme_reaches_a_node_on_another_port_through_the_external_network(
    config: dict[str, object], tmp_path: Path
) -> None:
    """README's ape command for a node on DXL_NODE_PORT names the network whose URL ape reads from
    DXL_RPC_URL, and sets that to where `dxl node start` / `dxl run` put the node for that port."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    lines = readme.splitlines()
    command = next(line for line in lines if ".venv-ape/bin/ape" in line and "DXL_NODE_PORT" in line)
    assignment, _, rest = command.partition(" ")
    name, _, value = assignment.partition("=")
    network = rest.split("--network ", 1)[1].split()[0]
    assert (name, network) == ("DXL_RPC_URL", "ethereum:dxl-network:node")
    port = 9545
    resolved = os.path.expandvars(value.replace("$DXL_NODE_PORT", str(port)))
    with pytest.MonkeyPatch.context() as env:
        env.setenv(name, resolved)
        uri = os.path.expandvars(_uri(config, "dxl-network"))
    assert uri == EmbeddedNode(tmp_path, NodeSettings(port=port)).endpoint.rpc_url
    assert _network(config, "dxl-network")["chain_id"] == DXL_CHAIN_ID
