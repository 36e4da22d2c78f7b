"""The API's settings: dxl's :class:`~node.settings.Settings` and what only the HTTP service needs.

``DXL_API_HOST``/``DXL_API_PORT`` (where it listens), the follower's interval, the receipt batching and how
often the transaction journal looks at the node (``DXL_CHAIN_WATCH_INTERVAL``) of the running service. One
:class:`ApiSettings` object is read at the top (``dxl run``, or the app's start) and handed down: the ledger
client and the audit trail take it as the :class:`~node.settings.Settings` it is.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pydantic import Field, SecretStr, field_validator

from node.settings import Settings, read_settings


@dataclass(frozen=True)
class Rate:
    """``per_second`` requests a second on average, up to ``burst`` at once; ``per_second`` 0: no limit."""

    per_second: float
    burst: int

    @property
    def limited(self) -> bool:
        return self.per_second > 0


@dataclass(frozen=True)
class RateLimits:
    """The rates :class:`~api.limits.RateLimitMiddleware` holds requests to (settings ``DXL_API_RATE_*`` and
    ``DXL_API_AUTH_FAILURE_*``)."""

    principal: Rate
    auth_failures: Rate
    #: Requests of one principal in progress at once; more wait their turn (0: no bound).
    concurrency: int = 0


class ApiSettings(Settings):
    """:class:`~node.settings.Settings` plus the HTTP service's own."""

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # The API and token of the commands that act through it (`dxl request|demand|evaluation|inspection`), when
    # --api and --token are not given: settings, so that a .env file sets them as it sets every other variable
    # (the commands' options read the process environment alone). Unset, the API is this one (listen_url).
    api_url: str | None = None
    token: SecretStr | None = Field(default=None, repr=False)
    api_trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For names the client "
        "(its address counts failed authentications); empty: none, the client is the connection's peer.",
    )
    audit_follow_interval: float = Field(
        default=2.0, ge=0, allow_inf_nan=False, description="Seconds between audit index syncs; 0: none."
    )
    receipt_batch_size: int = Field(
        default=4096, ge=1, le=1_000_000, description="Receipts of one grant that close a batch at once."
    )
    receipt_batch_age: float = Field(
        default=0.2,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds a grant's oldest pending receipt waits before its batch closes anyway.",
    )
    inspection_draw_interval: float = Field(
        default=2.0,
        ge=0,
        allow_inf_nan=False,
        description="Seconds between the API's looks for open inspections whose seed block is mined, which "
        "it draws; 0: never (draw with POST /inspections/{id}/draw before 256 blocks pass).",
    )
    chain_watch_interval: float = Field(
        default=0.5,
        ge=0,
        allow_inf_nan=False,
        description="Seconds between the API's looks at the node (its journal is reconciled when the node "
        "comes back); 0: only at start.",
    )

    api_rate_limit: float = Field(
        default=10_000,
        ge=0,
        allow_inf_nan=False,
        description="Requests a second one principal (all its tokens) may send on average; 0: no limit.",
    )
    api_rate_burst: int = Field(
        default=20_000, ge=1, description="Requests one principal may send at once, above its rate."
    )
    api_concurrency: int = Field(
        default=0,
        ge=0,
        description="Requests of one principal (all its tokens) in progress at once; more wait their turn, "
        "so that one department's slow requests leave the service's threads to the others; 0: no bound.",
    )
    api_auth_failure_limit: float = Field(
        default=50,
        ge=0,
        allow_inf_nan=False,
        description="Failed authentications (answers 401) a second one client address may cause on average; "
        "over it, its requests without a token known good are refused 429; 0: no limit.",
    )
    api_auth_failure_burst: int = Field(
        default=1_000, ge=1, description="Failed authentications one client address may cause at once."
    )

    @property
    def rate_limits(self) -> RateLimits:
        return RateLimits(
            principal=Rate(self.api_rate_limit, self.api_rate_burst),
            auth_failures=Rate(self.api_auth_failure_limit, self.api_auth_failure_burst),
            concurrency=self.api_concurrency,
        )

    @field_validator("api_trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        for entry in (e.strip() for e in value.split(",")):
            if entry and entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(
                        f"a trusted proxy is an address, a network or *, got {entry!r}"
                    ) from None
        return value

    @field_validator("api_port")
    @classmethod
    def _api_port(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError(f"port must be 1..65535, got {value}")
        return value

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'dxl.sqlite3'}"

    @property
    def listen_url(self) -> str:
        """Where this service listens (``DXL_API_HOST``, ``DXL_API_PORT``)."""
        return f"http://{self.api_host}:{self.api_port}"


def load_api_settings(**overrides: object) -> ApiSettings:
    """Read and check the API's settings (``overrides`` take precedence over the environment).

    Raises:
        ConfigurationError: as :func:`node.settings.read_settings`.
    """
    return read_settings(ApiSettings, **overrides)
