# GaitID for a GPU host: CUDA runtime, torch CUDA, ONNX Runtime GPU, FAISS GPU, the bundled gait model
# and the default detector/segmenter weights baked in (the running container needs no internet).
#
#   docker build -t gaitid .
#   docker build -t gaitid --build-arg DETECTOR_MODEL=yolo11s.pt .    # another ultralytics model, fetched at build
#
# Your own weights: mount them (read-only) and point GAITID_DETECTOR_WEIGHTS / GAITID_MODELS_DIR at them
# (see deploy/README.md).

ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04

# --- python: the CUDA runtime with Python 3.11 (both stages below start from it) ---------------
FROM ${CUDA_IMAGE} AS python
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends software-properties-common gpg-agent \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3.11 libgl1 libglib2.0-0 \
    && apt-get purge -y software-properties-common gpg-agent && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/*

# --- build: a virtual environment with every dependency, and the weights -----------------------
FROM python AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11-venv python3.11-dev build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1
WORKDIR /opt/gaitid
# torch and torchvision first, exactly as pinned (PyPI's Linux wheels are the CUDA builds)
RUN pip install --upgrade pip && pip install torch==2.14.1 torchvision==0.29.1
COPY pyproject.toml README.md ./
COPY service service
COPY pipeline pipeline
COPY models models
COPY bench bench
COPY migrations migrations
# The GPU builds replace the CPU ones: onnxruntime-gpu instead of onnxruntime, faiss-gpu instead of faiss-cpu.
RUN pip install '.[gpu]' \
    && pip uninstall -y onnxruntime faiss-cpu \
    && pip install --force-reinstall --no-deps onnxruntime-gpu==1.31.1 faiss-gpu-cu12==1.14.1.post1
# Default detector and segmenter from their Apache-2.0 wheels; DETECTOR_MODEL swaps in any ultralytics
# detection/segmentation model name or URL, downloaded now (the build host has internet).
ARG DETECTOR_MODEL=""
RUN python -m pipeline.fetch_weights detector segmenter --out /opt/gaitid/weights \
    && if [ -n "$DETECTOR_MODEL" ]; then \
         cd /opt/gaitid/weights && python -c "import sys; from ultralytics import YOLO; YOLO(sys.argv[1])" "$DETECTOR_MODEL" \
         && mv "$(basename "$DETECTOR_MODEL")" person_yolov8.pt; \
       fi \
    && python -m pipeline.export_detector /opt/gaitid/weights/person_yolov8.pt --output /opt/gaitid/weights/person_yolov8.onnx

# --- runtime: Python, the environment, the weights, an unprivileged user --------------------------
FROM python AS runtime
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/gaitid/weights /opt/gaitid/weights
RUN useradd --system --uid 10001 --home-dir /var/lib/gaitid --create-home gaitid
ENV PATH=/opt/venv/bin:$PATH \
    GAITID_HOST=0.0.0.0 \
    GAITID_PORT=8000 \
    GAITID_DATA_DIR=/var/lib/gaitid/data \
    GAITID_CACHE_DIR=/var/lib/gaitid/cache \
    GAITID_MODELS_DIR=/var/lib/gaitid/models \
    GAITID_DETECTOR_WEIGHTS=/opt/gaitid/weights/person_yolov8.onnx \
    GAITID_POSE_MODEL=/opt/gaitid/weights/pose_landmark_full.tflite \
    GAITID_DATABASE_URL=sqlite:////var/lib/gaitid/gaitid.db
USER gaitid
WORKDIR /var/lib/gaitid
VOLUME ["/var/lib/gaitid"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python3.11", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["gaitid"]
CMD ["serve"]
