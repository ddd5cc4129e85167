"""Chain stores: where each session's chain state lives, so that any process can continue it.

A session's *chain* is what the next turn needs to send only the new input with
``previous_response_id``: the last response's id, a :class:`~openai_ws.chain.Fingerprint` of
the request it answered, whether the server stored it, the model and the time. The store keeps
one :class:`ChainRecord` per session id; the session asks the store, the store knows nothing of
sockets.

* :class:`MemoryChainStore` (the default, one per :class:`~openai_ws.Client`): this process only.
* :class:`RedisChainStore` (extra ``openai-ws[redis]``): shared by every worker process and
  machine that points at the same Redis, so a turn that lands on another worker still chains
  (for ``store: true`` conversations; a ``store: false`` response lives in one socket's memory,
  so another worker resends it in full).

Any object with the three methods of :class:`ChainStore` will do. A store that cannot answer
raises; the client then logs one WARNING per outage on the ``openai_ws`` logger, leaves the
store alone for a few seconds, and each session falls back to its own socket's memory, or to a
full request. Nothing raises out of a stream because of a store.
"""

from __future__ import annotations

import collections
import importlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Final, Protocol, runtime_checkable

import attrs

from ._redact import redact
from .chain import Fingerprint
from .exceptions import OpenAIWSError

__all__ = [
    "ChainRecord",
    "ChainStore",
    "ChainStoreError",
    "DeferredFingerprint",
    "MemoryChainStore",
    "RedisChainStore",
]

logger = logging.getLogger("openai_ws")

JSONDict = dict[str, Any]

#: The format of a record's JSON text; a record in another format reads as absent.
RECORD_VERSION: Final = 1
#: How long the client leaves a failed store alone before it asks again (seconds).
RETRY_INTERVAL: Final = 5.0


class ChainStoreError(OpenAIWSError):
    """A chain store could not answer (unreachable, too slow, refused). Never reaches a
    stream's caller: the session falls back to its socket's memory or a full request."""


class DeferredFingerprint:
    """A :class:`~openai_ws.chain.Fingerprint` computed when first read, by *make*.

    The session that wrote a record to a :class:`MemoryChainStore` plans its next turn from its
    own memory, so in one process the fingerprint is mostly never read: it is computed only if
    another session reads the record, or when the session closes (so that the record no
    longer holds the request it was made from). A copy or a pickle holds the computed
    fingerprint. Thread-safe (two first readers may both compute it; they get equal values).
    """

    __slots__ = ("_make", "_value")

    def __init__(self, make: Callable[[], Fingerprint]) -> None:
        self._make: Callable[[], Fingerprint] | None = make
        self._value: Fingerprint | None = None

    def resolve(self) -> Fingerprint:
        value = self._value
        if value is None:
            make = self._make
            if make is None:  # another thread resolved it meanwhile
                value = self._value
                assert value is not None
                return value
            value = self._value = make()
            self._make = None  # drops what it was made from
        return value

    def __reduce__(self) -> tuple[Any, ...]:
        return (_same, (self.resolve(),))


def _same(value: Fingerprint) -> Fingerprint:
    return value


def _resolved(value: Fingerprint | DeferredFingerprint) -> Fingerprint:
    return value.resolve() if isinstance(value, DeferredFingerprint) else value


@attrs.frozen
class ChainRecord:
    """One session's chain, as a store keeps it (immutable; a few hundred bytes).

    Attributes:
        response_id: the last completed response's id.
        stored: whether the server stored it (``store: true``): then any connection, in any
            process, can chain from it; else only the socket it completed on.
        model: the model that produced it.
        fingerprint: the digests the next turn's request is checked against (given as a
            :class:`~openai_ws.chain.Fingerprint`, or a :class:`DeferredFingerprint`).
        scope: a digest of the endpoint, key and headers it was made with; a session with
            another scope ignores the record (another key may not see that response).
        created: when the response completed (``time.time()``).
    """

    response_id: str
    stored: bool
    model: str | None
    _fingerprint: Fingerprint | DeferredFingerprint = attrs.field(
        eq=_resolved, repr=lambda value: repr(_resolved(value))
    )
    scope: str = ""
    created: float = attrs.field(factory=time.time)

    @property
    def fingerprint(self) -> Fingerprint:
        return _resolved(self._fingerprint)

    @property
    def deferred(self) -> bool:
        """Whether the fingerprint is still to be computed."""
        value = self._fingerprint
        return isinstance(value, DeferredFingerprint) and value._value is None

    def to_json(self) -> str:
        """The record as one JSON text (what :class:`RedisChainStore` writes)."""
        fp = self.fingerprint
        return json.dumps(
            {
                "v": RECORD_VERSION,
                "response_id": self.response_id,
                "stored": self.stored,
                "model": self.model,
                "settings": fp.settings,
                "prefix": fp.prefix,
                "length": fp.length,
                "wrappers": list(fp.wrappers),
                "scope": self.scope,
                "created": self.created,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ChainRecord | None:
        """The record in *text*, or None when it is not one (another version, damaged)."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != RECORD_VERSION:
                return None
            wrappers = data.get("wrappers") or []
            if not isinstance(wrappers, list) or not all(isinstance(w, dict) for w in wrappers):
                return None
            fields = (data["response_id"], data["settings"], data["prefix"], data["scope"])
            if not all(isinstance(f, str) for f in fields) or not isinstance(data["length"], int):
                return None
            model = data.get("model")
            return cls(
                response_id=data["response_id"],
                stored=bool(data["stored"]),
                model=model if isinstance(model, str) else None,
                fingerprint=Fingerprint(
                    data["settings"], data["prefix"], data["length"], tuple(wrappers)
                ),
                scope=data["scope"],
                created=float(data["created"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


@runtime_checkable
class ChainStore(Protocol):
    """Where sessions keep their chains. Every method may be called from any thread.

    A method that cannot do its work raises (preferably :class:`ChainStoreError`); it should
    give up within a short time (a second or less), because a turn waits for it.
    """

    def get(self, session_id: str) -> ChainRecord | None:
        """The session's record, or None when there is none (never made, expired, deleted)."""
        ...

    def put(self, session_id: str, record: ChainRecord) -> None:
        """Replace the session's record, atomically (the last writer wins)."""
        ...

    def delete(self, session_id: str) -> None:
        """Forget the session's record (no error when there is none)."""
        ...


_MEMORY_STORES: weakref.WeakSet[MemoryChainStore] = weakref.WeakSet()


class MemoryChainStore:
    """Chains in this process's memory: the default, one per :class:`~openai_ws.Client`.

    Share one between clients by passing it to each. Thread-safe. Safe across ``os.fork()``:
    the child keeps the records, with a lock of its own.

    Args:
        max_entries: keep at most this many records, dropping the least recently used (a
            dropped chain means one full request); None for no bound.
        ttl: forget a record this many seconds after it was written (None: never).
    """

    def __init__(self, *, max_entries: int | None = 100_000, ttl: float | None = None) -> None:
        if max_entries is not None and max_entries < 1:
            raise ValueError(f"max_entries must be at least 1 (or None), got {max_entries!r}")
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be positive (or None), got {ttl!r}")
        self.max_entries = max_entries
        self.ttl = ttl
        self._records: collections.OrderedDict[str, tuple[float, ChainRecord]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()
        _MEMORY_STORES.add(self)

    def __repr__(self) -> str:
        return f"<MemoryChainStore records={len(self._records)}>"

    def __len__(self) -> int:
        return len(self._records)

    def get(self, session_id: str) -> ChainRecord | None:
        with self._lock:
            entry = self._records.get(session_id)
            if entry is None:
                return None
            written, record = entry
            if self.ttl is not None and time.monotonic() - written > self.ttl:
                del self._records[session_id]
                return None
            self._records.move_to_end(session_id)
            return record

    def put(self, session_id: str, record: ChainRecord) -> None:
        with self._lock:
            self._records[session_id] = (time.monotonic(), record)
            self._records.move_to_end(session_id)
            if self.max_entries is not None:
                while len(self._records) > self.max_entries:
                    self._records.popitem(last=False)

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._records.pop(session_id, None)


def _import_redis() -> Any:
    try:
        return importlib.import_module("redis")
    except ImportError as exc:
        raise ImportError(
            "RedisChainStore needs redis-py, which the redis extra installs: run "
            'python3 -m pip install ".[redis]" in a clone of openai-ws '
            "(or: python3 -m pip install redis)"
        ) from exc


class RedisChainStore:
    """Chains in Redis, shared by every process that uses the same server and prefix.

    Each session's record is one key (``{prefix}chain:{session_id}``) holding one JSON text,
    written with a single ``SET ... EX ttl``: a write is atomic, the last writer wins, and a
    reader sees a whole record or none. Every write sets the expiry again, so a conversation
    that goes on keeps its chain; one idle for ``ttl`` seconds costs one full request.

    Failures: a client made here from a URL gives up after ``socket_timeout`` seconds (0.5 by
    default) and never retries, so no turn waits on Redis for long; its errors are raised as
    :class:`ChainStoreError` (the client logs the first of an outage at WARNING and goes on
    without the store). A client you pass in keeps its own timeouts and retries: give it a
    short ``socket_timeout``.

    Thread-safe (redis-py's connection pool is), and safe across ``os.fork()`` (redis-py opens
    new connections in a child).

    Args:
        redis_or_url: a ``redis://`` / ``rediss://`` / ``unix://`` URL, or a ``redis.Redis``
            client you already have (not closed by :meth:`close`).
        prefix: the start of every key.
        ttl: the keys' expiry in seconds, set on every write.
        socket_timeout: for a client made from a URL: the connect and read timeout, seconds.

    Raises:
        ImportError: redis-py is not installed (the message names the ``redis`` extra).
        ValueError: a bad ``ttl``, ``socket_timeout`` or URL.
    """

    def __init__(
        self,
        redis_or_url: Any,
        *,
        prefix: str = "openai-ws:",
        ttl: int = 3600,
        socket_timeout: float = 0.5,
    ) -> None:
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 1:
            raise ValueError(f"ttl must be a whole number of seconds, at least 1, got {ttl!r}")
        if socket_timeout <= 0:
            raise ValueError(f"socket_timeout must be positive, got {socket_timeout!r}")
        self.prefix = prefix
        self.ttl = ttl
        self._owned = isinstance(redis_or_url, str)
        if self._owned:
            redis = _import_redis()
            retry = importlib.import_module("redis.retry")
            backoff = importlib.import_module("redis.backoff")
            self._redis = redis.Redis.from_url(
                redis_or_url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                retry=retry.Retry(backoff.NoBackoff(), 0),
                retry_on_timeout=False,
            )
        else:
            for method in ("get", "set", "delete"):
                if not callable(getattr(redis_or_url, method, None)):
                    raise TypeError(
                        f"redis_or_url must be a URL or a redis.Redis client, "
                        f"got {type(redis_or_url).__name__}"
                    )
            self._redis = redis_or_url

    def __repr__(self) -> str:  # no URL: it may hold a password
        return f"<RedisChainStore prefix={self.prefix!r} ttl={self.ttl}>"

    @property
    def redis(self) -> Any:
        """The redis-py client in use."""
        return self._redis

    def key(self, session_id: str) -> str:
        """The Redis key of *session_id*'s record."""
        return f"{self.prefix}chain:{session_id}"

    def _call(self, what: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._redis, what)(*args, **kwargs)
        except Exception as exc:  # redis-py's errors, OSError, timeouts: all mean "no answer"
            raise ChainStoreError(
                f"Redis {what.upper()} failed: {type(exc).__name__}: {redact(str(exc))}"
            ) from exc

    def get(self, session_id: str) -> ChainRecord | None:
        raw = self._call("get", self.key(session_id))
        if raw is None:
            return None
        record = ChainRecord.from_json(raw)
        if record is None:
            logger.debug("openai_ws: ignoring an unreadable chain record for %r", session_id)
        return record

    def put(self, session_id: str, record: ChainRecord) -> None:
        self._call("set", self.key(session_id), record.to_json(), ex=self.ttl)

    def delete(self, session_id: str) -> None:
        self._call("delete", self.key(session_id))

    def close(self) -> None:
        """Close the connections of a client made here from a URL (not one you passed)."""
        if self._owned:
            self._redis.close()


class GuardedStore:
    """A store as the sessions of one client use it: a failure never escapes.

    Each call reports whether the store answered. The first failure of an outage is logged
    at WARNING on the ``openai_ws`` logger; then the store is left alone for
    :data:`RETRY_INTERVAL` seconds (calls fail at once, so a hung server does not slow every
    turn), after which one call tries it again. Recovery is logged at INFO. Thread-safe.
    """

    def __init__(self, store: ChainStore, *, retry_interval: float = RETRY_INTERVAL) -> None:
        self.store = store
        self.retry_interval = retry_interval
        self._lock = threading.Lock()
        self._down = False
        self._retry_at = 0.0

    def __repr__(self) -> str:
        return f"<GuardedStore {self.store!r} down={self._down}>"

    @property
    def down(self) -> bool:
        """Whether the last call failed (an outage is under way)."""
        return self._down

    def _skip(self) -> bool:
        if not self._down:  # the common case, without the lock (a bool read is atomic)
            return False
        with self._lock:
            return self._down and time.monotonic() < self._retry_at

    def _failed(self, what: str, exc: Exception) -> None:
        with self._lock:
            first = not self._down
            self._down = True
            self._retry_at = time.monotonic() + self.retry_interval
        if first:
            logger.warning(
                "openai_ws: the chain store %r failed (%s: %s); sessions continue without it "
                "(their sockets' own memory, or full requests) and it is tried again every %gs",
                self.store,
                what,
                redact(str(exc)),
                self.retry_interval,
            )
        else:
            logger.debug("openai_ws: the chain store is still down (%s: %s)", what, exc)

    def _answered(self) -> None:
        if self._down:
            with self._lock:
                was_down, self._down = self._down, False
            if was_down:
                logger.info("openai_ws: the chain store %r answers again", self.store)

    def get(self, session_id: str) -> tuple[bool, ChainRecord | None]:
        """``(True, record or None)`` when the store answered, ``(False, None)`` when not."""
        if self._skip():
            return False, None
        try:
            record = self.store.get(session_id)
        except Exception as exc:
            self._failed("get", exc)
            return False, None
        self._answered()
        return True, record if isinstance(record, ChainRecord) else None

    def put(self, session_id: str, record: ChainRecord) -> bool:
        if self._skip():
            return False
        try:
            self.store.put(session_id, record)
        except Exception as exc:
            self._failed("put", exc)
            return False
        self._answered()
        return True

    def delete(self, session_id: str) -> bool:
        if self._skip():
            return False
        try:
            self.store.delete(session_id)
        except Exception as exc:
            self._failed("delete", exc)
            return False
        self._answered()
        return True

    def after_fork(self) -> None:
        self._lock = threading.Lock()


def _after_fork_in_child() -> None:
    for store in list(_MEMORY_STORES):
        store._lock = threading.Lock()  # another thread may have held it at fork time


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)
