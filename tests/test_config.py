"""Configuration is read once, validated, and a bad value names its variable."""

from __future__ import annotations

import pytest

from ingestion.config import ZENDESK_PUBLIC_TEST_SECRET, ConfigError, Settings

BASE = {"DATABASE_URL": "postgresql://u:p@127.0.0.1/db"}


def test_defaults_follow_the_specification():
    s = Settings.from_env(BASE)
    assert (s.app_env, s.rate_limit_per_minute, s.trusted_proxy_count, s.circuit_breaker_threshold,
            s.circuit_breaker_timeout, s.max_body_bytes, s.webhook_timestamp_tolerance, s.log_level) == (
        "production", 100, 0, 5, 30, 1024 * 1024, 300, "INFO")
    assert s.redis_url is None and not s.development


@pytest.mark.parametrize("variable, value", [
    ("DATABASE_URL", ""),
    ("DATABASE_URL", "mysql://u@h/db"),
    ("REDIS_URL", "http://localhost:6379"),
    ("APP_ENV", "staging"),
    ("LOG_LEVEL", "LOUD"),
    ("RATE_LIMIT_PER_MINUTE", "lots"),
    ("RATE_LIMIT_PER_MINUTE", "0"),
    ("TRUSTED_PROXY_COUNT", "-1"),
    ("CIRCUIT_BREAKER_THRESHOLD", "1.5"),
    ("CIRCUIT_BREAKER_TIMEOUT", "0"),
    ("MAX_BODY_BYTES", "10"),
    ("WEBHOOK_TIMESTAMP_TOLERANCE", "forever"),
    ("REDIS_TIMEOUT", "nan"),
    ("RETRY_AFTER_SECONDS", "60"),
    ("FRESHDESK_WEBHOOK_AUTH", "user-without-password"),
    ("ZENDESK_WEBHOOK_SECRET", "user:pass,:nouser"),
])
def test_a_bad_value_is_refused_naming_the_variable(variable, value):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**BASE, variable: value})
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")


def test_a_refused_credential_is_not_echoed():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**BASE, "FRESHDESK_WEBHOOK_AUTH": "s3cr3t-without-colon"})
    assert "s3cr3t" not in str(caught.value)


def test_secret_variables_hold_comma_separated_lists_for_rotation():
    s = Settings.from_env({**BASE, "FRESHDESK_WEBHOOK_SECRET": " new , old ,", "ZENDESK_WEBHOOK_SECRET": "a:b:c,d:e"})
    assert s.freshdesk_webhook_secret == ("new", "old")
    assert s.zendesk_webhook_secret == (("a", "b:c"), ("d", "e"))


def test_production_refuses_zendesks_public_test_secret_and_development_allows_it():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**BASE, "ZENDESK_SIGNING_SECRET": ZENDESK_PUBLIC_TEST_SECRET})
    assert caught.value.variable == "ZENDESK_SIGNING_SECRET"
    dev = Settings.from_env({**BASE, "APP_ENV": "development", "ZENDESK_SIGNING_SECRET": ZENDESK_PUBLIC_TEST_SECRET})
    assert dev.zendesk_signing_secret == (ZENDESK_PUBLIC_TEST_SECRET,)


def test_repr_never_shows_secrets_or_urls_with_passwords():
    s = Settings.from_env({**BASE, "FRESHDESK_WEBHOOK_SECRET": "hmac-key", "FRESHDESK_WEBHOOK_AUTH": "u:pw-123",
                           "REDIS_URL": "redis://:redispw@127.0.0.1/0"})
    text = repr(s)
    for secret in ("hmac-key", "pw-123", "redispw", "u:p@"):
        assert secret not in text
