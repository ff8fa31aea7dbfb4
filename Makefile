# The two commands: `make run` serves the API, `make test` runs the tests. Both install first.
UV ?= python3 -m uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS ?= never
export UV_LINK_MODE ?= copy

.PHONY: install browser run test lint type check openapi migrate up down bench dist docs clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen
	@touch $@

run: install  ## serve on 127.0.0.1:8000 (embedded defaults unless HOKUSAI_* URLs are set)
	$(BIN)/hokusai-api serve --migrate

# Two workers, a test file each at a time (its module fixtures stay on one worker); each worker has
# its own database, MLflow server and Redis keys. `PYTEST_ARGS="-n 0"` runs them in one process.
PYTEST_ARGS ?= -n 2 --dist loadfile --durations=15
test: install browser  ## the tests, against real Postgres, Redis and an MLflow server
	scripts/with-services $(BIN)/pytest $(PYTEST_ARGS)

browser:  ## Debian's Chromium, which the browser tests drive through Playwright (no download of its own)
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

type: install
	$(BIN)/mypy

check: lint type test

openapi: install  ## regenerate the committed contract
	$(BIN)/hokusai-api openapi --output openapi.json

migrate: install
	$(BIN)/hokusai-api migrate

up:
	scripts/compose-secrets
	docker compose up --build --detach

down:
	docker compose down

docs: install  ## the documentation site, into site/ (--strict: a broken link fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

dist:  ## the SDK's wheel and sdist and the service's wheel, into dist/
	rm -rf dist
	$(UV) build sdk --wheel --sdist --out-dir dist
	$(UV) build --wheel --out-dir dist
	@ls -1 dist

bench: install
	scripts/with-services $(BIN)/python bench/api_overhead.py

clean:
	rm -rf $(VENV) dist site .hokusai .pytest_cache .mypy_cache .ruff_cache
