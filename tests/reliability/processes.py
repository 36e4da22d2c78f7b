"""The processes under attack, each started and stopped by its pid: the embedded node (the real anvil
binary) or the local proof-of-authority network (three geth signers), ``dxl run`` (the API), and the
size-limited filesystem that holds the API's database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from node.anvil import EmbeddedNode, NodeSettings
from node.chain import Failover
from node.errors import DxlError
from node.network import LocalNetwork

DXL = Path(sys.executable).with_name("dxl")
#: A line of the service's chain clients moving to another node (node.chain.FAILOVER_LOG_FORMAT, held to it
#: by tests/test_reliability_verdict.py): the cause and the node now in use.
FAILOVER_LINE = re.compile(r"failover \((\w+)\): node \S+ .*; now using (\S+)")
#: The node ``dxl run`` names once it serves (the summary it prints).
SERVING_LINE = re.compile(r"^\s+node\s+(\S+) \(external\)$", re.MULTILINE)
START_MARK = "=== dxl run (start "


class HarnessError(RuntimeError):
    """A process of the run could not be brought up (the message names its log)."""


class NodeProcess:
    """The embedded node of ``home`` (anvil, state saved every 5 s) on its own port."""

    def __init__(self, home: Path, port: int) -> None:
        self._node = EmbeddedNode(home, NodeSettings(port=port))
        self.rpc_url = f"http://127.0.0.1:{port}"

    @property
    def pid(self) -> int | None:
        return self._node.pid

    @property
    def state_file(self) -> Path:
        return Path(self._node.state_file)

    async def start(self) -> int:
        try:
            await asyncio.to_thread(self._node.start, timeout=120.0)
        except Exception as exc:
            raise HarnessError(f"node did not start: {exc} (log {self._node.log_file})") from exc
        pid = self.pid
        assert pid is not None
        return pid

    async def kill(self) -> int:
        """SIGKILL the anvil process itself (no state save); returns its pid once it is gone and reaped."""
        pid = self.pid
        if pid is None:
            raise HarnessError("no node to kill")
        os.kill(pid, signal.SIGKILL)
        # stop() reaps the child and clears the pidfile; the process is already dead, nothing is saved.
        await asyncio.to_thread(self._node.stop, timeout=10.0)
        return pid

    def pause(self) -> int:
        pid = self.pid
        if pid is None:
            raise HarnessError("no node to pause")
        os.kill(pid, signal.SIGSTOP)
        return pid

    @staticmethod
    def resume(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)

    async def next_state_save(self, interval_s: float) -> float:
        """The monotonic time of the node's next periodic state save, from the moment it last rewrote its
        state file (waits for one rewrite so the phase is measured, not guessed)."""

        def mtime() -> float:
            try:
                return self.state_file.stat().st_mtime
            except FileNotFoundError:
                return 0.0

        before = mtime()
        deadline = time.monotonic() + 3 * interval_s
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            now = mtime()
            if now != before:
                return time.monotonic() + interval_s - (time.time() - now)
        return time.monotonic()

    async def stop(self) -> None:
        await asyncio.to_thread(self._node.stop)

    @property
    def rpc_urls(self) -> list[str]:
        return [self.rpc_url]

    async def ensure_running(self) -> None:
        if self.pid is None:
            await self.start()


class NetworkProcess:
    """The local proof-of-authority network of ``home`` (what ``dxl network up`` runs: node.network), created
    on free ports; ``dxl run --network`` in the same ``DXL_HOME`` finds it running and leaves it running."""

    #: How long a restarted member may take to be peered on one chain with the others again.
    PEER_TIMEOUT_S = 180.0

    def __init__(self, home: Path) -> None:
        self.network = LocalNetwork(home, rpc_port=0)

    @property
    def rpc_url(self) -> str:
        """The first signer's URL: the one the service talks to, and where the chain is counted."""
        return self.network.members()[0].rpc_url

    @property
    def rpc_urls(self) -> list[str]:
        return [m.rpc_url for m in self.network.members()]

    @property
    def members(self) -> int:
        return len(self.network.members())

    def pid(self, index: int) -> int | None:
        return self.network.pid(index)

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self.network.up, timeout=self.PEER_TIMEOUT_S)
        except DxlError as exc:
            raise HarnessError(f"network did not start: {exc} (logs in {self.network.data_dir})") from exc

    async def kill(self, index: int) -> int:
        """SIGKILL member ``index``'s geth (nothing flushed); returns its pid once it is gone."""
        pid = self.pid(index)
        if pid is None:
            raise HarnessError(f"no member node{index} to kill")
        await asyncio.to_thread(self.network.stop_member, index, kill=True)
        return pid

    async def restart(self, index: int) -> float:
        """Start member ``index`` again; returns the seconds until it was peered on one chain with the others.

        Raises:
            HarnessError: it did not start, or was not peered within :attr:`PEER_TIMEOUT_S`.
        """
        began = time.monotonic()
        try:
            await asyncio.to_thread(self.network.start_member, index)
            await asyncio.to_thread(self.network.wait_peered, timeout=self.PEER_TIMEOUT_S)
        except DxlError as exc:
            raise HarnessError(f"node{index}: {exc} (log {self.network.data_dir}/node{index}.log)") from exc
        return time.monotonic() - began

    def index_of(self, rpc_url: str) -> int:
        """The member serving at ``rpc_url`` (the first when none does)."""
        return next((m.index for m in self.network.members() if m.rpc_url == rpc_url), 0)

    async def stall(self, index: int, seconds: float) -> float:
        """Cut member ``index`` off the others for ``seconds`` (it answers, imports nothing and seals at most
        one block of its own: node.network.LocalNetwork.cut_off), then join it back; returns the seconds from
        the join until it was peered on one chain with the others.

        Raises:
            HarnessError: it could not be cut off or joined, or was not peered within :attr:`PEER_TIMEOUT_S`.
        """
        try:
            await asyncio.to_thread(self.network.cut_off, index)
        except DxlError as exc:
            raise HarnessError(f"node{index} could not be cut off: {exc}") from exc
        try:
            await asyncio.sleep(seconds)
        finally:
            began = time.monotonic()
            try:
                # Within 35 s of a dial of its own (a restart just before), geth holds its dial that long.
                await asyncio.to_thread(self.network.join, index, peered=False, timeout=self.PEER_TIMEOUT_S)
                await asyncio.to_thread(self.network.wait_peered, timeout=self.PEER_TIMEOUT_S)
            except DxlError as exc:
                raise HarnessError(f"node{index} did not rejoin: {exc}") from exc
        return time.monotonic() - began

    async def ensure_running(self) -> None:
        for index in range(self.members):
            if self.pid(index) is None:
                await self.restart(index)
        await asyncio.to_thread(self.network.wait_peered, timeout=self.PEER_TIMEOUT_S)

    async def stop(self) -> None:
        await asyncio.to_thread(self.network.down)


@dataclass(frozen=True)
class ApiConfig:
    home: Path
    port: int
    rpc_url: str
    chain_id: int
    database_url: str
    log_file: Path
    #: ``dxl run --network``: the service on the local network's first signer, the others as failover URLs.
    network: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DXL_")}
        return env | {
            "DXL_HOME": str(self.home),
            "DXL_API_PORT": str(self.port),
            "DXL_RPC_URL": self.rpc_url,
            "DXL_CHAIN_ID": str(self.chain_id),
            "DXL_DATABASE_URL": self.database_url,
        }


class ApiProcess:
    """``dxl run`` against the node behind the proxy; its stdout and stderr go to one log file."""

    def __init__(self, config: ApiConfig) -> None:
        self.config = config
        self._proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    async def start(self, *, timeout: float = 600.0) -> float:
        """Start ``dxl run`` and wait until ``/healthz`` says ok; returns the seconds it took."""
        began = time.monotonic()
        with open(self.config.log_file, "ab") as log:
            log.write(f"\n{START_MARK}{self.starts + 1}) ===\n".encode())
            log.flush()
            self._proc = await asyncio.create_subprocess_exec(
                str(DXL), "run", *(["--network"] if self.config.network else []),
                env=self.config.environment(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.starts += 1
        async with httpx.AsyncClient(timeout=5.0) as client:
            while time.monotonic() - began < timeout:
                if self._proc.returncode is not None:
                    raise HarnessError(
                        f"dxl run exited with {self._proc.returncode} (log {self.config.log_file})"
                    )
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    answer = await client.get(f"{self.config.url}/healthz")
                    if answer.status_code == 200 and answer.json().get("status") == "ok":
                        return time.monotonic() - began
                await asyncio.sleep(0.2)
        raise HarnessError(f"dxl run not healthy within {timeout:g} s (log {self.config.log_file})")

    def _log(self) -> str:
        try:
            return self.config.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def failovers(self) -> dict[Failover, int]:
        """How many times the service's chain clients moved to another node, by cause, as its log says (every
        start): ``unreachable`` a dead or hung node, ``stalled`` one that answered, its head standing."""
        return failovers_in(self._log())

    def node_in_use(self) -> str | None:
        """The node the service's ledger client uses now, as its log says: the one named when the present
        process started serving, or the last one it moved to since; None before it served."""
        text = self._log()
        text = text[text.rfind(START_MARK) :]
        named = [(m.start(), m.group(1)) for m in SERVING_LINE.finditer(text)]
        named += [(m.start(), m.group(2)) for m in FAILOVER_LINE.finditer(text)]
        return max(named)[1] if named else None

    async def kill(self) -> int:
        if self._proc is None or self._proc.returncode is not None:
            raise HarnessError("no API to kill")
        pid = self._proc.pid
        os.kill(pid, signal.SIGKILL)
        await self._proc.wait()
        return pid

    async def stop(self) -> None:
        if self._proc is None or self._proc.returncode is not None:
            return
        os.kill(self._proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self._proc.wait(), 30.0)
        except TimeoutError:
            os.kill(self._proc.pid, signal.SIGKILL)
            await self._proc.wait()


class SmallDisk:
    """A tmpfs of a few MiB mounted for the API's database, so that "disk full" is the kernel's ENOSPC on a
    real filesystem (SQLite turns it into SQLITE_FULL): filling it with one preallocated file leaves the
    database no block to grow into; removing the file frees them again. Needs permission to mount (root or
    CAP_SYS_ADMIN); without it the disk-full faults are reported as not injected."""

    FILLER = ".filler"

    def __init__(self, path: Path, size_mib: int) -> None:
        self.path = path
        self.size_mib = size_mib
        self.mounted = False
        self.why_not: str | None = None

    def mount(self) -> bool:
        self.path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_mib}m,mode=0700", "tmpfs", str(self.path)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        self.mounted = done.returncode == 0
        if not self.mounted:
            self.why_not = (done.stderr or done.stdout).strip() or f"mount exited {done.returncode}"
        return self.mounted

    def fill(self) -> int:
        """Takes every free block; returns how many bytes the filler holds."""
        stats = os.statvfs(self.path)
        free = stats.f_bavail * stats.f_frsize
        fd = os.open(self.path / self.FILLER, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            try:
                os.posix_fallocate(fd, 0, free)
            except OSError:
                # The free count moved meanwhile (tmpfs undoes a failed fallocate): take the rest by writing.
                chunk = bytes(1 << 20)
                with contextlib.suppress(OSError):  # ENOSPC: the last block is taken
                    while True:
                        os.write(fd, chunk)
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def drain(self) -> None:
        (self.path / self.FILLER).unlink(missing_ok=True)

    def free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def unmount(self) -> None:
        if not self.mounted:
            return
        self.drain()
        done = subprocess.run(["umount", str(self.path)], capture_output=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)
        self.mounted = False


class PostgresCluster:
    """A private PostgreSQL cluster for the service's database, started and stopped by the script CI uses
    (``scripts/ci-postgres.sh``: the distribution's server, trust on 127.0.0.1 only, a free port). Its
    directory sits directly under the temporary directory, not in the run's work directory: as root the
    server runs as the ``postgres`` user, who cannot enter the work directory (mode 0700)."""

    SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ci-postgres.sh"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _script(self, action: str) -> str:
        done = subprocess.run(
            [str(self.SCRIPT), action], env=os.environ | {"DXL_PG_DIR": str(self.directory)},
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise HarnessError(f"PostgreSQL {action} failed: {(done.stderr or done.stdout).strip()[-400:]}")
        return done.stdout.strip()

    async def start(self) -> str:
        """Initialise and start the cluster; returns its SQLAlchemy URL."""
        return await asyncio.to_thread(self._script, "start")

    def _server(self) -> int:
        try:
            return int((self.directory / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError) as exc:
            raise HarnessError(f"no running PostgreSQL server in {self.directory}: {exc}") from None

    def _stop_all(self) -> list[int]:
        """``SIGSTOP`` of the server, then of every process it started; returns the server's pid first. The
        server first: stopped, it starts no backend between the listing of its children and their signal
        (only the server forks)."""
        server = self._server()
        os.kill(server, signal.SIGSTOP)
        children = [pid for pid in _pids() if _parent(pid) == server]
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        return [server, *children]

    def pause(self) -> list[int]:
        """The server and its backends stopped: connected clients wait, new connections hang."""
        return self._stop_all()

    def resume(self, pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    async def kill(self) -> list[int]:
        """``kill -9`` of the server and of every process it started (backends, writer, checkpointer): a
        crash, not a shutdown; returns the server's pid first, then the others'."""
        # All stopped first (see _stop_all): a backend left running would hold the shared memory the restart
        # needs.
        killed = self._stop_all()
        server = killed[0]
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10.0
        while any(_exists(pid) for pid in killed) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if _exists(server):
            # Dead but not reaped yet (its parent is whatever adopted it): the server's start takes a lock
            # file naming a pid that still exists for a live server and refuses. A machine's process
            # supervisor would have reaped it; the file is what such a crash leaves.
            (self.directory / "data" / "postmaster.pid").unlink(missing_ok=True)
        return killed

    async def restart(self) -> None:
        """Start the killed server again on its data and port (it recovers from its write-ahead log)."""
        await asyncio.to_thread(self._script, "restart")

    async def stop(self, keep_log: Path) -> None:
        """Stop the cluster, keep its server log as ``keep_log`` and remove its files."""
        await asyncio.to_thread(self._script, "stop")
        log = self.directory / "log"
        if log.exists():
            keep_log.write_bytes(log.read_bytes())
        await asyncio.to_thread(shutil.rmtree, self.directory, True)


def failovers_in(log: str) -> dict[Failover, int]:
    """The failovers a service's log records, by cause (every cause named, 0 when none)."""
    counted = dict.fromkeys(Failover, 0)
    for match in FAILOVER_LINE.finditer(log):
        with contextlib.suppress(ValueError):
            counted[Failover(match.group(1))] += 1
    return counted


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _parent(pid: int) -> int | None:
    try:
        # The command name (field 2) may hold spaces and parentheses: the fields after its last ")" are fixed.
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _exists(pid: int) -> bool:
    """True while ``pid`` runs or is dead but not reaped yet (a zombie)."""
    return Path(f"/proc/{pid}").exists()
