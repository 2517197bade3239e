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

.PHONY: help demo stop test venv venv-demo collection sanity unit integration roles lint fault-report bench clean

help:
	@echo "make demo   - start a local Flink on localhost:8081 and deploy the example job"
	@echo "make stop   - stop the demo cluster"
	@echo "make test   - the whole suite: sanity, unit, integration on real Flink, roles"

# make demo installs only what the quickstart needs (ansible-core, requests); the test toolchain (molecule,
# ansible-lint, ansible-builder, ...) joins the same environment with the first target that needs it.
$(VENV)/.stamp-demo: playbooks/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r playbooks/requirements.txt
	touch $@

$(VENV)/.stamp: tests/requirements.txt $(VENV)/.stamp-demo
	$(VPY) -m pip install -q -r tests/requirements.txt
	touch $@

venv-demo: $(VENV)/.stamp-demo

venv: $(VENV)/.stamp

# Make the working tree visible to Ansible as flinkops.flink.
collection:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@ln -sfn $(CURDIR) $(COLLECTION_LINK)

unit: venv collection
	cd $(COLLECTION_LINK) && $(VPY) -m pytest -q tests/unit

sanity: venv
	$(VPY) tests/sanity/run_sanity.py

# Tests that never talk to Flink (collection build, execution environment) run with the first version only;
# role-level tests (the roles on clusters that carry jobs, as root) with the last version only, which balances
# the two concurrent suites (and the system user `flink` is shared, so two of them must not run at once).
FLINK_FREE_TESTS := tests/integration/test_collection_build.py tests/integration/test_execution_environment.py
ROLE_TESTS := tests/integration/test_cluster_restarts.py tests/integration/test_cluster_root.py \
	tests/integration/test_flink_jobs_role.py

# The versions' suites run at the same time, one pytest each (they mostly wait on Flink), output in
# build/it/<version>.log, printed when all are done; INTEGRATION_JOBS=1 runs them one after the other, streaming
# (any other value: all versions at once).
# The n-th version shifts the suite's loopback ports (18000-20999, free_port_block in tests/integration/conftest.py)
# by the n-th offset (FLINKOPS_PORT_OFFSET), so two suites never race for a port: 21000-23999, 24000-26999,
# 29000-31999, clear of a suite run by hand, of molecule's 28xxx and of the ephemeral ports from 32768.
INTEGRATION_JOBS ?= 2
INTEGRATION_PORT_OFFSETS := 3000 6000 11000

integration: venv collection
	@[ $(words $(FLINK_VERSIONS)) -le $(words $(INTEGRATION_PORT_OFFSETS)) ] || \
	  { echo "more FLINK_VERSIONS than INTEGRATION_PORT_OFFSETS" >&2; exit 2; }; \
	mkdir -p $(BUILD)/it; n=0; pids=""; rc=0; set -- $(INTEGRATION_PORT_OFFSETS); \
	trap 'for p in $$pids; do kill -INT -- -$$p 2>/dev/null; done' INT; \
	trap 'for p in $$pids; do kill -TERM -- -$$p 2>/dev/null; done' TERM HUP; \
	for v in $(FLINK_VERSIONS); do \
	  n=$$((n + 1)); log=$(BUILD)/it/$$v.log; skip=""; \
	  [ $$n -eq 1 ] || skip="$(addprefix --ignore=,$(FLINK_FREE_TESTS))"; \
	  [ $$n -eq $(words $(FLINK_VERSIONS)) ] || skip="$$skip $(addprefix --ignore=,$(ROLE_TESTS))"; \
	  run="env FLINKOPS_FLINK_VERSION=$$v FLINKOPS_PORT_OFFSET=$$1 \
	    $(VPY) -m pytest -q -p no:cacheprovider --durations=15 $$skip tests/integration"; \
	  shift; \
	  if [ "$(INTEGRATION_JOBS)" = 1 ]; then \
	    echo "=== integration on Flink $$v ==="; \
	    set -o pipefail; $$run 2>&1 | tee $$log || exit 1; \
	  else \
	    set -m; ( s=$$SECONDS; $$run; r=$$?; echo "=== Flink $$v: exit $$r after $$((SECONDS - s)) s"; exit $$r ) \
	      >$$log 2>&1 </dev/null & pids="$$pids $$!"; set +m; \
	    echo "=== integration on Flink $$v started (pid $$!, output in $$log)"; \
	  fi; \
	done; \
	for p in $$pids; do \
	  wait $$p; r=$$?; while [ $$r -gt 128 ] && kill -0 $$p 2>/dev/null; do wait $$p; r=$$?; done; \
	  [ $$r = 0 ] || rc=1; \
	done; \
	if [ -n "$$pids" ]; then \
	  for v in $(FLINK_VERSIONS); do echo "=== integration on Flink $$v ($(BUILD)/it/$$v.log) ==="; \
	    cat $(BUILD)/it/$$v.log; done; \
	  for v in $(FLINK_VERSIONS); do tail -n 2 $(BUILD)/it/$$v.log; done; \
	fi; \
	exit $$rc

# Role scenarios (molecule, delegated driver, local connection): each converges,
# checks idempotence, verifies through Flink's REST API and removes everything.
MOLECULE_SCENARIOS ?= single multinode ha

roles: venv collection
	@set -e; for s in $(MOLECULE_SCENARIOS); do \
	  echo "=== molecule scenario $$s ==="; \
	  PATH=$(VENV)/bin:$$PATH $(VENV)/bin/molecule test -s $$s; \
	done

# ansible-lint puts ~/.ansible/collections before ANSIBLE_COLLECTIONS_PATH, where an older copy of this
# collection may sit (molecule installs one there): a home of its own makes it lint the working tree.
lint: venv collection
	mkdir -p $(BUILD)/lint-home
	HOME=$(BUILD)/lint-home PATH=$(VENV)/bin:$$PATH $(VENV)/bin/ansible-lint

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

demo: venv-demo collection
	$(QUICKSTART)

stop: venv-demo collection
	$(QUICKSTART) -e flink_cluster_state=stopped

clean:
	rm -rf $(BUILD) tests/output
