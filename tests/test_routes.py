"""No webhook route ships without authentication, and every route answers JSON."""

from __future__ import annotations

import pytest

import re

from ingestion.vendors import VENDORS, vendor_names
from ingestion.web.quarantine_api import PREFIX as QUARANTINE_PREFIX
from ingestion.web.read_api import PREFIX as READ_PREFIX
from ingestion.web.webhook import WEBHOOK_PREFIX

ACCOUNT = re.compile(r"<[^>]*:account>")
VENDOR_METHODS = {vendor.name: vendor.methods for vendor in VENDORS}


def webhook_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith(WEBHOOK_PREFIX)]


def concrete(rule) -> str:
    """A URL the rule matches (an account for the account segment)."""
    return ACCOUNT.sub("acme", rule.rule)


def documented(rule) -> str:
    """The rule as OpenAPI writes paths: {name} for each variable segment."""
    return re.sub(r"<(?:[^>:]*:)?([a-z_]+)>", r"{\1}", ACCOUNT.sub("{account}", rule.rule))


def test_each_vendor_has_a_webhook_route_and_one_naming_the_account(app):
    assert sorted(documented(rule) for rule in webhook_rules(app)) == sorted(
        path for vendor in vendor_names()
        for path in (f"{WEBHOOK_PREFIX}/{vendor}", f"{WEBHOOK_PREFIX}/{vendor}/{{account}}"))


def test_every_webhook_view_wears_the_authentication_decorator(app):
    for rule in webhook_rules(app):
        view = app.view_functions[rule.endpoint]
        vendor = rule.rule.removeprefix(WEBHOOK_PREFIX + "/").split("/")[0]
        assert getattr(view, "webhook_auth", None) == vendor, rule.rule


def test_every_read_api_view_wears_the_token_decorator(app):
    rules = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith((READ_PREFIX, QUARANTINE_PREFIX))]
    assert len(rules) == 4
    for rule in rules:
        assert getattr(app.view_functions[rule.endpoint], "api_auth", False), rule.rule


def test_every_webhook_route_refuses_an_unauthenticated_call(app, client, db, add_source):
    """401 on every route; an account route names a source, so the account needs one first
    (without it the answer is 404, and no other source's secret is tried: test_sources.py)."""
    rules = webhook_rules(app)
    assert rules
    for rule in rules:
        vendor = rule.rule.removeprefix(WEBHOOK_PREFIX + "/").split("/")[0]
        if "<" in rule.rule:
            add_source(vendor, "acme", VENDOR_METHODS[vendor][0])
        response = client.post(concrete(rule), data=b'{"id": 1}', headers={"Content-Type": "application/json"})
        assert response.status_code == 401, rule.rule
        assert "error" in response.json


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_wrong_methods_on_webhook_routes_are_json_405(app, client, method):
    for rule in webhook_rules(app):
        response = client.open(concrete(rule), method=method)
        assert (response.status_code, response.json) == (405, {"error": "Method not allowed"})


def test_an_options_request_flask_answers_is_a_204_with_allow_and_no_html(app, client):
    """Flask's automatic OPTIONS answer was a 200 with an empty text/html body."""
    for path in ("/health", "/api/v1/tickets/freshdesk/1"):
        response = client.options(path)
        assert (response.status_code, response.data) == (204, b""), path
        assert "GET" in response.headers["Allow"] and "Content-Type" not in response.headers


def test_every_route_is_known(app):
    """A new route must be added here on purpose, together with its auth decision. Each
    registered vendor has its two webhook routes, and nothing else is per vendor."""
    webhooks = [f"{WEBHOOK_PREFIX}/{vendor}{suffix}" for vendor in vendor_names() for suffix in ("", "/{account}")]
    assert sorted(documented(rule) for rule in app.url_map.iter_rules()
                  if rule.endpoint != "static" and not rule.rule.startswith("/console")) == sorted([
        *webhooks, f"{READ_PREFIX}/{{vendor}}/{{external_id}}", f"{READ_PREFIX}/{{vendor}}/{{external_id}}/events",
        QUARANTINE_PREFIX, f"{QUARANTINE_PREFIX}/{{entry_id}}", "/health", "/health/live", "/metrics", "/openapi.yaml"])


def test_the_openapi_description_is_served_and_documents_exactly_the_routes(app, client):
    import yaml

    response = client.get("/openapi.yaml")
    assert response.status_code == 200 and response.mimetype == "application/yaml"
    document = yaml.safe_load(response.data)
    assert document["openapi"].startswith("3.")
    routes = {(documented(rule), method) for rule in app.url_map.iter_rules()
              if rule.endpoint != "static" and not rule.rule.startswith("/console")  # HTML pages: not the API
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    described = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    assert described == routes


def test_every_console_page_requires_a_session_but_the_sign_in_form_and_the_static_files(app):
    """The console (web/console/) is HTML for operators, outside the OpenAPI description:
    each of its routes wears console_page (a session, CSRF on POST) except these two."""
    rules = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/console")]
    open_routes = {rule.endpoint for rule in rules if not getattr(app.view_functions[rule.endpoint], "console_auth", False)}
    assert open_routes == {"console.login", "console.static"}
    assert {"console.overview", "console.events", "console.ticket", "console.quarantine"} <= {r.endpoint for r in rules}
