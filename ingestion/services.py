"""The per-app objects views and commands need: built once per app or command, kept on the
app (never in module globals; web/current.py reads them in a request)."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Settings
from .duplicates import DuplicateCache
from .ingest import Ingestor
from .redis_guard import GuardedRedis
from .sources import SourceDirectory
from .storage import Storage
from .vendors import VENDORS

EXTENSION = "ingestion"


@dataclass
class Services:
    settings: Settings
    storage: Storage
    redis: GuardedRedis | None
    ingestor: Ingestor
    sources: SourceDirectory

    @classmethod
    def build(cls, settings: Settings) -> "Services":
        storage = Storage(settings)
        redis = GuardedRedis(settings) if settings.redis_url else None
        duplicates = DuplicateCache(redis, settings.duplicate_cache_ttl) if redis else None
        sources = SourceDirectory(settings, {vendor.name: vendor for vendor in VENDORS}, storage.source,
                                  storage.bind_account_id)
        return cls(settings, storage, redis, Ingestor(storage, duplicates, settings.redelivery_window), sources)

    def start_worker(self) -> None:
        """In a worker process, just after the fork and before its first request: open the
        database pool, keep the breaker-state gauge current."""
        self.storage.open()
        if self.redis is not None:
            self.redis.start_state_reporter()

    def redis_status(self) -> str:
        if self.redis is None:
            return "not configured"
        return "ok" if self.redis.ping() else "unavailable"
