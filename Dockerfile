# syntax=docker/dockerfile:1
# Layer Explorer: the web UI and REST API, installed from a wheel.
#
#   docker build -t layer-explorer .
#   docker run --rm -p 127.0.0.1:8000:8000 layer-explorer
#
# CUDA image (torch's CUDA wheels bring their own CUDA libraries; the host needs the NVIDIA driver
# and the NVIDIA Container Toolkit):
#
#   docker build -t layer-explorer:cuda --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 \
#       --build-arg DEVICE=cuda .          # add --build-arg TORCH_VERSION=2.12.0 to choose the release
#
# HEALTHCHECK is a Docker-format instruction: podman and buildah building OCI images (their default)
# drop it with a warning; build with --format docker to keep it. Kubernetes ignores it either way and
# uses the Deployment's probes.
#   docker run --rm --gpus all -p 127.0.0.1:8000:8000 layer-explorer:cuda

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- deps: the dependencies alone, from pyproject.toml, in a layer that source edits do not invalidate
FROM ${PYTHON_IMAGE} AS deps
# the wheel index torch comes from: CPU-only by default, so the image carries no CUDA libraries
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# the torch release to take from it: empty = the newest that pyproject.toml allows and the index has;
# set it (e.g. 2.12.0) where an index lacks that one. Keep it within pyproject.toml's range: the
# second step installs the rest with torch held at what the first installed, and fails otherwise.
ARG TORCH_VERSION=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
COPY pyproject.toml /tmp/build/pyproject.toml
# torch from TORCH_INDEX only, then the rest from PyPI with torch held where it is, so that the second
# step never replaces it with PyPI's (CUDA) build. No pipes here: podman and buildah building OCI
# images ignore SHELL, so no RUN relies on one.
RUN python -c "import tomllib; print(*tomllib.load(open('/tmp/build/pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
    > /tmp/build/requirements.txt
RUN if [ -n "${TORCH_VERSION}" ]; then echo "torch==${TORCH_VERSION}" > /tmp/build/torch.txt; \
    else grep -E '^torch[=<>~! ]' /tmp/build/requirements.txt > /tmp/build/torch.txt; fi \
    && /opt/venv/bin/pip install --no-cache-dir --index-url "${TORCH_INDEX}" -r /tmp/build/torch.txt \
    && /opt/venv/bin/python -c "from importlib.metadata import version; print('torch==' + version('torch'))" \
    > /tmp/build/held.txt \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/build/requirements.txt -c /tmp/build/held.txt \
    && rm -rf /tmp/build

# ---- wheel: build the project's wheel (app/ plus static/ and templates/ inside the package)
FROM ${PYTHON_IMAGE} AS wheel
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY static ./static
COPY templates ./templates
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- runtime: the dependencies layer, the wheel, a non-root user; nothing is written outside /tmp
FROM ${PYTHON_IMAGE} AS runtime
ARG DEVICE=cpu
LABEL org.opencontainers.image.title="Layer Explorer" \
      org.opencontainers.image.description="See what a PyTorch layer does: web UI and REST API" \
      org.opencontainers.image.licenses="MIT"
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin explorer
COPY --from=deps /opt/venv /opt/venv
COPY --from=wheel /wheels /tmp/wheels
# the dependencies are already in /opt/venv; pip check proves the wheel's requirements are met
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps /tmp/wheels/*.whl \
    && /opt/venv/bin/pip check \
    && rm -rf /tmp/wheels
# Every setting is an environment variable (docker run -e NAME=value); see README "Configuration".
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LAYER_EXPLORER_HOST=0.0.0.0 \
    LAYER_EXPLORER_PORT=8000 \
    LAYER_EXPLORER_HTTP_WORKERS=1 \
    LAYER_EXPLORER_DEVICE=${DEVICE}
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["python", "-m", "app.healthcheck"]
ENTRYPOINT ["layer-explorer"]
