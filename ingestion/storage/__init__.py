"""PostgreSQL: the pool and its error translation (pool.py), the operations (operations.py)
as named queries (queries.py), and the versioned schema (migrate.py, migrations/)."""

from .operations import Storage

__all__ = ["Storage"]
