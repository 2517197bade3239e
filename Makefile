# flinkops.flink: two commands for a fresh machine, `make demo` and `make test`.
# Everything else here is a building block of those two.

SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
VPY := $(VENV)/bin/python
BUILD := $(CURDIR)/build
COLLECTIONS := $(BUILD)/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/flinkops/flink
CACHE ?= $(HOME)/.cache/flinkops
# Flink versions the integration suite runs against.
FLINK_VERSIONS ?= 2.3.0 1.20.3
DEMO_FLINK_VERSION ?= 2.3.0

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_NOCOLOR := 1
export ANSIBLE_FORCE_COLOR := 0
export FLINKOPS_CACHE := $(CACHE)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help demo stop test venv collection sanity unit integration roles lint fault-report bench clean

help:
	@echo "make demo   - start a local Flink on localhost:8081 and deploy the example job"
	@echo "make stop   - stop the demo cluster"
	@echo "make test   - the whole suite: sanity, unit, integration on real Flink, roles"

$(VENV)/.stamp: tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r tests/requirements.txt
	touch $@

venv: $(VENV)/.stamp

# Make the working tree visible to Ansible as flinkops.flink.
collection:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@ln -sfn $(CURDIR) $(COLLECTION_LINK)

unit: venv collection
	cd $(COLLECTION_LINK) && $(VPY) -m pytest -q tests/unit

sanity: venv
	$(VPY) tests/sanity/run_sanity.py

# Tests that never talk to Flink (collection build, execution environment) run with the first version only.
FLINK_FREE_TESTS := tests/integration/test_collection_build.py tests/integration/test_execution_environment.py

integration: venv collection
	@set -e; skip=""; for v in $(FLINK_VERSIONS); do \
	  echo "=== integration on Flink $$v ==="; \
	  FLINKOPS_FLINK_VERSION=$$v $(VPY) -m pytest -q -p no:cacheprovider --durations=15 $$skip tests/integration; \
	  skip="$(addprefix --ignore=,$(FLINK_FREE_TESTS))"; \
	done

# Role scenarios (molecule, delegated driver, local connection): each converges,
# checks idempotence, verifies through Flink's REST API and removes everything.
MOLECULE_SCENARIOS ?= single multinode ha

roles: venv collection
	@set -e; for s in $(MOLECULE_SCENARIOS); do \
	  echo "=== molecule scenario $$s ==="; \
	  PATH=$(VENV)/bin:$$PATH $(VENV)/bin/molecule test -s $$s; \
	done

lint: venv collection
	PATH=$(VENV)/bin:$$PATH $(VENV)/bin/ansible-lint

# Benchmarks (not part of make test): the no-op run, jar upload memory, a forgotten history.
bench: venv collection
	$(VPY) -m bench.noop_run --version $(DEMO_FLINK_VERSION)
	$(VPY) -m bench.upload_memory --version $(DEMO_FLINK_VERSION) --size-mib 200
	$(VPY) -m bench.forgotten_generations --version $(DEMO_FLINK_VERSION) --history 100
	$(VPY) -m bench.upgrade_vs_rest --version $(DEMO_FLINK_VERSION) --rounds 3

# The README's fault table, from the fault cases of the last integration run.
fault-report: venv
	$(VPY) -m tests.harness.report --readme README.md

test: sanity unit lint integration roles
	@$(VPY) -m tests.harness.report

QUICKSTART := $(VENV)/bin/ansible-playbook -i localhost, playbooks/quickstart.yml \
	-e quickstart_dir=$(CURDIR)/demo -e flink_cluster_version=$(DEMO_FLINK_VERSION)

demo: venv collection
	$(QUICKSTART)

stop: venv collection
	$(QUICKSTART) -e flink_cluster_state=stopped

clean:
	rm -rf $(BUILD) tests/output
