-- The service's SQL functions: each one's current definition, here and nowhere else.
--
-- `python -m ingestion migrate` applies this file after the pending migrations whenever
-- its text changed (its checksum is kept in schema_functions), in one transaction.
-- Migrations change tables; they never restate a function (migrations 2 and 6 did, before
-- this file existed: they stay as released). A change to a rule is an edit here. (The one
-- function a table needs before this file can run, the ids' ingestion_uuid_v7(), is a
-- column default: schema.sql has it.)

-- The normalized fields that may hold personal data: what retention, a permanent delete
-- and `redact --ticket` empty from an event's stored fields. The others (status,
-- priority, type, the group (a team), the vendor's times, the deletion) are the history's
-- skeleton and stay.
CREATE OR REPLACE FUNCTION ticket_personal_fields() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['subject', 'description', 'requester_name', 'requester_email', 'requester_id',
                 'assignee_name', 'assignee_email', 'assignee_id', 'organization', 'tags', 'custom_fields']
$$;

-- An event's stored fields with the values of the personal ones emptied (null; custom
-- fields keep their keys, with null values) and every key kept: the event still says
-- which fields it set, which rebuild_ticket() needs, but no longer what they were.
CREATE OR REPLACE FUNCTION fields_without_personal_data(p_fields jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(key, CASE
               WHEN NOT key = ANY(ticket_personal_fields()) THEN value
               WHEN key = 'custom_fields' AND jsonb_typeof(value) = 'object'
                   THEN coalesce((SELECT jsonb_object_agg(k, NULL) FROM jsonb_object_keys(value) AS k), '{}')
               ELSE 'null'::jsonb END), '{}')
      FROM jsonb_each(p_fields)
$$;

-- The one merge rule: one event's fields onto a ticket, as the live path merges them
-- (ingest_event) and as a rebuild replays them (rebuild_ticket).
--
-- `t` is the ticket as it stands; for an event that creates it, a blank one (blank_ticket).
-- p_fields are the normalized fields the event carries, and only those. Merge, never
-- wipe: an absent field keeps its value, a present one sets it, even to null; custom
-- fields merge key by key. `deletion` in p_fields is soft, permanent or restored when the
-- event says so. p_at is when the event arrived: a deletion mark with no vendor time of
-- its own takes it.
--
-- Staleness: an event whose vendor updated_at is older than the ticket's is kept as
-- history and changes nothing (Freshdesk retries after up to 95 minutes); NULL on either
-- side cannot be ordered and counts as newer. Deletions follow their own clock: a
-- permanent delete always applies (an older one without merging its fields), a restore
-- applies when it is not older than the deletion mark (even behind a newer update), and
-- a soft delete newer than the mark moves it on (deleted again after a missed restore).
-- A purged ticket (permanently deleted) takes nothing any more.
--
-- Returns the merged ticket, whether the event's fields were merged (`applied`: false
-- when stale, and for a stale deletion or restore, which moves only the mark), and the
-- outcome: updated, recorded (nothing changed), stale, or deleted (the ticket went into
-- the deleted state, or was purged).
CREATE OR REPLACE FUNCTION ticket_merge(t tickets, p_fields jsonb, p_at timestamptz,
                                        OUT merged tickets, OUT applied boolean, OUT outcome text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    updated_at_given timestamptz := (p_fields->>'vendor_updated_at')::timestamptz;
    deletion text := p_fields->>'deletion';
BEGIN
    merged := t;
    applied := false;
    IF t.purged_at IS NOT NULL THEN
        outcome := 'stale';
        RETURN;
    END IF;
    IF updated_at_given < t.vendor_updated_at THEN
        IF deletion = 'permanent' THEN
            merged.deleted_at := coalesce(t.deleted_at, p_at);
            outcome := 'deleted';
        ELSIF deletion = 'restored' AND t.deleted_at IS NOT NULL AND updated_at_given >= t.deleted_at THEN
            merged.deleted_at := NULL;
            outcome := 'updated';
        ELSE
            outcome := 'stale';
        END IF;
        RETURN;
    END IF;

    applied := true;
    -- Every field named like its column in one step (absent keys keep the column's value;
    -- the other keys are not columns, or are merged by their own rules below).
    -- Tags too: a JSON array becomes the text[] column here, without a query of its own
    -- (the normalizer sends strings); anything else given as tags empties them.
    merged := jsonb_populate_record(t, CASE WHEN jsonb_typeof(p_fields->'tags') <> 'array' THEN p_fields || '{"tags": []}'
                                            ELSE p_fields END
                                       - '{id,vendor,account,external_id,group,custom_fields,deletion,deleted_at,purged_at,revision,created_at,updated_at}'::text[]);
    -- A person is one name, e-mail and id: when an event puts another person in the role
    -- (an id other than the known one) without saying their name or e-mail, the previous
    -- person's stay no longer (they would name one person with another's address).
    IF t.requester_id IS NOT NULL AND merged.requester_id IS DISTINCT FROM t.requester_id THEN
        IF NOT p_fields ? 'requester_name' THEN merged.requester_name := NULL; END IF;
        IF NOT p_fields ? 'requester_email' THEN merged.requester_email := NULL; END IF;
    END IF;
    IF t.assignee_id IS NOT NULL AND merged.assignee_id IS DISTINCT FROM t.assignee_id THEN
        IF NOT p_fields ? 'assignee_name' THEN merged.assignee_name := NULL; END IF;
        IF NOT p_fields ? 'assignee_email' THEN merged.assignee_email := NULL; END IF;
    END IF;
    -- The other way round, for an event that names people without their ids (trigger and
    -- rule bodies): a role it empties, name and address both, is nobody's (`  <>` is how
    -- Zendesk renders an unassigned ticket), and another address than the known one is
    -- another person. Either way the known id goes with them.
    IF t.requester_id IS NOT NULL AND NOT p_fields ? 'requester_id' AND p_fields ? 'requester_email'
       AND (merged.requester_email IS NULL AND p_fields ? 'requester_name' AND merged.requester_name IS NULL
            OR lower(btrim(merged.requester_email)) <> lower(btrim(t.requester_email))) THEN
        merged.requester_id := NULL;
    END IF;
    IF t.assignee_id IS NOT NULL AND NOT p_fields ? 'assignee_id' AND p_fields ? 'assignee_email'
       AND (merged.assignee_email IS NULL AND p_fields ? 'assignee_name' AND merged.assignee_name IS NULL
            OR lower(btrim(merged.assignee_email)) <> lower(btrim(t.assignee_email))) THEN
        merged.assignee_id := NULL;
    END IF;
    IF p_fields ? 'group' THEN merged.group_name := p_fields->>'group'; END IF;
    IF jsonb_typeof(p_fields->'custom_fields') = 'object' THEN
        merged.custom_fields := t.custom_fields || (p_fields->'custom_fields');
    END IF;
    IF deletion IN ('soft', 'permanent') AND (t.deleted_at IS NULL OR updated_at_given > t.deleted_at) THEN
        merged.deleted_at := coalesce(updated_at_given, p_at);
    ELSIF deletion = 'restored'
          AND (updated_at_given IS NULL OR t.deleted_at IS NULL OR updated_at_given >= t.deleted_at) THEN
        merged.deleted_at := NULL;  -- (a snapshot older than the deletion mark does not undo it)
    END IF;

    IF merged IS NOT DISTINCT FROM t AND deletion IS DISTINCT FROM 'permanent' THEN
        outcome := 'recorded';
    ELSIF merged.deleted_at IS NOT NULL AND (t.deleted_at IS NULL OR deletion = 'permanent') THEN
        outcome := 'deleted';
    ELSE
        outcome := 'updated';
    END IF;
END
$$;

-- A ticket before its first event: what the merge starts from when an event creates it.
CREATE OR REPLACE FUNCTION blank_ticket(p_vendor text, p_account text, p_external_id text) RETURNS tickets
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    t tickets;
BEGIN
    t.vendor := p_vendor;
    t.account := p_account;
    t.external_id := p_external_id;
    t.tags := '{}';
    t.custom_fields := '{}';
    t.revision := 0;
    RETURN t;
END
$$;

-- Write a merged ticket (ticket_merge) over its row: the one list of the columns a merge
-- sets. Bumps the revision; returns it.
-- PL/pgSQL, not LANGUAGE sql: a SQL function called from PL/pgSQL is parsed and planned
-- again at every call, where a PL/pgSQL one keeps its plan for the session. For an
-- update that was 140 us of the server's CPU, a third of the call
-- (bench/ingest_function.py, docs/performance.md).
CREATE OR REPLACE FUNCTION ticket_save(merged tickets) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    saved integer;
BEGIN
    UPDATE tickets x SET
        (subject, description, status, priority, type, requester_name, requester_email, requester_id,
         assignee_name, assignee_email, assignee_id, group_name, organization, tags, custom_fields,
         vendor_created_at, vendor_updated_at, deleted_at, revision, updated_at) =
        (merged.subject, merged.description, merged.status, merged.priority, merged.type,
         merged.requester_name, merged.requester_email, merged.requester_id, merged.assignee_name,
         merged.assignee_email, merged.assignee_id, merged.group_name, merged.organization, merged.tags,
         merged.custom_fields, merged.vendor_created_at, merged.vendor_updated_at, merged.deleted_at,
         x.revision + 1, now())
     WHERE x.id = merged.id
    RETURNING x.revision INTO saved;
    RETURN saved;
END
$$;

-- Forget a ticket's content (a permanent delete; `redact --ticket`): its people, subject,
-- description, organization, tags and custom fields (not its group: a team), and every
-- event's raw payload,
-- comment and changes, and the personal values of its stored fields (the keys stay, so a
-- rebuild knows what each event set). Returns how many rows changed: 0 and 0 when run again.
CREATE OR REPLACE FUNCTION forget_ticket(p_ticket uuid, OUT tickets_changed integer, OUT events_changed integer)
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tickets SET subject = NULL, description = NULL, requester_name = NULL, requester_email = NULL,
                       requester_id = NULL, assignee_name = NULL, assignee_email = NULL, assignee_id = NULL,
                       organization = NULL, tags = '{}', custom_fields = '{}', updated_at = now()
     WHERE id = p_ticket
       AND (num_nonnulls(subject, description, requester_name, requester_email, requester_id, assignee_name,
                         assignee_email, assignee_id, organization) > 0
            OR tags <> '{}' OR custom_fields <> '{}');
    GET DIAGNOSTICS tickets_changed = ROW_COUNT;
    -- The redactions' own records (outcome `forget`) keep their summaries, which name
    -- fields, never values; but the fields they merged hold values (`Refund for
    -- [redacted]`), emptied like every other event's, or a rebuild would put them back.
    UPDATE events SET payload = NULL, comment_body = NULL, comment_author = NULL, comment_public = NULL,
                      changes = CASE WHEN outcome = 'forget' THEN changes END,
                      fields = fields_without_personal_data(fields), fields_retained = true
     WHERE ticket_id = p_ticket
       AND (outcome <> 'forget' AND (num_nonnulls(payload, comment_body, comment_author, changes) > 0
                                     OR fields IS NOT NULL AND NOT fields_retained)
            OR outcome = 'forget' AND fields IS DISTINCT FROM fields_without_personal_data(fields));
    GET DIAGNOSTICS events_changed = ROW_COUNT;
END
$$;

-- Store one delivery about a ticket: the whole hot path in one statement, so one round
-- trip and (in autocommit) one transaction covering the ticket, the event and the outbox.
-- The event keeps the fields it carried (events.fields): the facts a rebuild replays.
--
-- Race safety: concurrent deliveries of one ticket meet at the unique key. A delivery
-- that finds no ticket inserts one with ON CONFLICT DO NOTHING; the loser of a race waits
-- for the winner's transaction, and its next SELECT ... FOR NO KEY UPDATE runs with a fresh
-- snapshot (READ COMMITTED, new statement), sees the winner's row and locks it. Deliveries of one ticket are therefore serialized:
-- the duplicate check below sees every event committed before it, exactly one delivery
-- is `created`, and event ids follow commit order per ticket.
--
-- A redelivery's answer says how long its identity still holds (out_expires_in, seconds;
-- NULL for a new event or without a horizon): computed here, from the arrival time the
-- horizon was checked against. The caller's statement once read it from `events` itself,
-- and a statement naming the partitioned table opens and locks every month's partition
-- and index on each call, creates included: 6% of PostgreSQL's CPU per create in
-- `make bench`'s profile, with one month; more with each month retention keeps.
-- (Its signature before p_credential, and this one's (its OUT columns cannot change in
-- place), dropped in the transaction that creates it, so the swap is atomic: a caller
-- of the first lands on the default, one of the second reads the columns it names.)
DROP FUNCTION IF EXISTS ingest_event(text, text, text, jsonb, text, interval, text, text, text, text, boolean,
                                     jsonb, jsonb, text);
DROP FUNCTION IF EXISTS ingest_event(text, text, text, jsonb, text, interval, text, text, text, text, boolean,
                                     jsonb, jsonb, text, text);
DROP FUNCTION IF EXISTS ingest_event(text, text, text, jsonb, text, interval, text, text, text, text, boolean,
                                     jsonb, jsonb, text, text, text);
CREATE OR REPLACE FUNCTION ingest_event(
    p_vendor text, p_account text, p_external_id text, p_fields jsonb,
    p_dedup_key text, p_dedup_horizon interval, p_event_type text, p_vendor_event_id text,
    p_comment_body text, p_comment_author text, p_comment_public boolean, p_changes jsonb,
    p_payload jsonb, p_request_id text, p_credential text DEFAULT NULL, p_comment_key text DEFAULT NULL,
    OUT out_ticket_id uuid, OUT out_event_id bigint, OUT out_outcome text, OUT out_revision integer,
    OUT out_expires_in integer)
LANGUAGE plpgsql AS $$
DECLARE
    t tickets%ROWTYPE;
    fresh tickets%ROWTYPE;
    m record;
    earlier record;
    creating boolean := true;
    kept_fields jsonb := p_fields;
    retained boolean := false;
    forgotten integer := 0;
BEGIN
    IF p_changes ? 'deleted' THEN
        -- 'deleted' in changes is this function's record of the deletion mark (the
        -- stream's restored signal reads it); a vendor's own flag change says no more.
        p_changes := nullif(p_changes - 'deleted', '{}');
    END IF;
    m := ticket_merge(blank_ticket(p_vendor, p_account, p_external_id), p_fields, now());
    fresh := m.merged;
    fresh.id := ingestion_uuid_v7();
    fresh.revision := 1;
    fresh.created_at := now();
    fresh.updated_at := now();
    LOOP
        INSERT INTO tickets AS x VALUES (fresh.*)
        ON CONFLICT (vendor, account, external_id) DO NOTHING
        RETURNING x.id INTO out_ticket_id;
        IF FOUND THEN
            out_outcome := CASE WHEN m.outcome = 'deleted' THEN 'deleted' ELSE 'created' END;
            out_revision := 1;
            EXIT;
        END IF;
        SELECT * INTO t FROM tickets x
         WHERE x.vendor = p_vendor AND x.account = p_account AND x.external_id = p_external_id
           FOR NO KEY UPDATE;
        IF FOUND THEN
            creating := false;
            EXIT;
        END IF;  -- otherwise the row vanished between the two statements: insert again
    END LOOP;

    IF NOT creating THEN
        out_ticket_id := t.id;
        out_revision := t.revision;

        -- The same delivery again? A body fingerprint only counts within the horizon:
        -- past it, the same body is a new event and takes the key over. The keys live in
        -- event_keys (events is partitioned by month: its own unique keys must hold the
        -- month, migration 14), whose primary key keeps a retry from being stored twice.
        -- (The event's own arrival time when its month is still kept: a key is found for
        -- redeliveries only, so only they pay the look into each month's index.)
        SELECT k.event_id AS id, coalesce(e.received_at, k.received_at) AS received_at INTO earlier
          FROM event_keys k LEFT JOIN events e ON e.id = k.event_id AND e.ticket_id = k.ticket_id
         WHERE k.ticket_id = t.id AND k.dedup_key = p_dedup_key;
        IF FOUND THEN
            IF p_dedup_horizon IS NULL OR earlier.received_at > now() - p_dedup_horizon THEN
                out_outcome := 'already_exists';
                out_event_id := earlier.id;
                IF p_dedup_horizon IS NOT NULL THEN  -- (greatest() skips a NULL: without a horizon, forever)
                    out_expires_in := greatest(0, extract(epoch FROM earlier.received_at + p_dedup_horizon - now()))::integer;
                END IF;
                INSERT INTO deliveries (vendor, account, external_id, ticket_id, event_id, outcome,
                                        vendor_event_id, request_id)
                VALUES (p_vendor, p_account, p_external_id, t.id, earlier.id, 'already_exists',
                        p_vendor_event_id, p_request_id);
                RETURN;
            END IF;
            UPDATE events SET dedup_key = dedup_key || ':' || id
             WHERE id = earlier.id AND received_at = earlier.received_at;
            DELETE FROM event_keys WHERE ticket_id = t.id AND dedup_key = p_dedup_key;
        END IF;

        m := ticket_merge(t, p_fields, now());
        out_outcome := m.outcome;
        IF t.purged_at IS NOT NULL THEN
            -- Permanently deleted at the vendor: whatever still arrives about the ticket
            -- (a late retry of an older delivery) is older news. Its skeleton is kept for
            -- the audit, never its content.
            p_payload := NULL; p_comment_body := NULL; p_comment_author := NULL; p_comment_public := NULL;
            p_changes := NULL;
            kept_fields := fields_without_personal_data(p_fields);
            retained := true;
        ELSIF m.merged IS DISTINCT FROM t THEN
            out_revision := ticket_save(m.merged);
        ELSIF out_outcome = 'deleted' THEN  -- a permanent delete of a ticket already marked: purged below
            UPDATE tickets x SET revision = x.revision + 1, updated_at = now() WHERE x.id = t.id
            RETURNING x.revision INTO out_revision;
        END IF;
        IF (m.merged).deleted_at IS NULL <> (t.deleted_at IS NULL) THEN  -- the history says so
            p_changes := coalesce(p_changes, '{}') || jsonb_build_object('deleted', jsonb_build_object(
                'previous', t.deleted_at IS NOT NULL, 'current', (m.merged).deleted_at IS NOT NULL));
        END IF;
    ELSIF (m.merged).deleted_at IS NOT NULL THEN
        p_changes := coalesce(p_changes, '{}') || '{"deleted": {"previous": false, "current": true}}'::jsonb;
    END IF;

    IF p_fields->>'deletion' = 'permanent' AND out_outcome = 'deleted' THEN
        -- Forget the ticket's content, this event's included: ids, times, outcomes and
        -- revisions stay for the audit. A second event tells the stream's consumers to
        -- forget their copies (change `forget`).
        SELECT f.events_changed INTO forgotten FROM forget_ticket(out_ticket_id) f;
        UPDATE tickets SET purged_at = now() WHERE id = out_ticket_id;
        p_payload := NULL; p_comment_body := NULL; p_comment_author := NULL; p_comment_public := NULL;
        p_changes := NULL;
        kept_fields := fields_without_personal_data(p_fields);
        retained := true;
    END IF;

    -- One comment, one stored copy per ticket: a vendor that can send the same comment in
    -- two deliveries (Jira: jira:issue_updated "issue_commented" and comment_created, both
    -- subscribed as the README asks) names it by its id and version (p_comment_key), and
    -- a second delivery of it is an event without the comment. Its key sits beside the
    -- deliveries' keys in event_keys ("comment:" is a namespace of its own).
    IF p_comment_body IS NULL THEN
        p_comment_key := NULL;
    ELSIF p_comment_key IS NOT NULL AND NOT creating THEN
        PERFORM 1 FROM event_keys WHERE ticket_id = out_ticket_id AND dedup_key = 'comment:' || p_comment_key;
        IF FOUND THEN
            p_comment_body := NULL; p_comment_author := NULL; p_comment_public := NULL; p_comment_key := NULL;
        END IF;
    END IF;

    INSERT INTO events (ticket_id, outcome, revision, event_type, vendor_event_id, dedup_key, vendor_updated_at,
                        comment_body, comment_author, comment_public, changes, payload, request_id, fields,
                        fields_retained, credential)
    VALUES (out_ticket_id, out_outcome, out_revision, p_event_type, p_vendor_event_id, p_dedup_key,
            (p_fields->>'vendor_updated_at')::timestamptz, p_comment_body, p_comment_author, p_comment_public,
            p_changes, p_payload, p_request_id, kept_fields, retained, p_credential)
    RETURNING id INTO out_event_id;
    INSERT INTO event_keys (ticket_id, dedup_key, event_id, received_at)
    VALUES (out_ticket_id, p_dedup_key, out_event_id, now());
    IF p_comment_key IS NOT NULL THEN
        INSERT INTO event_keys (ticket_id, dedup_key, event_id, received_at)
        VALUES (out_ticket_id, 'comment:' || p_comment_key, out_event_id, now()) ON CONFLICT DO NOTHING;
    END IF;

    IF retained AND t.purged_at IS NULL THEN
        INSERT INTO events (ticket_id, outcome, revision, event_type, dedup_key, changes, fields, request_id)
        VALUES (out_ticket_id, 'forget', out_revision, 'ticket.forgotten', 'forget:' || out_event_id,
                jsonb_build_object('forgotten', 'ticket', 'fields', to_jsonb(ticket_personal_fields()),
                                   'events', forgotten + 1),  -- (the deletion's own event emptied too)
                '{}', p_request_id);
    END IF;
END
$$;

-- Record a redaction as a fact of the ticket's history (`python -m ingestion redact`):
-- the ticket fields it changed are merged with the one rule and kept on a `ticket.redacted`
-- event (outcome `forget`, which the stream passes on so consumers forget their copies),
-- so a rebuild replays it where it happened and never brings the data back. The caller
-- holds the ticket's row lock. p_summary is what the stream entry says was forgotten
-- (field names and counts, never a value). Returns the event and the ticket's revision.
CREATE OR REPLACE FUNCTION record_redaction(p_ticket uuid, p_fields jsonb, p_summary jsonb,
                                            OUT out_event_id bigint, OUT out_revision integer)
LANGUAGE plpgsql AS $$
DECLARE
    t tickets%ROWTYPE;
    merged tickets%ROWTYPE;
BEGIN
    SELECT * INTO t FROM tickets WHERE id = p_ticket FOR NO KEY UPDATE;
    merged := (ticket_merge(t, p_fields, now())).merged;
    IF jsonb_typeof(p_fields->'custom_fields') = 'object' THEN
        -- The masked custom fields whole: a key that was the address is renamed by the
        -- masking, and the merge (which adds keys) would keep the old one beside it. The
        -- events' fields are masked alike, so a rebuild's merge ends at the same object.
        merged.custom_fields := p_fields->'custom_fields';
    END IF;
    out_revision := t.revision;
    IF merged IS DISTINCT FROM t THEN
        out_revision := ticket_save(merged);
    END IF;
    INSERT INTO events (ticket_id, outcome, revision, event_type, dedup_key, changes, fields, request_id)
    VALUES (p_ticket, 'forget', out_revision, 'ticket.redacted', 'redact:' || gen_random_uuid(),
            p_summary, p_fields, 'redact')
    RETURNING id INTO out_event_id;
END
$$;

-- rebuild_ticket(p_ticket, p_readings): the ticket recomputed from its history, as the
-- live path merged it: every event in the order it was stored (id order, which per ticket
-- is commit order) through ticket_merge(), from a blank ticket, with each event's own
-- arrival time. The caller holds the ticket's row lock.
--
-- p_readings maps an event id (as text) to the fields today's normalizer reads from its
-- payload. An event without a reading (no payload left, a payload a redaction altered,
-- one today's normalizer cannot read, the redactions' own records) takes part with the
-- fields stored when it arrived, or the last rebuild read (a reading that differs from
-- the stored fields replaces them). Values retention or a forgetting emptied from those are
-- unknown: where such an event is the last to set a field (a custom field: a key), the
-- field keeps the ticket's stored value, since the history holds nothing newer to put
-- there. So an unchanged normalizer reproduces the ticket exactly, redactions and
-- retention included, and a changed one refines it without rolling anything back.
--
-- A ticket with an event stored before events kept their fields, whose payload is gone
-- too, cannot be replayed: it is left as it is (partial); so is a ticket first seen
-- before the oldest month retention kept (event_history.trimmed_before). Purged tickets are never rebuilt.
-- Returns the changes written (`{}` when none), whether the history was partial, and the
-- ticket's revision.
CREATE OR REPLACE FUNCTION rebuild_ticket(p_ticket uuid, p_readings jsonb,
                                          OUT out_changes jsonb, OUT out_partial boolean, OUT out_revision integer)
LANGUAGE plpgsql AS $$
DECLARE
    stored tickets%ROWTYPE;
    state tickets%ROWTYPE;
    m record;
    ev record;
    f jsonb;
    opaque boolean;
    unknown text[] := '{}';
    key text;
    before jsonb;
    after jsonb;
    role text;
    people text[];
BEGIN
    out_changes := '{}';
    out_partial := false;
    SELECT * INTO stored FROM tickets WHERE id = p_ticket FOR NO KEY UPDATE;
    IF NOT FOUND OR stored.purged_at IS NOT NULL THEN
        RETURN;
    END IF;
    IF stored.created_at < (SELECT trimmed_before FROM event_history) THEN
        -- Retention dropped a month this ticket had events in (storage/partitions.py):
        -- the start of its history is gone, and a replay would roll it back.
        out_partial := true;
        out_revision := stored.revision;
        RETURN;
    END IF;
    out_revision := stored.revision;
    state := blank_ticket(stored.vendor, stored.account, stored.external_id);
    state.id := stored.id;
    FOR ev IN SELECT e.id, e.fields, e.fields_retained, e.received_at FROM events e
               WHERE e.ticket_id = p_ticket AND e.dedup_key NOT LIKE 'rebuild:%' ORDER BY e.id LOOP
        -- (An event retention emptied since the payload was read: its reading is not
        -- put back, and the replay treats it as retention left it.)
        f := CASE WHEN ev.fields_retained THEN NULL ELSE p_readings->(ev.id::text) END;
        IF f IS NOT NULL AND f IS DISTINCT FROM ev.fields THEN
            -- Today's reading becomes what the event carried: once retention or a
            -- redaction takes its payload, a later rebuild replays this reading, never
            -- the older normalizer's (which would roll back what this rebuild refined).
            UPDATE events SET fields = f WHERE id = ev.id AND received_at = ev.received_at AND NOT fields_retained;
        END IF;
        opaque := f IS NULL AND ev.fields_retained;
        f := coalesce(f, ev.fields);
        IF f IS NULL THEN
            out_partial := true;
            RETURN;
        END IF;
        m := ticket_merge(state, f, ev.received_at);
        state := m.merged;
        IF m.applied THEN
            FOR key IN SELECT jsonb_object_keys(f) LOOP
                IF key = 'custom_fields' THEN
                    IF jsonb_typeof(f->'custom_fields') = 'object' THEN
                        unknown := ARRAY(SELECT u FROM unnest(unknown) AS u
                                          WHERE u NOT IN (SELECT 'custom_fields.' || k FROM jsonb_object_keys(f->'custom_fields') AS k));
                        IF opaque THEN
                            unknown := unknown || ARRAY(SELECT 'custom_fields.' || k FROM jsonb_object_keys(f->'custom_fields') AS k);
                        END IF;
                    END IF;
                ELSIF key = ANY(ticket_personal_fields()) THEN
                    unknown := array_remove(unknown, key);
                    IF opaque THEN
                        unknown := unknown || key;
                    END IF;
                END IF;
            END LOOP;
            -- A person is one name, e-mail and id, and the merge's person rules compare an
            -- event's with the ticket's (another id clears the name and address; another
            -- address clears the id). While one of a role's three is unknown, the replay
            -- cannot compare as the live path did: an event naming the role leaves all
            -- three to the stored ticket (a later event that names them again decides).
            FOREACH role IN ARRAY ARRAY['requester', 'assignee'] LOOP
                people := ARRAY[role || '_name', role || '_email', role || '_id'];
                IF unknown && people AND f ?| people THEN
                    unknown := ARRAY(SELECT u FROM unnest(unknown) AS u WHERE u <> ALL (people)) || people;
                END IF;
            END LOOP;
        END IF;
    END LOOP;

    -- What the history no longer holds keeps the stored value.
    FOREACH key IN ARRAY unknown LOOP
        IF key LIKE 'custom_fields.%' THEN
            IF stored.custom_fields ? substr(key, 15) THEN
                state.custom_fields := state.custom_fields
                                       || jsonb_build_object(substr(key, 15), stored.custom_fields->substr(key, 15));
            ELSE
                state.custom_fields := state.custom_fields - substr(key, 15);
            END IF;
        ELSE  -- a personal field: each is named like its column
            state := jsonb_populate_record(state, jsonb_build_object(key, to_jsonb(stored)->key));
        END IF;
    END LOOP;

    before := ticket_fields_json(stored);
    after := ticket_fields_json(state);
    SELECT coalesce(jsonb_object_agg(b.key, jsonb_build_object('previous', b.value, 'current', a.value)), '{}')
      INTO out_changes
      FROM jsonb_each(before) b JOIN jsonb_each(after) a ON a.key = b.key
     WHERE a.value IS DISTINCT FROM b.value;
    IF out_changes = '{}' THEN
        RETURN;
    END IF;
    out_revision := ticket_save(state);
    -- The rebuild's own event: what changed, published like any other (outcome updated).
    INSERT INTO events (ticket_id, outcome, revision, event_type, dedup_key, changes, request_id)
    VALUES (p_ticket, 'updated', out_revision, 'ticket.rebuilt', 'rebuild:' || out_revision, out_changes, 'rebuild');
END
$$;

-- A ticket's normalized fields (and its deletion mark) as JSON, under the names the
-- normalizers use: what rebuild_ticket() compares and reports.
CREATE OR REPLACE FUNCTION ticket_fields_json(t tickets) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'subject', t.subject, 'description', t.description, 'status', t.status, 'priority', t.priority,
        'type', t.type, 'requester_name', t.requester_name, 'requester_email', t.requester_email,
        'requester_id', t.requester_id, 'assignee_name', t.assignee_name, 'assignee_email', t.assignee_email,
        'assignee_id', t.assignee_id, 'group', t.group_name, 'organization', t.organization,
        'tags', to_jsonb(t.tags), 'custom_fields', t.custom_fields,
        'vendor_created_at', t.vendor_created_at, 'vendor_updated_at', t.vendor_updated_at,
        'deleted_at', t.deleted_at)
$$;

-- The quarantine's entries per source (quarantine_counts), kept by triggers on the
-- quarantine itself, so that every path adding or removing entries keeps them: a
-- delivery, the bound's eviction, replay, retention, redaction, the console's bulk
-- actions, an operator's DELETE or TRUNCATE. The bound (storage/quarantine.py: QUARANTINE
-- and EVICT) then reads a row per source where it counted and grouped the whole
-- quarantine at every delivery once full (docs/performance.md, stop 41). Row triggers:
-- a delivery adds one entry, and a statement trigger's transition table cost it more
-- (measured); an UPDATE counts only when it moves an entry to another source. A count
-- that reaches 0 keeps its row (removing it would race a delivery of that source).
CREATE OR REPLACE FUNCTION quarantine_counts_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM quarantine_counts;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE quarantine_counts SET entries = entries - 1 WHERE vendor = OLD.vendor AND account = OLD.account;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO quarantine_counts AS c (vendor, account, entries) VALUES (NEW.vendor, NEW.account, 1)
        ON CONFLICT (vendor, account) DO UPDATE SET entries = c.entries + 1;
    END IF;
    RETURN NULL;
END
$$;
-- The triggers, and the counts taken afresh whenever this file is applied (an upgrade
-- never leaves a count behind), with no entry added or removed meanwhile. Only once
-- migration 16 made the table: migration 14 applies this file too, before it exists.
DO $$
BEGIN
    IF to_regclass('quarantine_counts') IS NULL THEN
        RETURN;
    END IF;
    CREATE OR REPLACE TRIGGER quarantine_counts_changed AFTER INSERT OR DELETE ON quarantine
        FOR EACH ROW EXECUTE FUNCTION quarantine_counts_keep();
    CREATE OR REPLACE TRIGGER quarantine_counts_moved AFTER UPDATE OF vendor, account ON quarantine
        FOR EACH ROW WHEN (OLD.vendor IS DISTINCT FROM NEW.vendor OR OLD.account IS DISTINCT FROM NEW.account)
        EXECUTE FUNCTION quarantine_counts_keep();
    CREATE OR REPLACE TRIGGER quarantine_counts_emptied AFTER TRUNCATE ON quarantine
        FOR EACH STATEMENT EXECUTE FUNCTION quarantine_counts_keep();
    LOCK TABLE quarantine IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM quarantine_counts;
    INSERT INTO quarantine_counts (vendor, account, entries)
    SELECT vendor, account, count(*) FROM quarantine GROUP BY vendor, account;
END
$$;
