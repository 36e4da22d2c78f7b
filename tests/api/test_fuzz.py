"""The OpenAPI document is true: schemathesis (the pinned CLI, ``schemathesis.toml`` at the project root)
generates valid and invalid requests for every operation from /openapi.json and runs every check it has
(server errors, declared status codes, content types and headers, response schemas, valid data accepted,
invalid data rejected, missing auth, unsupported methods and their ``Allow``), once per role's token.

The stateful phase walks the document's links (``api.openapi.ANSWERS``) from one answer to the operations it
leads to, up to 40 steps a scenario (``schemathesis.toml``): a resource registered, read, amended and
requested, a request decided, terms read, a grant's deliveries acknowledged or disputed. Each run that
authenticates must follow some link.

``make test`` keeps it short: few examples per operation (``DXL_FUZZ_EXAMPLES``, default 3), every phase but
coverage for a department's token (the role with the most to do) and only the fuzzing phase for the auditor's
and a governor's, on the operations their role is admitted to (``SHORT_RUN_ROLES``: methods and malformed
input are refused before roles are looked at, valid requests to other roles' operations 403; their walks,
some 2 s each, are left to ``make fuzz``). ``make fuzz`` (``DXL_FUZZ_FULL=1``, more examples) runs every
phase for every role, and for the principals a short run leaves out: the provider of the module's exchange,
no token at all, and a department that governance suspended with an exchange of its own. ``DXL_FUZZ_SEED``
draws other examples than the suite's fixed seed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from node.anvil import EmbeddedNode
from node.paths import PROJECT_ROOT
from tests.api.api_helpers import (
    ApiEnv,
    anchored_batch,
    api_home,
    delivery_between,
    govern,
    make_settings,
    ok,
    served,
)
from tests.postgres import URL as POSTGRES_URL
from tests.postgres import schema_url

EXAMPLES = int(os.environ.get("DXL_FUZZ_EXAMPLES", "3"))
FULL = os.environ.get("DXL_FUZZ_FULL") == "1"
SEED = os.environ.get("DXL_FUZZ_SEED", "734117")
ALL_PHASES = "examples,coverage,fuzzing,stateful"
#: The phases a short run gives the department: all but coverage, whose boundary values and undeclared
#: methods for every operation (3,948 of the run's 4,353 requests, 29 of its 39 s) ``make fuzz`` sends;
#: test_api_contract holds every path's undeclared methods to 405 and ``Allow`` in a fraction of that.
DEPARTMENT_PHASES = "examples,fuzzing,stateful"
#: One schemathesis worker: with two, two Hypothesis tests build and draw their strategies at once in threads
#: of one process, which Hypothesis does not promise to be safe (its stated thread-safety policy). Both
#: threads describe the header strategy's filter lambda at the same moment (schemathesis's header_values,
#: through hypothesis.internal.lambda_sources, which reads sources through the standard library's linecache,
#: not thread-safe either), and a run under load failed once with a KeyError raised there: a FlakyFailure on
#: POST /resources/import. One worker costs nothing here: 178 s for the three runs against 204 s with two,
#: one after the other at load 15-18.
WORKERS = "1"
#: The phases a short run gives the roles other than the department.
FUZZING_PHASE = "fuzzing"
#: The role each principal of a short run acts in (``x-dxl-roles``): the auditor's and a governor's runs send
#: only the operations their role is admitted to. The others refuse them the same way for every role: a
#: malformed request before roles are looked at (the department's run sends those), a valid one 403 FORBIDDEN
#: (tests/api/test_authorization.py's matrix, every route for every role). The auditor is admitted to 14 of
#: the document's 67 operations. ``make fuzz`` sends every operation for every principal.
SHORT_RUN_ROLES = {"auditor": "auditor", "governor-1": "governor"}
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
#: Idempotency keys as a client sends them (one per request): see the module.
HOOKS = Path(__file__).with_name("fuzz_hooks.py")


#: The service's databases the runs fuzz: SQLite, and in a full run PostgreSQL too where
#: ``DXL_TEST_POSTGRES_URL`` names a server (scripts/ci-postgres.sh starts one): every run again, on a service
#: whose database is a schema of its own there.
DATABASES: list[Any] = ["sqlite"]
if FULL and POSTGRES_URL:
    DATABASES.append(pytest.param("postgresql", marks=pytest.mark.postgres))


@pytest.fixture(scope="module", params=DATABASES)
def api_env(
    embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ApiEnv]:
    """The module's service, on each of :data:`DATABASES`. A full run's anonymous principal fails
    authentication on every request, by the thousand from one address: the failed-authentication limit
    (``api_auth_failure_burst``) answered all but its first thousand 429 before they reached a route, so the
    full run lifts it; the limit has its own tests (tests/api/test_rate_limits.py)."""
    settings = make_settings(api_home(tmp_path_factory, "api-home"), embedded_node)
    if FULL:
        settings = settings.model_copy(update={"api_auth_failure_burst": 10**9})
    with schema_url("api_fuzz") if request.param == "postgresql" else nullcontext(None) as database:
        if database is not None:
            settings = settings.model_copy(update={"database_url": database})
        with served(settings, embedded_node) as env:
            yield env


@pytest.fixture(scope="module")
def exchange(api_env: ApiEnv) -> list[str]:
    """Records in the ledger, so ids the fuzzer tries (small integers: 1, a bound, and in a run that steers
    them the deployment's, ``fuzz_hooks.py``) find them and reach the checks and the writes behind the
    look-ups: an exchange the department whose token runs every phase (PSB) provides, first, so that the
    request, agreement and grant numbered 1 are its own to decide, suspend, revoke and deliver under; one it
    consumes; a receipt it anchored as provider; a demand addressed to it. The ids of the deliveries made."""
    provided = delivery_between(api_env, "psb", "hrss")
    consumed = delivery_between(api_env, "hrss", "psb")
    _, receipts = anchored_batch(api_env, 1, provided["grant_id"])
    document = {"title": "Household registration", "purpose": "Residence permit review",
                "legal_basis": "Residence Permit Regulation, art. 12"}  # fmt: skip
    due = api_env.setup.client.next_block_time() + 30 * 86400
    demand = {"document": document, "addressee": "PSB", "due_by": due}
    ok(api_env.call("POST", "/demands", "hrss", json=demand), 201)
    ok(api_env.call("POST", "/audit/index", "auditor"))
    return [provided["delivery_id"], consumed["delivery_id"], receipts[0]["delivery_id"]]


@pytest.fixture(scope="module")
def unicode_tables() -> tuple[Path, Path]:
    """Hypothesis's Unicode tables (characters by category, and by codec) and its scratch folder: those of
    this test process's own Hypothesis (the project's ``.hypothesis``). Each run has a fresh working
    directory, so a fresh ``.hypothesis`` (no example replayed from another run), and built the tables again
    from every code point, some 7 s of CPU a run; sharing them with the module's runs alone still built them
    once a ``make test``, though the property tests had them already. The tables depend only on the Python's
    Unicode version and are written atomically, by a rename from the scratch folder (on the same file
    system)."""
    from hypothesis.configuration import storage_directory

    tables, scratch = storage_directory("unicode_data"), storage_directory("tmp")
    tables.create_if_missing()
    scratch.create_if_missing()
    return tables.path, scratch.path


@pytest.fixture(scope="module")
def suspended(api_env: ApiEnv, exchange: list[str]) -> Iterator[str]:
    """CIVIL, provider of an exchange with SAMR, suspended by governance: its token still authenticates, and
    every write it tries is refused (a provider's withdrawals of access excepted). Reinstated after."""
    exchange.append(delivery_between(api_env, "civil", "samr")["delivery_id"])
    civil = api_env.departments["CIVIL"]
    ok(govern(api_env, {"action": "suspend_department", "department_id": civil}))
    ok(api_env.call("POST", "/audit/index", "auditor"))
    yield "civil"
    ok(govern(api_env, {"action": "reinstate_department", "department_id": civil}))


# The principal each run acts as (a demo token's name after "demo-"; None: no token) and the phases a short
# run gives it. The provider, the anonymous caller and the suspended department run under ``make fuzz`` only.
ROLES: list[tuple[str | None, str]] = [
    ("psb", DEPARTMENT_PHASES), ("auditor", FUZZING_PHASE), ("governor-1", FUZZING_PHASE)
]  # fmt: skip
if FULL:
    ROLES += [("hrss", ALL_PHASES), (None, ALL_PHASES), ("suspended", ALL_PHASES)]


#: Writes a department's run with every phase gets a 2xx for at least once with valid data (the document's
#: schemas and examples, the module's records, fuzz_hooks.py): before those, its valid requests to each were
#: refused nine times in ten or more (POST /requests and POST /demands: every one).
REACHED_WRITES = ("POST /resources", "PUT /resources/{resource_id}", "POST /resources/import",
                  "POST /requests", "POST /demands")  # fmt: skip
#: Those a short run reaches: a valid POST /requests names another department's resource and fields its
#: catalog lists, which only the coverage phase's boundary cases hit (the tests of tests/api post many).
REACHED_WRITES_SHORT = tuple(w for w in REACHED_WRITES if w != "POST /requests")


def succeeded(tally: dict[str, dict[str, dict[str, dict[str, int]]]], operation: str) -> bool:
    """Whether a valid request to ``operation`` was answered 2xx in some phase."""
    return any(
        answer.startswith("2")
        for operations in tally.values()
        for answer in operations.get(operation, {}).get("positive", {})
    )


def success_report(tally: dict[str, dict[str, dict[str, dict[str, int]]]]) -> str:
    """Per operation, how many of the valid requests a run sent (every phase) were answered 2xx, and the
    refusals the others met most (``status code field``), from the counts of ``fuzz_hooks.py``."""
    answers: dict[str, Counter[str]] = {}
    for operations in tally.values():
        for operation, modes in operations.items():
            answers.setdefault(operation, Counter()).update(modes.get("positive", {}))
    lines = []
    for operation in sorted(answers, key=lambda label: label.partition(" ")[::-1]):
        counts = answers[operation]
        sent = sum(counts.values())
        successes = sum(n for answer, n in counts.items() if answer.startswith("2"))
        refused = ", ".join(
            f"{answer} x{n}" for answer, n in counts.most_common() if not answer.startswith("2")
        )
        lines.append(f"{operation}: {successes}/{sent} 2xx" + (f"; {refused}" if refused else ""))
    return "\n".join(lines)


# The three runs are not an xdist group: a group held them on one worker, 98 s one after the other (59 s,
# 25 s, 13 s at load 6-9), the longest chain of the suite that three workers could not split. A worker that
# takes one serves and deploys for it (the module's fixtures, some 2 s); one that takes two shares them.
@pytest.mark.parametrize(("role", "phases"), ROLES, ids=[str(role) for role, _ in ROLES])
def test_schemathesis_finds_no_failure(
    api_env: ApiEnv,
    exchange: list[str],
    unicode_tables: tuple[Path, Path],
    role: str | None,
    phases: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    if role == "suspended":
        role = request.getfixturevalue("suspended")
    token = [] if role is None else ["--header", f"Authorization: Bearer {api_env.tokens['demo-' + role]}"]
    admitted = [] if FULL or role not in SHORT_RUN_ROLES else [
        f"--include-name={method.upper()} {path}"
        for path, operations in ok(api_env.client.get("/openapi.json"))["paths"].items()
        for method, operation in operations.items()
        if SHORT_RUN_ROLES[role] in operation["x-dxl-roles"]
    ]  # fmt: skip
    (tmp_path / ".hypothesis").mkdir()
    for name, shared in zip(("unicode_data", "tmp"), unicode_tables, strict=True):
        (tmp_path / ".hypothesis" / name).symlink_to(shared, target_is_directory=True)
    command = [
        str(SCHEMATHESIS), "--config-file", str(PROJECT_ROOT / "schemathesis.toml"), "run",
        f"{api_env.url}/openapi.json", "--checks", "all", "--max-examples", str(EXAMPLES),
        "--seed", SEED, "--workers", WORKERS, "--phases", ALL_PHASES if FULL else phases, *token, *admitted,
        "--report", "junit", "--report-junit-path", str(tmp_path / "junit.xml"), "--output-truncate", "true",
    ]  # fmt: skip
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=3600 if FULL else 300,
        check=False,
        cwd=tmp_path,
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": str(HOOKS),
            "DXL_FUZZ_TALLY": str(tmp_path / "tally.json"),
            # Fuzzed ids steered to the deployment's records (fuzz_hooks.py).
            "DXL_FUZZ_KNOWN": json.dumps({"delivery_ids": exchange}),
            # And checks that a refused write recorded nothing in the service's database (fuzz_hooks.py).
            **(
                {
                    "DXL_FUZZ_DATABASE": api_env.settings.effective_database_url,
                    "DXL_FUZZ_CHECKED": str(tmp_path / "checked"),
                }
                if FULL
                else {}
            ),
        },
    )
    output = done.stdout + done.stderr
    # Whole, beside the report: a long run's failures outgrow the assertion's message.
    (tmp_path / "schemathesis.out").write_text(output, encoding="utf-8")
    # The failures section first: request bodies in its curl lines can be long.
    failures = output[output.find("== FAILURES ==") :] if "== FAILURES ==" in output else output
    assert done.returncode == 0, failures[:20000]
    # Not vacuous: the run reached every operation it was given (every one, or the role's) and sent requests.
    assert (tmp_path / "junit.xml").is_file(), output[-2000:]
    junit = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    if admitted:
        assert junit.count("<testcase") == len(admitted), output[-2000:]
    else:
        assert junit.count("<testcase") > 30, output[-2000:]
    # And the stateful phase walked: it followed links ("API Links: N covered / ..."), which it does only from
    # an answer that holds a record, so not for a caller every operation refuses.
    if "stateful" in (ALL_PHASES if FULL else phases) and role is not None:
        covered = re.search(r"API Links:\s+(\d+) covered", output)
        assert covered is not None and int(covered.group(1)) > 0, output[-3000:]
    # How far valid requests got, by operation (-rP or schemathesis.out shows it).
    tally = json.loads((tmp_path / "tally.json").read_text(encoding="utf-8"))
    reached = success_report(tally)
    print(reached)
    (tmp_path / "schemathesis.out").write_text(output + "\n" + reached, encoding="utf-8")
    # And its valid writes reached the ledger: no 5xx means something only where the routes ran.
    if role == "psb" and "stateful" in (ALL_PHASES if FULL else phases):
        writes = REACHED_WRITES if FULL else REACHED_WRITES_SHORT
        assert [w for w in writes if not succeeded(tally, w)] == [], reached
    # A full run checked refused writes against the service's database (every principal has some refused).
    if FULL:
        assert int((tmp_path / "checked").read_text(encoding="utf-8")) > 0
