# Two commands on a fresh machine: `make run` (the product on its defaults) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test models venv browser bench clean-models

run: models
	$(BIN)/edgefx serve

test: models browser
	$(BIN)/python -m pytest -q tests

venv: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[openvino,export,dev]'
	touch $@

# Idempotent: each export step checks its sources' and outputs' hashes and skips what is up to date.
models: $(INSTALLED)
	$(BIN)/python -m export all

# Headless Chromium for the kiosk-screen test (Debian packages; needs root, as on the dev and CI machines).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

bench: models
	$(BIN)/edgefx bench backends --json
	$(BIN)/edgefx bench verify --json
	$(BIN)/edgefx bench explain --json
	$(BIN)/edgefx bench qa --json

clean-models:
	$(BIN)/python -m export clean
