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
#       --build-arg DEVICE=cuda .
#   docker run --rm --gpus all -p 127.0.0.1:8000:8000 layer-explorer:cuda

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- deps: the dependencies alone, from pyproject.toml, in a layer that source edits do not invalidate
FROM ${PYTHON_IMAGE} AS deps
# the wheel index torch comes from: CPU-only by default, so the image carries no CUDA libraries
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN python -m venv /opt/venv
COPY pyproject.toml /tmp/build/pyproject.toml
# torch (its version pinned in pyproject.toml) from TORCH_INDEX only, then the rest from PyPI;
# installing torch first means the second step finds it satisfied and never pulls a CUDA build.
RUN python -c "import tomllib; print(*tomllib.load(open('/tmp/build/pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
    > /tmp/build/requirements.txt
RUN grep -E '^torch[=<>~! ]' /tmp/build/requirements.txt > /tmp/build/torch.txt \
    && /opt/venv/bin/pip install --no-cache-dir --index-url "${TORCH_INDEX}" -r /tmp/build/torch.txt \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/build/requirements.txt \
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
