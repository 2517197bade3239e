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
DEMO_FLINK_VERSION ?= 2.3.0

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_NOCOLOR := 1
export ANSIBLE_FORCE_COLOR := 0
export FLINKOPS_CACHE := $(CACHE)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help demo stop test matrix support-table venv venv-demo collection sanity unit integration roles lint \
	fault-report bench clean

help:
	@echo "make demo   - start a local Flink on localhost:8081 and deploy the example job"
	@echo "make stop   - stop the demo cluster"
	@echo "make test   - the whole suite: sanity, unit, integration on real Flink, roles"

# make demo installs only what the quickstart needs (ansible-core); the test toolchain (molecule,
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

# Flink versions: the whole integration suite runs on FLINK_VERSIONS, the life-cycle suite
# (tests/integration/test_lifecycle.py) on LIFECYCLE_VERSIONS, so `make test` covers every supported line.
# tests/harness/suites.py spreads those runs over INTEGRATION_JOBS streams that run at the same time, each on its
# own loopback port window; tests that never talk to Flink run with the first full version only, the role-level
# tests with the last one only. Logs in build/it/<run>.log, results in build/support/<run>.xml.
FLINK_VERSIONS ?= 2.3.0 1.20.5
LIFECYCLE_VERSIONS ?= 2.2.1 2.1.3 2.0.2 1.19.3 1.18.1
ALL_FLINK_VERSIONS := 2.3.0 2.2.1 2.1.3 2.0.2 1.20.5 1.19.3 1.18.1
INTEGRATION_JOBS ?= 2

INTEGRATION_RUNS = $(addprefix --full ,$(FLINK_VERSIONS)) $(addprefix --lifecycle ,$(LIFECYCLE_VERSIONS)) \
	--jobs $(INTEGRATION_JOBS)

integration: venv collection
	$(VPY) -m tests.harness.suites $(INTEGRATION_RUNS)

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

# Benchmarks (not part of make test). bench.compare: flinkops.flink against what users do today, on one cluster
# (no-op run, first submission, upgrade, 50 declared jobs, 10 upgrades in one run, upload memory; build/bench/last.json);
# then a forgotten history on a cluster of its own; then the README's bench block from last.json.
# BENCH_ARGS passes options to bench.compare (--smoke: tiny sizes; --reps N; --items ...).
bench: venv collection
	$(VPY) -m bench.compare --version $(DEMO_FLINK_VERSION) $(BENCH_ARGS)
	$(VPY) -m bench.forgotten_generations --version $(DEMO_FLINK_VERSION) --history 100
	$(VPY) -m bench.report --readme README.md

# The README's fault table, from the fault cases of the last integration run.
fault-report: venv
	$(VPY) -m tests.harness.report --readme README.md

# make test runs the role scenarios (make roles) inside the integration streams, after the role-level tests (the
# same service user), while the other stream goes on: the suite's longest part is waiting on Flink.
test: sanity unit lint venv collection
	$(VPY) -m tests.harness.suites $(INTEGRATION_RUNS) $(addprefix --molecule ,$(MOLECULE_SCENARIOS))
	@$(VPY) -m tests.harness.report
	@$(VPY) -m tests.harness.support

# Everything on everything: sanity under every ansible-core release, the whole integration suite on every Flink
# line, the life-cycle suite under every ansible-core release (on the newest and the oldest line), the role
# scenarios; then the README's support table from these runs. Hours, not minutes: not part of make test.
# The ansible-core of .venv (tests/requirements.txt), under which the whole suite runs.
MAIN_CORE := 2.19

# A failed step does not stop the others (hours of runs should end with the whole table); make matrix fails at
# the end if any step failed, and the table names the runs that did. Every result records the commit it ran at:
# `make matrix RESUME=1` keeps each one that passed at the commit the work tree is at (no tracked file changed)
# and runs the rest, so a matrix interrupted after hours goes on where it stopped. The results are saved in
# tests/support-results.json (tracked; `python -m tests.harness.support save` after an interrupted run), and
# RESUME=1 restores them first: a fresh clone at the same commit goes on too. A commit that changes only the README,
# changelogs or that file keeps them (tests/harness/support.py, head()).
RESUME ?=
MOLECULE_WHAT := role scenarios (molecule: $(MOLECULE_SCENARIOS))

matrix: unit lint core-venvs
	@rc=0; \
	$(if $(RESUME),$(VPY) -m tests.harness.support restore;) \
	$(MAKE) sanity-cores || rc=1; \
	$(VPY) -m tests.harness.suites $(addprefix --full ,$(ALL_FLINK_VERSIONS)) --every-line \
	  --jobs $(INTEGRATION_JOBS) $(if $(RESUME),--resume) || rc=1; \
	$(VPY) -m tests.harness.suites --lifecycle $(firstword $(ALL_FLINK_VERSIONS)) \
	  --lifecycle $(lastword $(ALL_FLINK_VERSIONS)) \
	  $(foreach v,$(filter-out $(MAIN_CORE),$(ANSIBLE_CORE_VERSIONS)),--core $(CORE_VENVS)/core-$(v)/bin/python) \
	  --jobs $(INTEGRATION_JOBS) $(if $(RESUME),--resume) || rc=1; \
	if [ -n "$(RESUME)" ] && $(VPY) -m tests.harness.support passed --name roles; then :; else \
	  s=$$SECONDS; $(MAKE) roles; r=$$?; [ $$r = 0 ] || rc=1; \
	  $(VPY) -m tests.harness.support record --name roles --python $(VPY) --rc $$r --seconds $$((SECONDS - s)) \
	    --what "$(MOLECULE_WHAT)"; \
	fi; \
	$(VPY) -m tests.harness.support save; \
	$(VPY) -m tests.harness.support --readme README.md; \
	[ $$rc = 0 ] || { echo "=== make matrix: a step failed (above); the README's support table names the runs" >&2; \
	  exit 1; }

# The README's support table from the results in build/support (make matrix does this at its end).
support-table: venv
	$(VPY) -m tests.harness.support --readme README.md

QUICKSTART := $(VENV)/bin/ansible-playbook -i localhost, playbooks/quickstart.yml \
	-e quickstart_dir=$(CURDIR)/demo -e flink_cluster_version=$(DEMO_FLINK_VERSION)

demo: venv-demo collection
	$(QUICKSTART)

stop: venv-demo collection
	$(QUICKSTART) -e flink_cluster_state=stopped

clean:
	rm -rf $(BUILD) tests/output

# ansible-core matrix
# -------------------
# One virtual environment per supported ansible-core release, build/venvs/core-<X.Y>, with only what the
# sanity and integration tests run with (ansible-core X.Y.*, requests, pyyaml, pytest; no molecule, ansible-lint
# or builder), built once (stamp file). The venv decides the core: tests/integration/ansible_play.py runs the
# ansible-playbook next to sys.executable, run_sanity.py the ansible-test next to it.
#   make core-venvs            build all of them
#   make core-venv-2.17        build one
#   make sanity-cores          ansible-test sanity under each, one after another, stopping at the first failure
#   build/venvs/core-2.16/bin/python -m pytest tests/integration/...   (with a FLINKOPS_PORT_OFFSET of its own,
#                              see free_port_block in tests/integration/conftest.py)
ANSIBLE_CORE_VERSIONS ?= 2.16 2.17 2.18 2.19
CORE_VENVS := $(BUILD)/venvs
CORE_VENV_PACKAGES := 'requests>=2.25' pyyaml 'pytest>=8'
CORE_STAMPS := $(foreach v,$(ANSIBLE_CORE_VERSIONS),$(CORE_VENVS)/core-$(v)/.stamp)

.PHONY: core-venvs sanity-cores
# Reached through core-venv-% only (a version outside ANSIBLE_CORE_VERSIONS), a stamp would count as intermediate
# and be deleted after the run.
.PRECIOUS: $(CORE_VENVS)/core-%/.stamp

$(CORE_VENVS)/core-%/.stamp:
	rm -rf $(@D)
	$(PYTHON) -m venv $(@D)
	$(@D)/bin/python -m pip install -q --upgrade pip
	$(@D)/bin/python -m pip install -q 'ansible-core==$*.*' $(CORE_VENV_PACKAGES)
	touch $@

# Not a file: `make core-venv-2.16` builds (once) build/venvs/core-2.16.
core-venv-%: $(CORE_VENVS)/core-%/.stamp
	@$(CORE_VENVS)/core-$*/bin/ansible --version | head -n 1

core-venvs: $(CORE_STAMPS)

sanity-cores: core-venvs
	@for v in $(ANSIBLE_CORE_VERSIONS); do \
	  if [ -n "$(RESUME)" ] && $(PYTHON) -m tests.harness.support passed --name sanity__core-$$v; then continue; fi; \
	  echo "=== ansible-test sanity on ansible-core $$v ==="; s=$$SECONDS; \
	  $(CORE_VENVS)/core-$$v/bin/python tests/sanity/run_sanity.py; rc=$$?; \
	  $(PYTHON) -m tests.harness.support record-sanity --python $(CORE_VENVS)/core-$$v/bin/python \
	    --rc $$rc --seconds $$((SECONDS - s)); \
	  [ $$rc = 0 ] || { echo "=== sanity FAILED on ansible-core $$v (after $$((SECONDS - s)) s)" >&2; exit 1; }; \
	  echo "=== sanity passed on ansible-core $$v (after $$((SECONDS - s)) s)"; \
	done; \
	echo "=== sanity passed on ansible-core $(ANSIBLE_CORE_VERSIONS)"
