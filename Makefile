# One command to run the dashboard, one to run the tests; both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SYSTEM_PACKAGES := redis-server:redis-server chromium:chromium nginx:nginx

.PHONY: install system-deps run demo lint test test-fast bench clean

$(BIN)/agentdash: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/agentdash

# Debian packages the tests drive for real: Redis, Chromium, nginx.
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

lint: install
	$(BIN)/ruff check app pipelines tests benchmarks
	$(BIN)/ruff format --check app pipelines tests benchmarks
	$(BIN)/mypy app pipelines

test: install system-deps lint
	$(BIN)/python -m pytest

bench: install system-deps
	for script in benchmarks/bench_*.py; do \
		module=$$(basename $$script .py); $(BIN)/python -m benchmarks.$$module || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
