# Two commands matter on a fresh machine (each sets up .venv on first use; a second run skips the install):
#   make demo   - the whole pipeline, offline, on the embedded kowiki sample (CPU, ~10 min after setup)
#   make test   - the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
# no run-time downloads: every model/tokenizer/dataset is a local file
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1

.PHONY: setup demo test clean-demo

setup:
	@bash scripts/setup_env.sh

demo: setup
	$(VENV)/bin/koroberta run configs/demo.yaml

test: setup
	$(PY) -m pytest -q tests

clean-demo:
	rm -rf runs/demo
