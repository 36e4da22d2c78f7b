"""Reproducible Solidity builds through the compiler's standard-JSON interface.

The settings live once in ``contracts/compiler.json``. Sources are gathered here, not by the compiler:
every ``.sol`` under ``contracts/src`` plus everything it imports, resolved the way solc resolves source unit
names (relative imports against the importing unit, then the remappings), read from the base path or, failing
that, from the include paths (the project root, where ``node_modules`` lives). Every source therefore travels
inside the standard-JSON input as ``content``, so the input is a complete, hashable description of the build
and the compiler never touches the file system. That makes the npm build (solcjs, WebAssembly) and a native
``solc`` of the same version interchangeable: same input, same bytecode.

Two builds of the same sources (:data:`PROFILES`): ``cancun`` (``contracts/compiler.json`` into
``contracts/artifacts``), what anvil and Besu QBFT run, and ``london`` (``contracts/compiler-london.json``
into ``contracts/artifacts-london``) for chains without Shanghai (geth's Clique: no ``PUSH0``).
OpenZeppelin 5.2 and later use ``MCOPY`` (Cancun), so the London profile remaps the imports to OpenZeppelin
5.0.2, installed beside 5.7.0 under the npm alias ``@openzeppelin/contracts-london``. Both builds have the
same ABI.

``viaIR`` is on because the ledger does not compile without it ("stack too deep"); with the optimizer at
1,000 runs the main contract's runtime code is 23,437 bytes (Cancun) and 24,091 bytes (London, without
``PUSH0``), under the 24,576-byte EIP-170 limit.

Artifacts (one per contract, interface and library declared under ``contracts/src``) are written as sorted,
indented JSON so committed artifacts diff cleanly; :func:`check_artifacts` recompiles and lists what differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.errors import ConfigurationError, ToolchainError
from node.paths import ARTIFACTS_DIR, CONTRACTS_DIR, NODE_MODULES, PROJECT_ROOT
from verifier.text import counted

SETTINGS_FILE = CONTRACTS_DIR / "compiler.json"
SOURCES_DIR = CONTRACTS_DIR / "src"
SOLCJS = NODE_MODULES / "solc" / "solc.js"
BUILD_INFO_NAME = "build-info.json"
#: Environment variable naming a native solc executable to use instead of solcjs; `dxl compile` reads it (as
#: its --solc) and hands the compiler down.
SOLC_ENV = "DXL_SOLC"

_OUTPUT_SELECTION = ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"]
_COMPILE_TIMEOUT_S = 600

# Strings are kept (group 1) so that "//" inside a string literal is not taken for a comment.
_COMMENT_OR_STRING = re.compile(r"(\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*')|//[^\n]*|/\*.*?\*/", re.S)
# An import directive starts the file or follows another directive/definition (";" or "}"), never a string.
_IMPORT = re.compile(r"(?:\A|(?<=[;}]))\s*import\b[^;]*?([\"'])(?P<path>[^\"']+)\1[^;]*;")


@dataclass(frozen=True)
class BuildProfile:
    """One build of ``contracts/src``: the settings it compiles with and where its artifacts are committed.
    ``name`` is the settings' ``evmVersion``."""

    name: str
    settings_file: Path
    artifacts_dir: Path


CANCUN = BuildProfile("cancun", SETTINGS_FILE, ARTIFACTS_DIR)
LONDON = BuildProfile("london", CONTRACTS_DIR / "compiler-london.json", CONTRACTS_DIR / "artifacts-london")
PROFILES = (CANCUN, LONDON)


def profile_named(name: str) -> BuildProfile:
    """The profile called ``name``.

    Raises:
        ConfigurationError: no such profile.
    """
    for profile in PROFILES:
        if profile.name == name:
            return profile
    known = ", ".join(p.name for p in PROFILES)
    raise ConfigurationError(f"no build profile {name!r} (known: {known})")


class CompilationError(ToolchainError):
    """Thrown when solc reports errors; ``messages`` holds solc's formatted messages, one per error."""

    code = "COMPILATION_ERROR"

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)
        body = "\n".join(m.rstrip() for m in self.messages)
        super().__init__(f"Solidity compilation failed with {counted(len(self.messages), 'error')}:\n{body}")


@dataclass(frozen=True)
class CompilerConfig:
    """The pinned compiler version and the standard-JSON ``settings`` (without ``outputSelection``)."""

    solc_version: str
    settings: Mapping[str, Any]

    @property
    def remappings(self) -> list[tuple[str, str]]:
        pairs = []
        for entry in self.settings.get("remappings", []):
            context_prefix, _, target = entry.partition("=")
            if ":" in context_prefix:
                raise ConfigurationError(f"context-specific remapping {entry!r} is not supported")
            pairs.append((context_prefix, target))
        # solc picks the longest matching prefix.
        return sorted(pairs, key=lambda p: len(p[0]), reverse=True)


def load_config(path: Path = SETTINGS_FILE) -> CompilerConfig:
    """Read ``contracts/compiler.json``.

    Raises:
        ConfigurationError: the file is missing, not JSON, or lacks ``solcVersion``/``settings``.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return CompilerConfig(solc_version=str(raw["solcVersion"]), settings=dict(raw["settings"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"unusable compiler settings {path}: {exc}") from exc


@dataclass(frozen=True)
class Artifact:
    """One compiled contract as written to ``contracts/artifacts/<name>.json``."""

    name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler_version: str
    sources: dict[str, str] = field(default_factory=dict)  # source unit name -> sha256 of its content
    evm_version: str = CANCUN.name

    @property
    def deployable(self) -> bool:
        return self.bytecode not in ("", "0x")


#: ``DXL_SOLC`` value selecting the native solc that ``solcx.install_solc`` installed for the pinned version.
SOLCX_INSTALLED = "solcx"


class Solc:
    """A Solidity compiler speaking standard JSON: solcjs from npm (the default), or a native ``solc`` driven
    through py-solc-x.

    The native path is chosen by ``executable`` (``dxl compile --solc``, or ``$DXL_SOLC`` read there): a
    path (or a name on ``PATH``) of a native solc, or ``solcx`` for the one ``solcx.install_solc(<pinned
    version>)`` put in py-solc-x's folder (that download needs binaries.soliditylang.org, which is why the
    npm build is the default). None is the npm build.

    Raises (on use):
        ToolchainError: node, solcjs or the executable is missing, dies, or prints no JSON.
    """

    def __init__(self, executable: str | os.PathLike[str] | None = None) -> None:
        chosen = executable
        self.native = chosen is not None
        if chosen is not None:
            exe = _solcx_installed() if str(chosen) == SOLCX_INSTALLED else shutil.which(str(chosen))
            if exe is None:
                raise ToolchainError(f"solc executable {chosen!s} not found or not executable")
            self.command = [exe]
        else:
            nodejs = shutil.which("node")
            if nodejs is None or not SOLCJS.is_file():
                missing = "node (Node.js)" if nodejs is None else str(SOLCJS)
                raise ToolchainError(f"{missing} is missing: run `make setup` to install the npm toolchain")
            self.command = [nodejs, str(SOLCJS)]

    def _run(self, args: list[str], stdin: str | None = None) -> str:
        # Both ends are regular files, not pipes: solcjs reads stdin with readFileSync(0), which fails with
        # EAGAIN on a pipe once the input outgrows the pipe buffer, and it exits before an asynchronous pipe
        # write of stdout is flushed, cutting the JSON at 64 KiB. Writes to a file are synchronous in Node.
        with (
            tempfile.TemporaryFile("w+", encoding="utf-8") as stdin_file,
            tempfile.TemporaryFile("w+", encoding="utf-8") as stdout_file,
        ):
            stdin_file.write(stdin or "")
            stdin_file.seek(0)
            try:
                proc = subprocess.run(
                    [*self.command, *args],
                    stdin=stdin_file,
                    stdout=stdout_file,
                    stderr=subprocess.PIPE,
                    text=True,
                    timeout=_COMPILE_TIMEOUT_S,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ToolchainError(f"could not run {' '.join(self.command)}: {exc}") from exc
            if proc.returncode != 0:
                raise ToolchainError(
                    f"{' '.join(self.command)} {' '.join(args)} exited with {proc.returncode}: "
                    f"{proc.stderr.strip()}"
                )
            stdout_file.seek(0)
            return stdout_file.read()

    def long_version(self) -> str:
        """The version with its commit, without the platform suffix (``0.8.30+commit.73712a01``).

        The platform part (``.Emscripten.clang``, ``.Linux.g++``) is dropped because it is not part of the
        build: solc embeds only version+commit in the metadata, so both builds produce the same bytecode.
        Asked once per process and executable: solcjs loads its whole WebAssembly compiler to answer, and
        every compilation checks the version first.
        """
        # The files' modification times are part of the key, so a compiler replaced in place is asked again.
        key = tuple((part, _mtime_ns(part)) for part in self.command)
        if key not in _VERSIONS:
            _VERSIONS[key] = self._ask_version()
        return _VERSIONS[key]

    def _ask_version(self) -> str:
        if self.native:
            from solcx.exceptions import SolcError
            from solcx.wrapper import get_version_str_from_solc_binary

            try:
                return get_version_str_from_solc_binary(self.command[0])
            except (OSError, subprocess.CalledProcessError, SolcError) as exc:
                raise ToolchainError(f"{self.command[0]} --version: {exc}") from exc
        match = re.search(r"(\d+\.\d+\.\d+(?:-[\w.]+)?\+commit\.[0-9a-f]+)", self._run(["--version"]))
        if match is None:
            raise ToolchainError(f"{' '.join(self.command)} --version printed no recognisable version")
        return match.group(1)

    def compile(self, standard_input: Mapping[str, Any]) -> dict[str, Any]:
        """Run one standard-JSON compilation and return solc's JSON output (errors are not raised here)."""
        if self.native:
            return parse_standard_output(self._compile_native(json.dumps(standard_input)))
        return parse_standard_output(self._run(["--standard-json"], json.dumps(standard_input)))

    def _compile_native(self, stdin: str) -> str:
        # py-solc-x's wrapper, not its compile_standard: that one raises on the first compiler error, and the
        # callers here report every error of solc's output themselves (CompilationError).
        from solcx.exceptions import SolcError
        from solcx.wrapper import solc_wrapper

        try:
            stdout, _, _, _ = solc_wrapper(solc_binary=self.command[0], stdin=stdin, standard_json=True)
        except (OSError, SolcError) as exc:
            raise ToolchainError(f"{self.command[0]} --standard-json failed: {exc}") from exc
        return stdout


#: :meth:`Solc.long_version` answers by command (with the files' modification times).
_VERSIONS: dict[tuple[tuple[str, int | None], ...], str] = {}


def _mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _solcx_installed() -> str:
    """The native solc ``solcx.install_solc`` installed for the pinned version.

    Raises:
        ToolchainError: py-solc-x has not installed that version here.
    """
    from solcx.exceptions import SolcNotInstalled
    from solcx.install import get_executable

    wanted = load_config().solc_version
    try:
        return str(get_executable(version=wanted))
    except SolcNotInstalled as exc:
        raise ToolchainError(
            f'no native solc {wanted} installed by py-solc-x: run `python -c "import solcx; '
            f"solcx.install_solc('{wanted}')\"` where binaries.soliditylang.org is reachable ({exc})"
        ) from exc


def parse_standard_output(stdout: str) -> dict[str, Any]:
    """Decode solc's standard-JSON output, skipping anything printed around it.

    solcjs prints notices such as ``>>> Cannot retry compilation with SMT ...`` on stdout before the JSON, so
    the output is scanned for the first line that starts a JSON object which decodes completely.

    Raises:
        ToolchainError: no JSON object found.
    """
    decoder = json.JSONDecoder()
    offset = 0
    for line in stdout.splitlines(keepends=True):
        if line.lstrip().startswith("{"):
            try:
                value, _ = decoder.raw_decode(stdout, offset + len(line) - len(line.lstrip()))
            except ValueError:
                pass
            else:
                if isinstance(value, dict):
                    return value
        offset += len(line)
    raise ToolchainError(f"compiler printed no standard-JSON output: {stdout[:500]!r}")


def _imports(text: str) -> list[str]:
    code = _COMMENT_OR_STRING.sub(lambda m: m.group(1) or " ", text)
    return [m.group("path") for m in _IMPORT.finditer(code)]


def _unit_name(import_path: str, importer: str, remappings: Iterable[tuple[str, str]]) -> str:
    """The source unit name solc derives for ``import_path`` written in unit ``importer``."""
    if import_path.startswith(("./", "../")):
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(importer), import_path))
    else:
        resolved = import_path
    for prefix, target in remappings:
        if resolved.startswith(prefix):
            return target + resolved[len(prefix) :]
    return resolved


def gather_sources(
    src_dir: Path = SOURCES_DIR,
    *,
    base_path: Path = PROJECT_ROOT,
    include_paths: Sequence[Path] = (PROJECT_ROOT,),
    config: CompilerConfig | None = None,
) -> dict[str, str]:
    """Every ``.sol`` under ``src_dir`` plus its transitive imports, as ``{source unit name: content}``.

    Unit names are paths relative to ``base_path``; an import not found there is looked up in
    ``include_paths``.

    Raises:
        ConfigurationError: ``src_dir`` holds no Solidity file, lies outside ``base_path``, or an import
            cannot be found.
    """
    config = config or load_config()
    remappings = config.remappings
    base_path = base_path.resolve()
    roots = sorted(p.resolve() for p in src_dir.rglob("*.sol"))
    if not roots:
        raise ConfigurationError(f"no Solidity sources under {src_dir}")
    pending: list[tuple[str, str | None]] = []
    for path in roots:
        try:
            pending.append((path.relative_to(base_path).as_posix(), None))
        except ValueError as exc:
            raise ConfigurationError(f"source {path} lies outside the base path {base_path}") from exc
    sources: dict[str, str] = {}
    while pending:
        unit, importer = pending.pop()
        if unit in sources:
            continue
        for root in (base_path, *include_paths):
            candidate = root / unit
            if candidate.is_file():
                text = candidate.read_text(encoding="utf-8")
                break
        else:
            via = f" (imported by {importer})" if importer else ""
            raise ConfigurationError(f"Solidity source {unit!r}{via} not found; run `make setup`?")
        sources[unit] = text
        pending.extend((_unit_name(imp, unit, remappings), unit) for imp in _imports(text))
    return dict(sorted(sources.items()))


def standard_input(sources: Mapping[str, str], config: CompilerConfig) -> dict[str, Any]:
    """The complete standard-JSON input for ``sources``."""
    settings = dict(config.settings)
    settings["outputSelection"] = {"*": {"*": list(_OUTPUT_SELECTION)}}
    return {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sorted(sources.items())},
        "settings": settings,
    }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Build:
    """The result of one compilation: file name -> file text, ready to be written or compared."""

    files: dict[str, str]
    warnings: list[str]


def compile_sources(
    src_dir: Path = SOURCES_DIR,
    *,
    base_path: Path = PROJECT_ROOT,
    include_paths: Sequence[Path] = (PROJECT_ROOT,),
    solc: Solc | None = None,
    config: CompilerConfig | None = None,
) -> Build:
    """Compile everything under ``src_dir`` and render the artifacts (without writing them).

    Raises:
        CompilationError: solc reported errors.
        ToolchainError: the compiler is missing, of the wrong version, or unusable.
        ConfigurationError: sources or settings are unusable.
    """
    config = config or load_config()
    solc = solc or Solc()
    version = solc.long_version()
    if not version.startswith(config.solc_version + "+"):
        raise ToolchainError(f"compiler is {version}, but contracts/compiler.json pins {config.solc_version}")
    sources = gather_sources(src_dir, base_path=base_path, include_paths=include_paths, config=config)
    std_input = standard_input(sources, config)
    output = solc.compile(std_input)
    diagnostics = output.get("errors", [])
    errors = [
        d.get("formattedMessage", d.get("message", "")) for d in diagnostics if d["severity"] == "error"
    ]
    if errors:
        raise CompilationError(errors)
    warnings = [
        d.get("formattedMessage", d.get("message", "")) for d in diagnostics if d["severity"] != "error"
    ]

    own_prefix = src_dir.resolve().relative_to(base_path.resolve()).as_posix() + "/"
    hashes = {unit: _sha256(text) for unit, text in sources.items()}
    compiler = {"settings": dict(config.settings), "version": version}
    files: dict[str, str] = {}
    for unit, contracts in sorted(output.get("contracts", {}).items()):
        if not unit.startswith(own_prefix):
            continue
        for name, out in sorted(contracts.items()):
            file_name = f"{name}.json"
            if file_name in files:
                raise CompilationError([f"contract name {name} is declared twice under {src_dir}"])
            used = sorted(json.loads(out["metadata"])["sources"])
            files[file_name] = _canonical(
                {
                    "abi": out["abi"],
                    "bytecode": "0x" + out["evm"]["bytecode"]["object"],
                    "compiler": compiler,
                    "contractName": name,
                    "deployedBytecode": "0x" + out["evm"]["deployedBytecode"]["object"],
                    "sourceName": unit,
                    "sources": {u: {"sha256": hashes[u]} for u in used},
                }
            )
    files[BUILD_INFO_NAME] = _canonical(
        {
            "compiler": compiler,
            "contracts": sorted(f.removesuffix(".json") for f in files),
            "inputSha256": hashlib.sha256(
                json.dumps(std_input, sort_keys=True, separators=(",", ":")).encode("utf-8")
            ).hexdigest(),
            "sources": {unit: {"sha256": digest} for unit, digest in hashes.items()},
        }
    )
    return Build(files=files, warnings=warnings)


def write_artifacts(build: Build, artifacts_dir: Path = ARTIFACTS_DIR) -> list[Path]:
    """Write ``build`` into ``artifacts_dir``, removing artifacts of contracts that no longer exist."""
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    for stale in artifacts_dir.glob("*.json"):
        if stale.name not in build.files:
            stale.unlink()
    written = []
    for name, text in sorted(build.files.items()):
        path = artifacts_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def diff_artifacts(build: Build, artifacts_dir: Path = ARTIFACTS_DIR) -> list[str]:
    """Human-readable differences between a fresh ``build`` and the artifacts in ``artifacts_dir``."""
    differences = []
    on_disk = {p.name for p in artifacts_dir.glob("*.json")} if artifacts_dir.is_dir() else set()
    for name in sorted(on_disk - build.files.keys()):
        differences.append(f"{name}: committed artifact has no source any more")
    for name, text in sorted(build.files.items()):
        path = artifacts_dir / name
        if name not in on_disk:
            differences.append(f"{name}: artifact missing (run `dxl compile`)")
            continue
        committed_text = path.read_text(encoding="utf-8")
        if committed_text == text:
            continue
        try:
            committed = json.loads(committed_text)
        except ValueError:
            differences.append(f"{name}: committed artifact is not valid JSON")
            continue
        fresh = json.loads(text)
        keys = sorted(set(committed) | set(fresh))
        changed = [k for k in keys if committed.get(k) != fresh.get(k)]
        for key in changed:
            if key == "sources" and isinstance(committed.get(key), dict):
                for unit in sorted(set(committed[key]) | set(fresh[key])):
                    if committed[key].get(unit) != fresh[key].get(unit):
                        differences.append(f"{name}: source {unit} differs")
            else:
                differences.append(f"{name}: {key} differs")
        if not changed:
            differences.append(f"{name}: formatting differs")
    return differences


def compile_project(
    artifacts_dir: Path | None = None, *, solc: Solc | None = None, profile: BuildProfile = CANCUN
) -> Build:
    """Compile ``contracts/src`` with ``profile``'s settings and write its artifacts (``dxl compile`` does it
    for every profile)."""
    build = compile_sources(solc=solc, config=load_config(profile.settings_file))
    write_artifacts(build, artifacts_dir or profile.artifacts_dir)
    return build


def check_artifacts(
    src_dir: Path = SOURCES_DIR,
    artifacts_dir: Path | None = None,
    *,
    base_path: Path = PROJECT_ROOT,
    solc: Solc | None = None,
    profile: BuildProfile = CANCUN,
) -> list[str]:
    """Recompile ``src_dir`` with ``profile``'s settings and list how the artifacts in ``artifacts_dir`` (the
    profile's by default) differ (empty: up to date).

    Raises:
        CompilationError, ToolchainError, ConfigurationError: as :func:`compile_sources`.
    """
    build = compile_sources(
        src_dir, base_path=base_path, solc=solc, config=load_config(profile.settings_file)
    )
    return diff_artifacts(build, artifacts_dir or profile.artifacts_dir)


def load_artifact(name: str, artifacts_dir: Path = ARTIFACTS_DIR) -> Artifact:
    """Load ``contracts/artifacts/<name>.json``.

    Raises:
        ConfigurationError: no such artifact (with the names that exist), or it is unreadable.
    """
    path = artifacts_dir / f"{name}.json"
    if not re.fullmatch(r"[A-Za-z_$][\w$]*", name) or not path.is_file():
        known = sorted(p.stem for p in artifacts_dir.glob("*.json") if p.name != BUILD_INFO_NAME)
        raise ConfigurationError(
            f"no compiled artifact {name!r} in {artifacts_dir} (known: {', '.join(known) or 'none'}); "
            "run `dxl compile`"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Artifact(
            name=raw["contractName"],
            source=raw["sourceName"],
            abi=raw["abi"],
            bytecode=raw["bytecode"],
            deployed_bytecode=raw["deployedBytecode"],
            compiler_version=raw["compiler"]["version"],
            sources={unit: entry["sha256"] for unit, entry in raw["sources"].items()},
            evm_version=str(raw["compiler"]["settings"].get("evmVersion", CANCUN.name)),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"artifact {path} is unreadable: {exc}") from exc
