# inferfleet.gpu — the two commands a newcomer needs: `make lab` and `make test`.
# Everything below installs what it needs on a fresh Debian 12 machine (as root).
SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
PYTHON ?= $(shell $(ROOT)/tools/find-python)
LAB_NODES ?= 2
LAB_NAME ?= inferlab
COLL_LINK := $(ROOT)/.build/ansible_collections/inferfleet/gpu
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(ROOT)/.build
export PATH := $(VENV)/bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help deps venv link lab lab-up lab-deploy lab-bench lab-down test unit lint sanity molecule build bench clean

help:
	@echo "make lab       bring up the lab fleet ($(LAB_NODES) nodes) and run playbooks/site.yml on it"
	@echo "make lab-deploy  playbooks/deploy.yml on the lab that is up (extra vars: LAB_DEPLOY_VARS='-e ...'),"
	@echo "                 with a load loop through the gateway; prints requests, failures, longest stall"
	@echo "make lab-bench benchmark every instance and the gateway of the lab that is up; prints the report"
	@echo "make lab-down  tear the lab down, leaving nothing behind"
	@echo "make test      lint, ansible-test sanity, unit tests and every molecule scenario"

# Debian packages (skipped when all are already installed).
deps:
	@pkgs=$$(grep -v '^\s*#' requirements-apt.txt | xargs); \
	missing=$$(for p in $$pkgs; do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# requirements.txt runs the collection; requirements-test.txt (which includes it) tests it.
$(VENV)/.stamp: requirements.txt requirements-test.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-test.txt
	@touch $@

venv: $(VENV)/.stamp

# ansible-test and Python imports want the collection at ansible_collections/inferfleet/gpu.
link:
	@mkdir -p $(dir $(COLL_LINK))
	@test -L $(COLL_LINK) || ln -sfn $(ROOT) $(COLL_LINK)

# The main job: prepare the air-gapped assets once (vLLM CPU wheelhouse, the tiny
# random-weight Qwen3-VL stand-in), boot the nodes with them bind-mounted and a
# data disk each, run playbooks/site.yml, print what each host found and did and
# one `endpoint: ... model: ...` line per vLLM instance. The lab stays up.
LAB_SITE_VARS := -e @lab/vars/site.yml -e @lab/vars/vllm.yml
lab: deps venv link
	binds=$$($(PY) -m lab.assets binds) && \
	  $(PY) -m lab up --name $(LAB_NAME) --nodes $(LAB_NODES) --disk-size 2G $$binds
	$(PY) -m lab site --name $(LAB_NAME) -- $(LAB_SITE_VARS)

# A rolling deploy on the lab that is up, e.g. LAB_DEPLOY_VARS='-e vllm_service_max_num_seqs=3' make lab-deploy:
# every changed instance is drained from the gateway, restarted and put back while image + text chats
# go through the gateway; the last line says how many ran, how many failed and the longest stall.
LAB_DEPLOY_VARS ?=
lab-deploy: venv link
	$(PY) -m lab deploy --name $(LAB_NAME) -- $(LAB_SITE_VARS) $(LAB_DEPLOY_VARS)

lab-down: venv
	$(PY) -m lab down --name $(LAB_NAME)

test: deps venv link
	$(PY) tests/run_suite.py

unit: venv link
	$(PY) tests/run_suite.py --only unit

lint: venv link
	$(PY) tests/run_suite.py --only lint

sanity: venv link
	$(PY) tests/run_suite.py --only sanity

molecule: deps venv link
	$(PY) tests/run_suite.py --only molecule

build: venv
	$(VENV)/bin/ansible-galaxy collection build --force --output-path .build/dist

bench: venv link
	$(PY) bench/topology.py
	$(PY) bench/fleet.py

clean:
	rm -rf .build .pytest_cache tests/output

# Benchmark the lab that is up (make lab): every instance and the gateway, with the lab's small
# load (lab/vars/benchmark.yml); prints the report's path and its table. BENCH_ARGS: more -e ....
BENCH_DIR ?= $(ROOT)/benchmark-results/$(LAB_NAME)-$(shell date -u +%Y%m%dT%H%M%SZ)
lab-bench: venv link
	inv=$$($(PY) -m lab inventory --name $(LAB_NAME)) && \
	  ansible-playbook -i $$inv $(LAB_SITE_VARS) -e @lab/vars/benchmark.yml \
	    -e benchmark_output_dir=$(BENCH_DIR) $(BENCH_ARGS) playbooks/benchmark.yml; rc=$$?; \
	  test -f $(BENCH_DIR)/report.md && { echo "report: $(BENCH_DIR)/report.md"; \
	    sed -n '/^| target | workload | req/,/^$$/p' $(BENCH_DIR)/report.md; }; exit $$rc
