# syntax=docker/dockerfile:1
# `orkestra serve` in a container (docs/deploy.md). Two stages: the first builds orkestra's wheel
# and a wheel of every dependency (it may compile); the second installs only those wheels into a
# slim image that has no compiler, and runs as an unprivileged user.
#
#   docker build -t orkestra-router .
#   docker compose up --build          # with PostgreSQL as the usage log: compose.yaml

ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
RUN python -m pip install --no-cache-dir --disable-pip-version-check build
COPY pyproject.toml README.md LICENSE NOTICE ./
COPY src ./src
RUN python -m build --wheel --outdir /dist \
    && python -m pip wheel --no-cache-dir --disable-pip-version-check --wheel-dir /wheels \
        "$(ls /dist/orkestra_router-*.whl)[server,postgres,otel]"

FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/orkestra/bin:$PATH \
    ORKESTRA_HOME=/data
# Wheels only (--no-index): nothing is compiled here, and the build stage's tools stay behind.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/orkestra \
    && /opt/orkestra/bin/pip install --no-cache-dir --disable-pip-version-check \
        --no-index --find-links /wheels "orkestra-router[server,postgres,otel]" \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/orkestra orkestra \
    && mkdir -p /data \
    && chown orkestra:orkestra /data
USER orkestra
WORKDIR /home/orkestra
# The SQLite usage log when no ORKESTRA_DATABASE_URL is given (ORKESTRA_HOME).
VOLUME ["/data"]
# Inside the container only: listen on the container's own interfaces, so that a published port
# reaches the server (compose.yaml publishes it on the host's 127.0.0.1). The server still refuses
# a non-loopback address unless client keys are configured.
ENV ORKESTRA_HOST=0.0.0.0 \
    ORKESTRA_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ORKESTRA_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["orkestra", "serve"]
