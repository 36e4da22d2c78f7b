"""The HTTP session the chain client's web3 provider posts JSON-RPC through.

A node reached over plain HTTP without a proxy (the embedded node, the local network's members, a node on
the same host or network) gets :class:`PlainHttpSession`: each request goes straight to urllib3's connection
pool. ``requests`` builds, for every call, a request object, merges the session's cookies, hooks and settings
into it, runs the response through its cookie jar twice and wraps the headers: half of the CPU of a JSON-RPC
call from Python (0.76 ms of 1.07 ms for ``eth_getBlockByNumber``, with the session below), paid on every
read and write the API and the anchorer make. Failures are the exceptions ``requests`` raises for them, so
the provider's retries and the client's failover see exactly what they saw before.

A node behind a proxy or reached over HTTPS keeps a ``requests`` session (proxy tunnels, the CA bundle the
environment names): what it does there is not repeated here.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
from urllib3.exceptions import HTTPError as Urllib3Error

#: Connections kept open to the node: as many as the API's worker threads that may call it at once.
POOL_SIZE = 64


def node_session(url: str) -> requests.Session | PlainHttpSession:
    """The session for the node at ``url``: :class:`PlainHttpSession` for plain HTTP without a proxy, else a
    ``requests`` session with the environment's proxy and CA settings for ``url`` read once, here.

    A ``requests`` session that trusts the environment reads all of it again on every request (a fifth of a
    read's CPU), and a thread doing so while another changes the environment fails with a KeyError, which
    killed the API's chain watcher in the tests.
    """
    session = requests.Session()
    found = session.merge_environment_settings(url, {}, None, None, None)
    # requests' own choice of proxy for the URL: by scheme, by scheme and host, or ALL_PROXY.
    if urlsplit(url).scheme == "http" and requests.utils.select_proxy(url, found["proxies"]) is None:
        return PlainHttpSession()
    session.trust_env = False
    session.proxies.update(found["proxies"])
    session.verify = found["verify"]
    # The API's worker threads share it: a pool as large as their number keeps each connection open.
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=POOL_SIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class PlainHttpResponse:
    """What web3's provider reads of a response: the status, the body, ``raise_for_status``."""

    def __init__(self, url: str, status_code: int, reason: str | None, content: bytes) -> None:
        self.url = url
        self.status_code = status_code
        self.reason = reason or ""
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        """Raises ``requests.HTTPError`` for a 4xx or 5xx status, as ``requests.Response`` does."""
        if 400 <= self.status_code < 600:
            kind = "Client" if self.status_code < 500 else "Server"
            raise requests.HTTPError(
                f"{self.status_code} {kind} Error: {self.reason} for url: {self.url}",
                response=self,  # type: ignore[arg-type]
            )

    def close(self) -> None:
        """Nothing to release: the body is read whole and the connection is back in the pool."""

    def __enter__(self) -> PlainHttpResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PlainHttpSession:
    """POST to a plain-HTTP node through one urllib3 pool shared by every thread (no retries here: the
    provider and the client decide what is sent again).

    Raises (``post``), as ``requests`` does for the same failures:
        requests.ConnectTimeout: no connection within the timeout.
        requests.ReadTimeout: no answer within the timeout.
        requests.ConnectionError: the connection was refused, reset or closed before the answer.
    """

    def __init__(self) -> None:
        self._pool = urllib3.PoolManager(num_pools=1, maxsize=POOL_SIZE, retries=False)

    def post(
        self,
        url: str,
        data: bytes | str | None = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
    ) -> PlainHttpResponse:
        if stream:
            raise ValueError("PlainHttpSession reads each answer whole: no streamed responses")
        body = data.encode("utf-8") if isinstance(data, str) else data
        try:
            answer = self._pool.request(
                "POST",
                url,
                body=body,
                headers=headers,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                redirect=False,
            )
        except NewConnectionError as exc:  # a ConnectTimeoutError to urllib3, a refusal to requests
            raise requests.ConnectionError(exc) from exc
        except ConnectTimeoutError as exc:
            raise requests.ConnectTimeout(exc) from exc
        except ReadTimeoutError as exc:
            raise requests.ReadTimeout(exc) from exc
        except (Urllib3Error, OSError) as exc:
            raise requests.ConnectionError(exc) from exc
        return PlainHttpResponse(url, answer.status, answer.reason, answer.data)

    def close(self) -> None:
        self._pool.clear()
