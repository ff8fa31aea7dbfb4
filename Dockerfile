# syntax=docker/dockerfile:1.7
# Multi-stage: dependencies are resolved from uv.lock in a layer of their own, before the code,
# so a code change rebuilds one thin layer. One uvicorn process per container, as a non-root user.
FROM ghcr.io/astral-sh/uv:0.9.7 AS uv

FROM python:3.11.14-slim-bookworm AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /srv
COPY pyproject.toml uv.lock ./
# The client package is a workspace member the service imports (hokusai.measure).
COPY sdk ./sdk
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev

FROM python:3.11.14-slim-bookworm
# The release this image is; a test keeps it equal to app/__init__.py, the one source of the version.
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="hokusai-api" \
      org.opencontainers.image.description="Hokusai ML Platform API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 hokusai \
 && useradd --system --uid 10001 --gid hokusai --no-create-home --home-dir /srv hokusai \
 && mkdir -p /var/lib/hokusai && chown 10001:10001 /var/lib/hokusai
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /srv /srv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOKUSAI_HOST=0.0.0.0 \
    HOKUSAI_PORT=8000
WORKDIR /srv
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
CMD ["hokusai-api", "serve"]
