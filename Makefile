# The two commands: `make run` and `make test`. Both do all the set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test install lint fmt cluster cluster-stop test-cluster

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check --upgrade pip
	@$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

run: $(STAMP)
	@bash scripts/run.sh

test: $(STAMP)
	@bash scripts/test.sh

# Scaled out on this machine: primary + streaming replica, PgBouncer, Redis, 3 app instances behind nginx on :3000,
# 2 job workers (deploy/cluster.py; ports and counts from CLUSTER_* variables). `make cluster-stop` stops it all.
cluster: $(STAMP)
	@$(VENV)/bin/python deploy/cluster.py up

cluster-stop: $(STAMP)
	@$(VENV)/bin/python deploy/cluster.py down

# The scale-out suite (tests/cluster/): starts its own cluster on free ports, under 5 minutes.
test-cluster: $(STAMP)
	@bash scripts/test.sh cluster

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
