"""The quarantine's per-source counts (quarantine_counts), which the bound reads instead of
counting the whole quarantine at every delivery: kept exact by the table's own triggers
through every way entries come and go, against the real PostgreSQL. Before them, a full
quarantine cost 3-4 ms a delivery at the default bound and 31-39 ms at 100,000
(docs/performance.md, stop 41)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg.types.json import Jsonb

from ingestion.storage.migrate import FUNCTIONS
from ingestion.storage.quarantine import add_entry, evict_over


def counts(db) -> dict[tuple[str, str], int]:
    rows = db.execute("SELECT vendor, account, entries FROM quarantine_counts WHERE entries <> 0").fetchall()
    return {(r["vendor"], r["account"]): r["entries"] for r in rows}


def actual(db) -> dict[tuple[str, str], int]:
    rows = db.execute("SELECT vendor, account, count(*) AS n FROM quarantine GROUP BY vendor, account").fetchall()
    return {(r["vendor"], r["account"]): r["n"] for r in rows}


def quarantine(conn, vendor: str, account: str, max_entries: int = 1000) -> tuple[int, int]:
    """What QuarantineStore.quarantine does: the entry, then the eviction when over."""
    added, over = add_entry(conn, {
        "vendor": vendor, "account": account, "status": 422, "reason": "invalid_field", "error": "no id",
        "body": b'{"ticket": {}}', "headers": Jsonb({}), "auth_method": "hmac", "request_id": None,
        "max_entries": max_entries})
    return added, evict_over(conn, max_entries) if over > 0 else 0


def test_the_counts_follow_every_way_entries_come_and_go(db):
    for n in range(5):
        quarantine(db, "freshdesk", "acme" if n % 2 else "")
    quarantine(db, "zendesk", "")
    assert counts(db) == actual(db) == {("freshdesk", ""): 3, ("freshdesk", "acme"): 2, ("zendesk", ""): 1}

    # Several rows in one statement, an update that changes no source, one that moves
    # an entry to another, and deletes of one and of several sources at once.
    db.execute("INSERT INTO quarantine (vendor, account, status, reason, error, body) "
               "SELECT 'zendesk', 'beta', 400, 'not_json', 'x', '\\x00' FROM generate_series(1, 4)")
    db.execute("UPDATE quarantine SET attempts = attempts + 1, last_attempt = now()")
    assert counts(db) == actual(db)
    db.execute("UPDATE quarantine SET account = 'acme' WHERE id = (SELECT min(id) FROM quarantine WHERE vendor = "
               "'freshdesk' AND account = '')")
    assert counts(db) == actual(db) == {("freshdesk", ""): 2, ("freshdesk", "acme"): 3, ("zendesk", ""): 1,
                                        ("zendesk", "beta"): 4}
    db.execute("DELETE FROM quarantine WHERE id = (SELECT max(id) FROM quarantine)")
    db.execute("DELETE FROM quarantine WHERE vendor = 'freshdesk' OR account = ''")
    assert counts(db) == actual(db) == {("zendesk", "beta"): 3}

    db.execute("TRUNCATE quarantine")
    assert counts(db) == actual(db) == {}


def test_the_bound_evicts_by_the_counts_from_the_source_holding_most(db):
    # Two sources tied at two entries each: the one whose oldest entry is oldest gives way.
    first = [quarantine(db, "freshdesk", "a", 4)[0] for _ in range(2)]
    second = [quarantine(db, "freshdesk", "b", 4)[0] for _ in range(2)]
    added, evicted = quarantine(db, "zendesk", "", 4)
    assert evicted == 1
    kept = [r["id"] for r in db.execute("SELECT id FROM quarantine ORDER BY id").fetchall()]
    assert kept == [first[1], *second, added]
    assert counts(db) == actual(db) == {("freshdesk", "a"): 1, ("freshdesk", "b"): 2, ("zendesk", ""): 1}

    # A lower bound than the entries held (QUARANTINE_MAX_ENTRIES lowered): the source
    # holding the most gives up what is over, in one delivery.
    # A bound lowered below what is held (QUARANTINE_MAX_ENTRIES changed): one delivery
    # evicts what is over, from the one source holding the most, as far as it holds.
    added, evicted = quarantine(db, "zendesk", "", 2)
    assert evicted == 2
    assert counts(db) == actual(db) == {("freshdesk", "a"): 1, ("zendesk", ""): 2}


def test_concurrent_deliveries_keep_the_counts_exact(database_url, db):
    def deliver(n: int) -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for k in range(25):
                quarantine(conn, "freshdesk", f"acct{(n + k) % 3}", max_entries=60)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(deliver, range(6)))
    assert counts(db) == actual(db)
    assert sum(actual(db).values()) <= 60 + 5  # each delivery evicts what it saw over; peers may overlap


def test_applying_the_functions_counts_afresh(db):
    """An upgrade (migration 16, then functions.sql) counts what the quarantine already holds."""
    db.execute("ALTER TABLE quarantine DISABLE TRIGGER USER")
    try:
        for account in ("a", "a", "b"):
            quarantine(db, "freshdesk", account)
        db.execute("INSERT INTO quarantine_counts VALUES ('helpscout', 'gone', 7) "
                   "ON CONFLICT (vendor, account) DO UPDATE SET entries = 7")
    finally:
        db.execute("ALTER TABLE quarantine ENABLE TRIGGER USER")
    assert counts(db) != actual(db)
    db.execute(FUNCTIONS.read_text())
    assert counts(db) == actual(db) == {("freshdesk", "a"): 2, ("freshdesk", "b"): 1}


def test_an_eviction_the_database_refuses_keeps_the_entry_and_the_next_delivery_catches_up(make_app, db):
    """The entry is committed before the eviction runs: a failed eviction never loses it,
    nor answers the vendor with an error (which would quarantine its retry twice)."""
    storage = make_app(QUARANTINE_MAX_ENTRIES="2").extensions["ingestion"].storage

    def keep(n: int) -> tuple[int, int]:
        return storage.quarantine(vendor="freshdesk", account="", status=422, reason="invalid_field",
                                  error=f"no id {n}", body=b"{}", headers={}, auth_method="hmac", request_id=None,
                                  max_entries=2)

    assert [keep(n)[1] for n in range(2)] == [0, 0]
    db.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE 'no deletes'; END $$")
    db.execute("CREATE TRIGGER refuse BEFORE DELETE ON quarantine FOR EACH ROW EXECUTE FUNCTION refuse()")
    try:
        third, evicted = keep(2)
    finally:
        db.execute("DROP TRIGGER refuse ON quarantine")
        db.execute("DROP FUNCTION refuse()")
    assert evicted == 0 and sum(actual(db).values()) == 3 and counts(db) == actual(db)
    fourth, evicted = keep(3)
    assert evicted == 2  # what the failed eviction left over, and its own
    assert [r["id"] for r in db.execute("SELECT id FROM quarantine ORDER BY id").fetchall()] == [third, fourth]
