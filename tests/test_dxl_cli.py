"""The ``dxl`` front door: what each fast command imports, and a ``dxl --help`` that lists every command.

The import budget is asserted on ``sys.modules`` of a real ``dxl`` process, not on wall time: a shared,
busy machine makes timings flaky, while an import of web3 or typer on these paths is the regression itself
(``dxl bench cli`` measures the times).
"""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
import sqlalchemy.exc
import typer.main

from dxl import payload
from dxl.app import app
from dxl.main import OVERVIEW, PAYLOAD_COMMANDS
from node.anvil import free_port
from node.errors import StorageFullError, storage_full_cause
from tests.cli import dxl
from tests.loopback import serving

#: Packages that cost a large part of a second to import, none of which these commands need.
HEAVY = ("web3", "eth_account", "eth_abi", "eth_utils", "eth_keyfile", "py_ecc", "typer", "pydantic", "rich",
         "fastapi", "sqlalchemy", "httpx", "Crypto", "reportlab")  # fmt: skip

# ``dxl.main.main``, not the console script's ``run``, which ends a payload command with ``os._exit``.
_PROBE = """
import json, sys
args, heavy = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
sys.argv = ["dxl", *args]
from dxl.main import main
code = main(args)
loaded = sorted({m.split(".")[0] for m in sys.modules} & heavy)
print(json.dumps({"code": code, "heavy": loaded}), file=sys.stderr)
"""


def _imports_of(
    *args: str | Path, heavy: tuple[str, ...] = HEAVY, env: dict[str, str] | None = None
) -> tuple[int, list[str]]:
    """Run ``dxl ARGS`` in a fresh interpreter; its exit status and which of ``heavy`` it imported."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps([str(a) for a in args]), json.dumps(heavy)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], report["heavy"]


@pytest.fixture
def committed(tmp_path: Path) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"id": 1}\n{"id": 2}\n')
    assert dxl("commit", path)[0] == 0
    return path


@pytest.mark.parametrize("args", [(), ("--help",), ("commit", "--help"), ("verify", "--help")])
def test_help_imports_nothing_heavy(args: tuple[str, ...]) -> None:
    assert _imports_of(*args) == (0, [])


def test_commit_and_offline_verify_import_nothing_heavy(committed: Path, tmp_path: Path) -> None:
    assert _imports_of("commit", committed, "--out", tmp_path / "again.json") == (0, [])
    assert _imports_of("verify", committed, "--offline") == (0, [])


def test_verify_without_a_deployment_record_imports_nothing_heavy(committed: Path, tmp_path: Path) -> None:
    """No flags, no record in DXL_HOME, no .env naming another: refused (exit 2), without loading the
    settings."""
    env = {**os.environ, "DXL_HOME": str(tmp_path / "empty")}
    assert _imports_of("verify", committed, env=env) == (2, [])


#: What ``dxl commit`` once loaded before it read a byte, and does without: its start-up is what a whole
#: process pays on top of the hashing (``dxl bench commit`` compares it with ``openssl dgst``).
COMMIT_START_UP = ("dataclasses", "inspect", "concurrent", "logging", "pathlib", "shutil", "csv")


def test_commit_loads_only_what_it_needs_before_it_hashes(tmp_path: Path) -> None:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(3 << 20))
    out = tmp_path / "payload.json"
    assert _imports_of("commit", payload, "--out", out, heavy=COMMIT_START_UP) == (0, [])
    assert _imports_of("commit", payload, "--provider-id", "7", "--out", out, heavy=COMMIT_START_UP) == (
        0,
        [],
    )


#: The console script's own ``run``, its ``os._exit`` reporting the cyclic garbage collector's work first.
_GC_PROBE = """
import gc, json, os, sys
starts = []  # each collection while dxl.payload and the command load: had they finished?
def collecting(phase, info):
    if phase == "start" and "dxl.payload" in sys.modules:
        starts.append("verifier.manifest" in sys.modules)
gc.callbacks.append(collecting)
exit_ = os._exit
def report(code):
    print(json.dumps({"code": code, "collections": starts, "enabled": gc.isenabled(),
                      "frozen": gc.get_freeze_count()}), file=sys.stderr)
    exit_(code)
os._exit = report
sys.argv = ["dxl", *json.loads(sys.argv[1])]
from dxl.main import run
run()
"""


@pytest.mark.parametrize("command", ["commit", "verify"])
def test_payload_commands_start_without_collecting_cycles(
    committed: Path, tmp_path: Path, command: str
) -> None:
    """The collector stays off while the command loads its modules (a dozen scans of them cost 1-2 ms of a
    25 ms start), then runs again with them left out of its scans."""
    more = ["--out", str(tmp_path / "m.json")] if command == "commit" else ["--offline"]
    done = subprocess.run(
        [sys.executable, "-c", _GC_PROBE, json.dumps([command, str(committed), *more])],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] == 0
    assert report["enabled"]
    assert all(report["collections"])  # none before the modules were in
    assert report["frozen"] > 1000  # the modules' objects, left out of later scans


def test_unsigned_commit_loads_no_signature_code(committed: Path, tmp_path: Path) -> None:
    """libsecp256k1 is loaded to sign or to recover a signer, not by every commit and verify."""
    out = tmp_path / "again.json"
    assert _imports_of("commit", committed, "--out", out, heavy=("coincurve",)) == (0, [])
    assert _imports_of("verify", committed, "--manifest", out, "--offline", heavy=("coincurve",)) == (0, [])


def test_onchain_verify_imports_nothing_heavy(committed: Path, tmp_path: Path) -> None:
    """Up to the node: the unreachable node is exit 2 after the same imports a reachable one costs."""
    code, heavy = _imports_of(
        "verify", committed, "--rpc", "http://127.0.0.1:9", "--contract", "0x" + "11" * 20
    )
    assert (code, heavy) == (2, [])


def test_a_command_that_acts_through_the_api_loads_its_settings_without_the_service(tmp_path: Path) -> None:
    """Without --api and --token, a command that acts through the API reads them from the settings (a
    ``.env`` file): those settings, not the service's framework, database and chain libraries (0.45 s of
    imports when the settings module took its rate records from the rate-limit middleware's module), nor
    httpx (some 55 ms: the standard library's client sends the command's few requests)."""
    env = {**os.environ, "DXL_HOME": str(tmp_path / "home"), "DXL_API_URL": f"http://127.0.0.1:{free_port()}"}
    env.pop("DXL_TOKEN", None)
    code, heavy = _imports_of(
        "evaluation",
        "period",
        heavy=("fastapi", "starlette", "sqlalchemy", "web3", "eth_account", "httpx"),
        env=env,
    )
    assert (code, heavy) == (2, [])  # 2: the API did not answer


def test_an_api_command_sends_its_token_to_the_address_given_and_follows_no_redirect() -> None:
    """An answer that redirects is the answer: the command says what came and sends nothing to the address
    it names, where the token would have gone with the request."""
    seen: list[tuple[str, str | None]] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        #: Where it sends the client: None, it answers 200.
        location: str | None = None

        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(200 if self.location is None else 307)
            if self.location is not None:
                self.send_header("Location", self.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Recorder) as elsewhere:
        redirecting = type("Redirecting", (Recorder,), {"location": f"{elsewhere}/demands"})
        with serving(redirecting) as api:
            code, _, err = dxl("demand", "list", "--api", api, "--token", "dxl_secret")
    assert code == 2 and "the API answered 307 without JSON" in err, err
    assert seen == [("/demands?open=false", "Bearer dxl_secret")]


def test_an_api_answers_links_are_read_by_relation_a_comma_in_a_query_kept() -> None:
    """RFC 8288's ``Link``: several targets, one header or more; a comma inside a target (a search's text in
    the next page's query) belongs to that target."""
    from email.message import Message

    from dxl.commands.practice import _Answer

    headers = Message()
    headers["Link"] = '</resources?q=a,b&cursor=aDE6MDA>; rel="next", </resources>; rel="first"'
    headers["Link"] = "</demands?limit=1>; rel=last"
    assert _Answer(200, b"", headers).links == {
        "next": {"url": "/resources?q=a,b&cursor=aDE6MDA"},
        "first": {"url": "/resources"},
        "last": {"url": "/demands?limit=1"},
    }
    assert _Answer(200, b"", Message()).links == {}


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that signs itself, and its key: an authority nothing trusts by default."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dxl test API")])
    now = datetime.now(UTC)
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(loopback, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert, pem = folder / "api.crt", folder / "api.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, pem


def test_an_api_command_reaches_an_https_api_through_the_authorities_the_environment_names(
    tmp_path: Path,
) -> None:
    """Over HTTPS the commands check the API's certificate against the system's authorities and certifi's,
    the system's moved by ``SSL_CERT_FILE`` as OpenSSL reads it: a certificate nothing trusts is refused, the
    same one named there is taken."""
    cert, key = _self_signed(tmp_path)

    class EmptyLists(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args: Any) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    with serving(EmptyLists, tls=context) as api:
        command = [sys.executable, "-m", "dxl", "demand", "list", "--api", api, "--token", "dxl_t"]
        refused = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        taken = subprocess.run(
            command, capture_output=True, text=True, check=False, env={**env, "SSL_CERT_FILE": str(cert)}
        )
    assert refused.returncode == 2 and "CERTIFICATE_VERIFY_FAILED" in refused.stderr, refused.stderr
    assert (taken.returncode, taken.stdout) == (0, "no demands\n"), taken.stderr


def test_other_commands_still_run_under_typer() -> None:
    code, heavy = _imports_of("node", "--help")
    assert code == 0 and "typer" in heavy


def test_a_process_builds_the_command_tree_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """typer builds the click command tree from the app on every call of it (20 ms for dxl's): a process that
    runs several commands builds it once."""
    built: list[object] = []
    build = typer.main.get_group

    def counted(app: typer.Typer) -> object:
        built.append(app)
        return build(app)

    monkeypatch.setattr(typer.main, "get_group", counted)
    for _ in range(3):
        assert dxl("token", "--help")[0] == 0
    assert len(built) <= 1


def test_overview_lists_every_command_with_its_own_summary() -> None:
    group = typer.main.get_group(app)
    expected = {
        name: (command.help or "").strip().splitlines()[0] for name, command in group.commands.items()
    }
    expected |= {name: summary for name, (_run, summary) in payload.COMMANDS.items()}
    assert dict(OVERVIEW) == expected
    assert set(payload.COMMANDS) == PAYLOAD_COMMANDS
    code, out, _ = dxl("--help")
    assert code == 0 and all(f"  {name} " in out for name in expected)


def test_unknown_command_and_bad_options_are_usage_errors(committed: Path) -> None:
    assert dxl("no-such-command")[0] == 2
    code, _, err = dxl("commit", committed, "--agreement", "-1")
    assert code == 2 and "must be 0 or more" in err


@pytest.mark.parametrize("command", ["verify", "reconcile"])
def test_a_reader_that_goes_away_ends_the_command_quietly(committed: Path, command: str) -> None:
    """`dxl reconcile DIR --json | head -1`: the closed pipe ends the command with exit 1 and no traceback, as
    click ends the typer commands; the output here is short, so the pipe fails only at the last flush."""
    target = committed if command == "verify" else committed.parent
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "dxl", command, str(target), "--offline", "--json"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (1, "")


def _typer_help_texts() -> list[tuple[str, str]]:
    """(where, text) of every help text typer renders: each command's, each parameter's."""
    texts: list[tuple[str, str]] = []
    # Typer's commands are its own click's (typer._click), so groups are told by their subcommands.
    stack: list[tuple[str, Any]] = [("dxl", typer.main.get_group(app))]
    while stack:
        path, command = stack.pop()
        stack.extend((f"{path} {name}", sub) for name, sub in getattr(command, "commands", {}).items())
        texts += [(path, command.help)] if command.help else []
        texts += [(f"{path} {p.name}", p.help) for p in command.params if getattr(p, "help", None)]
    return texts


def test_help_texts_survive_the_markup() -> None:
    """typer renders help as rich markup, where "[default: DXL_NODE_PORT]" is a tag and vanishes whole: every
    help text must read as written."""
    from rich.errors import MarkupError
    from rich.markup import render

    def survives(text: str) -> bool:
        try:
            return render(text).plain == text
        except MarkupError:
            return False

    assert [where for where, text in _typer_help_texts() if not survives(text)] == []
    code, out, _ = dxl("node", "start", "--help")
    assert code == 0 and "DXL_NODE_PORT" in out


# --- a full disk --------------------------------------------------------------------------------------------

#: Mounts a 1 MiB tmpfs at $1 in a user and mount namespace of its own (no root needed), fills it, then runs
#: the rest of the command line there: every write under $1 meets the kernel's ENOSPC.
_ON_A_FULL_DISK = (
    'mount -t tmpfs -o size=1m tmpfs "$1" && cat /dev/zero > "$1/filler" 2>/dev/null; shift; exec "$@"'
)


def _full_disk_runner(mountpoint: Path) -> list[str]:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no unshare(1) to mount a small tmpfs")
    mountpoint.mkdir()
    probe = subprocess.run(
        [unshare, "--user", "--map-root-user", "--mount", "sh", "-c", _ON_A_FULL_DISK, "sh", str(mountpoint),
         "sh", "-c", 'df --output=avail "$0" | tail -1', str(mountpoint)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if probe.returncode != 0 or probe.stdout.strip() != "0":
        pytest.skip(f"cannot mount a full tmpfs in a user namespace: {probe.stderr.strip() or probe.stdout}")
    return [
        unshare,
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        _ON_A_FULL_DISK,
        "sh",
        str(mountpoint),
    ]


def test_dxl_run_on_a_full_disk_says_so_in_one_line(tmp_path: Path) -> None:
    """`dxl run` with DXL_HOME on a full disk: one line naming it (exit 2), no traceback, no node left."""
    disk = tmp_path / "disk"
    runner = _full_disk_runner(disk)
    home = disk / "home"
    env = {
        **os.environ,
        "DXL_HOME": str(home),
        "DXL_NODE_PORT": str(free_port()),
        "DXL_API_PORT": str(free_port()),
    }
    for name in ("DXL_RPC_URL", "DXL_CHAIN_ID", "DXL_DATABASE_URL"):
        env.pop(name, None)
    done = subprocess.run(
        [*runner, sys.executable, "-m", "dxl", "run"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()] and "Traceback" not in done.stdout + done.stderr
    assert done.stderr.startswith("error: disk full: ") and f"(DXL_HOME is {home})" in done.stderr
    node = subprocess.run(
        [*runner, sys.executable, "-m", "dxl", "node", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert node.returncode == 1 and node.stdout.startswith("not running"), node.stdout + node.stderr


def test_a_full_sqlite_database_is_a_full_disk(tmp_path: Path) -> None:
    """SQLite's "database or disk is full", raised through SQLAlchemy as the API's stores meet it, is a full
    disk (a database held to two pages by max_page_count fills as a full disk would); other errors are not."""
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'small.sqlite3'}")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x BLOB)")
        conn.exec_driver_sql("PRAGMA max_page_count = 2")
        with pytest.raises(sqlalchemy.exc.OperationalError) as full:
            conn.exec_driver_sql("INSERT INTO t VALUES (zeroblob(100000))")
        with pytest.raises(sqlalchemy.exc.OperationalError) as other:
            conn.exec_driver_sql("SELECT * FROM no_such_table")
    cause = storage_full_cause(full.value)
    assert cause is not None and storage_full_cause(other.value) is None
    message = StorageFullError(tmp_path, cause).message
    assert message == (
        "disk full: the API database cannot be written (database or disk is full); "
        f"free space on that disk and try again (DXL_HOME is {tmp_path})"
    )


def test_an_api_that_fails_to_start_raises_its_error(tmp_path: Path) -> None:
    """The API's start-up runs outside uvicorn under `dxl run`: its failure comes back as the error itself,
    which `dxl` says in one line, not as uvicorn's logged traceback and "Application startup failed"."""
    import errno

    from fastapi import FastAPI

    from api.settings import load_api_settings
    from dxl.commands.ledger import _serve

    failure = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "dxl.sqlite3"))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        raise failure
        yield

    settings = load_api_settings(home=tmp_path, api_port=free_port())
    with pytest.raises(OSError) as raised:
        _serve(FastAPI(lifespan=lifespan), settings, threading.Event())
    assert raised.value is failure
    assert StorageFullError(tmp_path, failure).message.startswith(
        f"disk full: cannot write {tmp_path / 'dxl.sqlite3'} (No space left on device); "
    )


def test_a_dotenv_names_dxl_home_for_every_command(tmp_path: Path) -> None:
    """DXL_HOME from a .env file (README, Configuration) is the home of `dxl node`, `dxl network` and the
    deployment record `dxl verify` reads, as of `dxl status`: they read the bare environment before."""
    home = tmp_path / "home"
    (tmp_path / ".env").write_text(f"DXL_HOME={home}\nDXL_NODE_PORT={free_port()}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DXL_")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dxl", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    node = run("node", "status", "--json")
    assert (node.returncode, json.loads(node.stdout)["data_dir"]) == (1, str(home / "node")), node.stderr
    network = run("network", "status")
    assert network.returncode == 1 and f"no network under {home / 'network'}" in network.stdout
    payload = tmp_path / "rows.jsonl"
    payload.write_bytes(b'{"id": 1}\n')
    assert run("commit", str(payload)).returncode == 0
    home.mkdir()
    (home / "deployment.json").write_text("{}")  # a record there is read, so the check is not offline
    verify = run("verify", str(payload))
    assert verify.returncode == 2 and "deployment" in verify.stderr and "NOT CHECKED" not in verify.stdout


def test_the_geth_of_the_local_network_is_a_setting_a_dotenv_names(tmp_path: Path) -> None:
    """DXL_GETH is read with the other settings (a .env file too) and handed to the network, which looked
    the bare environment up itself: named there, a missing executable stops `dxl network up` before any
    member is created, naming it."""
    home, missing = tmp_path / "home", tmp_path / "no-geth"
    (tmp_path / ".env").write_text(f"DXL_HOME={home}\nDXL_GETH={missing}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DXL_")}
    command = [sys.executable, "-m", "dxl", "network", "up", "--rpc-port", "0", "--json"]
    up = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    answer = json.loads(up.stdout)
    assert (up.returncode, answer["error"]) == (2, "TOOLCHAIN_ERROR"), up.stdout + up.stderr
    assert f"geth not found at {missing}" in answer["message"]
    assert not (home / "network").exists()


@pytest.mark.parametrize("text", ["[1, 2]", "[" * 200_000], ids=["not-an-object", "nested-too-deeply"])
def test_inspection_present_of_a_manifest_that_is_not_one_is_a_usage_error(tmp_path: Path, text: str) -> None:
    """The manifest is read before anything is sent: a JSON list, or JSON nested past the parser's recursion,
    is exit 2 naming the file (a traceback before: ``.get`` of a list, a RecursionError or a crash)."""
    from typer.testing import CliRunner

    payload_file, manifest = tmp_path / "payload.csv", tmp_path / "payload.csv.manifest.json"
    payload_file.write_text("id\n1\n")
    manifest.write_text(text)
    result = CliRunner().invoke(app, [
        "inspection", "present", "1", "--payload", str(payload_file), "--manifest", str(manifest),
        "--api", f"http://127.0.0.1:{free_port()}", "--token", "dxl_unused",
    ])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and "cannot read the manifest" in result.output


def test_the_api_commands_read_the_ca_bundle_once_a_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request of the commands that call the API built a TLS context of its own, reading the whole CA
    bundle (~20 ms of CPU) even for a plain-HTTP URL: a list read page by page, the department codes read
    before it, each command run in a process that runs several (the tests run dozens in theirs)."""
    loads: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def counted(context: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        real(context, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    api = f"http://127.0.0.1:{free_port()}"
    for _ in range(3):
        code, _, err = dxl("demand", "list", "--api", api, "--token", "dxl_unused")
        assert code == 2 and f"the API at {api} did not answer" in err
    assert len(loads) <= 1, loads
