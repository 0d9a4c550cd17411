# Two commands: `make run` starts the demo service, `make test` runs every test. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SYNCED := $(VENV)/.synced
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test lint bench system-deps clean docs audit

$(BIN)/uv:
	PYTHON=$(PYTHON) VENV=$(VENV) scripts/bootstrap-venv.sh

$(SYNCED): pyproject.toml uv.lock | $(BIN)/uv
	$(BIN)/uv sync --frozen --inexact --python $(BIN)/python $$(pkg-config --exists libvirt 2>/dev/null && echo --extra libvirt)
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

# system deps first: the libvirt extra compiles against libvirt-dev
test: system-deps install lint
	$(BIN)/pytest

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
