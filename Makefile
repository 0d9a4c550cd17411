# Two commands: `make run` starts the demo service, `make test` runs every test. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SYNCED := $(VENV)/.synced
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test lint bench system-deps clean docs

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

# system deps first: the libvirt extra compiles against libvirt-dev
test: system-deps install lint
	$(BIN)/pytest

docs: install
	$(BIN)/mkdocs build --strict -d site

bench: install
	$(BIN)/python bench/checkout.py

clean:
	rm -rf $(VENV) .vmpooler .pytest_cache .mypy_cache .ruff_cache
