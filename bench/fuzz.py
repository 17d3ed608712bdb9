"""`make fuzz`: schemathesis against a live production-mode instance, from openapi.yaml.

Starts PostgreSQL, Redis and the service under gunicorn (production mode, HTTP Basic
configured for every vendor that takes it so generated requests reach the handlers, not only the 401
path; rate limit out of the way), then runs schemathesis with the checks that matter
here: no 5xx, and every status, content type, header and body as documented. Exits with
schemathesis' status, so CI fails on any finding.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import Server  # noqa: E402
from devserver import PostgresServer, RedisServer  # noqa: E402
from ingestion.storage.migrate import migrate  # noqa: E402
from ingestion.vendors import VENDORS  # noqa: E402

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance")
# Random per run: production refuses guessable credentials (ingestion/strength.py).
USER, PASSWORD = "fuzz", secrets.token_hex(12)
API_TOKEN = secrets.token_hex(24)
#: schemathesis takes one way to authenticate per run: Basic for the webhooks, the bearer
#: token for the read API.
#: Not the "examples" phase: generating its single examples, hypothesis parses source with
#: `ast` deep in a recursion, which CPython 3.11 can fail at random ("SystemError: AST
#: constructor recursion depth mismatch", CPython gh-106905), reported as a flaky runtime
#: error of schemathesis, not of the service. The coverage phase sends the documented
#: examples and the boundary values, the fuzzing phase the rest.
PHASES = "coverage,fuzzing"
#: One schemathesis worker: gh-106905 is a race on the AST recursion counter between
#: threads, and with two workers the coverage phase hit it too (a CI run on the Jira
#: route: "Runtime Error", while the service had answered every request without a 5xx).
WORKERS = "1"
#: Vendors that only sign (Help Scout): schemathesis cannot sign a body it generates, so
#: their routes are fuzzed on a second, development-mode service where a vendor with no
#: credential configured is accepted unauthenticated: the generated bodies reach the
#: normalizer instead of stopping at a 401.
SIGNED_ONLY = tuple(v.name for v in VENDORS if all(c.kind != "basic" for c in v.credentials))
SIGNED_ONLY_PATHS = "^/api/v1/ingest/webhook/(" + "|".join(SIGNED_ONLY) + ")(/|$)"
READ_PATHS = "^/api/v1/(tickets|quarantine)(/|$)"
RUNS = ((READ_PATHS, ["-H", f"Authorization: Bearer {API_TOKEN}"]),
        (None, ["--auth", f"{USER}:{PASSWORD}", "--exclude-path-regex",
                READ_PATHS + (f"|{SIGNED_ONLY_PATHS}" if SIGNED_ONLY else "")]))


def main() -> int:
    examples = os.environ.get("FUZZ_EXAMPLES", "150")
    work = Path(tempfile.mkdtemp(prefix="ingestion-fuzz-"))
    os.chmod(work, 0o755)
    pg = PostgresServer(work / "postgres", durable=False).start()
    redis = RedisServer(work / "redis").start()
    service = development = None
    try:
        url = pg.create_database("fuzz")
        migrate(url)
        service = Server("service", [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], {
            "APP_ENV": "production", "DATABASE_URL": url, "REDIS_URL": redis.url(), "GUNICORN_WORKERS": "2",
            "RATE_LIMIT_PER_MINUTE": "1000000000", "API_TOKENS": API_TOKEN,
            # every vendor that takes Basic (Freshdesk, Zendesk, Jira...), so schemathesis' --auth reaches it
            **{credential.variable: f"{USER}:{PASSWORD}" for vendor in VENDORS for credential in vendor.credentials
               if credential.kind == "basic"},
        }, ROOT, work / "service.log")
        # Tickets for the read API's documented example ids, so its fuzzing reaches stored data.
        for vendor in ("freshdesk", "zendesk"):
            for n in range(3):
                requests.post(f"{service.url}/api/v1/ingest/webhook/{vendor}", auth=(USER, PASSWORD), timeout=10,
                              json={"ticket": {"id": 11, "subject": f"seeded {n}", "latest_comment": f"note {n}"}})
            # and quarantine entries (id 1 is the documented example): one text, one not.
            for body in (b'{"ticket": {"subject": "no id"}}', b'{"x": "\xff"}'):
                requests.post(f"{service.url}/api/v1/ingest/webhook/{vendor}", auth=(USER, PASSWORD), timeout=10,
                              data=body)
        runs = [(service, include, auth) for include, auth in RUNS]
        if SIGNED_ONLY:
            development = Server("development", [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                                                 "wsgi:app"], {
                "APP_ENV": "development", "DATABASE_URL": url, "REDIS_URL": redis.url(), "GUNICORN_WORKERS": "2",
                "RATE_LIMIT_PER_MINUTE": "1000000000"}, ROOT, work / "development.log")
            runs.append((development, SIGNED_ONLY_PATHS, []))
        returncodes = []
        for server, include, auth in runs:
            command = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{server.url}/openapi.yaml",
                       "--url", server.url, *auth, "--checks", CHECKS,
                       "--max-examples", examples, "--seed", os.environ.get("FUZZ_SEED", "20261128"),
                       "--workers", WORKERS, "--request-timeout", "10", "--phases", PHASES]
            if include:
                command += ["--include-path-regex", include]
            print(" ".join(command), flush=True)
            # schemathesis keeps a .schemathesis/ cache in its cwd
            returncodes.append(subprocess.run(command, cwd=work).returncode)
        lines = [line for name in ("service.log", "development.log") if (work / name).exists()
                 for line in (work / name).read_text(errors="replace").split("\n") if line]
        records, not_json = [], []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                not_json.append(line)
        answered = Counter((r.get("path"), r.get("status")) for r in records if r.get("logger") == "gunicorn.access")
        print("what the service answered (path, status): count")  # proves the handlers were reached
        for (path, status), count in sorted(answered.items(), key=str):
            print(f"  {path} {status}: {count}")
        errors = [line for line in lines if '"status": 500' in line or "unhandled error" in line]
        if errors:
            print("the service logged 500s:\n" + "\n".join(errors[:10]))
            return 1
        if not_json:  # logs are one JSON object per line, whatever a client sends
            print(f"{len(not_json)} log lines are not JSON:\n" + "\n".join(line[:500] for line in not_json[:5]))
            return 1
        return max(returncodes)
    finally:
        for server in (service, development):
            if server:
                server.stop()
        redis.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
