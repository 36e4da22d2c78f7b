"""``dxl bench receipts``: receipts per second through HTTP, side by side with one transaction per receipt.

One run, one throw-away ``DXL_HOME``: the embedded node with its product settings (0.25 s blocks), the demo
consortium, and the API served by uvicorn in a process of its own (``--loop uvloop``, the service's HTTP
protocol :data:`api.server.HTTP_PROTOCOL`), so the load generator never shares an interpreter with the
service. Modes, each on a grant of its own:

* ``naive``: one ``recordDelivery`` transaction per receipt, waiting for each, as a plain web3 script does;
* ``individual``: one receipt per ``POST /receipts``, 64 concurrent keep-alive connections;
* ``batched``: ``POST /receipts`` with 1,000 receipts per request on a few connections.

Every mode reports ``receipts_per_s`` (accepted by the service, or mined for naive), time to final (sent →
seen ``final`` through ``POST /receipts/lookup``; sampled: the first receipt of a request, at most
:data:`SAMPLES_PER_S` a second, so that following them does not cost the service more than the load), gas per
receipt (the anchoring transactions' gas over the receipts they anchored) and the peak RSS of node and
service.
The physical references are measured in the same run: the node's raw transaction throughput (plain transfers,
signed and sent in batch, until mined) and SHA-256 leaf hashing of encoded receipts.

The load generator is a few lines of asyncio over raw HTTP/1.1 keep-alive connections: a general HTTP client
costs more CPU per request than the service does, and on two cores it would measure itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from pydantic import SecretStr

from verifier.text import counted

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

    from api.settings import ApiSettings
    from node.endpoint import NodeEndpoint
    from node.provision import ProvisionReport

PASSPHRASE = "dxl-bench-passphrase"
#: Receipts followed to ``final`` per second at most. Every request of the batched mode is followed (a few
#: dozen a second); following every one of the individual mode's would have the service build and serialize
#: a thousand proofs per look-up, on the cores it shares with the load it measures.
SAMPLES_PER_S = 25.0
#: Receipts the batched mode of a full run records at least (it goes on past its seconds until then): memory
#: and the node's state are reported after a million receipts.
FULL_RUN_RECEIPTS = 1_000_000
#: The span over which a mode's slowest rate is reported (:data:`SLOWEST_KEY`): the mean over a run
#: can hide a stall that a minute of faster seconds makes up for, and the target is a rate sustained.
SUSTAINED_WINDOW_S = 10.0
SLOWEST_KEY = f"slowest_{SUSTAINED_WINDOW_S:g}s_receipts_per_s"


@dataclass
class ModeResult:
    receipts: int
    seconds: float
    final_samples: list[float] = field(default_factory=list)
    gas: int = 0
    anchored: int = 0
    peak_rss_mb: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        samples = sorted(self.final_samples)

        def pct(p: float) -> float | None:
            if not samples:
                return None
            return round(samples[min(len(samples) - 1, int(p * len(samples)))], 3)

        return {
            "receipts": self.receipts,
            "seconds": round(self.seconds, 2),
            "receipts_per_s": round(self.receipts / self.seconds, 1) if self.seconds else 0.0,
            "p50_time_to_final_s": pct(0.50),
            "p95_time_to_final_s": pct(0.95),
            "final_samples": len(samples),
            "gas_per_receipt": round(self.gas / self.anchored, 1) if self.anchored else None,
            "peak_rss_mb": self.peak_rss_mb,
        }


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds the process has used so far; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _receipt(grant_id: int, provider: int) -> dict[str, Any]:
    """A receipt under the grant, its id in the provider's namespace (its first 4 bytes), as the service
    requires."""
    raw = os.urandom(60)
    return {"delivery_id": "0x" + provider.to_bytes(4, "big").hex() + raw[:28].hex(), "grant_id": grant_id,
            "commitment": "0x" + raw[28:].hex(), "byte_size": 4096, "record_count": 10}  # fmt: skip


class Connection:
    """One HTTP/1.1 keep-alive connection: write a request, read one response (Content-Length bodies)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, token: str
    ) -> None:
        self.reader, self.writer = reader, writer
        self._head = f"Host: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"

    @classmethod
    async def open(cls, host: str, port: int, token: str) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}", token)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.writer.write(
            f"POST {path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


class FinalWatcher:
    """Follows sampled receipts until ``final`` (one bulk look-up per tick) and records how long each took."""

    def __init__(self, conn: Connection, tick: float = 0.05, per_second: float = SAMPLES_PER_S) -> None:
        self.conn = conn
        self.tick = tick
        self.waiting: dict[str, float] = {}
        self.samples: list[float] = []
        self._gap = 1.0 / per_second
        self._last = float("-inf")

    def watch(self, delivery_id: str, sent_at: float) -> None:
        if sent_at - self._last < self._gap:
            return
        self._last = sent_at
        self.waiting[delivery_id] = sent_at

    async def run(self, stop: asyncio.Event, drain_timeout: float) -> None:
        deadline: float | None = None
        while True:
            if stop.is_set():
                deadline = deadline or time.monotonic() + drain_timeout
                if not self.waiting or time.monotonic() > deadline:
                    return
            ids = list(self.waiting)[:1000]
            if ids:
                status, body = await self.conn.post("/receipts/lookup", orjson.dumps({"delivery_ids": ids}))
                now = time.monotonic()
                if status == 200:
                    for r in orjson.loads(body)["receipts"]:
                        if r["status"] == "final":
                            sent = self.waiting.pop(r["delivery_id"], None)
                            if sent is not None:
                                self.samples.append(now - sent)
            await asyncio.sleep(self.tick)


def slowest_rate(counts: list[tuple[float, int]], window: float) -> float | None:
    """The lowest rate over any span of at least ``window`` seconds between two of ``counts`` (time, receipts
    accepted so far; in time order), each span from one sample to the first at least ``window`` later; None
    if the samples span less than ``window``."""
    rates = []
    j = 0
    for t, n in counts:
        while j < len(counts) and counts[j][0] - t < window:
            j += 1
        if j == len(counts):
            break
        rates.append((counts[j][1] - n) / (counts[j][0] - t))
    return min(rates) if rates else None


async def _load(
    port: int,
    token: str,
    reader_token: str,
    grant_id: int,
    *,
    provider: int,
    clients: int,
    per_request: int,
    seconds: float,
    at_least: int = 0,
) -> tuple[int, float, list[float], list[tuple[float, int]]]:
    """``clients`` connections posting ``per_request`` receipts per request for ``seconds``, and on until
    ``at_least`` receipts were accepted; also the receipts accepted so far, sampled once a second (time
    since the start, count) from the start to the end."""
    host = "127.0.0.1"
    watcher = FinalWatcher(await Connection.open(host, port, reader_token))
    stop = asyncio.Event()
    accepted = 0
    errors: list[str] = []

    async def client() -> None:
        nonlocal accepted
        conn = await Connection.open(host, port, token)
        try:
            while not stop.is_set():
                items = [_receipt(grant_id, provider) for _ in range(per_request)]
                body = orjson.dumps({"receipts": items})
                sent = time.monotonic()
                status, answer = await conn.post("/receipts", body)
                if status != 202:
                    errors.append(f"{status} {answer[:200]!r}")
                    stop.set()
                    return
                accepted += per_request
                watcher.watch(items[0]["delivery_id"], sent)
        finally:
            conn.close()

    counts: list[tuple[float, int]] = []

    async def count() -> None:
        while not stop.is_set():
            counts.append((time.monotonic() - started, accepted))
            await asyncio.sleep(1.0)

    started = time.monotonic()
    watching = asyncio.create_task(watcher.run(stop, drain_timeout=30.0))
    counting = asyncio.create_task(count())
    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await asyncio.sleep(seconds)
    while accepted < at_least and not stop.is_set():
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    counts.append((elapsed, accepted))
    counting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await counting
    await watching
    watcher.conn.close()
    if errors:
        raise RuntimeError(f"the service refused receipts: {errors[0]}")
    return accepted, elapsed, watcher.samples, counts


def _sha256_leaves_per_s(n: int) -> float:
    encoded = [os.urandom(192) for _ in range(1000)]
    sha256 = hashlib.sha256
    started = time.perf_counter()
    for i in range(n):
        sha256(b"\x00" + encoded[i % 1000]).digest()
    return n / (time.perf_counter() - started)


@dataclass
class DemoService:
    """The demo consortium provisioned on a node, and the API serving it in a process of its own."""

    settings: ApiSettings
    report: ProvisionReport
    pid: int
    port: int
    api: httpx.Client
    tokens: dict[str, str]

    def call(self, method: str, path: str, who: str, body: Any = None) -> Any:
        """The JSON answer of ``method path`` as the demo token ``who``; an error answer raises."""
        r = self.api.request(method, path, json=body, headers={"Authorization": f"Bearer {self.tokens[who]}"})
        if r.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text}")
        return r.json()


def bench_settings(**values: Any) -> ApiSettings:
    """The bench service's settings: the values given and the defaults, never the environment nor a ``.env``
    file. Those name the operator's own database, nodes and keys: the throwaway service must not write its
    demo tokens and journal into that database, nor fail over to a production node."""
    from api.settings import ApiSettings

    class BenchSettings(ApiSettings):
        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:  # fmt: skip
            return (init_settings,)  # the environment, the .env file and secrets are left out

    return BenchSettings(**values)


#: The service's settings the bench passes on from its own environment: the knobs a run measures (the batch
#: thresholds, the rate limits). Every other ``DXL_`` variable names the operator's own places (database,
#: nodes, keys, confirmation depth of their network) and is not passed.
TUNABLE = ("DXL_RECEIPT_BATCH_SIZE", "DXL_RECEIPT_BATCH_AGE", "DXL_API_RATE_LIMIT", "DXL_API_RATE_BURST",
           "DXL_API_CONCURRENCY")  # fmt: skip


def service_environment(environ: Mapping[str, str], **values: str) -> dict[str, str]:
    """The bench service process's environment: ``environ`` (the command's, handed down from dxl), of its
    ``DXL_`` variables the :data:`TUNABLE` ones only, and ``values``."""
    own = {k: v for k, v in environ.items() if not k.startswith("DXL_") or k in TUNABLE}
    return {**own, **values}


@contextlib.contextmanager
def demo_service(
    home: Path, endpoint: NodeEndpoint, *, environ: Mapping[str, str], timeout: float
) -> Iterator[DemoService]:
    """Provision the demo consortium in ``home`` on ``endpoint`` and serve the API on a free port (uvicorn in
    its own process, stopped on exit, its environment from ``environ`` by :func:`service_environment`);
    ``timeout`` bounds each HTTP call."""
    from api.demo import ensure_demo_tokens
    from node.anvil import free_port
    from node.provision import setup_ledger

    settings = bench_settings(home=home, rpc_url=endpoint.rpc_url, chain_id=endpoint.chain_id,
                              keystore_passphrase=SecretStr(PASSPHRASE))  # fmt: skip
    report = setup_ledger(endpoint, settings, dev_funding=True).report
    tokens = {k: v for k, v in ensure_demo_tokens(settings).items() if v is not None}
    port = free_port()
    with (
        _api_process(home, endpoint.rpc_url, endpoint.chain_id, port, environ) as pid,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=timeout) as api,
    ):
        yield DemoService(settings, report, pid, port, api, tokens)


@contextlib.contextmanager
def _api_process(
    home: Path, rpc_url: str, chain_id: int, port: int, environ: Mapping[str, str]
) -> Iterator[int]:
    from api.server import CLI_OPTIONS

    env = service_environment(
        environ,
        DXL_HOME=str(home),
        DXL_RPC_URL=rpc_url,
        DXL_CHAIN_ID=str(chain_id),
        DXL_KEYSTORE_PASSPHRASE=PASSPHRASE,
        DXL_AUDIT_FOLLOW_INTERVAL="0",
    )
    log = open(home / "api.log", "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1", "--port", str(port),
         "--loop", "uvloop", *CLI_OPTIONS, "--no-access-log", "--log-level", "warning"],
        env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT,  # cwd: no .env of the operator's is read
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        # One client for the polls: each new one builds a TLS context (~20 ms of CPU) the starting API needs.
        with httpx.Client(timeout=2) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the API exited at start; see {home / 'api.log'}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the API did not start within 120 s")
                time.sleep(0.2)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _anchored_gas(home: Path, client: Any, grant_id: int) -> tuple[int, int, list[int]]:
    """Gas and receipts of every mined anchoring transaction of ``grant_id`` (from the service's journal)."""
    import sqlite3

    conn = sqlite3.connect(home / "dxl.sqlite3")
    try:
        rows = conn.execute(
            "SELECT tx_hash, leaf_count FROM api_receipt_batches WHERE grant_id = ? AND state = 'final'",
            (grant_id,),
        ).fetchall()
    finally:
        conn.close()
    gas = sum(int(client.w3.eth.get_transaction_receipt(tx)["gasUsed"]) for tx, _ in rows)
    return gas, sum(n for _, n in rows), [n for _, n in rows]


def _anchoring_times(home: Path, grant_id: int) -> dict[str, float | None]:
    """Where a receipt's time to final goes inside the service, over every anchored receipt of ``grant_id``
    (from the journal's clocks): journaled → its batch closed (journaled, then sent), and batch closed →
    recorded final (the anchor mined, seen and written down). The rest of a measured time to final is the
    request itself and the look-up that saw it."""
    import sqlite3

    conn = sqlite3.connect(home / "dxl.sqlite3")
    try:
        rows = conn.execute(
            "SELECT b.closed_at - r.accepted_at, b.final_at - b.closed_at FROM api_receipts r "
            "JOIN api_receipt_batches b ON b.id = r.batch_id WHERE r.grant_id = ? AND b.state = 'final'",
            (grant_id,),
        ).fetchall()
    finally:
        conn.close()
    out: dict[str, float | None] = {}
    for name, values in (
        ("journaled_to_closed", [r[0] for r in rows]),
        ("closed_to_final", [r[1] for r in rows]),
    ):
        values.sort()
        for label, p in (("p50", 0.50), ("p95", 0.95)):
            out[f"{label}_{name}_s"] = round(values[int(p * (len(values) - 1))], 3) if values else None
    return out


def run_receipts_benchmark(
    *, quick: bool, environ: Mapping[str, str], seconds: float | None = None, progress: Any = print
) -> dict[str, Any]:
    """Run every mode once on a fresh node and service (its environment from ``environ``, the command's);
    returns the JSON the command writes."""
    from eth_account import Account

    from node.anvil import EmbeddedNode, NodeSettings, free_port
    from node.chain import LedgerClient
    from node.deploy import ledger_client
    from node.keys import KeyStore
    from node.types import Grant

    duration = seconds or (15.0 if quick else 60.0)
    results: dict[str, Any] = {"quick": quick, "duration_s": duration, "cpus": os.cpu_count(),
                               "node_block_time_s": NodeSettings().block_time,
                               "load_average_at_start": list(os.getloadavg())}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="dxl-bench-receipts-") as tmp:
        home = Path(tmp)
        node = EmbeddedNode(home, NodeSettings(port=free_port()))
        with node:
            endpoint = node.endpoint
            progress("provisioning the demo consortium ...")
            with demo_service(home, endpoint, environ=environ, timeout=120) as service:
                settings, api_pid, port, tokens = service.settings, service.pid, service.port, service.tokens
                progress("one agreement PSB → HRSS and a grant per mode ...")
                grants = demo_grants(service.call, 3)
                ledger = ledger_client(endpoint, home, request_timeout=settings.rpc_timeout)
                psb = KeyStore.from_settings(settings).unlock("dept-psb")

                def rss() -> dict[str, float]:
                    return {"node": peak_rss_mb(node.pid or 0), "service": peak_rss_mb(api_pid)}

                progress("physical references ...")
                results["references"] = {
                    "node_raw_tx_per_s": round(
                        _raw_tx_per_s(
                            LedgerClient(endpoint, [], request_timeout=settings.rpc_timeout),
                            300 if quick else 2000,
                        ),
                        1,
                    ),
                    "sha256_leaves_per_s": round(_sha256_leaves_per_s(200_000 if quick else 2_000_000)),
                }

                progress("naive: one recordDelivery transaction per receipt ...")
                results["naive"] = _naive(ledger, psb, grants[0], 10.0 if quick else 30.0, rss).to_json()

                for mode, grant_id, clients, per_request in (
                    ("individual", grants[1], 64, 1),
                    ("batched", grants[2], 4, 1000),
                ):
                    at_least = FULL_RUN_RECEIPTS if mode == "batched" and not quick else 0
                    progress(
                        f"{mode}: {counted(clients, 'connection')}, {per_request} per request, {duration:g} s"
                        + (f" and at least {at_least:,} receipts" if at_least else "")
                        + " ..."
                    )
                    # CPU per receipt is what a run on a shared machine can still compare: rates and times
                    # depend on what else runs, the work each receipt costs much less.
                    cpu_before = (cpu_seconds(api_pid), cpu_seconds(node.pid or 0), _own_cpu_seconds())
                    accepted, elapsed, samples, counts = asyncio.run(
                        _load(port, tokens["demo-psb"], tokens["demo-hrss"], grant_id,
                              provider=Grant.read(ledger, grant_id).provider, clients=clients,
                              per_request=per_request, seconds=duration, at_least=at_least)
                    )  # fmt: skip
                    gas, anchored, sizes = _anchored_gas(home, ledger, grant_id)
                    result = ModeResult(accepted, elapsed, samples, gas, anchored, rss())
                    mean_batch = round(statistics.mean(sizes), 1) if sizes else None
                    cpu_after = (cpu_seconds(api_pid), cpu_seconds(node.pid or 0), _own_cpu_seconds())
                    cpu_ms = {
                        who: round((after - before) * 1e6 / accepted, 1) if accepted else None
                        for who, before, after in zip(
                            ("service", "node", "load_generator"), cpu_before, cpu_after, strict=True
                        )
                    }
                    slowest = slowest_rate(counts, SUSTAINED_WINDOW_S)
                    results[mode] = {**result.to_json(),
                                     SLOWEST_KEY: None if slowest is None else round(slowest, 1),
                                     "batches": len(sizes), "mean_batch": mean_batch,
                                     "cpu_ms_per_1000_receipts": cpu_ms,
                                     "anchoring": _anchoring_times(home, grant_id)}  # fmt: skip
            results["node_state_mb"] = round(_state_size(home) / 2**20, 1)
    batched, naive = results["batched"], results["naive"]
    results["batched_vs_naive"] = round(batched["receipts_per_s"] / naive["receipts_per_s"], 1) if naive[
        "receipts_per_s"] else None  # fmt: skip
    results["load_average_at_end"] = list(os.getloadavg())
    _ = Account
    return results


def _state_size(home: Path) -> int:
    return sum(p.stat().st_size for p in (home / "node").glob("*state*") if p.is_file())


def demo_grants(call: Any, n: int) -> list[int]:
    def b32() -> str:
        return "0x" + os.urandom(32).hex()

    now = int(time.time())
    resource = call(
        "POST",
        "/resources",
        "demo-psb",
        {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "conditional", "sensitivity": 2},
    )
    req = call(
        "POST",
        "/requests",
        "demo-hrss",
        {
            "resource_id": resource["record"]["id"],
            "purpose": "receipts benchmark",
            "scope_hash": b32(),
            "terms_hash": b32(),
            "valid_from": now - 3600,
            "valid_until": now + 30 * 86400,
        },
    )
    call("POST", f"/requests/{req['record']['id']}/approve", "demo-psb")
    call("POST", f"/requests/{req['record']['id']}/signatures", "demo-hrss", {})
    agreement = call("POST", f"/requests/{req['record']['id']}/signatures", "demo-psb", {})["agreement"]
    return [
        call("POST", "/grants", "demo-psb", {"agreement_id": agreement["id"],
                                             "expires_at": agreement["valid_until"]})["record"]["id"]
        for _ in range(n)
    ]  # fmt: skip


def _raw_tx_per_s(client: Any, count: int) -> float:
    from eth_account import Account

    from node.provision import ANVIL_DEV_KEY

    funder = Account.from_key(ANVIL_DEV_KEY)
    sender, sink = Account.create(), Account.create()
    client.transfer(funder, sender.address, 10**18)
    started = time.perf_counter()
    pending = [client.submit(sender, client.build(sender.address, "", to=sink.address, gas=21_000))
               for _ in range(count)]  # fmt: skip
    client.wait_all(pending, timeout=max(60.0, count / 10))
    return count / (time.perf_counter() - started)


def _naive(ledger: Any, account: Any, grant_id: int, seconds: float, rss: Any) -> ModeResult:
    from node.types import Grant, new_delivery_id

    provider = Grant.read(ledger, grant_id).provider  # delivery ids live in their provider's namespace
    samples: list[float] = []
    gas = 0
    count = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        sent = time.monotonic()
        result = ledger.transact(
            account, "recordDelivery", new_delivery_id(provider), grant_id, os.urandom(32), 1, 4096, 10
        )
        samples.append(time.monotonic() - sent)
        gas += result.gas_used
        count += 1
    return ModeResult(count, time.monotonic() - started, samples, gas, count, rss())


def table(results: dict[str, Any]) -> str:
    """The side-by-side table the README quotes."""
    head = (f"{'mode':<11} {'receipts/s':>11} {'p50 final s':>12} {'p95 final s':>12} {'gas/receipt':>12} "
            f"{'RSS node MB':>12} {'RSS service MB':>15}")  # fmt: skip
    lines = [head, "-" * len(head)]
    for mode in ("naive", "individual", "batched"):
        r = results[mode]
        lines.append(
            f"{mode:<11} {r['receipts_per_s']:>11,.1f} {_f(r['p50_time_to_final_s']):>12} "
            f"{_f(r['p95_time_to_final_s']):>12} {_f(r['gas_per_receipt']):>12} "
            f"{r['peak_rss_mb'].get('node', 0):>12} {r['peak_rss_mb'].get('service', 0):>15}"
        )
    for mode in ("individual", "batched"):
        slowest = results[mode].get(SLOWEST_KEY)
        rate = "run shorter than that" if slowest is None else f"{slowest:,} receipts/s"
        lines.append(f"{mode} slowest {SUSTAINED_WINDOW_S:g} s: {rate}")
        cpu = results[mode].get("cpu_ms_per_1000_receipts")
        if cpu:
            lines.append(f"{mode} CPU per 1,000 receipts: service {_f(cpu['service'])} ms, node "
                         f"{_f(cpu['node'])} ms, load generator {_f(cpu['load_generator'])} ms")  # fmt: skip
        t = results[mode].get("anchoring")
        if t:
            lines.append(f"{mode} p50/p95 journaled → batch closed {_f(t['p50_journaled_to_closed_s'])}/"
                         f"{_f(t['p95_journaled_to_closed_s'])} s, closed → final "
                         f"{_f(t['p50_closed_to_final_s'])}/{_f(t['p95_closed_to_final_s'])} s")  # fmt: skip
    ref = results["references"]
    lines.append(f"references: {results.get('node_block_time_s', '-')} s blocks; node raw "
                 f"{ref['node_raw_tx_per_s']:,} tx/s (plain transfers, mined); "
                 f"SHA-256 {ref['sha256_leaves_per_s']:,} receipt leaves/s; batched/naive "
                 f"{results['batched_vs_naive']}x")  # fmt: skip
    return "\n".join(lines)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:,}"


def write(results: dict[str, Any], out: Path | None) -> None:
    if out is not None:
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
