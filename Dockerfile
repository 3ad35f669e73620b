# The compliance bot: `python -m bot run`, non-root, with a health check.
# Build:  docker build -t dingtalk-compliance-bot .
# Run:    docker run --env-file bot.env -v botdata:/var/lib/bot \
#           -v /path/to/archive.key:/run/secrets/archive.key:ro dingtalk-compliance-bot
# Pinned: the base image tag below, and every Python dependency (pyproject.toml pins them).
# For fully reproducible builds pin the base by digest as well (python:3.11.11-slim-bookworm@sha256:…).

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-compile . \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib

FROM python:3.11.11-slim-bookworm
RUN groupadd --system --gid 10001 bot \
 && useradd --system --uid 10001 --gid bot --home-dir /app --shell /usr/sbin/nologin bot \
 && mkdir -p /var/lib/bot \
 && chown bot:bot /var/lib/bot
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Rules and name data are read-only for the bot user; change rules by mounting a directory
# over /app/rules (the bot reloads on change or SIGHUP).
COPY rules ./rules
COPY models ./models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BOT_RULES_DIR=/app/rules \
    BOT_MODELS_DIR=/app/models \
    BOT_DATA_DIR=/var/lib/bot \
    BOT_ARCHIVE=/var/lib/bot/archive.sqlite3 \
    BOT_ARCHIVE_KEY_FILE=/run/secrets/archive.key \
    BOT_HTTP_HOST=0.0.0.0 \
    BOT_HTTP_PORT=8080
USER bot:bot
VOLUME ["/var/lib/bot"]
EXPOSE 8080
# Liveness only (the event loop answers, no essential task died); orchestrators should use
# /readyz for traffic.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
# SIGTERM: stop intake, drain in-flight messages (shutdown.drain_seconds), close.
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]
