"""``[[metrics_stores]] type = "redis"``: the store's options, validated when the
config is resolved (problems are reported as ``config.metrics_stores[N].key: ...``)."""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs

from engine import Secret, interval, parse_interval, positive

__all__ = ["SCHEMES", "RedisConfig"]

#: URL schemes redis-py understands: TCP, TLS, a Unix socket.
SCHEMES = ("redis", "rediss", "unix")


def _url(_inst: object, _attr: object, value: str) -> None:
    """attrs validator: a Redis URL with no password in it."""
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ValueError(f"not a URL ({exc}): {value!r}") from None
    if parts.scheme not in SCHEMES:
        raise ValueError(
            "expected a URL like redis://127.0.0.1:6379/0 (schemes: "
            f"{', '.join(s + '://' for s in SCHEMES)}), got {value!r}"
        )
    if parts.password is not None or "password" in parse_qs(parts.query):
        # the URL is shown in dumps and logs; the Secret never is
        raise ValueError('the URL holds a password: set password = { env = "NAME" } instead')
    from redis import ConnectionPool

    try:  # parsed as the client will (nothing connects): a bad port or option fails here
        ConnectionPool.from_url(value)
    except ValueError as exc:
        raise ValueError(f"{exc} ({value!r})") from None


def _prefix(_inst: object, _attr: object, value: str) -> None:
    """attrs validator: a non-empty key prefix without whitespace."""
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"expected a non-empty prefix without spaces, got {value!r}")


@attrs.frozen
class RedisConfig:
    """``[[metrics_stores]] type = "redis"``: where the series go and how long they are.

    ``password`` is a :class:`~engine.Secret` (``{ env = "NAME" }``): its repr and
    the config's dump show ``***``. ``source`` names this engine process in every
    key, so that several processes can write to one Redis; empty means
    ``<hostname>:<pid>``.
    """

    #: redis://host:port/db, rediss:// (TLS) or unix:///path.sock?db=N; no password here
    url: str = attrs.field(default="redis://127.0.0.1:6379/0", validator=_url)
    #: the password (AUTH), e.g. ``{ env = "REDIS_PASSWORD" }``
    password: Secret | None = None
    #: first segment of every key this store writes
    prefix: str = attrs.field(default="engine", validator=_prefix)
    #: names this engine process (empty: ``<hostname>:<pid>``)
    source: str = ""
    #: width of a time bucket (engine time); the last value of each bucket is kept
    bucket: str = attrs.field(default="1m", validator=interval)
    #: buckets kept per series (the oldest are dropped)
    retention: int = attrs.field(default=10_000, validator=positive)
    #: socket connect and read timeout: the longest a dead Redis stalls a collection
    timeout: str = attrs.field(default="500ms", validator=interval)

    @property
    def bucket_ns(self) -> int:
        """The bucket width in nanoseconds."""
        return parse_interval(self.bucket)

    @property
    def timeout_seconds(self) -> float:
        """The timeout in seconds, as redis-py takes it."""
        return parse_interval(self.timeout) / 1e9

    def source_name(self) -> str:
        """``source``, or ``<hostname>:<pid>`` when it is empty."""
        return self.source or f"{socket.gethostname()}:{os.getpid()}"

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.Redis.from_url`` (the password revealed)."""
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        seconds = self.timeout_seconds
        return {
            "password": None if self.password is None else self.password.reveal(),
            "socket_timeout": seconds,
            "socket_connect_timeout": seconds,
            # redis-py retries 10 times by default: a dead Redis would stall each
            # collection for seconds. A failed write is lost; the next one tries again.
            "retry": Retry(NoBackoff(), 0),
            "decode_responses": True,
        }
