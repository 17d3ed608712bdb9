"""The databases the benches measure on: a history (`make bench --scale`, bench-console,
bench-relay, bench-partitions) and what the console shows beyond it, seeded in bulk with
INSERT ... SELECT (minutes for 10,000,000 events, where the webhooks' path would take
hours). Moved out of harness.py and console.py, which stay under 300 lines each."""

from __future__ import annotations

import time

import psycopg

#: The seeded tickets: external ids seed-1 .. seed-N, Freshdesk for even N, Zendesk for odd.
SEED_PREFIX = "seed-"


def seed_vendor(n: int) -> str:
    return "freshdesk" if n % 2 == 0 else "zendesk"


def seed_account(n: int, accounts: tuple[str, ...] = ("",)) -> str:
    return accounts[(n // 2) % len(accounts)]


def seeded_tickets(tickets: int, accounts: tuple[str, ...] = ("",)) -> list[tuple[str, str, str]]:
    """What seed_history stored, as (vendor, account, external id)."""
    return [(seed_vendor(n), seed_account(n, accounts), f"{SEED_PREFIX}{n}") for n in range(1, tickets + 1)]


def seed_history(url: str, tickets: int = 1_000_000, events_per_ticket: int = 10,
                 accounts: tuple[str, ...] = ("",), days: int = 30) -> float:
    """A database with a history, as `make bench --scale` and `make bench-console` need
    it: `tickets` tickets (seed-1 .. seed-N, alternately Freshdesk and Zendesk, spread
    over `accounts`, four statuses across both, a requester e-mail shared by 20 tickets) and
    `events_per_ticket` events each, as a history accumulates: in ticket order, then by
    time, received over the last `days` days in id order (the first of each ticket
    `created`, then `updated` and `recorded`, one in a hundred `stale`; the payload the
    vendor's ticket object with its status). Every event is published (the relay's queue
    is empty). VACUUM ANALYZE and a CHECKPOINT after, so no measurement pays for the
    seed. Returns the seconds it took."""
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""
            INSERT INTO tickets (vendor, account, external_id, subject, description, status, priority, tags,
                                 requester_name, requester_email, vendor_created_at, vendor_updated_at, revision)
            SELECT CASE WHEN n %% 2 = 0 THEN 'freshdesk' ELSE 'zendesk' END,
                   (%(accounts)s::text[])[1 + (n / 2) %% cardinality(%(accounts)s::text[])],
                   %(prefix)s || n, 'Seeded ticket ' || n, '<p>The printer is on fire</p>',
                   (ARRAY['open', 'pending', 'solved', 'closed'])[1 + (n / 4) %% 4], 'normal', ARRAY['bench'],
                   'Requester ' || n %% 50000, 'requester' || n %% 50000 || '@example.com',
                   now() - make_interval(days => %(days)s), now() - interval '1 minute', %(per)s
              FROM generate_series(1, %(tickets)s) AS n""",
                     {"accounts": list(accounts), "prefix": SEED_PREFIX, "tickets": tickets, "days": days,
                      "per": events_per_ticket})
        conn.execute("""
            INSERT INTO events (ticket_id, outcome, revision, event_type, dedup_key, comment_body, comment_public,
                                payload, received_at, published_at)
            SELECT t.id,
                   CASE WHEN g = 1 THEN 'created' WHEN (s.n + g) %% 100 = 0 THEN 'stale'
                        WHEN g %% 3 = 0 THEN 'recorded' ELSE 'updated' END,
                   g, CASE WHEN g = 1 THEN 'ticket.created' WHEN g %% 3 = 0 THEN 'ticket.comment_added'
                           ELSE 'ticket.updated' END,
                   'body:' || md5(t.external_id || ':' || g), 'A comment on the printer fire, number ' || g, g %% 2 = 0,
                   jsonb_build_object('ticket', jsonb_build_object('id', t.external_id, 'status', t.status),
                                      'comment', 'number ' || g),
                   now() - make_interval(days => %(days)s)
                         + make_interval(secs => %(days)s * 86400.0 * ((g - 1) * %(tickets)s::bigint + s.n)
                                                  / (%(tickets)s::bigint * %(per)s)),
                   now()
              FROM tickets t
              CROSS JOIN LATERAL (SELECT substr(t.external_id, length(%(prefix)s) + 1)::int AS n) s
              CROSS JOIN generate_series(1, %(per)s) AS g
             WHERE t.external_id LIKE %(prefix)s || '%%'
             ORDER BY g, s.n""", {"prefix": SEED_PREFIX, "tickets": tickets, "per": events_per_ticket, "days": days})
        conn.execute("VACUUM ANALYZE tickets")
        conn.execute("VACUUM ANALYZE events")
        conn.execute("CHECKPOINT")
    return time.monotonic() - started


#: The seeded accounts: the environment's ("") and one named source, which the scoped token sees.
ACCOUNTS = ("", "acme")
SCOPE = ("zendesk", "acme")
QUARANTINE_REASONS = ("invalid_field", "bad_request", "too_deep", "unstorable")
#: Events of the busy ticket: a long-lived ticket's timeline.
BUSY_EVENTS = 500


def seed_console(url: str, tickets: int, quarantined: int) -> None:
    """What the console shows beyond tickets and events: quarantined deliveries (spread
    over the vendors, accounts, reasons and the last week, each with its raw body and
    identifying headers), a reconcile cursor per vendor and account (one failing), and
    the busy ticket's events."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""
            INSERT INTO quarantine (vendor, account, received_at, status, reason, error, body, headers,
                                    auth_method, request_id)
            SELECT CASE WHEN n %% 2 = 0 THEN 'freshdesk' ELSE 'zendesk' END,
                   (%(accounts)s::text[])[1 + (n / 2) %% cardinality(%(accounts)s::text[])],
                   now() - interval '7 days' + interval '7 days' * n / %(count)s,
                   CASE WHEN n %% 4 = 1 THEN 400 ELSE 422 END,
                   (%(reasons)s::text[])[1 + n %% cardinality(%(reasons)s::text[])],
                   'ticket.status: expected a string, got 5 (number ' || n || ')',
                   convert_to('{"ticket": {"id": "q-' || n || '", "status": 5, "subject": "Quarantined ' || n
                              || '", "description": "' || repeat('The printer is on fire. ', 20) || '"}}', 'UTF8'),
                   jsonb_build_object('Content-Type', 'application/json', 'User-Agent', 'Vendor-Webhooks/1.0',
                                      'X-Request-Id', 'bench-q-' || n),
                   'hmac', 'bench-q-' || n
              FROM generate_series(1, %(count)s) AS n""",
                     {"accounts": list(ACCOUNTS), "reasons": list(QUARANTINE_REASONS), "count": quarantined})
        for n, (vendor, account) in enumerate((("freshdesk", ""), ("zendesk", ""), SCOPE)):
            conn.execute("""
                INSERT INTO reconcile_cursors (vendor, account, mode, since, cursor, position, caught_up_at,
                                               last_error, updated_at)
                VALUES (%s, %s, 'reconcile', now() - interval '30 days', 'bench-cursor', now() - interval '2 minutes',
                        now() - interval '1 minute', %s, now() - interval '1 minute')""",
                         (vendor, account, "HTTP 429 from the vendor: paced" if n == 2 else None))
        # The busy ticket: BUSY_EVENTS more events on the first seeded ticket, the last minutes'.
        conn.execute("""
            INSERT INTO events (ticket_id, outcome, revision, event_type, dedup_key, comment_body, comment_public,
                                changes, payload, received_at, published_at)
            SELECT t.id, CASE WHEN g %% 5 = 0 THEN 'recorded' ELSE 'updated' END, t.revision + g,
                   CASE WHEN g %% 2 = 0 THEN 'ticket.comment_added' ELSE 'ticket.updated' END,
                   'body:busy:' || g, 'Still on fire, update ' || g, g %% 3 <> 0,
                   jsonb_build_object('status', jsonb_build_object('previous', 'open', 'current', 'pending')),
                   jsonb_build_object('ticket', jsonb_build_object('id', t.external_id, 'status', 'pending'),
                                      'comment', 'update ' || g),
                   now() - interval '10 minutes' + interval '1 second' * g, now()
              FROM tickets t CROSS JOIN generate_series(1, %(busy)s) AS g
             WHERE (t.vendor, t.account, t.external_id) = (%(vendor)s, %(account)s, %(external_id)s)""",
                     {"busy": BUSY_EVENTS, "vendor": seed_vendor(1), "account": seed_account(1, ACCOUNTS),
                      "external_id": f"{SEED_PREFIX}1"})
        conn.execute("VACUUM ANALYZE quarantine")
        conn.execute("ANALYZE events")
        conn.execute("CHECKPOINT")
