# crlfix.windows: every developer and CI entry point.
#   make setup   .venv with pinned tools + the collection linked where ansible finds it
#   make test    every test (unit, integration against the lab, pslint, sanity, lint)
#   make pslint  the Windows PowerShell 5.1 check of every .ps1 (tests/pslint, docs/dev/host-scripts.md)
#   make generate  the fix_crl role's variable files from the fix_crl_host module's documentation, and the cause
#                  catalogue's pages from the catalogue (scripts/generate_causes.py)
#   make docs    the docsite (antsibull-docs and Sphinx) in build/docsite/build/html
#   make release   CHANGELOG.md, the tarball and galaxy-importer's check of it (docs/dev/release.md)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COLLECTIONS := .collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/crlfix/windows
STAMP := $(VENV)/.installed
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/$(COLLECTIONS)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: setup test units integration pslint sanity lint ansible-lint docs clean squid chromium generate

setup: $(STAMP) $(COLLECTION_LINK) squid chromium

# The lab's forward proxy is Debian's squid (tests/lab/README.md); installed when missing, never faked.
squid:
	bash tests/lab/install-squid.sh

# The HTML report is checked by rendering it in Debian's chromium; installed when missing.
chromium:
	bash tests/report/install-chromium.sh

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
	$(BIN)/python -m pytest -q -n 2 tests/unit tests/integration
	$(MAKE) --no-print-directory pslint sanity lint

units: setup
	$(BIN)/python -m pytest -q tests/unit

integration: setup
	$(BIN)/python -m pytest -q -n 2 tests/integration

# Windows PowerShell 5.1 syntax, no aliases, ASCII, a known end: every .ps1 of the collection (nothing here runs it).
pslint: setup
	$(BIN)/python -m tests.pslint

sanity: setup
	bash tests/sanity/run.sh

lint: setup
	$(BIN)/ruff check plugins tests scripts bench
	$(BIN)/antsibull-changelog lint
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/antsibull-docs lint-collection-docs --plugin-docs $(COLLECTION_LINK)
	$(MAKE) --no-print-directory ansible-lint

# Offline (.ansible-lint): it installs nothing (tests/integration/test_user_home.py runs it with an empty HOME).
# Its syntax check reads ansible.cfg's inventory (the lab's), which need not exist while linting.
ansible-lint: setup
	ANSIBLE_INVENTORY_UNPARSED_FAILED=false PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/ansible-lint

# The release of galaxy.yml's version (docs/dev/release.md): CHANGELOG.md from the fragments, the tarball in
# build/release, galaxy-importer's check of it. release-check does the same in a throwaway copy.
.PHONY: release release-check
release: setup
	bash scripts/release.sh

release-check: setup
	bash scripts/release.sh --check

# The docsite as antsibull-docs renders the collection (plugins, role, docs/docsite): build/docsite/build/html.
docs: setup
	bash scripts/docs.sh

# The role's argument spec options, defaults/main.yml and README table (tests/unit/roles checks they are current).
generate: setup
	$(BIN)/python scripts/generate_role.py
	$(BIN)/python scripts/generate_causes.py

clean:
	rm -rf $(VENV) $(COLLECTIONS) build tests/output

# The loopback fleet of Windows twins (tests/twin/README.md). HOSTS defaults to 12; build/lab holds up to 2032
# (127.0.1-8.x); a bigger lab goes in another --lab-dir (scripts/lab.py).
HOSTS ?= 12
.PHONY: lab-up lab-down lab-metrics
lab-up: setup
	$(BIN)/python scripts/lab.py up --hosts $(HOSTS)

lab-down: setup
	$(BIN)/python scripts/lab.py down

lab-metrics: setup
	$(BIN)/python scripts/lab.py metrics

# The first-run experience: a 12-host lab, audit -> fix -> audit of the Lync pool, fleet summary, lab stopped.
.PHONY: demo
demo: setup
	bash scripts/demo.sh

# The cause catalogue in a lab of its own: a host per cause, audited, each diagnosis against its seed; the incidents.
.PHONY: demo-causes
demo-causes: setup
	$(BIN)/python scripts/demo_causes.py

# The fleet benchmark (bench/README.md): BENCH_ARGS='--quick' for one fleet of 10, '--sizes 50,200'.
BENCH_ARGS ?=
.PHONY: bench
bench: setup
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# The execution environment (docs/awx.md): execution-environment.yml built with ansible-builder on a
# local Debian base (no registry reachable here), tagged localhost/crlfix-ee:<galaxy.yml version>; installs
# podman, runc and debootstrap when missing. ee-demo audits a lab from inside it with ansible-navigator.
.PHONY: ee ee-demo
ee: setup
	bash tests/ee/build.sh

ee-demo: ee
	bash scripts/ee-demo.sh
