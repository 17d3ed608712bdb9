# syntax=docker/dockerfile:1
# Production image: gunicorn serving the app, the relay runnable from the same image.
# gunicorn is never published: the shipped nginx in front reads whole requests, so slow
# clients hold nginx connections, never gunicorn's sync workers (README: Deployment).
#   docker build -t helpdesk-ingestion .
#   docker network create ingestion
#   docker run --rm --network ingestion --env-file .env helpdesk-ingestion python -m ingestion migrate
#   docker run -d --name app1 --network ingestion --env-file .env -e TRUSTED_PROXY_COUNT=1 helpdesk-ingestion
#   docker run -d --name app2 --network ingestion --env-file .env -e TRUSTED_PROXY_COUNT=1 helpdesk-ingestion
#   docker run -d --name relay --network ingestion --env-file .env helpdesk-ingestion python -m ingestion relay
#   docker run -d --name nginx --network ingestion -p 80:80 -p 443:443 \
#     -v "$PWD/deploy/nginx/ingestion.conf:/etc/nginx/conf.d/default.conf:ro" -v "$PWD/certs:/etc/nginx/certs:ro" \
#     nginx:1.27-alpine

# --- build: the locked requirements into a virtualenv (hash-checked wheels, nothing compiled) ---
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --require-virtualenv --require-hashes -r /tmp/requirements.txt

# --- runtime ----------------------------------------------------------------------
FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BIND=0.0.0.0:8080
# Multiprocess metrics: the web containers set PROMETHEUS_MULTIPROC_DIR=/run/ingestion/metrics
# with a tmpfs mounted there (compose: tmpfs, Kubernetes: an emptyDir with medium Memory);
# gunicorn wipes it when it starts, and makes a private one under /tmp when it is unset.
# Not set here: the relay and the one-shot commands (migrations in an init container, on
# a read-only root) have no use for it.
RUN groupadd --system --gid 10001 ingestion \
 && useradd --system --uid 10001 --gid ingestion --no-create-home --shell /usr/sbin/nologin ingestion \
 && mkdir -p /run/ingestion/metrics \
 && chown -R ingestion:ingestion /run/ingestion
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY wsgi.py gunicorn.conf.py ./
COPY ingestion ./ingestion
USER 10001:10001
EXPOSE 8080
# Probes the address gunicorn binds (BIND, as gunicorn.conf.py reads it): ingestion/web/probe.py.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-m", "ingestion.web.probe"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
