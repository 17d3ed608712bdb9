"""The offline jobs, each beside its command (ingestion/cli.py lists them):

- schema.py     `migrate`: the versioned schema and the SQL functions
- relay.py      `relay`: the outbox published to the Redis stream (and retention, hourly)
- retention.py  `prune`: retention of deliveries, events' personal data, quarantine
- replay.py     `replay`: quarantined deliveries through today's normalizer
- rebuild.py    `rebuild`: tickets recomputed from their history
- redact.py     `redact`: a person's or a ticket's personal data forgotten on request
- reconcile/    `reconcile`, `backfill`: repairs from the vendors' APIs
- sources.py    `sources`: vendor accounts and their credentials (add, list, rotate, retire...)

Every query they run is storage's (ingestion/storage/), and a database outage reaches a
command as one DatabaseUnavailable: one line, exit status 1.
"""
