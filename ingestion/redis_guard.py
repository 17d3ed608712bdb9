"""Redis behind one circuit breaker named `redis`: every Redis call of the service goes
through `GuardedRedis.call`.

REDIS_URL may name a Redis Cluster (`redis+cluster://host:port`, any node): redis-py's
RedisCluster then only maps keys to nodes. Every command goes to the node that holds its
key over that node's plain client, with this module's timeouts and no retries: the
cluster client's own command path retries a failed command, sleeps 0.25 s on
CLUSTERDOWN and reloads the slot map on each failure, so a hung node held a relay batch
for 20 s while the breaker saw one failure. After a failure the slot map is reloaded
once, on the next call the breaker lets through. The cluster client is made on first
use, under the breaker (a cluster that is away at start degrades the service as a
single Redis does, it never stops it). Every script touches one key (rate_window.py
splits its fetch off), and the stream is one per vendor and account (stream/redis_stream.py).

Why it works this way: docs/design.md, "Redis behind a circuit breaker".
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import hashlib
from dataclasses import dataclass, field

import redis
from circuitbreaker import STATE_CLOSED, STATE_HALF_OPEN, STATE_OPEN, CircuitBreaker
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisClusterException
from redis.retry import Retry

from .config import Settings
from .errors import RedisUnavailable
from .metrics import BREAKER_STATE, REDIS_DURATION, REDIS_OPERATIONS, child

log = logging.getLogger(__name__)
T = TypeVar("T")

#: ingestion_circuit_breaker_state's values: 0 closed, 1 open, 2 half-open.
BREAKER_STATES = {STATE_CLOSED: 0, STATE_OPEN: 1, STATE_HALF_OPEN: 2}
#: RedisClusterException is not a RedisError: the cluster client raises it when no node
#: answers or a slot is not covered.
OUTAGE_ERRORS = (redis.RedisError, RedisClusterException, OSError)
#: The event stream: the relay appends to it (jobs/relay.py), the console measures it.
STREAM = "ingestion:tickets"
#: On a Redis Cluster: the set naming every stream (one per vendor and account, stream/redis_stream.py).
STREAMS = "ingestion:tickets:streams"


@dataclass(frozen=True)
class Script:
    """A Lua script and its SHA1, for EVALSHA (then EVAL when the server lost it). The
    SHA1 is computed once: the rate-limit script runs on every request."""

    script: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        # how Redis names it
        object.__setattr__(self, "sha", hashlib.sha1(self.script.encode(), usedforsecurity=False).hexdigest())


def _is_outage(exc_type: type[BaseException], _exc: BaseException) -> bool:
    return issubclass(exc_type, OUTAGE_ERRORS)


class GuardedRedis:
    def __init__(self, settings: Settings) -> None:
        assert settings.redis_url
        self.cluster = settings.redis_cluster
        self._options: dict[str, Any] = {
            "socket_timeout": settings.redis_timeout,
            "socket_connect_timeout": settings.redis_timeout,
            "retry": Retry(NoBackoff(), 0),  # the breaker decides, not hidden retries
        }
        self._url = settings.redis_url.replace("+cluster://", "://", 1)
        self._stale_map = False  # (cluster) a call failed: reload the slot map before the next
        self._client: Any = None if self.cluster else redis.Redis.from_url(
            self._url, health_check_interval=0, **self._options)
        self.breaker = CircuitBreaker(
            failure_threshold=settings.circuit_breaker_threshold,
            recovery_timeout=settings.circuit_breaker_timeout,
            expected_exception=_is_outage,
            name="redis",
        )
        self._last_state = self.state_name
        self._reporter_pid: int | None = None
        # The hot path's own connection (see run_script), one per process.
        self._script_lock = threading.Lock()
        self._script_connection: Any = None
        self._script_connection_pid: int | None = None
        self._gauge = BREAKER_STATE.labels("redis")
        self._gauge.set(BREAKER_STATES[self._last_state])

    @property
    def client(self) -> Any:
        """redis.Redis, or (cluster) RedisCluster, made here on first use: its constructor
        asks a node for the slot map, so it runs inside `call`, under the breaker."""
        if self._client is None:
            self._client = RedisCluster.from_url(self._url, **self._options)
        return self._client

    def node(self, client: Any, key: str) -> redis.Redis:
        """(cluster) The plain client of the node that holds `key`, to run commands on
        (inside `call`). The slot map is reloaded first when the last call failed."""
        if self._stale_map:
            client.nodes_manager.initialize()
            self._stale_map = False
        return client.get_node_from_key(key).redis_connection

    @property
    def state_name(self) -> str:
        return self.breaker.state

    def call(self, operation: str, work: Callable[[redis.Redis], T]) -> T:
        """Run `work(client)` under the breaker; RedisUnavailable when Redis cannot serve it."""
        if self.breaker.opened:
            child(REDIS_OPERATIONS, operation, "rejected").inc()
            self.note_state()
            raise RedisUnavailable("circuit breaker open")
        started = time.perf_counter()
        status = "error"
        try:
            with self.breaker:
                result = work(self.client)  # (a cluster's client is made here, under the breaker)
            status = "ok"
            return result
        except OUTAGE_ERRORS as error:
            self._stale_map = self.cluster  # a node may have gone, or its slots moved
            raise RedisUnavailable(f"{operation}: {type(error).__name__}") from None
        finally:
            child(REDIS_OPERATIONS, operation, status).inc()
            child(REDIS_DURATION, operation).observe(time.perf_counter() - started)
            self.note_state()

    def run_script(self, operation: str, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA `script` under the breaker, on a connection this process keeps for it.

        The per-request scripts (rate limit, duplicate lookup) skip redis-py's client
        layers: borrowing from and returning to the pool, the retry wrapper and argument
        filtering cost several times the call itself (docs/performance.md has the
        figures). A cluster's calls go through RedisCluster, which routes each by its key.
        The command, the reply parsing (hiredis) and the
        exceptions are still redis-py's own, and so is the error handling: a reply error
        leaves the connection usable, any other failure of a send or a read closes it (a
        late reply is never read as the answer to the next command) and the next send
        reconnects.
        """
        if self.cluster:
            return self.call(operation, lambda client: self._cluster_evalsha(self.node(client, keys[0]), script,
                                                                             keys, args))
        return self.call(operation, lambda _client: self._evalsha(script, keys, args))

    def run_command(self, operation: str, *command: Any) -> Any:
        """One plain command (GET, SET...) on the same kept connection as run_script."""
        if self.cluster:
            return self.call(operation, lambda client: self.node(client, command[1]).execute_command(*command))
        return self.call(operation, lambda _client: self._send(command))

    def _kept_connection(self) -> Any:
        if self._script_connection_pid != os.getpid():  # never a socket inherited over fork
            self._script_connection = self.client.connection_pool.make_connection()
            self._script_connection_pid = os.getpid()
        return self._script_connection

    def _send(self, command: Sequence[Any]) -> Any:
        with self._script_lock:  # a sync worker is one thread; health checks run beside it
            connection = self._kept_connection()
            connection.send_command(*command)
            return connection.read_response()

    def _evalsha(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        with self._script_lock:  # a sync worker is one thread; health checks run beside it
            connection = self._kept_connection()
            try:
                connection.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
                return connection.read_response()
            except NoScriptError:  # Redis restarted or was flushed: EVAL loads it again
                connection.send_command("EVAL", script.script, len(keys), *keys, *args)
                return connection.read_response()

    @staticmethod
    def _cluster_evalsha(node: redis.Redis, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return node.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:  # a node restarted or was flushed: EVAL loads it there again
            return node.eval(script.script, len(keys), *keys, *args)

    def note_state(self) -> None:
        """On a transition, publish the state to the gauge (0 closed, 1 open, 2 half-open)
        and log it. Called after every Redis call and every second by the reporter, so
        the gauge is written only when something changed, not on the hot path."""
        state = self.breaker.state
        if state != self._last_state:
            self._gauge.set(BREAKER_STATES[state])
            log.warning("redis circuit breaker %s", state.replace("_", "-"),
                        extra={"breaker": "redis", "from": self._last_state, "to": state})
            self._last_state = state

    def start_state_reporter(self, interval: float = 1.0) -> None:
        """Keep the gauge current in this process even when no call is made: the breaker
        turns half-open by the passage of time, not by a call. Half-open, the reporter
        makes the trial call itself (a PING): a worker that got no webhook since would
        otherwise stay half-open, and the breaker alert fire in a quiet hour after Redis
        came back. Once per process (after fork)."""
        if self._reporter_pid == os.getpid():
            return
        self._reporter_pid = os.getpid()

        def report() -> None:
            while True:
                # Half-open since the last tick (so the gauge showed it for one): the trial.
                if self.breaker.state == STATE_HALF_OPEN and self._last_state == STATE_HALF_OPEN:
                    self.ping()  # closes the breaker, or opens it again
                self.note_state()
                time.sleep(interval)

        threading.Thread(target=report, name="breaker-state", daemon=True).start()

    def _ping(self, client: Any) -> bool:
        if not self.cluster:
            return bool(client.ping())
        if self._stale_map:
            client.nodes_manager.initialize()
            self._stale_map = False
        return all(node.redis_connection.ping() for node in client.get_primaries())  # every slot answers

    def ping(self) -> bool:
        try:
            return bool(self.call("ping", self._ping))
        except RedisUnavailable:
            return False
