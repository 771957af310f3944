# edgevision: GPU inference module for Azure IoT Edge (EFLOW). CUDA 13 + cuDNN 9 to match
# onnxruntime-gpu 1.31 (pyproject.toml). Works under DDA (--gpus all) and GPU-PV (/dev/dxg
# plus /usr/lib/wsl mounted read-only).

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY module ./module
COPY models ./models
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04
ARG MODEL=yolox-nano
# Air-gapped builds: --build-arg SKIP_MODEL_DOWNLOAD=1 and mount the model at /models.
ARG SKIP_MODEL_DOWNLOAD=0
LABEL org.opencontainers.image.title="edgevision" \
      org.opencontainers.image.description="GPU vision inference module for Azure IoT Edge for Linux on Windows"
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    EDGEVISION_MODEL_DIR=/models \
    LD_LIBRARY_PATH=/usr/lib/wsl/lib:/usr/local/cuda/lib64
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/edgevision
ENV PATH=/opt/edgevision/bin:$PATH
COPY --from=build /wheels /wheels
COPY constraints.txt /tmp/constraints.txt
RUN pip install --no-cache-dir -c /tmp/constraints.txt /wheels/*.whl && rm -rf /wheels /tmp/constraints.txt
RUN useradd --system --uid 10001 --create-home edgevision && mkdir -p /models && chown edgevision /models
USER edgevision
RUN if [ "$SKIP_MODEL_DOWNLOAD" != "1" ]; then edgevision models fetch "$MODEL"; fi
ENTRYPOINT ["edgevision"]
CMD ["gpu"]
