"""Logs and metrics stay free of personal data: names, email addresses and comment text
that reach the service are stored, and never appear in a log line (at DEBUG, so every
level is written) or a metric label, whatever became of the delivery."""

from __future__ import annotations

import pytest
import requests

from conftest import make_env
from processes import Gunicorn
from signing import post_http, signed, url_for

pytestmark = pytest.mark.gunicorn

TOKEN = "personal-data-token-0123456789"
NAME, SURNAME = "Zephyrine", "Quillfeather"
EMAIL = "zephyrine.quill@example.org"
COMMENT = "Sapphire-8812 was charged twice"
SECRETS = (NAME, SURNAME, EMAIL, "Sapphire-8812", "charged twice")


@pytest.fixture(scope="module")
def server(database_url, workdir):
    gunicorn = Gunicorn(make_env(database_url, LOG_LEVEL="DEBUG", API_TOKENS=TOKEN), log_dir=workdir).start()
    yield gunicorn
    gunicorn.stop()


def test_no_name_email_or_comment_reaches_a_log_line_or_a_metric(server, db):
    deliveries = [
        ("freshdesk", {"freshdesk_webhook": {
            "ticket_id": "pd-1", "ticket_subject": "Refund", "ticket_contact_name": f"{NAME} {SURNAME}",
            "ticket_contact_email": EMAIL, "ticket_latest_public_comment": COMMENT}}, {}, 201),
        ("zendesk", {"ticket": {"id": "pd-2", "requester": f"{NAME} {SURNAME} <{EMAIL}>",
                                "latest_comment": COMMENT}}, {}, 201),
        ("helpscout", {"id": 9876501, "subject": "Refund", "status": "active",
                       "primaryCustomer": {"first": NAME, "last": SURNAME, "email": EMAIL}},
         {"X-HelpScout-Event": "convo.created"}, 201),
        ("zendesk", {"ticket": {"id": "pd-2", "requester": f"{NAME} {SURNAME} <{EMAIL}>",
                                "latest_comment": COMMENT}}, {}, 200),                  # a redelivery
        ("freshdesk", {"ticket": {"subject": f"{NAME} {SURNAME}", "requester_email": EMAIL}}, {}, 422),
        ("freshdesk", {"ticket": {"id": "pd-3", "subject": COMMENT, "tags": {"who": EMAIL}}}, {}, 422),
    ]
    for vendor, payload, headers, status in deliveries:
        assert post_http(server.url, vendor, payload, **headers).status_code == status, (vendor, payload)
    body, _ = signed("zendesk", {"ticket": {"id": "pd-4", "requester": EMAIL}})
    refused = requests.post(server.url + url_for("zendesk"), data=body, timeout=10,
                            headers={"X-Zendesk-Webhook-Signature": "bm90IGl0", "X-Zendesk-Webhook-Signature-Timestamp": "x"})
    assert refused.status_code == 401
    read = requests.get(server.url + "/api/v1/tickets/zendesk/pd-2", headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=10)
    assert read.json()["requester"]["email"] == EMAIL  # the data is there, and served to a token holder
    stored = db.execute("SELECT requester_email FROM tickets WHERE external_id IN ('pd-1', 'pd-2')").fetchall()
    assert [r["requester_email"] for r in stored] == [EMAIL, EMAIL]
    metrics = requests.get(server.url + "/metrics", timeout=10).text

    server.wait_for_log(lambda r: r.get("path") == "/metrics")
    log = server.log()
    assert len(log.splitlines()) > 10 and '"level": "DEBUG"' in log  # DEBUG lines are written
    for text, where in ((log, "log"), (metrics, "metrics")):
        for secret in SECRETS:
            assert secret.lower() not in text.lower(), f"{secret!r} in the {where}"
