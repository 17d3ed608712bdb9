"""Realistic mixed traffic for a deployment: `locust -f bench/locustfile.py --host https://...`.

Both vendors with their real authentication (Freshdesk HMAC or Basic, Zendesk's
timestamped signature), and the mix a helpdesk produces: new tickets, updates of
recent tickets (newer updated_at), redeliveries (vendor retries, several triggers
firing), late retries of an old version (stale), and Zendesk events that are not about
tickets. Secrets come from the same variables the service reads, so point it at an
instance configured with them:

    FRESHDESK_WEBHOOK_SECRET=... ZENDESK_SIGNING_SECRET=... \
      locust -f bench/locustfile.py --host https://ingest.example.com \
             --headless -u 50 -r 10 -t 5m

Every client shares one source address, so set RATE_LIMIT_PER_MINUTE on the target above
the load you generate (or expect 429s, which locust reports). Anything but 200, 201 and
429 counts as a failure and makes locust exit non-zero (see `check_no_server_errors`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import uuid
from datetime import datetime, timedelta, timezone

from locust import FastHttpUser, between, events, task

FRESHDESK_SECRET = os.environ.get("FRESHDESK_WEBHOOK_SECRET", "").strip()
FRESHDESK_BASIC = os.environ.get("FRESHDESK_WEBHOOK_AUTH", "").strip()
ZENDESK_SECRET = os.environ.get("ZENDESK_SIGNING_SECRET", "").strip()
RUN = uuid.uuid4().hex[:8]  # ticket ids unique to this run


def now_iso(offset_minutes: int = 0) -> str:
    return (datetime.now(timezone.utc) + timedelta(minutes=offset_minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def freshdesk_headers(body: bytes) -> dict[str, str]:
    if FRESHDESK_SECRET:
        return {"X-Freshdesk-Signature": hmac.new(FRESHDESK_SECRET.encode(), body, hashlib.sha256).hexdigest()}
    if FRESHDESK_BASIC:
        return {"Authorization": "Basic " + base64.b64encode(FRESHDESK_BASIC.encode()).decode()}
    return {}


def zendesk_headers(body: bytes) -> dict[str, str]:
    if not ZENDESK_SECRET:
        return {}
    stamp = now_iso()
    digest = hmac.new(ZENDESK_SECRET.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return {"X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp}


class HelpdeskVendors(FastHttpUser):
    wait_time = between(0.05, 0.5)

    def on_start(self) -> None:
        self.recent: list[tuple[str, dict]] = []  # (vendor, last payload sent) for updates and retries
        self.serial = 0

    def deliver(self, vendor: str, payload: dict, name: str) -> None:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json",
                   **(freshdesk_headers(body) if vendor == "freshdesk" else zendesk_headers(body))}
        with self.client.post(f"/api/v1/ingest/webhook/{vendor}", data=body, headers=headers, name=name,
                              catch_response=True) as response:
            if response.status_code in (200, 201, 429):
                response.success()
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")

    def new_ticket(self, vendor: str) -> dict:
        self.serial += 1
        ticket_id = f"{RUN}-{id(self) % 10000}-{self.serial}"
        fields = {"subject": f"Load ticket {ticket_id}", "description": "<p>The printer is on fire</p>",
                  "tags": ["load", random.choice(["billing", "vpn", "printer"])], "updated_at": now_iso()}
        if vendor == "freshdesk":
            return {"ticket": {"id": ticket_id, "status": 2, "priority": random.randint(1, 4), **fields}}
        return {"type": "zen:event-type:ticket.created", "id": str(uuid.uuid4()), "subject": f"zen:ticket:{ticket_id}",
                "time": now_iso(), "detail": {"id": ticket_id, "status": "OPEN", "priority": "NORMAL", **fields}}

    @task(10)
    def create(self) -> None:
        vendor = random.choice(["freshdesk", "zendesk"])
        payload = self.new_ticket(vendor)
        self.recent = (self.recent + [(vendor, payload)])[-50:]
        self.deliver(vendor, payload, f"{vendor}: new ticket")

    @task(5)
    def update(self) -> None:
        if not self.recent:
            return
        index = random.randrange(len(self.recent))
        vendor, payload = self.recent[index]
        changed = json.loads(json.dumps(payload))
        ticket = changed["ticket"] if vendor == "freshdesk" else changed["detail"]
        ticket["subject"] += " (edited)"
        ticket["updated_at"] = now_iso(1)
        if vendor == "zendesk":
            changed["id"], changed["type"] = str(uuid.uuid4()), "zen:event-type:ticket.status_changed"
        self.recent[index] = (vendor, changed)
        self.deliver(vendor, changed, f"{vendor}: update")

    @task(6)
    def redeliver(self) -> None:
        if self.recent:
            vendor, payload = random.choice(self.recent)
            self.deliver(vendor, payload, f"{vendor}: redelivery")

    @task(1)
    def late_retry(self) -> None:
        if self.recent:
            vendor, payload = random.choice(self.recent)
            old = json.loads(json.dumps(payload))
            (old["ticket"] if vendor == "freshdesk" else old["detail"])["updated_at"] = now_iso(-90)
            self.deliver(vendor, old, f"{vendor}: late retry (stale)")

    @task(1)
    def not_a_ticket(self) -> None:
        self.deliver("zendesk", {"type": "zen:event-type:user.created", "id": str(uuid.uuid4()),
                                 "subject": "zen:user:1", "detail": {"id": "1", "name": "New User"}},
                     "zendesk: user event (ignored)")


@events.quitting.add_listener
def check_no_server_errors(environment, **_kwargs) -> None:
    """Exit non-zero when any request failed (anything but 200, 201 or 429)."""
    if environment.stats.total.num_failures:
        environment.process_exit_code = 1
