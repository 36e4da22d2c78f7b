"""The settings of dxl, read from ``DXL_*`` environment variables (and a ``.env`` file if present).

:class:`Settings` holds what the ledger client, the embedded node, the keystore and the audit trail need;
the API extends it with its own (:class:`api.settings.ApiSettings`). Whatever runs on top (the ``dxl``
command, the API app) reads the settings once and passes the object down; nothing below reads the
environment again.

Development (the default) may generate what it lacks, such as a keystore passphrase written to
``DXL_HOME/secrets/``; production (``DXL_ENV=production``) refuses to start without an explicit passphrase, so
no key is ever protected by a secret nobody chose.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from node.deploy import EVALUATION_PERIOD_MIN_S, EVALUATION_PERIOD_S
from node.errors import ConfigurationError
from verifier.rpc import DEFAULT_TIMEOUT_S


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


#: Minimum length of a configured keystore passphrase in production.
MIN_PASSPHRASE_LENGTH = 12
#: ``DXL_STALL_TIMEOUT``'s default: a few block periods (1 s on the local Clique network, 2 s by default on
#: Besu QBFT). A node propagates a block in milliseconds; one whose head is that far behind another's on the
#: chain's clock is cut off from the signers, and the writes sent to it wait in its pool, mined nowhere.
DEFAULT_STALL_TIMEOUT_S = 5.0
#: ``DXL_CATCH_UP_TIMEOUT``'s default: how long a start waits for a node below a block it needs (the
#: deployment's newest) when no node of the network holds that block yet (a restarted node importing what it
#: missed).
DEFAULT_CATCH_UP_TIMEOUT_S = 60.0
#: ``DXL_RPC_TIMEOUT``'s default: how long each request to the node is waited for. A read of a busy node's
#: head or a large ``eth_getLogs`` can take seconds; a node that does not answer in this time is given up on
#: (the chain client then moves to another node of the network). The verifier's readers wait as long by
#: default (``dxl verify`` reads with them).
DEFAULT_RPC_TIMEOUT_S = DEFAULT_TIMEOUT_S


class Settings(BaseSettings):
    """Settings of the chain client, the embedded node, the keystore and the audit trail.

    ``rpc_url`` unset means "start the embedded node"; set, dxl talks to that node and ``chain_id`` must be
    set too (an explicit chain id is what keeps a mistyped URL from signing on another network).
    """

    model_config = SettingsConfigDict(env_prefix="DXL_", env_file=".env", extra="ignore")

    home: Path = Field(
        default=Path(".dxl"), description="Data directory (node state, keys, deployment record)."
    )
    env: Environment = Environment.DEVELOPMENT
    rpc_url: str | None = Field(default=None, description="External node JSON-RPC URL; unset: embedded node.")
    chain_id: int | None = Field(default=None, description="Chain id expected at rpc_url.")
    rpc_failover_urls: str = Field(
        default="",
        description="Comma-separated URLs of other nodes of the network, used when rpc_url stops answering.",
    )
    keystore_passphrase: SecretStr | None = None
    keystore_passphrase_file: Path | None = None
    node_port: int = Field(default=8545, description="RPC port of the embedded node on 127.0.0.1.")
    geth: Path | None = Field(
        default=None,
        description="geth executable of the local network (dxl network up, dxl run --network); unset: the "
        "one make geth built, .tools/bin/geth.",
    )
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; unset: SQLite under home.")
    stall_timeout: float = Field(
        default=DEFAULT_STALL_TIMEOUT_S,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds of the chain's time a node's head may be behind the most advanced node's before "
        "the node counts as stalled: the service's chain client leaves it, a command reads from another.",
    )
    rpc_timeout: float = Field(
        default=DEFAULT_RPC_TIMEOUT_S,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds each request to the node is waited for (a read, its head, a send) before it "
        "counts as not answering: the chain client then moves to another node of the network, or the "
        "request fails (503 NODE_UNAVAILABLE).",
    )
    catch_up_timeout: float = Field(
        default=DEFAULT_CATCH_UP_TIMEOUT_S,
        gt=0,
        le=86400,
        allow_inf_nan=False,
        description="Seconds a start waits for a node below a block it needs (the deployment's newest) when "
        "no node of the network holds it yet.",
    )
    audit_batch_blocks: int = Field(default=2000, ge=1, description="Blocks per eth_getLogs of the indexer.")
    confirmations: int = Field(
        default=0,
        ge=0,
        description="Blocks on top of the one holding a transaction before dxl calls it final: 0 where "
        "blocks are final once mined (anvil, Besu QBFT), a few where recent blocks may be reorganised "
        "(Clique).",
    )
    audit_confirmations: int = Field(default=0, ge=0, description="Blocks the indexer stays behind the head.")
    audit_scan_refusals: bool = Field(default=True, description="Index refused deliveries from reverted txs.")
    evaluation_period: int = Field(
        default=EVALUATION_PERIOD_S,
        ge=EVALUATION_PERIOD_MIN_S,
        description="Seconds of an evaluation period of the practice contract, fixed when it is deployed: "
        "each side of an agreement is scored once a period, and an inspection covers whole periods, a grid "
        "no auditor chooses (a day at least).",
    )
    audit_response_deadline_days: int = Field(
        default=10, ge=1, description="Working days a provider has to answer a request (scorecards)."
    )

    @field_validator("geth", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        # DXL_GETH= (set, empty) is unset as the table says, not the working directory that Path("") is.
        return None if value == "" else value

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        home = value.expanduser().resolve()
        # A file where the directory, or one of its parents, would be: each command that writes there ended
        # in a traceback (FileExistsError, NotADirectoryError) instead of naming the setting.
        existing = next(p for p in (home, *home.parents) if p.exists())
        if not existing.is_dir():
            raise ValueError(f"{home} cannot be a directory: {existing} is not one")
        return home

    @field_validator("node_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError(f"port must be 1..65535, got {value}")
        return value

    @property
    def audit_depth(self) -> int:
        """Blocks the audit indexer stays behind the head: never fewer than the confirmation depth, so the
        index holds only blocks dxl calls final."""
        return max(self.audit_confirmations, self.confirmations)

    @property
    def failover_urls(self) -> tuple[str, ...]:
        return tuple(u.strip() for u in self.rpc_failover_urls.split(",") if u.strip())

    @property
    def production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def deployment_file(self) -> Path:
        return self.home / "deployment.json"

    @property
    def generated_passphrase_file(self) -> Path:
        return self.secrets_dir / "keystore-passphrase"

    def check(self) -> Settings:
        """Cross-field checks; returns self.

        Raises:
            ConfigurationError: ``rpc_url`` without ``chain_id``; in production, no passphrase configured or
                one shorter than :data:`MIN_PASSPHRASE_LENGTH`.
        """
        if self.rpc_url and self.chain_id is None:
            raise ConfigurationError(
                "DXL_RPC_URL is set but DXL_CHAIN_ID is not: name the chain you expect there"
            )
        if self.failover_urls and not self.rpc_url:
            raise ConfigurationError("DXL_RPC_FAILOVER_URLS is set but DXL_RPC_URL is not")
        if self.production:
            if self.keystore_passphrase is None and self.keystore_passphrase_file is None:
                raise ConfigurationError(
                    "DXL_ENV=production needs DXL_KEYSTORE_PASSPHRASE or DXL_KEYSTORE_PASSPHRASE_FILE; "
                    "dxl generates a passphrase only in development"
                )
            if len(self.passphrase() or "") < MIN_PASSPHRASE_LENGTH:
                raise ConfigurationError(
                    f"keystore passphrase must have at least {MIN_PASSPHRASE_LENGTH} characters in production"
                )
        return self

    def passphrase(self) -> str | None:
        """The configured keystore passphrase (env var first, then the file), or None if none is configured.

        Raises:
            ConfigurationError: the passphrase file is missing, unreadable or empty.
        """
        if self.keystore_passphrase is not None:
            return self.keystore_passphrase.get_secret_value()
        if self.keystore_passphrase_file is not None:
            try:
                text = self.keystore_passphrase_file.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigurationError(
                    f"keystore passphrase file {self.keystore_passphrase_file} is unreadable: {exc.strerror}"
                ) from exc
            if not text:
                raise ConfigurationError(f"keystore passphrase file {self.keystore_passphrase_file} is empty")
            return text
        return None


S = TypeVar("S", bound=Settings)


def load_settings(**overrides: object) -> Settings:
    """Read and check the settings (``overrides`` take precedence over the environment).

    Raises:
        ConfigurationError: a value is malformed, or the cross-field checks of :meth:`Settings.check` fail.
    """
    return read_settings(Settings, **overrides)


def _problem(err: ErrorDetails) -> str:
    """What is wrong with one setting: a check's own sentence as it wrote it (pydantic puts "Value error, "
    before it, which told the operator nothing), else pydantic's message."""
    if err["type"] == "value_error" and "error" in err.get("ctx", {}):
        return str(err["ctx"]["error"])
    return err["msg"]


def read_settings(cls: type[S], **overrides: object) -> S:
    """Read and check settings of ``cls`` (``Settings`` or a subclass such as the API's).

    Raises:
        ConfigurationError: a value is malformed, or the cross-field checks of :meth:`Settings.check` fail.
    """
    try:
        settings = cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"DXL_{'_'.join(str(p) for p in err['loc']).upper()}: {_problem(err)}" for err in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None
    settings.check()
    return settings
