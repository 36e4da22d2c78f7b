"""A local multi-node proof-of-authority network: three geth Clique signers on 127.0.0.1.

This is a test engine, not a production recommendation. Clique (EIP-225) is deprecated upstream and
geth v1.14 and later cannot seal it; v1.13.15 is the last release that can, and it is built from the Go module
proxy into ``.tools/bin/geth`` by ``make geth``. Production runs Besu QBFT, reached by URL. What Clique gives
the test matrix is what one anvil cannot: several nodes, propagation delay between them, a node dying under
the service, and the proof-of-authority header format (``extraData`` longer than 32 bytes, as on QBFT).

Limits of geth v1.13.15's Clique, measured here:

* it refuses the Shanghai and Cancun forks (``clique does not support shanghai fork``; with ``cancunTime`` set
  the miner panics: ``unexpected excess blob gas value in clique``), so the chain runs London rules. Contracts
  compiled for Cancun (``PUSH0``, ``MCOPY``) do not run on it (``invalid opcode: PUSH0``), so the ledger is
  deployed here from its London build (``contracts/artifacts-london``, chosen by the chain's rules: see
  ``node.deploy.chain_build``).
* geth raises a configured miner gas price of 0 to 1 gwei at start, so free gas is set after start with
  ``miner_setGasPrice(0)`` on every member, and the price oracle's default is 0 (``[Eth.GPO] Default``):
  with a London base fee of 0 from genesis, ``eth_gasPrice`` then answers 0 as on a Besu network with
  ``--min-gas-price=0``.

Layout under ``DXL_HOME/network/``: ``network.json`` (chain id, members, ports, signer addresses),
``genesis.json``, ``password`` (of the members' signer keystores; a development network only), and per member
``node<i>/`` (geth data directory), ``node<i>.pid``, ``node<i>.log``, ``node<i>.toml`` (static peers).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from node.anvil import HOST, _cmdline, _is_alive, _terminate_with_parent, free_port, stop_process
from node.endpoint import NodeEndpoint, fetch_chain_id, rpc_call
from node.errors import ConfigurationError, NodeError, ToolchainError
from node.paths import PROJECT_ROOT
from node.settings import S
from verifier.text import counted

#: Chain id of the local Clique network (beside the embedded node's 734117, so a deployment record of one
#: is never taken for the other's).
NETWORK_CHAIN_ID = 734_118
DEFAULT_SIGNERS = 3
DEFAULT_RPC_PORT = 8645
DEFAULT_P2P_PORT = 30411
DEFAULT_PERIOD_S = 1
DEFAULT_GAS_LIMIT = 100_000_000
#: The confirmation depth dxl uses here (``DXL_CONFIRMATIONS``): signers sealing out of turn at one height
#: fork the chain for a block or two until the heavier branch wins (seen at starts of the network).
CLIQUE_CONFIRMATIONS = 3
#: The geth ``make geth`` builds, used unless the ``DXL_GETH`` setting names another.
GETH_BINARY = PROJECT_ROOT / ".tools" / "bin" / "geth"
#: Written by ``make geth`` when geth could not be built: the reason, shown by the skipped network tests.
GETH_UNAVAILABLE = PROJECT_ROOT / ".tools" / "geth.unavailable"
_SUPPORTED_GETH = "1.13."
#: How far the highest member's head may be above the lowest one's for the members to count as caught up
#: (a block being propagated while the heads are read).
_CAUGHT_UP_BLOCKS = 2
#: How recent a block counts as the chain moving (:meth:`LocalNetwork.wait_peered`): the common block may be
#: two below the head (:data:`_CAUGHT_UP_BLOCKS`) while the next is being sealed.
_MOVING_PERIODS = 3
#: How long :meth:`LocalNetwork.heal` lets a dial it asked for connect before it restarts a member (a dial
#: between members on one host connects within milliseconds; one held by geth's dial history, up to 35 s).
_PEERING_GRACE_S = 2.0
#: How long the miner of a member a cut leaves may stand still (a sync under way stops a fresh geth's miner
#: for its length, a moment on one host) before the member is restarted (:meth:`LocalNetwork.cut_off`).
_SEAL_ON_GRACE_S = 5.0
#: How long a member joined back may take to hold the others' chain once peered before it is restarted
#: (:meth:`LocalNetwork.join` and :meth:`LocalNetwork.heal`): with one peer, geth syncs at its forced cycle,
#: every 10 s.
_CATCH_UP_GRACE_S = 12.0
#: Where free ports for a network on free ports are looked for: below the kernel's ephemeral range.
_LOWEST_PORT = 20_000
#: The EVM rules of the network (the newest geth's Clique seals) and the ones after it, in solc's names.
NETWORK_EVM = "london"
_LATER_EVMS = ("paris", "shanghai", "cancun", "prague", "osaka")


class EvmVersionError(ToolchainError):
    """Thrown when contracts compiled for a newer EVM than the network's would be deployed on it."""

    code = "EVM_VERSION_UNSUPPORTED"

    def __init__(self, compiled_for: str) -> None:
        self.compiled_for = compiled_for
        super().__init__(
            f"these contracts are compiled for EVM {compiled_for!r}, but the chain runs {NETWORK_EVM!r} "
            "rules (as geth's Clique, which seals no Shanghai or Cancun blocks): their code would not run "
            f"here (invalid opcode PUSH0). Deploy the {NETWORK_EVM!r} build (contracts/compiler-london.json, "
            "contracts/artifacts-london), or use a Besu QBFT network (see README) or the embedded node"
        )


def check_evm(compiled_for: str) -> None:
    """Refuse contracts compiled for an EVM newer than the network's.

    Raises:
        EvmVersionError: ``compiled_for`` is after :data:`NETWORK_EVM`.
    """
    if compiled_for.lower() in _LATER_EVMS:
        raise EvmVersionError(compiled_for)


def geth_binary(chosen: Path | None = None) -> Path:
    """The geth executable: ``chosen`` (the ``DXL_GETH`` setting), else ``.tools/bin/geth`` (``make geth``).

    Raises:
        ToolchainError: not built (the reason ``make geth`` recorded is in the message).
    """
    path = chosen or GETH_BINARY
    if os.access(path, os.X_OK):
        return path
    why = ""
    with contextlib.suppress(OSError):
        why = f" ({GETH_UNAVAILABLE.read_text().strip()})"
    raise ToolchainError(f"geth not found at {path}{why}: run `make geth` (needs Go from go.dev)")


def geth_version(binary: Path) -> str:
    """``1.13.15-stable`` for geth v1.13.15.

    Raises:
        ToolchainError: the executable does not run or prints no version.
    """
    try:
        out = subprocess.run(
            [str(binary), "version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainError(f"{binary} version failed: {exc}") from exc
    for line in out.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    raise ToolchainError(f"{binary} version printed no version:\n{out}")


def member_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1, each free right now and below the kernel's ephemeral range.

    A member's ports are chosen once, recorded, and bound again at every restart. A port of the ephemeral
    range (where :func:`node.anvil.free_port` finds one) may meanwhile be the local end of any process's
    outgoing connection, and the member then fails to start (``bind: address already in use``). The ports
    of one network are drawn together: a port is free until its member binds it, so drawn one at a time
    two members could be given the same one, and the second to start failed the same way (a network's
    nine ports among some 12,000 collide about once in 350 networks).
    """
    try:
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32_768
    rng = random.SystemRandom()
    ports: list[int] = []
    for _ in range(100 * count):
        if len(ports) == count:
            return ports
        port = rng.randrange(_LOWEST_PORT, max(_LOWEST_PORT + 1, ephemeral))
        if port in ports:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
        ports.append(port)
    while len(ports) < count:
        if (port := free_port()) not in ports:
            ports.append(port)
    return ports


@dataclass(frozen=True)
class Member:
    """One signer node: its signer address, ports and p2p identity (fixed when the network is created)."""

    index: int
    address: str
    rpc_port: int
    p2p_port: int
    auth_port: int
    enode: str

    @property
    def rpc_url(self) -> str:
        return f"http://{HOST}:{self.rpc_port}"


@dataclass(frozen=True)
class MemberStatus:
    index: int
    address: str
    rpc_url: str
    running: bool
    pid: int | None
    block: int | None
    peers: int | None


@dataclass(frozen=True)
class NetworkStatus:
    created: bool
    chain_id: int | None
    members: list[MemberStatus]
    data_dir: Path

    @property
    def running(self) -> int:
        return sum(m.running for m in self.members)


def _enode_key(enode: str) -> str:
    """A node's public key out of its enode URL (what tells two nodes apart, whatever address it names)."""
    return enode.removeprefix("enode://").split("@", 1)[0].lower()


def _clique_extra_data(signers: list[str]) -> str:
    """Genesis ``extraData`` of a Clique chain: 32 bytes of vanity, the signer addresses in ascending order
    (EIP-225 requires the order), 65 zero bytes where a sealed block carries its signature."""
    ordered = sorted(bytes.fromhex(a.removeprefix("0x")) for a in signers)
    return "0x" + "00" * 32 + "".join(a.hex() for a in ordered) + "00" * 65


def genesis(chain_id: int, signers: list[str], *, period: int, gas_limit: int) -> dict[str, object]:
    """The genesis of a Clique network with ``signers``: London rules (the newest geth's Clique seals), base
    fee 0 from the first block so that free gas stays free."""
    forks = ["homestead", "eip150", "eip155", "eip158", "byzantium", "constantinople", "petersburg",
             "istanbul", "berlin", "london"]  # fmt: skip
    config: dict[str, object] = {"chainId": chain_id, **{f"{name}Block": 0 for name in forks}}
    config["clique"] = {"period": period, "epoch": 30_000}
    return {
        "config": config,
        "difficulty": "0x1",
        "gasLimit": hex(gas_limit),
        "baseFeePerGas": "0x0",
        "extraData": _clique_extra_data(signers),
        "alloc": {},
    }


class LocalNetwork:
    """The members of the local network under ``<home>/network/``, started and stopped by pid.

    ``up`` creates the network on first use (keys, genesis, ``geth init``) and starts every member that is not
    running; a later ``up`` resumes the same chain. ``die_with_parent`` (Linux): the kernel sends SIGTERM to
    the members when the starting process dies (tests); the CLI leaves it off, its network outlives the
    command.
    """

    def __init__(
        self,
        home: Path,
        *,
        signers: int = DEFAULT_SIGNERS,
        rpc_port: int = DEFAULT_RPC_PORT,
        p2p_port: int = DEFAULT_P2P_PORT,
        chain_id: int = NETWORK_CHAIN_ID,
        period: int = DEFAULT_PERIOD_S,
        binary: Path | None = None,
        die_with_parent: bool = False,
    ) -> None:
        if signers < 1:
            raise ConfigurationError(f"a network needs at least one signer, got {signers}")
        self.home = home.resolve()
        self._signers, self._rpc_port, self._p2p_port = signers, rpc_port, p2p_port
        self._chain_id, self._period = chain_id, period
        self._binary = binary
        self._die_with_parent = die_with_parent
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def data_dir(self) -> Path:
        return self.home / "network"

    @property
    def layout_file(self) -> Path:
        return self.data_dir / "network.json"

    @property
    def password_file(self) -> Path:
        return self.data_dir / "password"

    def _member_dir(self, index: int) -> Path:
        return self.data_dir / f"node{index}"

    def _pid_file(self, index: int) -> Path:
        return self.data_dir / f"node{index}.pid"

    def _log_file(self, index: int) -> Path:
        return self.data_dir / f"node{index}.log"

    # --- layout -------------------------------------------------------------------------------------------

    @property
    def created(self) -> bool:
        return self.layout_file.exists()

    def members(self) -> list[Member]:
        """The members recorded at creation.

        Raises:
            ConfigurationError: the network was never created (``dxl network up``) or its record is unusable.
        """
        try:
            raw = json.loads(self.layout_file.read_text())
            return [Member(**m) for m in raw["members"]]
        except FileNotFoundError:
            raise ConfigurationError(f"no network under {self.data_dir}: run `dxl network up`") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"unusable network record {self.layout_file}: {exc}") from exc

    @property
    def chain_id(self) -> int:
        try:
            return int(json.loads(self.layout_file.read_text())["chain_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return self._chain_id

    def endpoint(self, index: int = 0) -> NodeEndpoint:
        """The endpoint of member ``index``, with the other members as its failover URLs."""
        members = self.members()
        first = members[index]
        others = tuple(m.rpc_url for m in members if m.index != first.index)
        return NodeEndpoint(first.rpc_url, self.chain_id, failover_urls=others)

    def _create(self, binary: Path) -> list[Member]:
        from eth_account import Account
        from eth_keys.datatypes import PrivateKey

        self.data_dir.mkdir(parents=True, exist_ok=True)
        password = secrets.token_hex(16)
        self.password_file.write_text(password + "\n")
        self.password_file.chmod(0o600)
        fixed = self._rpc_port != 0
        free = iter(member_ports(3 * self._signers) if not fixed else [])
        members, signer_keys = [], []
        for index in range(self._signers):
            signer = Account.create()
            nodekey = PrivateKey(secrets.token_bytes(32))
            p2p = self._p2p_port + index if fixed else next(free)
            members.append(
                Member(
                    index=index,
                    address=str(signer.address),
                    rpc_port=self._rpc_port + index if fixed else next(free),
                    p2p_port=p2p,
                    auth_port=(self._rpc_port + 100 + index) if fixed else next(free),
                    enode=f"enode://{nodekey.public_key.to_hex()[2:]}@{HOST}:{p2p}",
                )
            )
            signer_keys.append((signer, nodekey))
        spec = genesis(
            self._chain_id, [m.address for m in members], period=self._period, gas_limit=DEFAULT_GAS_LIMIT
        )
        genesis_file = self.data_dir / "genesis.json"
        genesis_file.write_text(json.dumps(spec, indent=2))
        for member, (signer, nodekey) in zip(members, signer_keys, strict=True):
            datadir = self._member_dir(member.index)
            self._run_geth(binary, ["--datadir", str(datadir), "init", str(genesis_file)])
            (datadir / "geth" / "nodekey").write_text(nodekey.to_hex()[2:])
            # pbkdf2 with few rounds: the password lies beside it, a slow KDF would only slow every start.
            keyfile = Account.encrypt(signer.key, password, kdf="pbkdf2", iterations=1 << 12)
            keystore = datadir / "keystore"
            keystore.mkdir(exist_ok=True)
            (keystore / f"signer-{member.address.lower()}.json").write_text(json.dumps(keyfile))
            self._write_config(member, members)
        self.layout_file.write_text(
            json.dumps({"chain_id": self._chain_id, "members": [asdict(m) for m in members]}, indent=2)
        )
        return members

    def _write_config(self, member: Member, members: list[Member]) -> None:
        # Static peers instead of discovery (--nodiscover): a consortium's nodes know each other.
        peers = ", ".join(json.dumps(m.enode) for m in members if m.index != member.index)
        # A [Eth.GPO] section replaces geth's whole oracle configuration: its defaults are restated, only
        # Default (the price suggested while no transaction paid a tip) differs.
        (self.data_dir / f"node{member.index}.toml").write_text(
            "[Eth.GPO]\nBlocks = 20\nPercentile = 60\nMaxHeaderHistory = 1024\nMaxBlockHistory = 1024\n"
            "MaxPrice = 500000000000\nIgnorePrice = 2\nDefault = 0\n\n"
            # DialRatio 1: with --maxpeers at the number of other members, geth would dial only a third of
            # them (at least one), and two members that each dialed someone else never connect.
            f"[Node.P2P]\nDialRatio = 1\nStaticNodes = [{peers}]\nTrustedNodes = [{peers}]\n"
        )

    def _run_geth(self, binary: Path, args: list[str]) -> None:
        done = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise ToolchainError(f"geth {' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    # --- processes ----------------------------------------------------------------------------------------

    def pid(self, index: int) -> int | None:
        """The pid of member ``index``'s geth, or None when it does not run."""
        try:
            pid = int(self._pid_file(index).read_text())
        except (OSError, ValueError):
            return None
        # Guards against pid reuse: alive, and a geth on this member's data directory.
        if _is_alive(pid) and str(self._member_dir(index)) in _cmdline(pid):
            return pid
        return None

    def _arguments(self, member: Member, members: list[Member]) -> list[str]:
        return [
            "--datadir", str(self._member_dir(member.index)),
            "--config", str(self.data_dir / f"node{member.index}.toml"),
            "--networkid", str(self.chain_id),
            "--syncmode", "full",
            # Every block's state written to disk as it is imported: a member killed (kill -9) restarts at
            # its head. With geth's default (recent state kept in memory, flushed at a clean stop), it
            # restarted rewound to the last flushed block (often one of the first) below a header chain still
            # at the old head, sealed a block of its own there, and its syncs failed ("unknown ancestor",
            # "missing trie node") and dropped its peers, which it does not redial for 35 s: on a loaded
            # machine, more than two minutes on its own fork. A test network's state is a few kilobytes.
            "--gcmode", "archive",
            # As many peers as other members: geth then syncs as soon as they are connected instead of
            # waiting for its 10 s forced cycle (it wants 5 peers otherwise), e.g. a member restarted or cut
            # off catches up at once. Trusted peers are exempt from the inbound share of that limit.
            "--nodiscover", "--port", str(member.p2p_port), "--maxpeers", str(max(1, len(members) - 1)),
            "--http", "--http.addr", HOST, "--http.port", str(member.rpc_port),
            "--http.api", "eth,net,web3,txpool,clique,admin,miner",
            "--authrpc.addr", HOST, "--authrpc.port", str(member.auth_port),
            "--ipcdisable",
            "--mine", "--miner.etherbase", member.address, "--miner.gaslimit", str(DEFAULT_GAS_LIMIT),
            "--unlock", member.address, "--password", str(self.password_file), "--allow-insecure-unlock",
            "--verbosity", "2",
        ]  # fmt: skip

    def start_member(self, index: int, *, timeout: float = 60.0) -> None:
        """Start member ``index`` if it does not run, and wait until it answers with free gas set.

        Raises:
            NodeError: it exited or did not answer in time (the log tail is in the message), or its RPC port
                already serves another node.
            ToolchainError: geth is missing.
        """
        if self.pid(index) is not None:
            return
        binary = geth_binary(self._binary)
        members = self.members()
        member = members[index]
        # Written at every start, so a network created by an earlier dxl runs with the current settings.
        self._write_config(member, members)
        endpoint = NodeEndpoint(member.rpc_url, self.chain_id)
        if endpoint.is_reachable(timeout=0.5):
            raise NodeError(f"port {member.rpc_port} already serves a JSON-RPC node; choose other ports")
        with open(self._log_file(index), "ab") as log:
            proc = subprocess.Popen(
                [str(binary), *self._arguments(member, members)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C meant for the CLI must not stop the network.
                start_new_session=True,
                preexec_fn=_terminate_with_parent if self._die_with_parent else None,
            )
        self._procs[index] = proc
        self._pid_file(index).write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise NodeError(f"geth node{index} exited with {proc.returncode}:\n{self._log_tail(index)}")
            with contextlib.suppress(NodeError):
                if fetch_chain_id(member.rpc_url, timeout=1.0) == self.chain_id:
                    break
            if time.monotonic() > deadline:
                self.stop_member(index)
                raise NodeError(
                    f"geth node{index} did not answer within {timeout:g} s:\n{self._log_tail(index)}"
                )
            time.sleep(0.1)
        # geth raised the configured price of 0 to 1 gwei at start; this sets the pool's and miner's floor.
        rpc_call(member.rpc_url, "miner_setGasPrice", ["0x0"])

    def up(self, *, timeout: float = 90.0) -> NodeEndpoint:
        """Create the network if needed, start every member not running, and wait until the members are
        peered and the chain moves. Returns the first member's endpoint (the others as failover URLs).

        Raises:
            NodeError: a member did not start, or the chain did not produce a block within ``timeout``.
            ToolchainError: geth is missing or not a v1.13 release (the last that seals Clique).
        """
        binary = geth_binary(self._binary)
        version = geth_version(binary)
        if not version.startswith(_SUPPORTED_GETH):
            raise ToolchainError(
                f"{binary} is geth {version}; Clique needs geth {_SUPPORTED_GETH}x (v1.13.15)"
            )
        members = self.members() if self.created else self._create(binary)
        started = time.monotonic()
        for member in members:
            self.start_member(member.index, timeout=timeout)
        self.wait_peered(timeout=max(1.0, timeout - (time.monotonic() - started)))
        return self.endpoint()

    def wait_peered(self, *, timeout: float = 60.0) -> int:
        """Wait until every running member has all other running members as peers, all of them hold the same
        block at the lowest head among them (signers sealing at the same moment at start fork the chain until
        a sync settles it), no head is more than two blocks above it, and the chain moves: that block was
        sealed within the last :data:`_MOVING_PERIODS` block periods (by this machine's clock, the members'),
        or the chain has grown since; returns that block's number.

        Raises:
            NodeError: not within ``timeout``.
        """
        running = [m for m in self.members() if self.pid(m.index) is not None]
        if not running:
            raise NodeError(f"no member of the network under {self.data_dir} runs")
        deadline = time.monotonic() + timeout
        first: int | None = None
        seen = "no answer"
        while True:
            with contextlib.suppress(NodeError):
                peers = [int(str(rpc_call(m.rpc_url, "net_peerCount")), 16) for m in running]
                heads = [int(str(rpc_call(m.rpc_url, "eth_blockNumber")), 16) for m in running]
                common = min(heads)
                # A block a member no longer has at that height (it is switching branches) reads as None.
                blocks = [rpc_call(m.rpc_url, "eth_getBlockByNumber", [hex(common), False]) for m in running]
                hashes = {str(b.get("hash")) if isinstance(b, dict) else None for b in blocks}
                sealed = max((int(str(b["timestamp"]), 16) for b in blocks if isinstance(b, dict)), default=0)
                first = common if first is None else first
                different = counted(len(hashes), "different block")
                seen = f"peers {peers}, heads {heads}, {different} at height {common}"
                if (
                    min(peers) >= len(running) - 1
                    and hashes != {None}
                    and len(hashes) == 1
                    # Waiting for the next block instead cost every caller a block period, most of them
                    # (every test of tests/network) on a network that was sealing all along.
                    and (common > first or time.time() - sealed <= _MOVING_PERIODS * self._period)
                    # Caught up, not merely on the same chain: a restarted member still syncing is behind.
                    and max(heads) - common <= _CAUGHT_UP_BLOCKS
                ):
                    return common
            if time.monotonic() > deadline:
                raise NodeError(f"network not peered on one chain within {timeout:g} s ({seen})")
            time.sleep(0.2)

    def cut_off(self, index: int, *, timeout: float = 60.0, restart_after: float = _SEAL_ON_GRACE_S) -> None:
        """Cut member ``index`` off the others: it still answers RPC, but imports no block of theirs and, a
        signer alone, seals at most one more of its own (Clique: one of any two consecutive blocks). What a
        network partition does to a node: its head stalls while the network goes on. :meth:`join` ends it.

        Members have each other as static and trusted peers and admit no inbound peer that is not trusted
        (with ``DialRatio = 1`` their whole peer limit is for dialed peers). geth dials a static peer again as
        soon as the connection drops, and a dial under way when the static entry is removed still connects:
        removing the peers alone left some cuts joined again at once. So the trust goes first, on both sides,
        and any such dial is refused at its handshake. The member drops the connections itself, so the refused
        dials are the others': its own dials are free when it joins back (geth dials a node again only 35 s
        after its last dial to it).

        Returns once the members left, expected to seal, all have their miner running: a cut drops whatever a
        member was asking the cut member for, and the sync that asked hangs (:meth:`_seal_on`); one whose
        miner still stands ``restart_after`` seconds after the cut is restarted.

        Raises:
            NodeError: a member does not answer, or the members left do not seal on within ``timeout``.
        """
        members = self.members()
        cut = members[index]
        others = [m for m in members if m.index != index]
        for other in others:
            rpc_call(cut.rpc_url, "admin_removeTrustedPeer", [other.enode])
            rpc_call(other.rpc_url, "admin_removeTrustedPeer", [cut.enode])
        for other in others:
            rpc_call(cut.rpc_url, "admin_removePeer", [other.enode])  # returns once the connection is gone
            rpc_call(other.rpc_url, "admin_removePeer", [cut.enode])
        self._seal_on(others, len(members), restart_after, time.monotonic() + timeout)

    def _head(self, member: Member) -> int:
        return int(str(rpc_call(member.rpc_url, "eth_blockNumber")), 16)

    def _seal_on(self, left: list[Member], signers: int, restart_after: float, deadline: float) -> None:
        """Wait until every member of ``left``, the members a cut leaves (each expected to seal), has its
        miner running, when they are enough signers to seal on.

        A sync waits for each answer it asked a peer for, and a cut drops the request with the connection:
        the sync goes on waiting for geth's request timeout (60 s on a geth started within the last minute,
        as :meth:`heal` restarts members), and starts no other meanwhile. A geth that has finished no sync
        since it started also stops its miner while it syncs (``eth_mining`` answers false): a member
        restarted before the cut and syncing from the member cut off sealed nothing for 60 s, and the other
        signer left, one block in two, stood still (the member in use, cut off, was never left for a more
        advanced one, as none moved on). A member left whose miner still stands ``restart_after`` seconds
        after the cut is restarted: a fresh geth has no such sync, and the member cut off refuses its dial.

        Raises:
            NodeError: a member does not answer, or a miner stands still at ``deadline``.
        """
        running = [m for m in left if self.pid(m.index) is not None]
        if len(running) < signers // 2 + 1:
            return  # too few signers left to seal on: the chain stands still whatever they do

        def stands(_still: list[Member]) -> str:
            mining = [bool(rpc_call(m.rpc_url, "eth_mining")) for m in running]
            return f"members left by the cut do not seal ({self._state(running)}, mining {mining})"

        self._restart_until(
            running, lambda m: bool(rpc_call(m.rpc_url, "eth_mining")), restart_after, deadline, stands
        )

    def _holds_chain_of(self, member: Member, others: list[Member]) -> bool:
        """Whether ``member`` has caught up with the chain ``others`` hold: its head at most two blocks below
        theirs, and its block at the lower of the heads one of theirs."""
        heads = [self._head(o) for o in others]
        own = self._head(member)
        if own < max(heads) - _CAUGHT_UP_BLOCKS:
            return False
        height = [hex(min(own, *heads)), False]
        mine = rpc_call(member.rpc_url, "eth_getBlockByNumber", height)
        theirs = [rpc_call(o.rpc_url, "eth_getBlockByNumber", height) for o in others]
        return isinstance(mine, dict) and any(
            isinstance(block, dict) and block.get("hash") == mine.get("hash") for block in theirs
        )

    def _catch_up(
        self, catching: list[Member], members: list[Member], deadline: float, timeout: float
    ) -> None:
        """Wait until every member of ``catching`` holds the chain the other ``members`` hold
        (:meth:`_holds_chain_of`). A member whose sync was waiting on a peer when that peer was cut off goes
        on waiting for geth's request timeout (up to 60 s, :meth:`_seal_on`) and starts no sync with the
        peers it has: a member joined back after a partition did not hold the others' blocks 60 s later. One
        still behind :data:`_CATCH_UP_GRACE_S` after the call is restarted, once: a fresh geth syncs with its
        static peers at once. The one place :meth:`join` and :meth:`heal` wait for a member to catch up.

        Raises:
            NodeError: a member does not answer, or one is still behind at ``deadline`` (``timeout`` seconds
                after the caller began): the message names each member's head and peer count.
        """

        def behind(lagging: list[Member]) -> str:
            names = ", ".join(f"node{m.index}" for m in lagging)
            return f"{names} not on the others' chain within {timeout:g} s ({self._state(members)})"

        def caught_up(m: Member) -> bool:
            return self._holds_chain_of(m, [o for o in members if o.index != m.index])

        self._restart_until(catching, caught_up, _CATCH_UP_GRACE_S, deadline, behind)

    def _restart_until(
        self,
        watched: list[Member],
        holds: Callable[[Member], bool],
        grace: float,
        deadline: float,
        failure: Callable[[list[Member]], str],
    ) -> None:
        """Wait until ``holds`` is true of every member of ``watched``, restarting, once, each member it is
        still false of ``grace`` seconds on: what a hung sync leaves (a miner stopped, a chain not taken) a
        fresh geth does not carry. The one loop :meth:`_seal_on` and :meth:`_catch_up` wait in.

        Raises:
            NodeError: ``failure`` of the members it is false of, at ``deadline``; a member does not answer.
        """
        restart_at: float | None = time.monotonic() + grace
        while failing := [m for m in watched if not holds(m)]:
            now = time.monotonic()
            if now > deadline:
                raise NodeError(failure(failing))
            if restart_at is not None and now > restart_at:
                for member in failing:
                    self.stop_member(member.index)
                    self.start_member(member.index, timeout=max(1.0, deadline - time.monotonic()))
                restart_at = None
            time.sleep(0.2)

    def _state(self, members: list[Member]) -> str:
        """Where ``members`` stand, for a message: ``nodes [0, 2]: heads [41, 37], peers [1, 1]``."""
        heads = [self._head(m) for m in members]
        peers = [int(str(rpc_call(m.rpc_url, "net_peerCount")), 16) for m in members]
        return f"nodes {[m.index for m in members]}: heads {heads}, peers {peers}"

    def join(self, index: int, *, peered: bool = True, timeout: float = 60.0) -> None:
        """Join member ``index``, cut off by :meth:`cut_off`, back to the others; returns once it has them all
        as peers again (``peered=False``: one, enough to sync the heavier chain; a dial of its own made within
        35 s before, as after members were restarted, would otherwise hold the join that long).

        The trust comes back first and only the member dials: two members dialing each other at the same
        moment can each keep its own connection and refuse the other's as a duplicate, both connections then
        close and the next dials wait 35 s. The others have it as a static peer again once it is connected
        (their dial finds it connected).

        Then it waits until the member holds the others' chain, restarting it when its sync hangs, as one
        whose sync was waiting on a peer when it was cut off does (:meth:`_catch_up`).

        Raises:
            NodeError: a member does not answer, or the member is not peered or on the others' chain within
                ``timeout``.
        """
        members = self.members()
        cut = members[index]
        others = [m for m in members if m.index != index]
        for other in others:
            rpc_call(cut.rpc_url, "admin_addTrustedPeer", [other.enode])
            rpc_call(other.rpc_url, "admin_addTrustedPeer", [cut.enode])
        for other in others:
            rpc_call(cut.rpc_url, "admin_addPeer", [other.enode])
        wanted = len(others) if peered else 1
        deadline = time.monotonic() + timeout
        while (peers := int(str(rpc_call(cut.rpc_url, "net_peerCount")), 16)) < wanted:
            if time.monotonic() > deadline:
                raise NodeError(
                    f"node{index} has {counted(peers, 'peer')} {timeout:g} s after it joined, not {wanted}"
                )
            time.sleep(0.2)
        for other in others:
            rpc_call(other.rpc_url, "admin_addPeer", [cut.enode])
        self._catch_up([cut], members, deadline, timeout)

    def heal(self, *, timeout: float = 60.0) -> int:
        """Every member running, trusting and peered with every other, on one chain that moves, as after
        :meth:`up`, whatever was stopped, cut off or joined before; returns the common block's number (see
        :meth:`wait_peered`).

        geth dials a node again only 35 s after its last dial to it, and across cuts, joins and restarts in
        quick succession both sides of a missing connection may have dialed within that time: it came back by
        itself only when one side's wait ran out (25 s and 21 s between two tests of tests/network). A
        member still short of a peer :data:`_PEERING_GRACE_S` after the dial is asked for is restarted: a
        fresh geth has no dial history and dials its static peers at once. One member at a time, so that two
        never dial each other at the same moment (see :meth:`join`).

        Once peered, it waits until every member holds the others' chain, restarting one whose sync hangs (a
        member cut off while its sync waited on a peer, joined back by this heal: :meth:`_catch_up`), until
        every member's miner runs (:meth:`_seal_on`), then until that chain moves (:meth:`wait_peered`).

        Raises:
            NodeError: a member does not start or answer, or the network is not peered on one chain within
                ``timeout`` (the message names each member's head and peers).
        """
        deadline = time.monotonic() + timeout
        members = self.members()
        for member in members:
            self.start_member(member.index)
        for member in members:
            for other in members:
                if other.index != member.index:
                    rpc_call(member.rpc_url, "admin_addTrustedPeer", [other.enode])
        restarted: set[int] = set()
        while missing := self._missing_connections(members):
            for a, b in missing:
                # One side dials, the one a restart made fresh if any: it dials its static peers by itself.
                if a not in restarted and b not in restarted:
                    rpc_call(members[a].rpc_url, "admin_addPeer", [members[b].enode])
            grace = time.monotonic() + _PEERING_GRACE_S
            while missing and time.monotonic() < grace:
                time.sleep(0.1)
                missing = self._missing_connections(members)
            if not missing:
                break
            if time.monotonic() > deadline:
                raise NodeError(f"network not peered within {timeout:g} s (missing connections {missing})")
            ends = [i for pair in missing for i in pair]
            worst = max(set(ends), key=lambda i: (ends.count(i), i))
            self.stop_member(worst)
            self.start_member(worst, timeout=max(1.0, deadline - time.monotonic()))
            restarted.add(worst)
        # Static on both sides again (a connected peer is not dialed), so either side redials after a drop.
        for member in members:
            for other in members:
                if other.index != member.index:
                    rpc_call(member.rpc_url, "admin_addPeer", [other.enode])
        self._catch_up(members, members, deadline, timeout)
        # And every miner running: a fresh geth's stays stopped until its first sync ends, and a member left
        # syncing from one killed after the heal waited 60 s on it while the one other signer, one block in
        # two, stood still (a member restarted by a heal, the node in use killed under load a second later).
        self._seal_on(members, len(members), _SEAL_ON_GRACE_S, deadline)
        return self.wait_peered(timeout=max(1.0, deadline - time.monotonic()))

    def _missing_connections(self, members: list[Member]) -> list[tuple[int, int]]:
        """The pairs of members (lower index first) with no connection between them."""
        connected: set[tuple[int, int]] = set()
        by_key = {_enode_key(m.enode): m.index for m in members}
        for member in members:
            peers = rpc_call(member.rpc_url, "admin_peers")
            for peer in peers if isinstance(peers, list) else []:
                other = by_key.get(_enode_key(str(peer.get("enode", ""))))
                if other is not None:
                    connected.add((min(member.index, other), max(member.index, other)))
        return [
            (a.index, b.index)
            for a in members
            for b in members
            if a.index < b.index and (a.index, b.index) not in connected
        ]

    def stop_member(self, index: int, *, kill: bool = False, timeout: float = 20.0) -> bool:
        """Stop member ``index``: SIGTERM (geth writes its state), SIGKILL after ``timeout`` seconds, or at
        once with ``kill``. Returns whether it was running; waits until the process is gone."""
        proc = self._procs.pop(index, None)
        pid = proc.pid if proc is not None and proc.poll() is None else self.pid(index)
        if pid is not None:
            stop_process(pid, proc, timeout=timeout, kill=kill)
        if proc is not None:
            proc.wait()
        self._pid_file(index).unlink(missing_ok=True)
        return pid is not None

    def down(self) -> int:
        """Stop every member; returns how many were running. The chain stays on disk for the next ``up``."""
        if not self.created:
            return 0
        return sum(self.stop_member(m.index) for m in self.members())

    def _log_tail(self, index: int, lines: int = 20) -> str:
        try:
            return "\n".join(self._log_file(index).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def status(self) -> NetworkStatus:
        """Which members run, with their head block and peer count."""
        if not self.created:
            return NetworkStatus(False, None, [], self.data_dir)
        found = []
        for m in self.members():
            pid = self.pid(m.index)
            block = peers = None
            if pid is not None:
                with contextlib.suppress(NodeError):
                    block = int(str(rpc_call(m.rpc_url, "eth_blockNumber", timeout=2.0)), 16)
                    peers = int(str(rpc_call(m.rpc_url, "net_peerCount", timeout=2.0)), 16)
            found.append(MemberStatus(m.index, m.address, m.rpc_url, pid is not None, pid, block, peers))
        return NetworkStatus(True, self.chain_id, found, self.data_dir)

    def describe(self) -> dict[str, object]:
        """Status as plain JSON-able values (for ``dxl network status --json``)."""
        status = self.status()
        return {
            "created": status.created,
            "chain_id": status.chain_id,
            "running": status.running,
            "data_dir": str(status.data_dir),
            "members": [asdict(m) for m in status.members],
        }


def writing_to(settings: S, endpoint: NodeEndpoint) -> S:
    """``settings`` pointed at a local network's ``endpoint`` (its other members as failover URLs), with
    Clique's confirmation depth at least: what ``dxl run --network`` writes with."""
    return settings.model_copy(
        update={
            "rpc_url": endpoint.rpc_url,
            "chain_id": endpoint.chain_id,
            "rpc_failover_urls": ",".join(endpoint.failover_urls),
            "confirmations": max(settings.confirmations, CLIQUE_CONFIRMATIONS),
        }
    )


def on_home_network(settings: S) -> S:
    """The settings a writer (``dxl deploy``, ``dxl run``, the API service) uses: without ``DXL_RPC_URL``,
    those of ``DXL_HOME``'s local network when it has one (:func:`writing_to`), as the reading commands read
    it (:func:`node.endpoint.home_node`); else ``settings`` as they are (``DXL_RPC_URL``, the embedded node).

    The network is not started here (``dxl network up`` or ``dxl run --network`` does): a writer on a home
    whose network is down is refused by its node's first answer, never sent to the embedded node's port,
    where another home's node may take the write on another chain.
    """
    if settings.rpc_url:
        return settings
    local = LocalNetwork(settings.home)
    return writing_to(settings, local.endpoint()) if local.created else settings
