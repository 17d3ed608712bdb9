"""Field recognition shared by every vendor: pure functions from payload mappings to the
normalized values of `ingestion.tickets`. Vendor modules decide where the ticket, the
comment and the event sit in their payloads; these modules decide what the values mean,
once, so every vendor accepts the same spellings and refuses the same mistakes.

- keys.py: finding a field under its spellings (snake_case, camelCase, prefixed);
- values.py: ids, text, status words, tags, timestamps;
- people.py: requesters and assignees (objects, "Name <email>", separate keys);
- ticket_fields.py: a ticket object to the normalized fields it carries;
- comments.py: the comment of an event, wherever admins put it.
"""
