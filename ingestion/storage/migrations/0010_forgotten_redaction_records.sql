-- Migration 10: a ticket forgotten (`redact --ticket`, a permanent delete) after a
-- person's redaction kept the values that redaction merged (`Refund for [redacted]`) on
-- its record (a `forget` event), and a rebuild put them back on the ticket. forget_ticket()
-- now empties them (functions.sql); this empties what earlier forgettings left, as it does:
-- the personal fields' values go, their keys stay, and the event counts as retained.
UPDATE events e
   SET fields = (SELECT coalesce(jsonb_object_agg(key, CASE
                     WHEN key <> ALL (ARRAY['subject', 'description', 'requester_name', 'requester_email',
                                            'requester_id', 'assignee_name', 'assignee_email', 'assignee_id',
                                            'organization', 'tags', 'custom_fields']) THEN value
                     WHEN key = 'custom_fields' AND jsonb_typeof(value) = 'object'
                         THEN coalesce((SELECT jsonb_object_agg(k, NULL) FROM jsonb_object_keys(value) AS k), '{}')
                     ELSE 'null'::jsonb END), '{}')
                   FROM jsonb_each(e.fields)),
       fields_retained = true
 WHERE e.outcome = 'forget' AND e.fields IS NOT NULL AND NOT e.fields_retained
   AND e.fields ?| ARRAY['subject', 'description', 'requester_name', 'requester_email', 'requester_id',
                         'assignee_name', 'assignee_email', 'assignee_id', 'organization', 'tags', 'custom_fields']
   AND EXISTS (SELECT 1 FROM events f
                WHERE f.ticket_id = e.ticket_id AND f.id > e.id AND f.outcome = 'forget'
                  AND f.changes->>'forgotten' = 'ticket');
