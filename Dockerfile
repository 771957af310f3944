# edgevision: GPU inference module for Azure IoT Edge (EFLOW).
# Runtime: CUDA 13 + cuDNN 9, what onnxruntime-gpu 1.31 (pyproject.toml) is built for. The same
# image serves DDA (docker --gpus / DeviceRequests) and GPU-PV (/dev/dxg plus /usr/lib/wsl
# mounted read-only; its libcuda.so.1 is found through LD_LIBRARY_PATH).

# The base images are arguments so that the same file builds on locally made bases where no
# registry can be reached (the CI's container tests); these defaults are the production ones.
ARG BUILD_BASE=python:3.12-slim
ARG RUNTIME_BASE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04

FROM ${BUILD_BASE} AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md deployment.template.json ./
COPY module ./module
COPY models ./models
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${RUNTIME_BASE}
# Which model to bake in; SKIP_MODEL_DOWNLOAD=1 for air-gapped builds (mount it at /models).
ARG MODEL=yolox-nano
ARG SKIP_MODEL_DOWNLOAD=0
LABEL org.opencontainers.image.title="edgevision" \
      org.opencontainers.image.description="GPU vision inference module for Azure IoT Edge for Linux on Windows" \
      org.opencontainers.image.licenses="MIT"
# TensorRT engines and timing caches, and derived model copies (dynamic batch, fp16, letterbox
# in the graph), live on the state volume: a container re-created by a deployment update neither
# builds them again nor needs a writable /models. TensorRT itself is not in the image (about 2 GB
# more): `provider: tensorrt` runs on CUDA and says why. ONNX Runtime's own telemetry uploader
# (device id, event store, connections out) stays off; the README says how to turn it on.
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    EDGEVISION_MODEL_DIR=/models \
    EDGEVISION_INFERENCE__TENSORRT_CACHE_DIR=/data/state/tensorrt \
    XDG_CACHE_HOME=/data/state/cache \
    EDGEVISION_STATE_DIR=/data/state \
    EDGEVISION_HTTP__BIND=0.0.0.0 \
    ORT_DISABLE_TELEMETRY=1 \
    LD_LIBRARY_PATH=/usr/lib/wsl/lib:/usr/local/cuda/lib64 \
    PATH=/opt/edgevision/bin:$PATH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Ubuntu's python3 is not pinned: the security archive replaces exact versions, so a pin would
# break rebuilds; the Python packages are pinned by constraints.txt.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/edgevision
COPY --from=build /wheels /wheels
COPY constraints.txt /tmp/constraints.txt
RUN pip install --no-cache-dir -c /tmp/constraints.txt /wheels/*.whl \
 && rm -rf /wheels /tmp/constraints.txt \
 && useradd --system --uid 10001 --no-create-home edgevision \
 && mkdir -p /models /data/state/tensorrt /data/state/cache \
 && chown -R 10001 /models /data
USER 10001
# `benchmark` writes benchmark-results/ here: mount a folder on /data/benchmark-results to keep it.
# /data/state holds the upstream outbox; the deployment mounts a named volume there so messages
# not yet acknowledged by edgeHub survive a container restart.
WORKDIR /data
# Downloaded from the manifest URL and checked against its SHA-256 (the build fails otherwise).
RUN if [ "$SKIP_MODEL_DOWNLOAD" != "1" ]; then edgevision models fetch "$MODEL"; fi
EXPOSE 9600
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["edgevision", "health"]
ENTRYPOINT ["edgevision"]
CMD ["run"]
