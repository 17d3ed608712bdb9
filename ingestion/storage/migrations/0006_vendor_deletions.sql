-- Migration 6: vendor deletions.
--
-- A soft delete at the vendor (Zendesk's ticket.soft_deleted, a Freshdesk rule fired on
-- deletion, Help Scout's convo.deleted) marks the ticket deleted (deleted_at); a restore
-- clears the mark. A permanent delete (Zendesk's ticket.permanently_deleted, Freshworks'
-- onTicketDelete) forgets the ticket's content: its people, subject, description, tags,
-- custom fields and organization, and every event's raw payload, comment and changes.
-- Ids, types, times, outcomes and revisions stay: the audit of what arrived when.
-- purged_at says when; whatever still arrives about a purged ticket is kept as a
-- content-free `stale` event.
--
-- New nullable columns without a default: no table rewrite.
ALTER TABLE tickets ADD COLUMN deleted_at timestamptz, ADD COLUMN purged_at timestamptz;

-- 'deleted': the event moved the ticket into the deleted state (or purged it). The new
-- check admits everything the old one did, so existing rows need no scan (NOT VALID: no
-- long lock on a large events table; new rows are checked).
ALTER TABLE events DROP CONSTRAINT events_outcome_check,
    ADD CONSTRAINT events_outcome_check
        CHECK (outcome IN ('created', 'updated', 'recorded', 'stale', 'deleted')) NOT VALID;

-- Forget a ticket's content (a permanent delete; `redact --ticket`). Returns how many
-- rows changed, 0 and 0 when run again.
CREATE FUNCTION forget_ticket(p_ticket uuid, OUT tickets_changed integer, OUT events_changed integer)
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
    UPDATE events SET payload = NULL, comment_body = NULL, comment_author = NULL, comment_public = NULL,
                      changes = NULL
     WHERE ticket_id = p_ticket AND num_nonnulls(payload, comment_body, comment_author, changes) > 0;
    GET DIAGNOSTICS events_changed = ROW_COUNT;
END
$$;

-- ingest_event, as in migration 2, plus deletions: p_fields->>'deletion' is soft,
-- permanent or restored when the event says so. A soft delete is ordered like any
-- change (an older one arriving late is stale); a permanent one always applies (an
-- older one forgets without merging); a restore applies when it is not older than the
-- deletion mark, even behind a newer update.
CREATE OR REPLACE FUNCTION ingest_event(
    p_vendor text, p_account text, p_external_id text, p_fields jsonb,
    p_dedup_key text, p_dedup_horizon interval, p_event_type text, p_vendor_event_id text,
    p_comment_body text, p_comment_author text, p_comment_public boolean, p_changes jsonb,
    p_payload jsonb, p_request_id text,
    OUT out_ticket_id uuid, OUT out_event_id bigint, OUT out_outcome text, OUT out_revision integer)
LANGUAGE plpgsql AS $$
DECLARE
    t tickets%ROWTYPE;
    merged tickets%ROWTYPE;
    earlier record;
    updated_at_given timestamptz := (p_fields->>'vendor_updated_at')::timestamptz;
    -- soft | permanent | restored | NULL: what the event says about the ticket's deletion
    deletion text := p_fields->>'deletion';
    deleting boolean := p_fields->>'deletion' IN ('soft', 'permanent');
BEGIN
    IF p_changes ? 'deleted' THEN
        -- 'deleted' in changes is this function's record of the deletion mark (the
        -- stream's restored signal reads it); a vendor's own flag change says no more.
        p_changes := nullif(p_changes - 'deleted', '{}');
    END IF;
    LOOP
        INSERT INTO tickets AS x (vendor, account, external_id, subject, description, status, priority, type,
                                  requester_name, requester_email, requester_id, assignee_name, assignee_email,
                                  assignee_id, group_name, organization, tags, custom_fields,
                                  vendor_created_at, vendor_updated_at, deleted_at)
        VALUES (p_vendor, p_account, p_external_id, p_fields->>'subject', p_fields->>'description',
                p_fields->>'status', p_fields->>'priority', p_fields->>'type',
                p_fields->>'requester_name', p_fields->>'requester_email', p_fields->>'requester_id',
                p_fields->>'assignee_name', p_fields->>'assignee_email', p_fields->>'assignee_id',
                p_fields->>'group', p_fields->>'organization',
                coalesce(ARRAY(SELECT jsonb_array_elements_text(p_fields->'tags')), '{}'),
                coalesce(p_fields->'custom_fields', '{}'),
                (p_fields->>'vendor_created_at')::timestamptz, updated_at_given,
                CASE WHEN deleting THEN coalesce(updated_at_given, now()) END)
        ON CONFLICT (vendor, account, external_id) DO NOTHING
        RETURNING x.id INTO out_ticket_id;
        IF FOUND THEN
            out_outcome := CASE WHEN deleting THEN 'deleted' ELSE 'created' END;
            IF deleting THEN
                p_changes := coalesce(p_changes, '{}') || '{"deleted": {"previous": false, "current": true}}'::jsonb;
            END IF;
            out_revision := 1;
            EXIT;
        END IF;
        SELECT * INTO t FROM tickets x
         WHERE x.vendor = p_vendor AND x.account = p_account AND x.external_id = p_external_id
           FOR NO KEY UPDATE;
        EXIT WHEN FOUND;  -- otherwise the row vanished between the two statements: insert again
    END LOOP;

    IF out_outcome IS NULL THEN
        out_ticket_id := t.id;
        out_revision := t.revision;

        -- The same delivery again? A body fingerprint only counts within the horizon:
        -- past it, the same body is a new event and takes the key over.
        SELECT e.id, e.received_at INTO earlier FROM events e
         WHERE e.ticket_id = t.id AND e.dedup_key = p_dedup_key;
        IF FOUND THEN
            IF p_dedup_horizon IS NULL OR earlier.received_at > now() - p_dedup_horizon THEN
                out_outcome := 'already_exists';
                out_event_id := earlier.id;
                INSERT INTO deliveries (vendor, account, external_id, ticket_id, event_id, outcome,
                                        vendor_event_id, request_id)
                VALUES (p_vendor, p_account, p_external_id, t.id, earlier.id, 'already_exists',
                        p_vendor_event_id, p_request_id);
                RETURN;
            END IF;
            UPDATE events SET dedup_key = dedup_key || ':' || id WHERE id = earlier.id;
        END IF;

        IF t.purged_at IS NOT NULL THEN
            -- Permanently deleted at the vendor: whatever still arrives about the ticket
            -- (a late retry of an older delivery) is older news. Its skeleton is kept for
            -- the audit, never its content.
            out_outcome := 'stale';
            p_payload := NULL; p_comment_body := NULL; p_comment_author := NULL; p_comment_public := NULL;
            p_changes := NULL;
        ELSIF updated_at_given < t.vendor_updated_at THEN
            -- An older version arriving late (Freshdesk retries after up to 95 minutes):
            -- kept as history, the ticket untouched. NULL on either side cannot be
            -- ordered and counts as newer. Deletions are ordered by their own clock:
            -- a permanent delete always forgets (without merging its older fields), and
            -- a restore newer than the deletion mark clears it.
            IF deletion = 'permanent'
               OR deletion = 'restored' AND t.deleted_at IS NOT NULL AND updated_at_given >= t.deleted_at THEN
                UPDATE tickets x SET deleted_at = CASE WHEN deletion = 'permanent' THEN coalesce(x.deleted_at, now()) END,
                                     revision = x.revision + 1, updated_at = now()
                 WHERE x.id = t.id
                RETURNING x.revision INTO out_revision;
                out_outcome := CASE WHEN deletion = 'permanent' THEN 'deleted' ELSE 'updated' END;
                IF deletion = 'restored' THEN
                    p_changes := coalesce(p_changes, '{}')
                                 || '{"deleted": {"previous": true, "current": false}}'::jsonb;
                END IF;
            ELSE
                out_outcome := 'stale';
            END IF;
        ELSE
            merged := t;
            IF p_fields ? 'subject' THEN merged.subject := p_fields->>'subject'; END IF;
            IF p_fields ? 'description' THEN merged.description := p_fields->>'description'; END IF;
            IF p_fields ? 'status' THEN merged.status := p_fields->>'status'; END IF;
            IF p_fields ? 'priority' THEN merged.priority := p_fields->>'priority'; END IF;
            IF p_fields ? 'type' THEN merged.type := p_fields->>'type'; END IF;
            IF p_fields ? 'requester_name' THEN merged.requester_name := p_fields->>'requester_name'; END IF;
            IF p_fields ? 'requester_email' THEN merged.requester_email := p_fields->>'requester_email'; END IF;
            IF p_fields ? 'requester_id' THEN merged.requester_id := p_fields->>'requester_id'; END IF;
            IF p_fields ? 'assignee_name' THEN merged.assignee_name := p_fields->>'assignee_name'; END IF;
            IF p_fields ? 'assignee_email' THEN merged.assignee_email := p_fields->>'assignee_email'; END IF;
            IF p_fields ? 'assignee_id' THEN merged.assignee_id := p_fields->>'assignee_id'; END IF;
            IF p_fields ? 'group' THEN merged.group_name := p_fields->>'group'; END IF;
            IF p_fields ? 'organization' THEN merged.organization := p_fields->>'organization'; END IF;
            IF p_fields ? 'tags' THEN
                merged.tags := ARRAY(SELECT jsonb_array_elements_text(p_fields->'tags'));
            END IF;
            IF p_fields ? 'custom_fields' THEN
                merged.custom_fields := t.custom_fields || (p_fields->'custom_fields');
            END IF;
            IF p_fields ? 'vendor_created_at' THEN
                merged.vendor_created_at := (p_fields->>'vendor_created_at')::timestamptz;
            END IF;
            IF p_fields ? 'vendor_updated_at' THEN merged.vendor_updated_at := updated_at_given; END IF;
            IF deleting AND (t.deleted_at IS NULL OR updated_at_given > t.deleted_at) THEN
                -- (deleted again after a restore this service missed: the mark moves on)
                merged.deleted_at := coalesce(updated_at_given, now());
            ELSIF deletion = 'restored'
                  AND (updated_at_given IS NULL OR t.deleted_at IS NULL OR updated_at_given >= t.deleted_at) THEN
                -- (a snapshot older than the deletion mark does not undo it)
                merged.deleted_at := NULL;
            END IF;
            IF (merged.deleted_at IS NULL) <> (t.deleted_at IS NULL) THEN  -- the history says so
                p_changes := coalesce(p_changes, '{}') || jsonb_build_object('deleted', jsonb_build_object(
                    'previous', t.deleted_at IS NOT NULL, 'current', merged.deleted_at IS NOT NULL));
            END IF;

            IF merged IS NOT DISTINCT FROM t AND deletion IS DISTINCT FROM 'permanent' THEN
                out_outcome := 'recorded';
            ELSE
                UPDATE tickets x SET
                    subject = merged.subject, description = merged.description, status = merged.status,
                    priority = merged.priority, type = merged.type, requester_name = merged.requester_name,
                    requester_email = merged.requester_email, requester_id = merged.requester_id,
                    assignee_name = merged.assignee_name, assignee_email = merged.assignee_email,
                    assignee_id = merged.assignee_id, group_name = merged.group_name,
                    organization = merged.organization, tags = merged.tags, custom_fields = merged.custom_fields,
                    vendor_created_at = merged.vendor_created_at, vendor_updated_at = merged.vendor_updated_at,
                    deleted_at = merged.deleted_at, revision = x.revision + 1, updated_at = now()
                 WHERE x.id = t.id
                RETURNING x.revision INTO out_revision;
                out_outcome := CASE WHEN merged.deleted_at IS NOT NULL AND (t.deleted_at IS NULL OR deletion = 'permanent')
                                    THEN 'deleted' ELSE 'updated' END;
            END IF;
        END IF;
    END IF;

    IF deletion = 'permanent' AND out_outcome = 'deleted' THEN
        -- Forget the ticket's content, this event's included: ids, times, outcomes and
        -- revisions stay for the audit.
        PERFORM forget_ticket(out_ticket_id);
        UPDATE tickets SET purged_at = now() WHERE id = out_ticket_id;
        p_payload := NULL; p_comment_body := NULL; p_comment_author := NULL; p_comment_public := NULL;
        p_changes := NULL;
    END IF;

    INSERT INTO events (ticket_id, outcome, revision, event_type, vendor_event_id, dedup_key, vendor_updated_at,
                        comment_body, comment_author, comment_public, changes, payload, request_id)
    VALUES (out_ticket_id, out_outcome, out_revision, p_event_type, p_vendor_event_id, p_dedup_key,
            updated_at_given, p_comment_body, p_comment_author, p_comment_public, p_changes, p_payload,
            p_request_id)
    RETURNING id INTO out_event_id;
END
$$;
