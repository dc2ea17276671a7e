# syntax=docker/dockerfile:1
# recsys: the API (default command) and the job scheduler (`recsys schedule`) from one image.
# Two stages: wheels that need compiling build in `builder`; the runtime image has no compiler.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
# Build tools for any dependency without a binary wheel on the target platform (e.g. arm64).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Metadata first, then the packages: `pip install .` (a real install, not editable).
COPY pyproject.toml README.md ./
COPY recsys ./recsys
COPY api ./api
COPY jobs ./jobs
COPY cli ./cli
# RECSYS_EXTRAS="[mlflow]" builds an image that can log to MLflow (docker-compose.yml's mlflow profile).
ARG RECSYS_EXTRAS=""
# DL3013 would pin "the package": this is the project itself, its dependencies pinned in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".${RECSYS_EXTRAS}" \
    && find /opt/venv -name "__pycache__" -type d -prune -exec rm -rf {} +

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
# libgomp1: the OpenMP runtime that implicit and lightgbm link against (faiss ships its own).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 recsys \
    && useradd --system --uid 10001 --gid recsys --home-dir /app --shell /usr/sbin/nologin recsys \
    && mkdir -p /app /data/artifacts \
    && chown -R recsys:recsys /app /data
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RECSYS_STORE_URL=redis://redis:6379/0 \
    RECSYS_ARTIFACTS_DIR=/data/artifacts \
    RECSYS_HOST=0.0.0.0 \
    RECSYS_PORT=8000
WORKDIR /app
USER 10001:10001
# Bundles, ranker models and reports: shared between the API and the scheduler.
VOLUME ["/data/artifacts"]
EXPOSE 8000
# No curl in the slim image: the interpreter that runs the service checks it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('RECSYS_PORT', '8000') + '/healthz', timeout=3)"]
CMD ["recsys", "serve", "--host", "0.0.0.0"]
