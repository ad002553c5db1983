# One command to run the dashboard, one to run the tests; both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SYSTEM_PACKAGES := redis-server:redis-server chromium:chromium nginx:nginx docker-compose:docker-compose

.PHONY: install install-dev system-deps run lint test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The dashboard and its runtime dependencies: what `make run` needs.
$(BIN)/agentdash: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The same with the tools of the tests, lint and benchmarks (the dev extra).
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/agentdash

install-dev: $(VENV)/.dev

# Debian packages the tests drive for real: Redis, Chromium, nginx, and docker-compose
# to validate docker-compose.yml (no container engine needed).
system-deps:
	@missing=""; for entry in $(SYSTEM_PACKAGES); do \
		cmd=$${entry%%:*}; pkg=$${entry##*:}; \
		command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

run: install
	$(BIN)/agentdash serve

lint: install-dev
	$(BIN)/ruff check app pipelines tests benchmarks
	$(BIN)/ruff format --check app pipelines tests benchmarks
	$(BIN)/mypy app pipelines

test: install-dev system-deps lint
	$(BIN)/python -m pytest

bench: install-dev system-deps
	for script in benchmarks/bench_*.py; do \
		module=$$(basename $$script .py); $(BIN)/python -m benchmarks.$$module || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
