"""/metrics and /openapi.yaml: open by default, restricted by METRICS_TOKEN and/or
METRICS_ALLOWED_NETWORKS, and never a 500 whatever the scraper asks for."""

from __future__ import annotations

import pytest

TOKEN = "a-metrics-token-for-tests"
PATHS = ["/metrics", "/openapi.yaml"]


@pytest.mark.parametrize("path", PATHS)
def test_open_by_default(make_app, db, path):
    assert make_app().test_client().get(path).status_code == 200


@pytest.mark.parametrize("path", PATHS)
def test_a_configured_token_is_required(make_app, db, path):
    client = make_app(METRICS_TOKEN=TOKEN, METRICS_TOKEN_PREVIOUS="the-previous-metrics-token").test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}):
        refused = client.get(path, headers=headers)
        assert (refused.status_code, refused.json) == (401, {"error": "A bearer token is required"})
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    for token in (TOKEN, "the-previous-metrics-token"):
        assert client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize("path", PATHS)
def test_allowed_networks_are_matched_against_the_client_address(make_app, db, path):
    elsewhere = make_app(METRICS_ALLOWED_NETWORKS="10.0.0.0/8, 192.0.2.7").test_client()
    refused = elsewhere.get(path)  # the test client's address is 127.0.0.1
    assert (refused.status_code, refused.json) == (403, {"error": "Not allowed from this address"})
    assert make_app(METRICS_ALLOWED_NETWORKS="127.0.0.0/8").test_client().get(path).status_code == 200
    proxied = make_app(METRICS_ALLOWED_NETWORKS="10.0.0.0/8", TRUSTED_PROXY_COUNT="1").test_client()
    assert proxied.get(path, headers={"X-Forwarded-For": "10.1.2.3"}).status_code == 200
    # a claim further left than the trusted hop is not believed
    assert proxied.get(path, headers={"X-Forwarded-For": "10.1.2.3, 203.0.113.9"}).status_code == 403


def test_both_set_means_both_must_pass(make_app, db):
    client = make_app(METRICS_TOKEN=TOKEN, METRICS_ALLOWED_NETWORKS="10.0.0.0/8").test_client()
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 403


@pytest.mark.parametrize("query, accept", [
    ("name[]=ingestion_http_requests_total", None),
    ("name[]=", None),
    ("name[]=x&name[]=y&name=z", "application/openmetrics-text; version=9.9.9"),
    ("", "application/openmetrics-text; version=1.0.0; escaping=bogus"),
    ("", "*/*;q=abc"),
])
def test_odd_scrapes_never_fail(make_app, db, query, accept):
    client = make_app().test_client()
    response = client.get(f"/metrics?{query}", headers={"Accept": accept} if accept else {})
    assert response.status_code == 200, response.data[:300]
