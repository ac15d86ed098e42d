# The testenv operator image: ghcr.io/testenv-dev/testenv-operator:0.1.0
# (the Helm chart's default image is <repository>:<appVersion>).
#
# Build and push from the repository root:
#   docker build -t ghcr.io/testenv-dev/testenv-operator:0.1.0 .
#   docker push ghcr.io/testenv-dev/testenv-operator:0.1.0
# Multi-arch:
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     -t ghcr.io/testenv-dev/testenv-operator:0.1.0 --push .
#
# The base image is pinned by tag. For reproducible builds also pin its
# digest: `docker buildx imagetools inspect python:3.11.13-slim-bookworm`,
# then build with --build-arg PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- build: install the project and its dependencies into a virtualenv ---------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first, in their own layer: it is reused while only the code
# changes. Every dependency ships a pure-Python or manylinux wheel, so no
# compiler is needed.
COPY pyproject.toml README.md* ./
COPY operator/ ./operator/
RUN /opt/venv/bin/pip install --no-cache-dir . \
 && /opt/venv/bin/pip uninstall --yes pip setuptools wheel

# --- runtime: the virtualenv on a clean base, no pip, non-root -----------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="testenv-operator" \
      org.opencontainers.image.description="Kubernetes operator for ephemeral test environments" \
      org.opencontainers.image.source="https://github.com/testenv-dev/testenv-operator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
# Nothing in the running operator installs packages: drop the base image's
# pip/setuptools/wheel too. jemalloc: see the ENV below.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libjemalloc2 \
 && rm -rf /var/lib/apt/lists/* \
 && python -m pip uninstall --yes pip setuptools wheel \
 && groupadd --system --gid 10001 testenv \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --shell /usr/sbin/nologin testenv
COPY --from=build /opt/venv /opt/venv
# Python's objects from jemalloc, whose background thread hands freed pages
# back, with one full collection once the operator is quiet
# (testenv/idle_memory.py): after a burst, the RSS comes back near a fresh
# operator's instead of staying at its peak, for the same CPU (bench/RESULTS.md,
# the chaos soak's "eighth session"). testenv.idle_memory.IMAGE_ALLOCATOR holds the same.
ENV PYTHONMALLOC=malloc \
    LD_PRELOAD=libjemalloc.so.2 \
    MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:1
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TESTENV_HEALTH_PORT=8080 \
    TESTENV_METRICS_PORT=9090
# A numeric user, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# kopf's health endpoint (/healthz) and the Prometheus metrics (/metrics).
EXPOSE 8080 9090
ENTRYPOINT ["testenv-operator"]
