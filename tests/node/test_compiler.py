"""The compiler driver: reproducible artifacts, clear errors, solcjs quirks."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from node import compiler
from node.compiler import CompilationError, Solc
from node.errors import ConfigurationError, ToolchainError
from node.paths import PROJECT_ROOT

FIXTURES = Path(__file__).parent / "fixtures"
EIP170_LIMIT = 24_576


@pytest.fixture
def fixture_project(tmp_path: Path) -> Path:
    """A copy of the fixture contracts laid out like the repository (contracts/src under a base path)."""
    shutil.copytree(FIXTURES / "contracts", tmp_path / "contracts")
    return tmp_path


def _build(base: Path) -> compiler.Build:
    return compiler.compile_sources(base / "contracts" / "src", base_path=base)


@pytest.mark.parametrize("profile", compiler.PROFILES, ids=lambda p: p.name)
def test_main_contract_fits_eip170(profile: compiler.BuildProfile) -> None:
    artifact = compiler.load_artifact("DataExchangeLedger", profile.artifacts_dir)
    assert artifact.evm_version == profile.name
    assert 0 < (len(artifact.deployed_bytecode) - 2) // 2 < EIP170_LIMIT


def test_the_readme_states_the_ledgers_code_size_and_room_left_of_each_build() -> None:
    """The README's sizes are the committed artifacts': stale once (23,437 stated, 23,856 built), and
    the London build's room under the limit is what decides whether the next check fits."""
    readme = " ".join((PROJECT_ROOT / "README.md").read_text(encoding="utf-8").split())
    sizes = {
        profile.name: (
            len(compiler.load_artifact("DataExchangeLedger", profile.artifacts_dir).deployed_bytecode) - 2
        )
        // 2
        for profile in compiler.PROFILES
    }
    cancun, london = sizes["cancun"], sizes["london"]
    assert f"EVM `cancun`; the ledger's runtime code {cancun:,} bytes" in readme
    assert f"its ledger's runtime code is {london:,} bytes" in readme
    assert (
        f"with {EIP170_LIMIT - cancun:,} bytes to spare ({EIP170_LIMIT - london:,} in the London build"
        in readme
    )


def test_the_readme_states_the_practice_contracts_code_size_and_room_left_of_each_build() -> None:
    """``SharingPractice`` grows with each practice the ledger serves: the README's figures are the committed
    artifacts', and each build fits under the limit."""
    readme = " ".join((PROJECT_ROOT / "README.md").read_text(encoding="utf-8").split())
    sizes = {
        profile.name: (
            len(compiler.load_artifact("SharingPractice", profile.artifacts_dir).deployed_bytecode) - 2
        )
        // 2
        for profile in compiler.PROFILES
    }
    cancun, london = sizes["cancun"], sizes["london"]
    assert london < EIP170_LIMIT and cancun < EIP170_LIMIT
    assert f"`SharingPractice` runtime code is {cancun:,} bytes ({london:,} in the London build)" in readme
    assert f"{EIP170_LIMIT - cancun:,} ({EIP170_LIMIT - london:,}) under the 24,576-byte limit" in readme


def test_the_london_build_has_the_cancun_abi_and_other_code() -> None:
    """Same sources, same interface: clients built on one ABI talk to either build; only the code differs
    (no PUSH0, OpenZeppelin 5.0.2 instead of 5.7.0)."""
    london, cancun = compiler.LONDON.artifacts_dir, compiler.CANCUN.artifacts_dir
    names = sorted(p.stem for p in cancun.glob("*.json") if p.name != compiler.BUILD_INFO_NAME)
    assert names == sorted(p.stem for p in london.glob("*.json") if p.name != compiler.BUILD_INFO_NAME)
    for name in names:
        theirs, ours = compiler.load_artifact(name, cancun), compiler.load_artifact(name, london)
        assert ours.abi == theirs.abi, name
        assert ours.source == theirs.source, name
    ledger_london = compiler.load_artifact("DataExchangeLedger", london)
    ledger_cancun = compiler.load_artifact("DataExchangeLedger", cancun)
    assert ledger_london.bytecode != ledger_cancun.bytecode
    assert any("contracts-london/" in unit for unit in ledger_london.sources)
    assert not any("contracts-london/" in unit for unit in ledger_cancun.sources)


def test_build_records_sources(fixture_build: compiler.Build, tmp_path: Path) -> None:
    """What a build writes. That the same sources build the same files again, byte for byte, is
    test_check_reports_nothing_for_unmodified_sources_rebuilt_through_py_solc_x's (its check recompiles them
    and compares every file's text); a second build here proved it once more, for some 1.6 s of solcjs CPU."""
    first = fixture_build
    counter = json.loads(first.files["Counter.json"])
    assert counter["sourceName"] == "contracts/src/Counter.sol"
    assert set(counter["sources"]) == {
        "contracts/src/Counter.sol",
        "contracts/src/libraries/Tally.sol",
        "node_modules/@openzeppelin/contracts/access/Ownable.sol",
        "node_modules/@openzeppelin/contracts/utils/Context.sol",
    }
    assert counter["compiler"]["version"].startswith("0.8.30+commit.")
    # OZ files are inputs, never artifacts of their own.
    assert sorted(first.files) == ["Counter.json", "Tally.json", "build-info.json"]
    compiler.write_artifacts(first, tmp_path / "artifacts")
    loaded = compiler.load_artifact("Counter", tmp_path / "artifacts")
    assert loaded.deployable and loaded.bytecode == counter["bytecode"]
    assert any(item.get("name") == "Counted" for item in loaded.abi)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # A changed constant changes the code and the source hash.
        (
            lambda src: src.replace("value + 1", "value + 2"),
            {
                "Counter.json: bytecode differs",
                "Counter.json: source contracts/src/libraries/Tally.sol differs",
            },
        ),
        # Even a comment is part of the build: the metadata hash in the bytecode pins the exact sources.
        (
            lambda src: src + "\n// trailing comment\n",
            {"Tally.json: source contracts/src/libraries/Tally.sol differs"},
        ),
    ],
)
def test_check_reports_modified_source(
    fixture_build: compiler.Build,
    fixture_project: Path,
    tmp_path: Path,
    edit: Callable[[str], str],
    expected: set[str],
) -> None:
    # The same artifacts checked against the unmodified sources report nothing
    # (test_check_reports_nothing_for_unmodified_sources_rebuilt_through_py_solc_x): every difference below
    # comes from the edit.
    artifacts = tmp_path / "committed"
    compiler.write_artifacts(fixture_build, artifacts)
    tally = fixture_project / "contracts" / "src" / "libraries" / "Tally.sol"
    tally.write_text(edit(tally.read_text()))
    differences = compiler.check_artifacts(
        fixture_project / "contracts" / "src", artifacts, base_path=fixture_project
    )
    assert expected <= set(differences)
    assert "build-info.json: inputSha256 differs" in differences


def test_check_reports_missing_and_orphaned_artifacts(fixture_build: compiler.Build, tmp_path: Path) -> None:
    artifacts = tmp_path / "committed"
    compiler.write_artifacts(fixture_build, artifacts)
    (artifacts / "Tally.json").unlink()
    (artifacts / "Removed.json").write_text("{}")
    differences = compiler.diff_artifacts(fixture_build, artifacts)
    assert "Tally.json: artifact missing (run `dxl compile`)" in differences
    assert "Removed.json: committed artifact has no source any more" in differences


def test_compile_error_lists_solc_messages(fixture_project: Path) -> None:
    broken = fixture_project / "contracts" / "src" / "Broken.sol"
    broken.write_text(
        "// SPDX-License-Identifier: Apache-2.0\npragma solidity 0.8.30;\ncontract Broken { uint x = ; }\n"
    )
    with pytest.raises(CompilationError) as info:
        _build(fixture_project)
    assert len(info.value.messages) == 1
    assert "contracts/src/Broken.sol" in info.value.messages[0]
    assert "ParserError" in str(info.value)
    assert isinstance(info.value, ToolchainError)


def test_missing_import_is_a_configuration_error(fixture_project: Path) -> None:
    (fixture_project / "contracts" / "src" / "Lost.sol").write_text('import {X} from "./nowhere/X.sol";\n')
    with pytest.raises(
        ConfigurationError, match=r"contracts/src/nowhere/X.sol.*imported by contracts/src/Lost.sol"
    ):
        _build(fixture_project)


OUTPUT = '{"contracts": {}, "sources": {"a.sol": {"id": 0}}}'


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        (OUTPUT, json.loads(OUTPUT)),
        (
            ">>> Cannot retry compilation with SMT because there are no SMT solvers available.\n"
            + OUTPUT
            + "\n",
            json.loads(OUTPUT),
        ),
        (">>> {not json\n" + OUTPUT, json.loads(OUTPUT)),
        (">>> only a notice\n", ToolchainError),
        ('{"truncated": ', ToolchainError),
        ("", ToolchainError),
    ],
)
def test_parse_standard_output(stdout: str, expected: object) -> None:
    if isinstance(expected, type):
        with pytest.raises(expected):
            compiler.parse_standard_output(stdout)
    else:
        assert compiler.parse_standard_output(stdout) == expected


@pytest.mark.parametrize(
    ("source", "imports"),
    [
        ('import "./A.sol";', ["./A.sol"]),
        ('import {A, B} from "../t/A.sol";', ["../t/A.sol"]),
        ("import * as X from '@openzeppelin/contracts/X.sol';", ["@openzeppelin/contracts/X.sol"]),
        ('// import "./Commented.sol";\nimport "./Real.sol";', ["./Real.sol"]),
        ('/* import "./Block.sol"; */ string constant S = "import \\"./Str.sol\\";";', []),
    ],
)
def test_import_scanner(source: str, imports: list[str]) -> None:
    assert compiler._imports(source) == imports


def test_missing_node_says_run_make_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ToolchainError, match="make setup"):
        Solc()


def test_missing_native_solc_is_a_toolchain_error(tmp_path: Path) -> None:
    with pytest.raises(ToolchainError, match="not found"):
        Solc(tmp_path / "solc")


def _solc_shim(tmp_path: Path) -> Path:
    """An executable that answers like a native solc (``--version``, ``--standard-json`` on pipes) by running
    the npm build with files for its stdin and stdout: no native solc 0.8.30 can be installed on the machines
    that run this suite, and py-solc-x only drives an executable."""
    shim = tmp_path / "solc"
    shim.write_text(
        "#!/bin/sh\n"
        'in="$(mktemp)"; out="$(mktemp)"; cat >"$in"\n'
        f'"{shutil.which("node")}" "{compiler.SOLCJS}" "$@" <"$in" >"$out"; rc=$?\n'
        'cat "$out"; rm -f "$in" "$out"; exit $rc\n'
    )
    shim.chmod(0o755)
    return shim


def test_check_reports_nothing_for_unmodified_sources_rebuilt_through_py_solc_x(
    fixture_project: Path, fixture_build: compiler.Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unmodified sources compiled again, by a native solc driven through py-solc-x, check clean against
    the fixture build's artifacts (made by the npm build, in whichever test process built it first): the
    check finds nothing, the native path builds every file byte for byte as the npm path does, and the same
    compiler builds the same files twice. The shim runs the same solcjs, so one build shows all three: a
    build for each was some 1.8 s of solcjs CPU more; the check with the npm build has the edits' tests
    (test_check_reports_modified_source)."""
    import solcx.wrapper

    calls: list[object] = []
    real = solcx.wrapper.solc_wrapper

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("solc_binary"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    npm_version = Solc().long_version()
    monkeypatch.setattr(solcx.wrapper, "solc_wrapper", counting)
    shim = _solc_shim(tmp_path)
    native = Solc(shim)
    assert native.native
    assert native.long_version() == npm_version  # read through py-solc-x's version parser
    artifacts = tmp_path / "committed"
    compiler.write_artifacts(fixture_build, artifacts)
    assert (
        compiler.check_artifacts(
            fixture_project / "contracts" / "src", artifacts, base_path=fixture_project, solc=native
        )
        == []
    )
    assert calls == [str(shim)]


def test_native_path_reports_every_compiler_error(fixture_project: Path, tmp_path: Path) -> None:
    (fixture_project / "contracts" / "src" / "Broken.sol").write_text(
        "// SPDX-License-Identifier: Apache-2.0\npragma solidity 0.8.30;\n"
        "contract Broken { uint x = ; }\ncontract Worse { uint y = ; }\n"
    )
    with pytest.raises(CompilationError) as info:
        compiler.compile_sources(
            fixture_project / "contracts" / "src", base_path=fixture_project, solc=Solc(_solc_shim(tmp_path))
        )
    assert "ParserError" in str(info.value)


def test_solcx_without_an_installed_native_solc_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOLCX_BINARY_PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match=r"solcx\.install_solc\('0\.8\.30'\)"):
        Solc(compiler.SOLCX_INSTALLED)


@pytest.mark.skipif(not os.environ.get(compiler.SOLC_ENV), reason="set DXL_SOLC to a native solc 0.8.30")
def test_native_solc_gives_identical_artifacts() -> None:
    native = Solc(os.environ[compiler.SOLC_ENV])
    assert native.native
    for profile in compiler.PROFILES:
        assert compiler.check_artifacts(solc=native, profile=profile) == []


def test_load_unknown_artifact_names_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="DataExchangeLedger"):
        compiler.load_artifact("NoSuchContract")


def test_solcjs_runs_from_project_root() -> None:
    assert compiler.SOLCJS.is_relative_to(PROJECT_ROOT)


def test_dxl_compile_reads_dxl_solc_and_hands_the_compiler_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``DXL_SOLC`` is read by the command (as its ``--solc``), not by the compiler below it: named there, a
    missing executable stops ``dxl compile`` before any build; the compiler itself, given none, is the npm
    build whatever the environment says."""
    from tests.cli import dxl

    monkeypatch.setenv(compiler.SOLC_ENV, str(tmp_path / "no-solc"))
    code, out, _ = dxl("compile", "--check", "--json")
    assert code == 2 and json.loads(out)["error"] == "TOOLCHAIN_ERROR", out
    assert "no-solc not found" in json.loads(out)["message"]
    assert not Solc().native
