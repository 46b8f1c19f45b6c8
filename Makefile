PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: test demo bench lint typecheck install browser docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(DEMO_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $(DEMO_STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check s3auth_asgi tests benchmarks
	$(BIN)/ruff format --check s3auth_asgi tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# The demo-page test drives Debian's Chromium; as root with apt, install it when missing.
# Elsewhere that test is skipped with its reason.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium for the browser test"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
			>/dev/null) || echo "chromium could not be installed; the browser test will skip"; \
	fi

# The documentation site, into site/ (open site/index.html). Strict: a broken link or anchor,
# a page missing from the nav or a docstring that does not render fails it. No network needed.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

test: lint typecheck browser docs
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks

demo: $(DEMO_STAMP)
	$(BIN)/s3auth demo

clean:
	rm -rf $(VENV) .s3auth-demo site
