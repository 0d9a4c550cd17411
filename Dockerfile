# vmpooler container image: `docker build -t vmpooler .`
#   docker run -p 4567:4567 -v $PWD/vmpooler.yaml:/etc/vmpooler/vmpooler.yaml:ro vmpooler
#   docker run ... vmpooler api --workers 2 --config /etc/vmpooler/vmpooler.yaml      (API only)
#   docker run ... vmpooler manager --config /etc/vmpooler/vmpooler.yaml              (manager only)
# See docs/deployment.md. The Python dependencies are exactly uv.lock's, checked against its hashes.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: the wheel, and a virtualenv holding it and the locked dependencies ----------------------
FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.8
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 UV_NO_CACHE=1 UV_PYTHON_DOWNLOADS=never
RUN pip install "uv==${UV_VERSION}"
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
RUN uv export --frozen --no-dev --no-emit-project --format requirements-txt -o /tmp/requirements.txt \
 && uv build --wheel --out-dir /tmp/dist \
 && uv venv --python /usr/local/bin/python3 /opt/vmpooler \
 && uv pip install --python /opt/vmpooler/bin/python --require-hashes -r /tmp/requirements.txt \
 && uv pip install --python /opt/vmpooler/bin/python --no-deps /tmp/dist/*.whl

# ---- runtime: the virtualenv on a clean slim image, run as an unprivileged user -----------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="vmpooler" \
      org.opencontainers.image.description="Pools of ready virtual machines behind a small REST API" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/vmpooler --create-home vmpooler \
 && mkdir -p /etc/vmpooler
COPY --from=build /opt/vmpooler /opt/vmpooler
ENV PATH=/opt/vmpooler/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VMPOOLER_STATE_DIR=/var/lib/vmpooler/state
USER 10001:10001
WORKDIR /var/lib/vmpooler
EXPOSE 4567
# 200 only when Redis answers and a pool manager heartbeats; a `manager` container has no HTTP port:
# give it `--health-cmd "vmpooler manager-alive -c /etc/vmpooler/vmpooler.yaml"` (or --no-healthcheck)
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:4567/healthcheck', timeout=4).status != 200)"]
ENTRYPOINT ["vmpooler"]
CMD ["serve", "--config", "/etc/vmpooler/vmpooler.yaml"]
