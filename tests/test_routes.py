"""No webhook route ships without authentication, and every route answers JSON."""

from __future__ import annotations

import pytest

from ingestion.web.webhook import WEBHOOK_PREFIX


def webhook_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith(WEBHOOK_PREFIX)]


def test_there_is_one_webhook_route_per_vendor(app):
    assert sorted(rule.rule for rule in webhook_rules(app)) == [
        f"{WEBHOOK_PREFIX}/freshdesk", f"{WEBHOOK_PREFIX}/zendesk"]


def test_every_webhook_view_wears_the_authentication_decorator(app):
    for rule in webhook_rules(app):
        view = app.view_functions[rule.endpoint]
        assert getattr(view, "webhook_auth", None) == rule.rule.rsplit("/", 1)[1], rule.rule


def test_every_webhook_route_refuses_an_unauthenticated_call(app, client, db):
    rules = webhook_rules(app)
    assert rules
    for rule in rules:
        response = client.post(rule.rule, data=b'{"id": 1}', headers={"Content-Type": "application/json"})
        assert response.status_code == 401, rule.rule
        assert "error" in response.json


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_wrong_methods_on_webhook_routes_are_json_405(app, client, method):
    for rule in webhook_rules(app):
        response = client.open(rule.rule, method=method)
        assert (response.status_code, response.json) == (405, {"error": "Method not allowed"})


def test_every_route_is_known(app):
    """A new route must be added here on purpose, together with its auth decision."""
    assert sorted(rule.rule for rule in app.url_map.iter_rules() if rule.endpoint != "static") == sorted([
        f"{WEBHOOK_PREFIX}/freshdesk", f"{WEBHOOK_PREFIX}/zendesk", "/health", "/health/live", "/metrics", "/openapi.yaml"])


def test_the_openapi_description_is_served_and_documents_exactly_the_routes(app, client):
    import yaml

    response = client.get("/openapi.yaml")
    assert response.status_code == 200 and response.mimetype == "application/yaml"
    document = yaml.safe_load(response.data)
    assert document["openapi"].startswith("3.")
    routes = {(rule.rule, method) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    assert documented == routes
