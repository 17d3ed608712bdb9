"""Configuration is read once, validated, and a bad value names its variable."""

from __future__ import annotations

import pytest

import re
from pathlib import Path

import yaml

from ingestion.errors import ConfigError
from ingestion.vendors import load_settings
from ingestion.vendors.zendesk import PUBLIC_TEST_SECRET as ZENDESK_PUBLIC_TEST_SECRET

BASE = {"DATABASE_URL": "postgresql://u:p@127.0.0.1/db"}
ROOT = Path(__file__).resolve().parent.parent
STRONG = "a-random-secret-of-some-length"


def test_defaults_follow_the_specification():
    s = load_settings(BASE)
    assert (s.app_env, s.rate_limit_per_minute, s.trusted_proxy_count, s.circuit_breaker_threshold,
            s.circuit_breaker_timeout, s.max_body_bytes, s.webhook_timestamp_tolerance, s.log_level) == (
        "production", 100, 0, 5, 30, 1024 * 1024, 300, "INFO")
    assert s.redis_url is None and not s.development


def test_development_listens_on_loopback_unless_bind_says_otherwise():
    """Development takes webhooks without credentials and opens the read API: nobody else
    on the network may reach it by default. Production (the image) listens everywhere."""
    assert load_settings({**BASE, "APP_ENV": "development"}).bind == "127.0.0.1:8080"
    assert load_settings(BASE).bind == "0.0.0.0:8080"
    assert load_settings({**BASE, "APP_ENV": "development", "BIND": "0.0.0.0:9000"}).bind == "0.0.0.0:9000"


@pytest.mark.parametrize("variable, value", [
    ("DATABASE_URL", ""),
    ("DATABASE_URL", "mysql://u@h/db"),
    ("REDIS_URL", "http://localhost:6379"),
    ("DATABASE_READ_URL", "mysql://u@replica/db"),
    ("REDIS_URL", "redis+cluster://10.0.0.1:7000,10.0.0.2:7000"),  # limits' list form: redis-py reads one node
    ("REDIS_URL", "redis+cluster://10.0.0.1:7000/1"),  # a cluster has database 0 only
    ("REDIS_URL", "redis+cluster://10.0.0.1:port"),
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
    ("REDIS_TIMEOUT", "inf"),
    ("DB_POOL_TIMEOUT", "inf"),
    ("DB_STATEMENT_TIMEOUT_MS", "99999999999"),
    ("DB_CONNECT_TIMEOUT", "1e400"),
    ("STREAM_MAXLEN", "1" + "0" * 30),
    ("DUPLICATE_CACHE_TTL", "-5"),
    ("RETRY_AFTER_SECONDS", "60"),
    ("PROMETHEUS_MULTIPROC_DIR", "/nonexistent"),
    ("BIND", "8080"),
    ("BIND", "0.0.0.0:99999"),
    ("METRICS_ALLOWED_NETWORKS", "10.0.0.0/8, not-a-network"),
    ("FRESHDESK_WEBHOOK_AUTH", "user-without-password"),
    ("ZENDESK_WEBHOOK_AUTH", ":password-without-user"),
    ("ZENDESK_WEBHOOK_AUTH_PREVIOUS", "no-colon-in-the-previous-one"),
    ("ZENDESK_WEBHOOK_SECRET", ":password-without-user"),  # its old name
])
def test_a_bad_value_is_refused_naming_the_variable(variable, value):
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, variable: value})
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")


def test_a_refused_credential_is_not_echoed():
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, "FRESHDESK_WEBHOOK_AUTH": "s3cr3t-without-colon"})
    assert "s3cr3t" not in str(caught.value)


def test_a_secret_is_read_whole_and_rotation_uses_the_previous_variable():
    """A comma once split 'Tr0ub4dor&3-long-random,x' into two keys, making `x` valid."""
    s = load_settings({**BASE, "FRESHDESK_WEBHOOK_SECRET": " Tr0ub4dor&3-long-random,x ",
                           "FRESHDESK_WEBHOOK_SECRET_PREVIOUS": "the one being retired",
                           "ZENDESK_WEBHOOK_AUTH": "agent:pass:word, with spaces"})
    assert s.credential("FRESHDESK_WEBHOOK_SECRET") == ("Tr0ub4dor&3-long-random,x", "the one being retired")
    assert s.credential("ZENDESK_WEBHOOK_AUTH") == (("agent", "pass:word, with spaces"),)


def test_production_refuses_zendesks_public_test_secret_and_development_warns():
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, "ZENDESK_SIGNING_SECRET": ZENDESK_PUBLIC_TEST_SECRET})
    assert caught.value.variable == "ZENDESK_SIGNING_SECRET"
    dev = load_settings({**BASE, "APP_ENV": "development", "ZENDESK_SIGNING_SECRET": ZENDESK_PUBLIC_TEST_SECRET})
    assert dev.credential("ZENDESK_SIGNING_SECRET") == (ZENDESK_PUBLIC_TEST_SECRET,)
    assert [w.split()[0] for w in dev.warnings] == ["ZENDESK_SIGNING_SECRET"]


def shipped_examples() -> list[tuple[str, str]]:
    """Every (variable, value) .env.example and the example Kubernetes secret ship with."""
    pairs = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z_]+)=(\S+)", line)
        if match:
            pairs.append(match.groups())
    secret = yaml.safe_load((ROOT / "deploy" / "k8s" / "secret.example.yaml").read_text())
    pairs += list(secret["stringData"].items())
    # compose builds the database URL from POSTGRES_PASSWORD
    pairs += [("DATABASE_URL", f"postgresql://ingestion:{value}@postgres:5432/ingestion")
              for name, value in pairs if name == "POSTGRES_PASSWORD"]
    return pairs


SHIPPED_SECRETS = [(name, value) for name, value in shipped_examples()
                   if name.endswith(("_SECRET", "_AUTH", "_URL", "_TOKEN")) and "change-me" in value]


def test_the_examples_ship_placeholders_for_every_credential():
    names = {name for name, _ in SHIPPED_SECRETS}
    assert {"FRESHDESK_WEBHOOK_AUTH", "ZENDESK_SIGNING_SECRET", "DATABASE_URL"} <= names


@pytest.mark.parametrize("variable, value", SHIPPED_SECRETS, ids=[f"{n}={v}" for n, v in SHIPPED_SECRETS])
def test_production_refuses_every_placeholder_the_examples_ship(variable, value):
    env = {**BASE, variable: value}
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert caught.value.variable == variable
    assert value not in str(caught.value)
    assert load_settings({**env, "APP_ENV": "development"}).warnings


@pytest.mark.parametrize("variable, weak, strong", [
    ("FRESHDESK_WEBHOOK_SECRET", "c3f9a1d7e2b84f6", "c3f9a1d7e2b84f60"),
    ("FRESHDESK_WEBHOOK_SECRET_PREVIOUS", "k", "9b1e7c4a0d2f8e35"),
    ("ZENDESK_SIGNING_SECRET", "short-secret", "sixteen-chars-ok"),
    ("FRESHDESK_WEBHOOK_AUTH", "a:b", "a:q7Lm2Xp9Rt4w"),
    ("ZENDESK_WEBHOOK_AUTH", "zendesk:elevenchars", "zendesk:twelve-chars"),
    ("METRICS_TOKEN", "token", "a-long-metrics-token"),
    # Long enough, and guessable all the same (the review's cases first).
    ("FRESHDESK_WEBHOOK_SECRET", "change-me-change-me", "c3f9a1d7e2b84f60"),
    ("ZENDESK_SIGNING_SECRET", "x" * 16, "sixteen-chars-ok"),
    ("FRESHDESK_WEBHOOK_AUTH", "freshdesk:password1234", "freshdesk:q7Lm2Xp9Rt4w"),
    ("ZENDESK_WEBHOOK_SECRET", "zendesk:P@ssw0rd!2024", "zendesk:twelve-chars"),  # the old name, vetted too
    ("FRESHDESK_WEBHOOK_AUTH", "freshdesk-agent:freshdesk-agent", "freshdesk-agent:q7Lm2Xp9Rt4w"),
    ("HELPSCOUT_WEBHOOK_SECRET", "abababababababababab", "9b1e7c4a0d2f8e35"),
    ("HELPSCOUT_WEBHOOK_SECRET", "abcdefghijklmnopqrst", "9b1e7c4a0d2f8e35"),
    ("METRICS_TOKEN", "qwertyuiopasdfghjkl", "a-long-metrics-token"),
    # A second review's cases: patterns the rules above did not see, which zxcvbn's
    # estimate does (keyboard walks, a word with a digit run, a padded repeat).
    ("FRESHDESK_WEBHOOK_SECRET", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabcde", "c3f9a1d7e2b84f60"),
    ("FRESHDESK_WEBHOOK_SECRET", "abcdeaaaaaaaaaaaaaaaaaaa", "c3f9a1d7e2b84f60"),
    ("FRESHDESK_WEBHOOK_SECRET", "Password1234567890", "c3f9a1d7e2b84f60"),
    ("METRICS_TOKEN", "1q2w3e4r5t6y7u8i9o0p", "a-long-metrics-token"),
    ("API_TOKENS", "zaq12wsxcde34rfv", "9b1e7c4a0d2f8e35"),
    ("HELPSCOUT_WEBHOOK_SECRET", "1234qwerasdfzxcv", "9b1e7c4a0d2f8e35"),
    ("FRESHDESK_WEBHOOK_AUTH", "user:Password1234567890", "user:q7Lm2Xp9Rt4w"),
    # A common word every time it appears, not only once.
    ("FRESHDESK_WEBHOOK_SECRET", "monkey1monkey2monkey3", "c3f9a1d7e2b84f60"),
    ("FRESHDESK_WEBHOOK_SECRET", "dragondragon1234", "c3f9a1d7e2b84f60"),
    ("API_TOKENS", "9b1e7c4a0d2f8e35 letmein-letmein-letmein", "9b1e7c4a0d2f8e35 a-long-metrics-token"),
    # A third review's: doubled and interleaved runs, runs one after another, shifted
    # keyboard walks, a word and a digit run, the vendor the word list had left out.
    ("FRESHDESK_WEBHOOK_SECRET", "00112233445566778899", "c3f9a1d7e2b84f60"),
    ("FRESHDESK_WEBHOOK_SECRET", "aaaaabbbbbcccccdddddeeeee", "c3f9a1d7e2b84f60"),
    ("FRESHDESK_WEBHOOK_SECRET", "a1b2c3d4e5f6g7h8", "c3f9a1d7e2b84f60"),
    ("FRESHDESK_WEBHOOK_SECRET", "01234567890abcdef", "c3f9a1d7e2b84f60"),
    ("JIRA_WEBHOOK_SECRET", "1qaz!QAZ2wsx@WSX", "c3f9a1d7e2b84f60"),
    ("JIRA_WEBHOOK_SECRET", "!QAZ2wsx#EDC4rfv", "c3f9a1d7e2b84f60"),
    ("HUBSPOT_CLIENT_SECRET", "hubspotsecret123", "c3f9a1d7e2b84f60"),
    ("FRESHDESK_WEBHOOK_AUTH", "agent:Admin@1234567890", "agent:q7Lm2Xp9Rt4w"),
    ("API_TOKENS", "Summer2024!Summer", "9b1e7c4a0d2f8e35"),
    ("METRICS_TOKEN", "correcthorsebatterystaple", "a-long-metrics-token"),
    ("DATABASE_URL", "postgresql://ingestion:ingestion@db/ingestion", "postgresql://ingestion:Xq7r2Lm9Pw4k@db/ingestion"),
    ("DATABASE_URL", "postgresql://app:postgres@db/ingestion", "postgresql://app@db/ingestion"),
    ("REDIS_URL", "redis://:redis123@cache:6379/0", "redis://:Xq7r2Lm9Pw4k@cache:6379/0"),
    ("DATABASE_READ_URL", "postgresql://ingestion:ingestion@replica/ingestion",
     "postgresql://ingestion:Xq7r2Lm9Pw4k@replica/ingestion"),
])
def test_production_refuses_guessable_secrets_and_development_only_warns(variable, weak, strong):
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, variable: weak})
    assert caught.value.variable == variable and weak not in str(caught.value)
    assert load_settings({**BASE, variable: strong}).warnings == ()
    dev = load_settings({**BASE, "APP_ENV": "development", variable: weak})
    assert [w.split()[0] for w in dev.warnings] == [variable] and weak not in dev.warnings[0]


@pytest.mark.parametrize("variable, value", [
    ("REDIS_URL", "redis://127.0.0.1:99999/0"), ("REDIS_URL", "redis://[x:6379/0"),
    ("REDIS_URL", "redis://127.0.0.1:6379/abc"), ("DATABASE_URL", "postgresql://u:Xq7r2Lm9Pw4k@db:99999/ingestion"),
    ("DATABASE_URL", "postgresql://u:Xq7r2Lm9Pw4k@db:abc/ingestion"),
    ("DATABASE_READ_URL", "postgresql://u:Xq7r2Lm9Pw4k@[replica/ingestion"),
])
def test_an_unreadable_url_stops_the_process_in_one_line_naming_its_variable(variable, value):
    """A review's cases: a traceback at start, or a service degraded for good."""
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, variable: value})
    assert caught.value.variable == variable and "Xq7r2Lm9Pw4k" not in str(caught.value)


@pytest.mark.parametrize("url", [
    "postgresql://u:Xq7r2Lm9Pw4k@db1:5432,db2:5433/ingestion?target_session_attrs=read-write",
    # Generated passwords hold characters a URL should escape; libpq reads them as they are.
    "postgresql://u:Xq7r#2Lm9Pw4k@db/ingestion", "postgresql://u:Xq7r[2Lm9]Pw4k@db/ingestion",
    "postgresql://u:Xq7r?2Lm9Pw4k@db:5432/ingestion", "postgresql:///ingestion?host=/var/run/postgresql",
])
def test_every_url_libpq_reads_is_accepted(url):
    """A review's case: the first check (the standard library's parser) refused passwords
    with `#` or `[` that libpq, which connects, reads fine."""
    assert load_settings({**BASE, "DATABASE_URL": url}).database_url == url


def test_repr_never_shows_secrets_or_urls_with_passwords():
    s = load_settings({**BASE, "FRESHDESK_WEBHOOK_SECRET": "hmac-key-0123456789", "FRESHDESK_WEBHOOK_AUTH":
                           "u:pw-7Xq2Lm9P4k", "METRICS_TOKEN": "metrics-token-0123456789",
                           "REDIS_URL": "redis://:rdpw-7Xq2Lm9P@127.0.0.1/0",
                           "DATABASE_READ_URL": "postgresql://reader:rpw-3Kq8Zt5W@replica/ingestion"})
    text = repr(s)
    for secret in ("hmac-key", "pw-7Xq", "rdpw-7Xq2Lm9P", "u:p@", "metrics-token", "rpw-3Kq8Zt5W"):
        assert secret not in text


def test_zendesk_basic_credentials_are_read_under_their_old_name_with_a_deprecation():
    """ZENDESK_WEBHOOK_SECRET held a Basic user:password, where every other
    *_WEBHOOK_SECRET is an HMAC key: its name is now ZENDESK_WEBHOOK_AUTH."""
    old = load_settings({**BASE, "ZENDESK_WEBHOOK_SECRET": "agent:q7Lm2Xp9Rt4w-pass"})
    assert old.credential("ZENDESK_WEBHOOK_AUTH") == (("agent", "q7Lm2Xp9Rt4w-pass"),)
    assert old.deprecations == ("ZENDESK_WEBHOOK_SECRET is read as ZENDESK_WEBHOOK_AUTH, its new name: rename it",)
    both = load_settings({**BASE, "ZENDESK_WEBHOOK_SECRET": "old:q7Lm2Xp9Rt4w-pass",
                          "ZENDESK_WEBHOOK_AUTH": "new:Zr8Kp3Vq6Wn2-pass"})
    assert both.credential("ZENDESK_WEBHOOK_AUTH") == (("new", "Zr8Kp3Vq6Wn2-pass"),)
    # Ignored, then, and said so (a rename half done kept an old previous password silently).
    assert both.deprecations == ("ZENDESK_WEBHOOK_SECRET is ignored, as ZENDESK_WEBHOOK_AUTH is set: remove it (or "
                                 "move its value to ZENDESK_WEBHOOK_AUTH)",)
    half = load_settings({**BASE, "ZENDESK_WEBHOOK_AUTH": "new:Zr8Kp3Vq6Wn2-pass",
                          "ZENDESK_WEBHOOK_SECRET_PREVIOUS": "old:q7Lm2Xp9Rt4w-pass"})
    assert half.credential("ZENDESK_WEBHOOK_AUTH") == (("new", "Zr8Kp3Vq6Wn2-pass"),)
    assert half.deprecations == ("ZENDESK_WEBHOOK_SECRET_PREVIOUS is ignored, as ZENDESK_WEBHOOK_AUTH is set: "
                                 "remove it (or move its value to ZENDESK_WEBHOOK_AUTH_PREVIOUS)",)
    assert load_settings(BASE).deprecations == ()
    # A review's cases, which dropped a value without a word: the old name for the current
    # password and the new one for the previous; the old name's previous set alone.
    mixed = load_settings({**BASE, "ZENDESK_WEBHOOK_SECRET": "old:q7Lm2Xp9Rt4w-pass",
                           "ZENDESK_WEBHOOK_AUTH_PREVIOUS": "prev:Zr8Kp3Vq6Wn2-pass"})
    assert mixed.credential("ZENDESK_WEBHOOK_AUTH") == (("old", "q7Lm2Xp9Rt4w-pass"), ("prev", "Zr8Kp3Vq6Wn2-pass"))
    assert mixed.deprecations == ("ZENDESK_WEBHOOK_SECRET is read as ZENDESK_WEBHOOK_AUTH, its new name: rename it",)
    both_previous = load_settings({**BASE, "ZENDESK_WEBHOOK_SECRET_PREVIOUS": "old:q7Lm2Xp9Rt4w-pass",
                                   "ZENDESK_WEBHOOK_AUTH_PREVIOUS": "prev:Zr8Kp3Vq6Wn2-pass"})
    assert both_previous.deprecations == ("ZENDESK_WEBHOOK_SECRET_PREVIOUS is ignored, as "
                                          "ZENDESK_WEBHOOK_AUTH_PREVIOUS is set: remove it",)
    alone = load_settings({**BASE, "ZENDESK_WEBHOOK_SECRET_PREVIOUS": "prev:Zr8Kp3Vq6Wn2-pass"})
    assert alone.deprecations == ("ZENDESK_WEBHOOK_SECRET_PREVIOUS is read as ZENDESK_WEBHOOK_AUTH_PREVIOUS, its "
                                  "new name: rename it",)


def test_the_benches_start_production_with_credentials_it_accepts():
    """`make bench`, `make drills` and `make fuzz` run the service in production mode: a
    credential the strength policy refuses would stop them before the first request
    (a fixed fuzz password once did)."""
    import sys

    sys.path.insert(0, str(ROOT))
    from bench.harness import FRESHDESK_SECRET, ZENDESK_SECRET

    settings = load_settings({**BASE, "APP_ENV": "production", "FRESHDESK_WEBHOOK_SECRET": FRESHDESK_SECRET,
                              "ZENDESK_SIGNING_SECRET": ZENDESK_SECRET})
    assert not settings.development


def test_a_vendors_code_names_are_read_generically_and_refused_naming_the_variable():
    """`code_names` (ingestion/vendor.py): any vendor may declare a variable of code=name
    pairs (HubSpot's portal-specific stage ids); config reads it without knowing the vendor."""
    from dataclasses import replace

    from ingestion.config import Settings
    from ingestion.vendors import VENDORS

    declaring = replace(VENDORS[0], name="acme", code_names=("ACME_STATUS_NAMES",))
    settings = Settings.from_env({**BASE, "ACME_STATUS_NAMES": "1=New, 4=Closed  For Good,stage-x=waiting"},
                                 (*VENDORS, declaring))
    assert settings.code_names("ACME_STATUS_NAMES") == {"1": "new", "4": "closed for good", "stage-x": "waiting"}
    assert settings.code_names("UNDECLARED") == {}
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({**BASE, "ACME_STATUS_NAMES": "1=new, closed"}, (*VENDORS, declaring))
    assert refused.value.variable == "ACME_STATUS_NAMES"


def test_a_cluster_url_naming_several_nodes_is_told_so_not_called_invalid():
    """The generic URL check came first and answered "is not a valid URL (Port could not
    be cast...)" where the cluster check says what to write instead."""
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, "REDIS_URL": "redis+cluster://10.0.0.1:7000,10.0.0.2:7000"})
    assert "names one node" in str(caught.value)
