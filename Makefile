# crlfix.windows: every developer and CI entry point.
#   make setup   .venv with pinned tools + the collection linked where ansible finds it
#   make test    every test (unit, integration against the lab, sanity, lint)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COLLECTIONS := .collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/crlfix/windows
STAMP := $(VENV)/.installed
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/$(COLLECTIONS)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: setup test units integration sanity lint changelog-lint clean

setup: $(STAMP) $(COLLECTION_LINK)

$(STAMP): requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	touch $@

# A symlink, not a copy: edits in the checkout are what ansible-playbook runs.
$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn $(CURDIR) $@

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit tests/integration
	$(MAKE) --no-print-directory sanity lint

units: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

integration: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/integration

sanity: setup
	bash tests/sanity/run.sh

lint: setup
	$(BIN)/ruff check plugins tests
	$(BIN)/antsibull-changelog lint

clean:
	rm -rf $(VENV) $(COLLECTIONS) build tests/output
