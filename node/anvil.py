"""The embedded development chain: the real anvil binary, run directly, with bounded memory and durable state.

The npm package's ``anvil`` command is a Node wrapper that spawns the binary; we run the binary itself
(``node_modules/@foundry-rs/anvil-<platform>/bin/anvil``), so the pid we signal is the process holding the
chain.

Settings and why (anvil 1.7.1; measured with ``scripts/measure_node_memory.py``, guarded by
``tests/node/test_anvil.py::test_memory_stays_bounded``):

* Interval mining, one block every 0.25 s while transactions wait (``DEFAULT_BLOCK_TIME_S``; one a second
  when none do), mined by :mod:`node.statekeeper` (anvil runs with ``--no-mining``). Memory grows per block,
  not per transaction: 12,000 storage-writing transactions auto-mined (one block each) took anvil to 520 MiB
  RSS and rising (measured before: past 20 GB and stalled on a longer run), while the same load with 1 s
  blocks peaked at 150-160 MiB. The block time is most of a receipt's time to final (``dxl bench receipts``,
  see the README's *Receipts at volume*): a receipt waits up to a block for its anchor to be mined.
* ``--prune-history 64`` keeps at most 64 historical states in memory (for ``eth_call`` at past blocks) and
  disables anvil's on-disk state cache (``--max-persisted-states`` becomes 0). It keeps blocks, transactions
  and receipts, so ``eth_getLogs`` over the whole chain works, also after a restart (tested). With
  auto-mining it cut RSS at 3,000 transactions from 135 to 84 MiB; with 1 s blocks the difference is within
  noise (161 vs 148 MiB at 12,000), it bounds the state snapshots of a node left running for days.
  ``--transaction-block-keeper`` is NOT used: it forgets the transactions and receipts of old blocks, which
  the indexer needs.
* ``--state FILE``, saved every 5 s: the whole chain (accounts, blocks, transactions, receipts) is rewritten
  to FILE every 5 s and on graceful stop (SIGTERM/SIGINT; a test stops long before the interval and finds its
  transactions after restart). A hard kill loses at most the last 5 s (plus the save under way). The
  periodic saves are made by :mod:`node.statekeeper`, the small process beside anvil that mines its blocks
  and dumps the chain between two of them, because anvil's own ``--state-interval`` save is no snapshot: a
  block mined during it is in the saved accounts but not in the saved blocks (only auto-mining test nodes
  still use it); the keeper is stopped before anvil, so nothing is mined during the save at SIGTERM either.
  The save interval is its own setting, not tied to the block time. The file is rewritten whole each time
  and grows with the chain (about 1.5 KB per block, empty blocks included, i.e. ~130 MB per day of an idle
  node's one block a second, plus about 2.5 KB per transaction: 30 MB after 12,000), which is why this node
  is for development and tests; production runs on a Besu network reached by URL
  (:class:`~node.endpoint.NodeEndpoint`).
* Gas is free, as on a permissioned Besu network with ``--min-gas-price=0``: ``--base-fee 0 --gas-price 0
  --no-priority-fee``. Accounts need no funding: zero-fee transactions from empty accounts are mined (tested).
* ``--gas-limit 100000000`` per block: room for ~2,000 ledger writes (or ~800 receipt anchors) per block on
  a private chain.
* ``--hardfork cancun`` matches the compiler's ``evmVersion`` and what Besu QBFT networks run.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType

from node.endpoint import NodeEndpoint, fetch_chain_id
from node.errors import ConfigurationError, NodeError, ToolchainError
from node.paths import NODE_MODULES

#: The chain id of every dxl development chain (private range, not registered on chainlist).
DXL_CHAIN_ID = 734_117
DEFAULT_PORT = 8545
DEFAULT_BLOCK_TIME_S = 0.25
DEFAULT_STATE_INTERVAL_S = 5
DEFAULT_GAS_LIMIT = 100_000_000
#: In-memory historical states kept for ``eth_call`` at past blocks; bounds memory (see module docstring).
DEFAULT_PRUNE_HISTORY = 64
HOST = "127.0.0.1"


class NodeAlreadyRunningError(NodeError):
    """Thrown when a node already runs on the data directory we were asked to start on."""

    code = "NODE_ALREADY_RUNNING"

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        self.data_dir, self.pid = data_dir, pid
        who = f"pid {pid}" if pid else "another process"
        super().__init__(f"a node already runs on {data_dir} ({who}); stop it first with `dxl node stop`")


def anvil_binary() -> Path:
    """The real anvil executable from ``node_modules``.

    Raises:
        ToolchainError: not installed for this platform (run ``make setup``).
    """
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(
        platform.system(), platform.system()
    )
    machine = {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine(), platform.machine()
    )
    path = NODE_MODULES / "@foundry-rs" / f"anvil-{system}-{machine}" / "bin" / "anvil"
    if not os.access(path, os.X_OK):
        raise ToolchainError(
            f"anvil binary not found at {path}: run `make setup` to install the npm toolchain"
        )
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class NodeSettings:
    """How the embedded node runs. ``block_time=None`` auto-mines one block per transaction (tests only)."""

    port: int = DEFAULT_PORT
    chain_id: int = DXL_CHAIN_ID
    block_time: float | None = DEFAULT_BLOCK_TIME_S
    state_interval: int = DEFAULT_STATE_INTERVAL_S
    gas_limit: int = DEFAULT_GAS_LIMIT
    prune_history: int | None = DEFAULT_PRUNE_HISTORY
    extra_args: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"port must be 1..65535, got {self.port}")
        if self.chain_id <= 0:
            raise ConfigurationError(f"chain id must be positive, got {self.chain_id}")
        if self.block_time is not None and self.block_time <= 0:
            raise ConfigurationError(f"block time must be positive seconds or None, got {self.block_time}")
        if self.state_interval <= 0:
            raise ConfigurationError(f"state interval must be positive seconds, got {self.state_interval}")

    def arguments(self, state_file: Path) -> list[str]:
        args = [
            "--host", HOST,
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--hardfork", "cancun",
            "--gas-limit", str(self.gas_limit),
            "--base-fee", "0",
            "--gas-price", "0",
            "--no-priority-fee",
            # Arrival order among equal fees (all are zero here): the API's journal re-sends lost blocks in
            # their first order and relies on the node mining them so (api/journal.py).
            "--order", "fifo",
            "--state", str(state_file),
        ]  # fmt: skip
        if self.block_time is None:
            args += ["--state-interval", str(self.state_interval)]
        else:
            args += ["--no-mining"]  # the state keeper mines (node.statekeeper)
        if self.prune_history is not None:
            args += ["--prune-history", str(self.prune_history)]
        return [*args, *self.extra_args]


@dataclass(frozen=True)
class NodeStatus:
    running: bool
    pid: int | None
    rpc_url: str | None
    chain_id: int | None
    data_dir: Path


def _terminate_with_parent() -> None:
    # Runs in the child between fork and exec: PR_SET_PDEATHSIG (1) = SIGTERM when the parent exits.
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


@dataclass(frozen=True)
class _PidRecord:
    pid: int
    rpc_url: str
    chain_id: int


def _is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # A zombie has exited; it only waits to be reaped by its parent.
    return "\nState:\tZ" not in state


def stop_process(
    pid: int, proc: subprocess.Popen[bytes] | None, *, timeout: float, kill: bool = False
) -> None:
    """Stop process ``pid`` (``proc``: the handle of this process's child of that pid, if it is one): SIGTERM
    (a node writes its state), or SIGKILL at once with ``kill``; SIGKILL after ``timeout`` seconds if it is
    still there. Returns once it is gone, or 10 s after the SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    if not _wait_gone(pid, proc, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, proc, 10.0)


def _wait_gone(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    """Whether ``pid`` is gone within ``timeout`` seconds: reaped, when ``proc`` is its handle (a child is a
    zombie until then), else no longer running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.pid == pid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)
                return True
        elif not _is_alive(pid):
            return True
        else:
            time.sleep(0.05)
    return False


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` (``VmRSS`` from ``/proc``).

    Raises:
        NodeError: the process does not exist.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError as exc:
        raise NodeError(f"process {pid} is not running") from exc
    raise NodeError(f"process {pid} reports no resident memory")


class EmbeddedNode:
    """One anvil process keeping its chain under ``<home>/node/`` (state.json, anvil.pid, anvil.log, lock).

    At most one node runs per data directory: the node inherits an exclusive ``flock`` on
    ``<home>/node/lock``, so the lock lives exactly as long as the anvil process, whoever started it. The
    pidfile only tells ``stop`` and ``status`` which process that is; a pidfile whose process is gone (or is
    not our anvil) is stale.
    """

    def __init__(
        self,
        home: Path,
        settings: NodeSettings | None = None,
        *,
        binary: Path | None = None,
        die_with_parent: bool = False,
    ) -> None:
        """``die_with_parent`` (Linux) has the kernel send SIGTERM to anvil when the starting process dies, so
        a test run killed mid-way leaves no node behind; the CLI leaves it off, its node outlives the command.
        """
        self.home = home.resolve()
        self._die_with_parent = die_with_parent
        self.settings = settings or NodeSettings()
        self._binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._keeper: subprocess.Popen[bytes] | None = None

    data_dir = property(lambda self: self.home / "node")
    state_file = property(lambda self: self.data_dir / "state.json")
    pid_file = property(lambda self: self.data_dir / "anvil.pid")
    log_file = property(lambda self: self.data_dir / "anvil.log")
    lock_file = property(lambda self: self.data_dir / "lock")
    keeper_pid_file = property(lambda self: self.data_dir / "statekeeper.pid")

    @property
    def endpoint(self) -> NodeEndpoint:
        """The endpoint this node serves (from the pidfile if another process started it)."""
        recorded = self._read_pidfile()
        if recorded is not None:
            return NodeEndpoint(recorded.rpc_url, recorded.chain_id)
        return NodeEndpoint(f"http://{HOST}:{self.settings.port}", self.settings.chain_id)

    @property
    def pid(self) -> int | None:
        """The pid of the running anvil, or None."""
        recorded = self._read_pidfile()
        if recorded is None or not self._is_our_anvil(recorded.pid):
            return None
        return recorded.pid

    def _read_pidfile(self) -> _PidRecord | None:
        try:
            raw = json.loads(self.pid_file.read_text())
            return _PidRecord(int(raw["pid"]), str(raw["rpc_url"]), int(raw["chain_id"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _is_our_anvil(self, pid: int) -> bool:
        # Guards against pid reuse: the process must be alive and run with our state file.
        return _is_alive(pid) and str(self.state_file) in _cmdline(pid)

    def status(self) -> NodeStatus:
        pid = self.pid
        endpoint = self.endpoint if pid else None
        return NodeStatus(
            running=pid is not None,
            pid=pid,
            rpc_url=endpoint.rpc_url if endpoint else None,
            chain_id=endpoint.chain_id if endpoint else None,
            data_dir=self.data_dir,
        )

    def start(self, *, timeout: float = 30.0) -> NodeEndpoint:
        """Start anvil and wait until it answers ``eth_chainId`` with our chain id.

        Raises:
            NodeAlreadyRunningError: a node already runs on this data directory.
            NodeError: anvil exited or did not answer within ``timeout`` (the log tail is in the message), or
                the port is taken.
            ToolchainError: the anvil binary is missing.
        """
        binary = self._binary or anvil_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise NodeAlreadyRunningError(self.data_dir, self.pid) from None
            # The lock is ours; whatever the pidfile says is stale.
            self.pid_file.unlink(missing_ok=True)
            endpoint = NodeEndpoint(f"http://{HOST}:{self.settings.port}", self.settings.chain_id)
            if endpoint.is_reachable(timeout=0.5):
                raise NodeError(
                    f"port {self.settings.port} already serves a JSON-RPC node; choose another port"
                )
            with open(self.log_file, "ab") as log:
                self._proc = subprocess.Popen(
                    [str(binary), *self.settings.arguments(self.state_file)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(lock_fd,),
                    # Own session: a Ctrl-C meant for the CLI must not kill the chain.
                    start_new_session=True,
                    preexec_fn=_terminate_with_parent if self._die_with_parent else None,
                )
        finally:
            os.close(lock_fd)
        # A node whose pid file cannot be written (a full disk) is stopped too: nothing could stop it later.
        record = {"pid": self._proc.pid, "rpc_url": endpoint.rpc_url, "chain_id": endpoint.chain_id}
        try:
            self.pid_file.write_text(json.dumps(record))
            self._wait_ready(endpoint, timeout)
            self._start_keeper(endpoint, self._proc.pid)
        except (NodeError, OSError):
            self.stop()
            raise
        return endpoint

    def _start_keeper(self, endpoint: NodeEndpoint, anvil_pid: int) -> None:
        block_time = self.settings.block_time
        if block_time is None:
            return
        # The keeper of a killed anvil ends by itself within a poll; one still saving must not write over the
        # file after the new node started (it checks its anvil before writing, this waits for it).
        self._stop_keeper()
        arguments = [endpoint.rpc_url, str(anvil_pid), str(self.state_file)]
        arguments += [str(self.settings.state_interval), repr(float(block_time))]
        with open(self.log_file, "ab") as log:
            keeper = subprocess.Popen(
                [sys.executable, "-m", "node.statekeeper", *arguments],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).resolve().parent.parent,
                start_new_session=True,
                preexec_fn=_terminate_with_parent if self._die_with_parent else None,
            )
        self.keeper_pid_file.write_text(str(keeper.pid))
        self._keeper = keeper

    def _keeper_pid(self) -> int | None:
        try:
            pid = int(self.keeper_pid_file.read_text())
        except (OSError, ValueError):
            return None
        cmdline = _cmdline(pid)
        if _is_alive(pid) and "node.statekeeper" in cmdline and str(self.state_file) in cmdline:
            return pid
        return None

    def _stop_keeper(self, timeout: float = 30.0) -> None:
        """SIGTERM the state keeper and wait: it finishes the block or the save it is in first."""
        keeper = self._keeper
        pid = keeper.pid if keeper is not None and keeper.poll() is None else self._keeper_pid()
        if pid is not None:
            stop_process(pid, self._keeper, timeout=timeout)
        if self._keeper is not None:
            self._keeper.wait()
            self._keeper = None
        self.keeper_pid_file.unlink(missing_ok=True)

    def _wait_ready(self, endpoint: NodeEndpoint, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise NodeError(f"anvil exited with {self._proc.returncode} at start:\n{self._log_tail()}")
            with contextlib.suppress(NodeError):
                chain_id = fetch_chain_id(endpoint.rpc_url, timeout=1.0)
                if chain_id != endpoint.chain_id:
                    raise NodeError(f"node on {endpoint.rpc_url} reports chain id {chain_id}")
                return
            if time.monotonic() > deadline:
                raise NodeError(
                    f"anvil did not answer on {endpoint.rpc_url} within {timeout:g} s:\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, *, timeout: float = 15.0) -> bool:
        """Stop the node gracefully (SIGTERM, so anvil writes its state), SIGKILL after ``timeout`` seconds.

        Returns whether a node was running. Waits until the process is gone.
        """
        pid = self._proc.pid if self._proc is not None and self._proc.poll() is None else self.pid
        self._stop_keeper()
        stopped = False
        if pid is not None:
            # The keeper, anvil's only miner, is stopped: nothing is mined while anvil saves at SIGTERM, which
            # is no snapshot either (see node.statekeeper).
            stop_process(pid, self._proc, timeout=timeout)
            stopped = True
        if self._proc is not None:
            self._proc.wait()
            self._proc = None
        self.pid_file.unlink(missing_ok=True)
        return stopped

    def rss_bytes(self) -> int:
        """Resident memory of the running anvil.

        Raises:
            NodeError: the node is not running.
        """
        pid = self.pid
        if pid is None:
            raise NodeError(f"no node runs on {self.data_dir}")
        return rss_bytes(pid)

    def __enter__(self) -> EmbeddedNode:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def describe(self) -> dict[str, object]:
        """Status as plain JSON-able values (for ``dxl node status --json``)."""
        status = asdict(self.status())
        status["data_dir"] = str(status["data_dir"])
        return status
