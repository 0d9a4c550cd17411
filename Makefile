# Two commands: `make run` starts the demo service, `make test` runs every test. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# the libvirt extra compiles against libvirt-dev: it follows the system packages, so the stamp names it
LIBVIRT := $(shell pkg-config --exists libvirt 2>/dev/null && echo libvirt)
SYNCED := $(VENV)/.synced$(if $(LIBVIRT),-$(LIBVIRT))
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test test-fast check lint bench system-deps clean docs audit

$(BIN)/uv:
	PYTHON=$(PYTHON) VENV=$(VENV) scripts/bootstrap-venv.sh

$(SYNCED): pyproject.toml uv.lock | $(BIN)/uv
	$(BIN)/uv sync --frozen --inexact --python $(BIN)/python $(if $(LIBVIRT),--extra $(LIBVIRT))
	@rm -f $(VENV)/.synced*
	@touch $@

install: $(SYNCED)

run: install
	$(BIN)/vmpooler serve --config examples/vmpooler.yaml --host 127.0.0.1 --port 4567 --demo-traffic

system-deps:
	@scripts/ensure-system-deps.sh

lint: install
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)
	$(BIN)/mypy
	$(BIN)/bandit -r src -q --severity-level medium --confidence-level medium

# system deps first, then a fresh make: the libvirt extra is chosen by what system-deps installed
test: system-deps
	@$(MAKE) --no-print-directory check

check: install lint
	$(BIN)/pytest

# the inner loop: everything but real VMs, browsers, simulators, chaos rounds and the original side by side
test-fast: install
	$(BIN)/pytest -m "not slow" -q -n 4

# needs PyPI's per-version JSON API (not reachable from every sandbox), so it is not part of `make test`
audit: install
	$(BIN)/uv export --frozen --no-emit-project --format requirements-txt -o .audit-requirements.txt
	$(BIN)/pip-audit --strict --require-hashes --disable-pip -r .audit-requirements.txt

docs: install
	$(BIN)/mkdocs build --strict -d site

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .vmpooler .pytest_cache .mypy_cache .ruff_cache
