"""What every client shares, whichever protocol it speaks: the `Client` contract with its persistent
HTTP connection per thread, `RequestFailed`, and the KServe v2 datatype names.

Kept apart from `clients` (the HTTP protocols and the `client()` factory) so that the gRPC client,
which `client()` imports only when asked for, builds on it without importing the factory back.
"""

from __future__ import annotations

import http.client
import os
import ssl
import threading
from abc import ABC, abstractmethod
from typing import ClassVar
from urllib.parse import urlsplit

import numpy as np

from inferarena.errors import ConfigError

DATATYPES = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "int32": "INT32", "float16": "FP16",
             "int8": "INT8", "uint8": "UINT8", "bool": "BOOL"}


# Where a remote target's API key comes from: the environment only, never an option, a config or the
# store (a key on the command line lands in shell history and `ps`). Sent as `Authorization: Bearer`.
API_KEY_VARIABLES = ("INFERARENA_API_KEY",)


class RequestFailed(Exception):
    pass


def api_key(variables: tuple[str, ...] = API_KEY_VARIABLES) -> str | None:
    return next((os.environ[v] for v in variables if os.environ.get(v)), None)


def tls_context() -> ssl.SSLContext:
    """Certificates and host names verified, always: the system's CAs, or SSL_CERT_FILE's for a private CA."""
    return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or None)


class Client(ABC):
    protocol: ClassVar[str]
    key_variables: ClassVar[tuple[str, ...]] = API_KEY_VARIABLES

    def __init__(self, base_url: str, model: str, timeout_s: float = 30.0):
        parts = urlsplit(base_url if "://" in base_url else f"http://{base_url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"cannot use target {base_url!r}", "give an http://host:port or https://host:port URL")
        self.tls = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port or (443 if self.tls else 80)
        # Built once, not per request: the key lookup and the CA file read stay out of the timed loop.
        self._tls_context = tls_context() if self.tls else None
        key = api_key(self.key_variables)
        self._auth = {"Authorization": f"Bearer {key}"} if key else {}
        self.prefix = parts.path.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self._local = threading.local()

    @abstractmethod
    def path(self) -> str: ...

    def connect(self) -> http.client.HTTPConnection:
        if self.tls:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout_s, context=self._tls_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Content-Type": "application/json", **extra, **self._auth}

    @abstractmethod
    def encode(self, inputs: dict[str, np.ndarray]) -> bytes:
        """One request body for these input arrays (each with its batch axis)."""

    @abstractmethod
    def decode(self, body: bytes) -> dict[str, np.ndarray]: ...

    def post(self, body: bytes) -> bytes:
        """Send one encoded request on this thread's connection; the raw answer, or RequestFailed."""
        connection = getattr(self._local, "connection", None)
        for attempt in (0, 1):  # a kept-alive connection the server closed gets one fresh retry
            if connection is None:
                connection = self.connect()
                self._local.connection = connection
            try:
                connection.request("POST", self.prefix + self.path(), body, self.headers())
                response = connection.getresponse()
                data = response.read()
            except ssl.SSLCertVerificationError as exc:  # not worth a retry, and it must not pass for load
                connection.close()
                self._local.connection = None
                raise RequestFailed(f"TLS certificate of {self.host} not trusted ({exc.verify_message}); "
                                    "point SSL_CERT_FILE at its CA") from None
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                connection.close()
                connection = self._local.connection = None
                if attempt:
                    raise RequestFailed(f"{type(exc).__name__}: {exc}") from None
                continue
            if response.status != 200:
                raise RequestFailed(f"HTTP {response.status}: {data[:200].decode(errors='replace')}")
            return data
        raise RequestFailed("unreachable")

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.decode(self.post(self.encode(inputs)))

    def close(self) -> None:  # noqa: B027 - optional: HTTP connections close with their threads
        """Release what the client holds open (gRPC channels)."""
