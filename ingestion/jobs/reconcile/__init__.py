"""The reconciler: repairs from the vendors' REST APIs what the webhooks missed.

- settings.py  RECONCILE_* and each vendor's API access (from its export.py)
- client.py    the respectful HTTP client: pacing, Retry-After, backoff, its breaker
- engine.py    one run: export pages -> the webhooks' storage path; cursor and lock
- runner.py    `python -m ingestion reconcile` (every RECONCILE_INTERVAL) and `backfill`
"""
