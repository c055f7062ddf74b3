# Two commands matter on a fresh machine (each sets up .venv on first use; a second run skips the install):
#   make demo   - the whole pipeline, offline, on the embedded kowiki sample (CPU, ~10 min after setup)
#   make test   - the test suite (no SLURM needed: tests/cluster is not collected)
# CI (root, Debian packages reachable):
#   make test-cluster - the job scripts through a real, throw-away local SLURM (scripts/dev/local_slurm.sh installs
#                       slurmctld/slurmd/munge if missing, starts them, runs tests/cluster, stops them)
#   make ci           - make test, then make test-cluster
VENV ?= .venv
PY := $(VENV)/bin/python
# no run-time downloads: every model/tokenizer/dataset is a local file
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1

.PHONY: setup demo test test-cluster ci clean-demo

setup:
	@bash scripts/setup_env.sh

demo: setup
	$(VENV)/bin/koroberta run configs/demo.yaml

test: setup
	$(PY) -m pytest -q tests --ignore=tests/cluster

# KOROBERTA_CLUSTER_TESTS=1: a cluster that is missing or down fails the tests instead of skipping them
test-cluster: setup
	KOROBERTA_CLUSTER_TESTS=1 bash scripts/dev/local_slurm.sh run -- $(PY) -m pytest -q tests/cluster

ci: test test-cluster

clean-demo:
	rm -rf runs/demo
