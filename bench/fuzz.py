"""`make fuzz`: schemathesis against a live production-mode instance, from openapi.yaml.

Starts PostgreSQL, Redis and the service under gunicorn (production mode, HTTP Basic
configured for both vendors so generated requests reach the handlers, not only the 401
path; rate limit out of the way), then runs schemathesis with the checks that matter
here: no 5xx, and every status, content type, header and body as documented. Exits with
schemathesis' status, so CI fails on any finding.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import Server  # noqa: E402
from ingestion.localservers import PostgresServer, RedisServer  # noqa: E402
from ingestion.storage import apply_schema  # noqa: E402

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance")
USER, PASSWORD = "fuzz", "fuzz-password"


def main() -> int:
    examples = os.environ.get("FUZZ_EXAMPLES", "150")
    work = Path(tempfile.mkdtemp(prefix="ingestion-fuzz-"))
    os.chmod(work, 0o755)
    pg = PostgresServer(work / "postgres", durable=False).start()
    redis = RedisServer(work / "redis").start()
    service = None
    try:
        url = pg.create_database("fuzz")
        apply_schema(url)
        service = Server("service", [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], {
            "APP_ENV": "production", "DATABASE_URL": url, "REDIS_URL": redis.url(), "GUNICORN_WORKERS": "2",
            "RATE_LIMIT_PER_MINUTE": "1000000000", "FRESHDESK_WEBHOOK_AUTH": f"{USER}:{PASSWORD}",
            "ZENDESK_WEBHOOK_SECRET": f"{USER}:{PASSWORD}",
        }, ROOT, work / "service.log")
        command = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{service.url}/openapi.yaml",
                   "--url", service.url, "--auth", f"{USER}:{PASSWORD}", "--checks", CHECKS,
                   "--max-examples", examples, "--seed", os.environ.get("FUZZ_SEED", "20261128"),
                   "--workers", "2", "--request-timeout", "10"]
        print(" ".join(command), flush=True)
        result = subprocess.run(command, cwd=work)  # schemathesis keeps a .schemathesis/ cache in its cwd
        lines = (work / "service.log").read_text().splitlines()
        answered = Counter((r.get("path"), r.get("status")) for r in map(json.loads, lines)
                           if r.get("logger") == "gunicorn.access")
        print("what the service answered (path, status): count")  # proves the handlers were reached
        for (path, status), count in sorted(answered.items(), key=str):
            print(f"  {path} {status}: {count}")
        errors = [line for line in lines if '"status": 500' in line or "unhandled error" in line]
        if errors:
            print("the service logged 500s:\n" + "\n".join(errors[:10]))
            return 1
        return result.returncode
    finally:
        if service:
            service.stop()
        redis.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
