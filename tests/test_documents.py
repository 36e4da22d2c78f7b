"""What the documents tell a user to type is what the code takes.

README.md, api/README.md, node/audit/README.md and verifier/MANIFEST.md name ``dxl`` commands and options,
``DXL_*`` settings with their defaults, HTTP operations, the error codes the API answers with their statuses,
make targets, and files and tests of the repository. These tests read the documents as a user does and hold
each of those to the code, so that renaming an option or a route, changing a default or moving a code to
another status fails here until the document says so too.
"""

from __future__ import annotations

import argparse
import functools
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.core import TyperGroup, TyperOption

from api.app import create_app
from api.errors import ERRORS
from api.settings import ApiSettings
from dxl import payload
from dxl.app import app
from node.paths import PROJECT_ROOT
from node.settings import Settings
from verifier import codes as verdict_codes

DOCUMENTS = ("README.md", "api/README.md", "node/audit/README.md", "verifier/MANIFEST.md")
#: Where the ``DXL_*`` settings are documented.
SETTINGS_DOCUMENTS = ("README.md", "api/README.md", "node/audit/README.md")


def _text(document: str) -> str:
    return (PROJECT_ROOT / document).read_text(encoding="utf-8")


# --- dxl commands and their options ------------------------------------------------------------------------


def _command_lines(text: str) -> Iterator[str]:
    """What a reader would type: every inline code span, and every line of a code block (a line ending in a
    backslash joined with the next, as the shell does)."""
    yield from re.findall(r"`([^`\n]+)`", text)
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M):
        yield from block.replace("\\\n", " ").splitlines()
    # api/README.md shows some commands as indented blocks.
    yield from (line for line in text.replace("\\\n", " ").splitlines() if line.startswith("    "))


#: Words after ``dxl `` in a document that are not a command: output the documents quote (``dxl is running``).
NOT_COMMANDS = {"is"}


def _invocations(text: str) -> Iterator[str]:
    """Each ``dxl …`` command line the text shows, up to a comment or the end of the shell command."""
    for line in _command_lines(text):
        for found in re.finditer(r"(?:^|(?<=[\s/$(]))dxl (\S.*)", line):
            yield re.split(r"\s#|\s&&|\s;|;\s|\s&$|`", found.group(1))[0]


@functools.cache
def _dxl() -> TyperGroup:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return group


def _typer_options(command: Any) -> set[str]:
    return {o for p in command.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}


def _argparse_options(parser: argparse.ArgumentParser) -> set[str]:
    return set(parser._option_string_actions)


def _resolve(words: list[str]) -> list[tuple[str, set[str]]]:
    """The commands ``dxl WORDS`` names (``start|stop|status`` names three), each with the options it takes.

    Raises:
        LookupError: the first word is not a command of ``dxl``.
    """
    first = words[0]
    if first.startswith("-"):  # `dxl --help`
        return [("dxl", {"--help", "-h"})]
    if first in payload.COMMANDS:
        return [(f"dxl {first}", _argparse_options(payload.parser_for(first)) | {"--help", "-h"})]
    group = _dxl()
    commands: list[tuple[str, Any]] = []
    for name in first.split("|"):
        if name not in group.commands:
            raise LookupError(name)
        commands.append((f"dxl {name}", group.commands[name]))
    for word in words[1:]:
        if not all(isinstance(c, TyperGroup) for _, c in commands):
            break
        names = word.split("|")
        if not all(n in c.commands for _, c in commands for n in names if isinstance(c, TyperGroup)):
            break
        commands = [(f"{path} {n}", c.commands[n]) for path, c in commands if isinstance(c, TyperGroup)
                    for n in names]  # fmt: skip
    return [(path, _typer_options(c) | {"--help"}) for path, c in commands]


def _documented_invocations() -> list[tuple[str, str]]:
    return sorted({(doc, line.strip()) for doc in DOCUMENTS for line in _invocations(_text(doc))})


def test_the_documents_show_commands() -> None:
    shown = _documented_invocations()
    assert len(shown) > 100
    assert ("api/README.md", "token list [--json]") in shown


@pytest.mark.parametrize(("document", "line"), _documented_invocations())
def test_every_command_and_option_a_document_shows_exists(document: str, line: str) -> None:
    words = line.split()
    if words[0] in NOT_COMMANDS:
        return
    try:
        commands = _resolve(words)
    except LookupError as exc:
        pytest.fail(f"{document} shows `dxl {line}`, but dxl has no command {exc}")
    options = {m.split("=")[0] for m in re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", line)}
    for path, takes in commands:
        unknown = sorted(options - takes)
        assert unknown == [], f"{document} shows `dxl {line}`, but `{path}` takes no {', '.join(unknown)}"


# --- the settings table ------------------------------------------------------------------------------------


def _settings_table() -> list[tuple[str, str]]:
    """README's Configuration table as (variable, default as written) pairs; a row of two variables
    (``A`` / ``B``) gives two pairs, their defaults split the same way (or one default for both)."""
    section = _text("README.md").split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows: list[tuple[str, str]] = []
    for line in section.splitlines():
        if not line.startswith("| `DXL_"):
            continue
        names_cell, default_cell = (cell.strip() for cell in line.split("|")[1:3])
        names = re.findall(r"`(DXL_[A-Z0-9_]+)`", names_cell)
        defaults = default_cell.split(" / ") if len(names) > 1 else [default_cell]
        defaults = defaults * len(names) if len(defaults) == 1 else defaults  # one default for both
        assert len(defaults) == len(names), line
        rows += zip(names, (d.strip() for d in defaults), strict=True)
    return rows


#: Defaults the table gives in words rather than as a value.
IN_WORDS = {
    "DXL_DATABASE_URL": ("SQLite in `DXL_HOME`", None),
}
#: Variables the table lists that are options of the commands acting through the API, not settings.
API_CLIENT_VARIABLES = {"DXL_API_URL": "--api", "DXL_TOKEN": "--token"}


def _default_as_written(field: Any, written: str) -> object:
    """``written`` as the value the field would hold."""
    if written in ("unset", "empty"):
        return None if field.default is None else ""
    literal = written.strip("`")
    if isinstance(field.default, bool):
        return literal == "true"
    if isinstance(field.default, int | float):
        return type(field.default)(literal)
    if isinstance(field.default, Path):
        return Path(literal)
    return literal


def test_the_settings_table_lists_variables() -> None:
    assert len(_settings_table()) > 20


@pytest.mark.parametrize(("variable", "written"), _settings_table())
def test_every_setting_in_the_table_exists_with_its_default(variable: str, written: str) -> None:
    if variable in API_CLIENT_VARIABLES:
        return  # test_the_api_clients_variables_are_their_options
    name = variable.removeprefix("DXL_").lower()
    assert name in ApiSettings.model_fields, f"README's Configuration table lists {variable}: no such setting"
    field = ApiSettings.model_fields[name]
    if variable in IN_WORDS:
        words, value = IN_WORDS[variable]
        assert (written, field.default) == (words, value)
        return
    assert field.default == _default_as_written(field, written), f"{variable}: README says {written}"


def test_the_services_own_settings_are_the_ones_named() -> None:
    """README names the settings api/settings.py adds to node/settings.py's: each of them, nothing else."""
    section = _text("README.md").split("\n## Configuration\n", 1)[1]
    named = re.search(r"extends it with the HTTP service's own \(([^)]*)\)", section)
    assert named is not None
    patterns = [re.escape(p).replace(r"\*", "[A-Z_]+") for p in re.findall(r"`(DXL_[A-Z_*]+)`", named[1])]
    own = {f"DXL_{name.upper()}" for name in set(ApiSettings.model_fields) - set(Settings.model_fields)}
    assert sorted(v for v in own if not any(re.fullmatch(p, v) for p in patterns)) == []
    assert [p for p in patterns if not any(re.fullmatch(p, v) for v in own)] == []


def _defaults_in_prose() -> list[tuple[str, str, str]]:
    """Every ``DXL_X`` … ``(default V`` or ``V by default`` the documents write of a setting: (document,
    variable, V)."""
    found: set[tuple[str, str, str]] = set()
    value = r"([0-9][0-9,]*(?:\.[0-9]+)?|true|false)"
    pattern = re.compile(
        rf"`(DXL_[A-Z_]+)`[^.;`]{{0,30}}?(?:\bdefault:?\s+`?{value}|\b{value}`?(?: s)? by default)"
    )
    for doc in SETTINGS_DOCUMENTS:
        for variable, *values in pattern.findall(re.sub(r"\s+", " ", _text(doc))):
            if variable.removeprefix("DXL_").lower() in ApiSettings.model_fields:
                found.add((doc, variable, next(v for v in values if v)))
    return sorted(found)


@pytest.mark.parametrize(("document", "variable", "written"), _defaults_in_prose())
def test_every_default_the_documents_state_is_the_settings(
    document: str, variable: str, written: str
) -> None:
    field = ApiSettings.model_fields[variable.removeprefix("DXL_").lower()]
    assert field.default == _default_as_written(field, written.replace(",", "")), f"{document}: {variable}"


def test_the_documents_state_defaults_in_prose() -> None:
    assert len(_defaults_in_prose()) >= 8


def _api_client_commands() -> Iterator[tuple[str, Any]]:
    """Every command with an option read from DXL_API_URL or DXL_TOKEN."""
    stack: list[tuple[str, Any]] = [("dxl", _dxl())]
    while stack:
        path, command = stack.pop()
        if isinstance(command, TyperGroup):
            stack += [(f"{path} {n}", c) for n, c in command.commands.items()]
        elif any(getattr(p, "envvar", None) in API_CLIENT_VARIABLES for p in command.params):
            yield path, command


def test_the_api_clients_variables_are_their_options() -> None:
    """The table's DXL_API_URL and DXL_TOKEN row names the commands that read them: exactly those whose
    --api and --token options fall back on them."""
    row = next(line for line in _text("README.md").splitlines() if line.startswith("| `DXL_API_URL`"))
    named = set(re.findall(r"`dxl ([a-z-]+)`", row))
    clients = dict(_api_client_commands())
    assert {path.split()[1] for path in clients} == named
    for path, command in clients.items():
        envvars = {p.opts[0]: p.envvar for p in command.params if isinstance(p, TyperOption)}
        for variable, option in API_CLIENT_VARIABLES.items():
            assert envvars.get(option) == variable, f"{path} {option}"


def test_every_setting_is_documented() -> None:
    """Each DXL_* setting is named in the documents, so a new one cannot go unexplained."""
    documented = "".join(_text(doc) for doc in SETTINGS_DOCUMENTS)
    missing = sorted(
        f"DXL_{name.upper()}"
        for name in ApiSettings.model_fields
        if not re.search(rf"`DXL_{name.upper()}[`=]", documented)
    )
    assert missing == []


# --- error codes and their statuses ------------------------------------------------------------------------


def _errors_table() -> list[tuple[int, str]]:
    """api/README.md's Errors table: (status, code) for each code a row names."""
    return sorted((status, code) for status, (codes, _) in _errors_rows().items() for code in codes)


def _errors_rows() -> dict[int, tuple[set[str], bool]]:
    """api/README.md's Errors table by status: the codes a row names, and whether it claims them all (a row
    that names only some ends with ``…``)."""
    section = _text("api/README.md").split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[int, tuple[set[str], bool]] = {}
    for line in section.splitlines():
        found = re.match(r"\| (\d{3}) \|.*\| ([^|]*) \|$", line)
        if found:
            rows[int(found[1])] = (set(re.findall(r"`([A-Z][A-Z0-9_]+)`", found[2])), "…" not in found[2])
    return rows


def test_the_errors_table_has_a_row_for_every_status_and_every_code_of_a_whole_row() -> None:
    """Every status the API answers with has a row (500 aside: no input produces one); a row that does not
    end with … names every code of its status."""
    rows = _errors_rows()
    assert sorted({spec.status for spec in ERRORS.values()} - set(rows)) == [500]
    for status, (codes, whole) in rows.items():
        if whole:
            declared = {code for code, spec in ERRORS.items() if spec.status == status}
            assert sorted(declared - codes) == [], f"the {status} row of api/README.md's Errors table"


def _statuses_in_prose() -> list[tuple[str, int, str]]:
    """Every ``409 CODE`` (or ``409 `CODE```) the documents write: a status with the code it answers."""
    return sorted({
        (doc, int(m[1]), m[2])
        for doc in DOCUMENTS
        for m in re.finditer(r"\b([1-5]\d\d) `?([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b", _text(doc))
    })  # fmt: skip


def test_the_documents_name_codes_with_statuses() -> None:
    assert len(_errors_table()) > 30 and len(_statuses_in_prose()) > 20


@pytest.mark.parametrize(("status", "code"), _errors_table())
def test_the_errors_table_is_the_declared_table(status: int, code: str) -> None:
    assert code in ERRORS, f"api/README.md's Errors table names {code}, which api/errors.py does not declare"
    assert ERRORS[code].status == status


@pytest.mark.parametrize(("document", "status", "code"), _statuses_in_prose())
def test_every_status_and_code_the_documents_write_is_declared(document: str, status: int, code: str) -> None:
    assert code in ERRORS, f"{document} names {status} {code}, which api/errors.py does not declare"
    assert ERRORS[code].status == status, f"{document} says {status} {code}; ERRORS: {ERRORS[code].status}"


# --- verdict codes ----------------------------------------------------------------------------------------

#: verifier/MANIFEST.md's tables of verdict codes, by the heading above each, and the enum each documents.
VERDICT_TABLES: dict[str, type[verdict_codes.Code]] = {
    "Verdict statuses": verdict_codes.VerdictStatus,
    "Finding codes": verdict_codes.FindingCode,
    "A receipt's proof against its batch": verdict_codes.ReceiptVerdictStatus,
    "A single delivery on the ledger": verdict_codes.RecordStatus,
    "An inspection on the practice contract": verdict_codes.SampleStatus,
}


def _verdict_tables() -> dict[str, list[tuple[str, str]]]:
    """verifier/MANIFEST.md's Verdicts section: each table's (code, meaning) rows by its heading (up to its
    parenthesis)."""
    section = _text("verifier/MANIFEST.md").split("\n## Verdicts\n", 1)[1].split("\n## ", 1)[0]
    tables: dict[str, list[tuple[str, str]]] = {}
    for part in section.split("\n### ")[1:]:
        heading, _, body = part.partition("\n")
        rows = re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \| (.+?) \|$", body, re.M)
        tables[heading.split(" (", 1)[0]] = rows
    return tables


def test_the_verdict_tables_are_the_declared_codes() -> None:
    """Each table of verifier/MANIFEST.md lists exactly its enum's members, in order, with their meanings."""
    tables = _verdict_tables()
    assert sorted(tables) == sorted(VERDICT_TABLES)
    for heading, enum in VERDICT_TABLES.items():
        assert tables[heading] == [(m.value, m.meaning) for m in enum], heading


def test_the_documents_name_only_declared_verdict_codes() -> None:
    """A status or finding code the README or api/README.md names beside a verdict is a declared one."""
    declared = {m.value for enum in VERDICT_TABLES.values() for m in enum}
    named: set[str] = set()
    for document in ("README.md", "api/README.md"):
        for sentence in re.findall(r"(?:verdict|finding|answers)[^.]*\.", _text(document), re.S):
            for code in re.findall(r"`([A-Z][A-Z_]*_(?:MISMATCH|DIFFERS|RECORDED|ANCHORED|PENDING|REFUSED))`",
                                   sentence):  # fmt: skip
                assert code in declared or code in ERRORS, f"{document} names {code} beside a verdict"
                named.add(code)
    assert {"NOT_RECORDED", "ACK_DIFFERS", "RECEIPT_REFUSED"} <= named


def _console_keys(prefix: str) -> set[str]:
    keys: set[str] = set()
    for strings in sorted((PROJECT_ROOT / "api/console/js/strings").glob("*.js")):
        keys |= set(re.findall(rf'^\s*"{prefix}\.([A-Z][A-Z0-9_]*)":', strings.read_text("utf-8"), re.M))
    return keys


def test_the_consoles_verdict_strings_name_declared_codes() -> None:
    """The console explains a verdict's status and findings by their codes (``verdict.MATCH``,
    ``finding.ROOT_MISMATCH``): each it explains is declared, and it explains every status."""
    assert _console_keys("verdict") == {s.value for s in verdict_codes.VerdictStatus}
    findings = _console_keys("finding")
    assert findings and findings <= {c.value for c in verdict_codes.FindingCode}


#: Codes the console's own client makes (a request that never reached the service), and HTTP methods.
CONSOLE_OWN_CODES = {"UNREACHABLE", "GET", "POST"}


def test_the_console_matches_on_declared_codes_only() -> None:
    """A code the console's pages compare an answer with (``s.presented === "MATCH"``) is a verdict code or an
    error code the service declares, so renaming one there fails here."""
    declared = {m.value for enum in VERDICT_TABLES.values() for m in enum} | set(ERRORS) | CONSOLE_OWN_CODES
    for script in sorted((PROJECT_ROOT / "api/console/js").rglob("*.js")):
        if script.parent.name == "strings":
            continue
        for code in re.findall(r'"([A-Z][A-Z0-9_]{2,})"', script.read_text("utf-8")):
            assert code in declared, f"{script.relative_to(PROJECT_ROOT)} matches on {code}, declared nowhere"


# --- HTTP operations ---------------------------------------------------------------------------------------

#: Paths the service answers outside its OpenAPI document: the console's page, the interactive docs and the
#: document itself.
NOT_IN_OPENAPI = {("GET", "/"), ("GET", "/docs"), ("GET", "/openapi.json")}


def _expand(written: str) -> list[str]:
    """The paths ``written`` stands for: ``/inspections[/{id}]`` the list and the look-up, ``…/a|b`` (or, in a
    table, ``…/a\\|b``) each alternative of the last segment."""
    found: list[str] = []
    written = written.replace("\\|", "|").rstrip(".")
    for path in dict.fromkeys((re.sub(r"\[(.*)\]", "", written), re.sub(r"\[(.*)\]", r"\1", written))):
        head, _, last = path.rpartition("/")
        found += [f"{head}/{alternative}" if head or alternative else "/" for alternative in last.split("|")]
    return found


def _documented_operations() -> list[tuple[str, str, str]]:
    """Every ``METHOD /path`` the documents write: (document, method, path), a path's ``a|b`` alternatives and
    ``[/optional]`` part apart; an id written out (``7``, ``0x<receipt id>``) stands for its parameter."""
    found: set[tuple[str, str, str]] = set()
    for doc in DOCUMENTS:
        text = re.sub(r"<[^>\n]*>", "X", _text(doc))
        for method, written in re.findall(r"\b(GET|POST|PUT|DELETE) (/[^\s`),;:?]*)", text):
            found |= {(doc, method, path) for path in _expand(written)}
    return sorted(found)


@functools.cache
def _served() -> set[tuple[str, str]]:
    """The operations of the service's OpenAPI document, their paths as templates."""
    paths = create_app(connect=False).openapi()["paths"]
    return {(method.upper(), _template(path)) for path, operations in paths.items() for method in operations}


def _template(path: str) -> str:
    return "/".join("{}" if re.fullmatch(r"\{[^}]*\}|\d+|0x\w*", s) else s for s in path.split("/"))


def test_the_documents_name_operations() -> None:
    assert len(_documented_operations()) > 50


@pytest.mark.parametrize(("document", "method", "path"), _documented_operations())
def test_every_operation_a_document_names_is_served(document: str, method: str, path: str) -> None:
    if (method, path) in NOT_IN_OPENAPI:
        return
    assert (method, _template(path)) in _served(), f"{document} names {method} {path}: no such operation"


#: The matrix's columns of principals, as ``x-dxl-roles`` names their roles.
ROLE_COLUMNS = ("department", "auditor", "governor")


def _matrix() -> list[tuple[str, str, frozenset[str], bool]]:
    """api/README.md's authorization matrix: (method, path, the roles it admits, whether it needs no token)
    for every operation a row names; a role is admitted unless its cell says 403, and an operation that needs
    no token admits no role in particular (``x-dxl-roles`` ``[]``)."""
    section = _text("api/README.md").split("The authorization matrix", 1)[1].split("\n\n1. ", 1)[0]
    found: list[tuple[str, str, frozenset[str], bool]] = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        operations, *principals, anonymous = (c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1])
        roles = frozenset(
            r for r, cell in zip(ROLE_COLUMNS, principals, strict=True) if not cell.startswith("403")
        )
        for method, written in re.findall(r"`(GET|POST|PUT|DELETE) ([^`]+)`", operations):
            public = anonymous == "yes"
            found += [(method, path, frozenset() if public else roles, public) for path in _expand(written)]
    return found


def test_the_authorization_matrix_is_every_operations_roles() -> None:
    """Every operation of /openapi.json is in one row of the matrix, with the roles its ``x-dxl-roles`` admits
    (none: no token needed); every operation the matrix names is served."""
    matrix = _matrix()
    rows = {(method, _template(path)): (roles, public) for method, path, roles, public in matrix}
    assert len(rows) == len(matrix), "an operation is in two rows of the matrix"
    paths = create_app(connect=False).openapi()["paths"]
    served = {
        (method.upper(), _template(path)): frozenset(operation["x-dxl-roles"])
        for path, operations in paths.items()
        for method, operation in operations.items()
    }
    assert sorted(set(served) - set(rows)) == [], "operations the matrix leaves out"
    assert sorted(set(rows) - set(served) - {(m, _template(p)) for m, p in NOT_IN_OPENAPI}) == []
    wrong = {op: (rows[op], roles) for op, roles in served.items() if rows[op] != (roles, not roles)}
    assert wrong == {}, "(matrix: roles, public) against x-dxl-roles"


# --- files and tests the documents point to ----------------------------------------------------------------

#: Paths the documents name inside ``DXL_HOME`` (not the repository) without writing ``DXL_HOME/``.
DXL_HOME_PATHS = {"secrets/demo-tokens.json", "node/state.json"}


def _documented_paths() -> list[tuple[str, str, str | None]]:
    """Every repository file the documents name in code or as a link target: (document, path, test), the
    test named after ``::`` if any."""
    found: set[tuple[str, str, str | None]] = set()
    suffixes = "py|sol|json|md|js|sh|toml|yaml|lock|css|html"
    for doc in DOCUMENTS:
        text = _text(doc)
        for span in re.findall(r"`([^`\n]+)`", text) + re.findall(r"\]\(([^)#\s]+)", text):
            for path, test in re.findall(
                rf"(?<![\w/.$-])((?:[\w.-]+/)+[\w.-]+\.(?:{suffixes})|\.ci/run)(?:::(\w+))?", span
            ):
                found.add((doc, path, test or None))
    return sorted(found, key=lambda f: (f[0], f[1], f[2] or ""))


def test_the_documents_name_files() -> None:
    assert len(_documented_paths()) > 50


@pytest.mark.parametrize(("document", "path", "test"), _documented_paths())
def test_every_file_and_test_a_document_names_exists(document: str, path: str, test: str | None) -> None:
    """A path is the repository's, or relative to the document, or (in the README's ledger section) to
    contracts/src/; a test named after it is defined there."""
    if path.startswith("DXL_HOME/") or path in DXL_HOME_PATHS:
        return
    bases = (PROJECT_ROOT, (PROJECT_ROOT / document).parent, PROJECT_ROOT / "contracts" / "src")
    existing = [base / path for base in bases if (base / path).exists()]
    assert existing, f"{document} names {path}: no such file"
    if test is not None:
        assert re.search(rf"^(async )?def {test}\b", existing[0].read_text(encoding="utf-8"), re.M), (
            f"{document} names {path}::{test}: no such test"
        )


# --- make targets ------------------------------------------------------------------------------------------


def _documented_make_targets() -> list[tuple[str, str]]:
    """Every ``make TARGET`` the documents show (in code, after any ``VAR=value`` assignments)."""
    found: set[tuple[str, str]] = set()
    pattern = re.compile(r"(?:^|[\s`(])(?:[A-Z_]+=\S*\s+)*make ([a-z][a-z-]*)")
    for doc in DOCUMENTS:
        for line in _command_lines(_text(doc)):
            found |= {(doc, target) for target in pattern.findall(line)}
    return sorted(found)


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", _text("Makefile"), re.M))


def test_the_documents_name_make_targets() -> None:
    named = {target for _, target in _documented_make_targets()}
    assert named >= {"run", "test", "lint", "reliability", "fuzz", "geth"}


@pytest.mark.parametrize(("document", "target"), _documented_make_targets())
def test_every_make_target_a_document_names_exists(document: str, target: str) -> None:
    assert target in _make_targets(), f"{document} names `make {target}`: the Makefile has no such target"


def test_the_writes_that_ignore_an_idempotency_key_are_the_ones_named() -> None:
    """api/README (Retries) names the POSTs that take no Idempotency-Key: exactly the writes whose operation
    does not declare it."""
    named = re.search(r"the other `POST`s \(([^)]*)\)", _text("api/README.md"))
    assert named is not None
    spans = re.findall(r"`([^`]+)`", named[1])
    paths = create_app(connect=False).openapi()["paths"]
    keyless = {
        path
        for path, operations in paths.items()
        for method, operation in operations.items()
        if method in ("post", "put", "patch", "delete")
        and not any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", []))
    }

    def names(path: str, span: str) -> bool:
        return path == span if span.startswith("/") else path.endswith(f"/{span}")

    assert sorted(p for p in keyless if not any(names(p, s) for s in spans)) == []
    assert [s for s in spans if not any(names(p, s) for p in keyless)] == []


# --- scripts -----------------------------------------------------------------------------------------------


def _documented_scripts() -> list[str]:
    """The repository's Python scripts the documents send a reader to."""
    return sorted({path for _, path, _ in _documented_paths() if re.fullmatch(r"scripts/[\w-]+\.py", path)})


def test_the_documents_name_scripts() -> None:
    assert "scripts/console-screenshots.py" in _documented_scripts()


@pytest.mark.parametrize("script", _documented_scripts())
def test_every_script_a_document_names_explains_itself(script: str) -> None:
    """`--help` answers what to give it (exit 0), not a traceback of arguments it did not get."""
    done = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / script), "--help"], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, "Traceback" in done.stderr) == (0, False), done.stderr
    assert done.stdout.startswith("usage:"), done.stdout
