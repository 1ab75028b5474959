# 2fauth-monitor: a synthetic end-to-end monitor for 2FAuth, as a container.
#
#   docker build -t 2fauth-monitor .
#   docker run -d -p 8080:8080 -v monitor-data:/data \
#     -e TWOFAUTH_URL=https://2fauth.example.com -e TWOFAUTH_TOKEN_FILE=/run/secrets/token ... 2fauth-monitor
#
# Configuration: a mounted YAML file (MONITOR_CONFIG=/path or `run --config /path`), or environment
# variables alone (TWOFAUTH_URL, TWOFAUTH_TOKEN_FILE, CANARY_SECRET_FILE, ...): docs/deployment.md.
#
# The Python minor version must be the one requirements.lock was resolved for (its header says
# which; tests/test_deploy.py checks that they agree).
FROM python:3.11-slim-trixie

ARG VERSION=0.1.0
# Set by the release build: --build-arg REVISION=$(git rev-parse HEAD) --build-arg CREATED=$(date -u +%FT%TZ)
ARG REVISION=""
ARG CREATED=""
LABEL org.opencontainers.image.title="2fauth-monitor" \
      org.opencontainers.image.description="Synthetic end-to-end monitor for 2FAuth: health, TOTP flow, history, status page, alerts" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-trixie"

# No bytecode files: the root filesystem may be read-only (Kubernetes, compose `read_only`).
# The status page listens on every interface of the container; the history lives in the volume.
# MONITOR_LISTEN and MONITOR_DB also override web.listen and storage.path of a mounted file.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MONITOR_LISTEN=0.0.0.0:8080 \
    MONITOR_DB=/data/monitor.db

# A fixed numeric user: Kubernetes' runAsNonRoot can verify it, and volumes can be given to it.
# --no-log-init: a high uid would otherwise grow a large sparse /var/log/lastlog.
RUN groupadd --gid 10001 monitor \
 && useradd --uid 10001 --gid 10001 --no-log-init --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin monitor \
 && install -d -o 10001 -g 10001 -m 0750 /data

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them. Wheels only: no compiler
# is needed, and none is left in the image. requirements.lock comes from deploy/refresh-lock.
COPY requirements.lock requirements-browser.lock ./
RUN pip install --no-cache-dir --only-binary=:all: --requirement requirements.lock

# The browser check (docs/browser-check.md): `docker build --build-arg BROWSER=1 .` adds Debian's
# Chromium and Playwright's Python package, about 0.9 GB (Chromium and its libraries ~720 MB,
# Playwright and its Node.js driver ~165 MB). Playwright never downloads a browser of its own.
ARG BROWSER=0
# DL3008: Chromium is not pinned, so each build takes Debian's latest security fixes for it.
# hadolint ignore=DL3008
RUN if [ "$BROWSER" = 1 ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends chromium fonts-liberation \
      && rm -rf /var/lib/apt/lists/* \
      && pip install --no-cache-dir --only-binary=:all: --requirement requirements-browser.lock; \
    fi

# The monitor itself is built into a wheel and installed like any package: templates/ (at the top
# of the project) ships inside the wheel, so nothing of the source tree is needed at run time and
# /build is removed. `pip check` fails the build when requirements.lock misses a dependency that
# pyproject.toml declares.
WORKDIR /build
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY templates ./templates
RUN pip install --no-cache-dir --no-deps . \
 && pip check \
 && rm -rf /build

WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080/tcp

# On SIGTERM the monitor stops scheduling, lets in-flight checks and writes finish (5 s at most)
# and closes the database: well within Docker's default 10 s before SIGKILL.
STOPSIGNAL SIGTERM

# The monitor's own liveness endpoint, with the Python already in the image (no curl here).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request\nport = os.environ.get('MONITOR_LISTEN', '0.0.0.0:8080').rpartition(':')[2]\ntry:\n    urllib.request.urlopen(f'http://127.0.0.1:{port}/live', timeout=4)\nexcept Exception as exc:\n    sys.exit(f'/live: {exc}')"]

CMD ["2fauth-monitor", "run"]
