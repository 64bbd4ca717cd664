# cofi — every target does its own set-up on a fresh machine.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CPU_STAMP := $(VENV)/.installed-cpu
DEB_TEST := mariadb-server espeak-ng systemd openssl
DEB_DEMO := espeak-ng
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test demo protos lint bench install-service deps deps-cpu debs-test debs-demo clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(CPU_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,cpu]'
	touch $@

deps: $(STAMP)
deps-cpu: $(CPU_STAMP)

# Debian packages, installed only when missing (apt-get needs root; without it, say what to install).
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (run as root or: sudo apt-get install$$missing)"; fi; \
	fi
endef

debs-test:
	$(call apt_install,$(DEB_TEST))
debs-demo:
	$(call apt_install,$(DEB_DEMO))

test: debs-test $(CPU_STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

demo: debs-demo $(CPU_STAMP)
	$(BIN)/python -m cofid.demo

protos: $(STAMP)
	bash scripts/gen_protos.sh

# ruff over everything; mypy over the shipped code ([tool.mypy] in pyproject.toml: strict
# for domain, stages, plans, engine and service).
lint: $(STAMP)
	$(BIN)/ruff check cofid tui tests bench
	$(BIN)/mypy cofid tui

bench: $(STAMP)
	$(BIN)/python -m bench.all

install-service:
	bash systemd/install.sh

clean:
	rm -rf $(VENV) var .cache
