PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: test demo bench lint typecheck install browser azurite docs clean

# A target whose recipe failed is deleted, so that the next run makes it again: above all
# .venv/bin/python, which `python3 -m venv` leaves behind when it fails for want of ensurepip
# (Debian's python3 without python3-venv), in a virtualenv that has no pip.
.DELETE_ON_ERROR:

# A Python older than the package needs is refused before it makes .venv, which a run with
# PYTHON=python3.11 would otherwise find made and go on using.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and \
		"s3auth_asgi needs Python 3.11 or later; $(PYTHON) is " + sys.version.split()[0] + \
		": give one, e.g. make PYTHON=python3.11 ...")'
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

# Azurite, the Azure storage emulator the storage tests run against: an npm package, pinned to
# the last release that runs on Node.js older than 22 (Debian's is 18), installed into
# .venv/node. Without npm, as root with apt, Debian's nodejs and npm are installed first.
# Where it cannot be installed, the Azure tests are skipped with their reason.
AZURITE_VERSION := 3.35.0
AZURITE := $(VENV)/node/.installed-azurite-$(AZURITE_VERSION)

$(AZURITE): | $(BIN)/python
	@if ! command -v npm >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing nodejs and npm for the Azure storage tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm \
			>/dev/null) || echo "nodejs could not be installed; the Azure tests will skip"; \
	fi
	@if command -v npm >/dev/null; then \
		(npm install --prefix $(VENV)/node --no-audit --no-fund --loglevel=error --save-exact \
			azurite@$(AZURITE_VERSION) >/dev/null && touch $@) \
			|| echo "Azurite could not be installed; the Azure tests will skip"; \
	else \
		echo "no npm: the Azure tests will skip"; \
	fi

azurite: $(AZURITE)

# The documentation site, into site/ (open site/index.html). Strict: a broken link or anchor,
# a page missing from the nav or a docstring that does not render fails it. No network needed.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

test: lint typecheck browser azurite docs
	$(BIN)/python -m pytest -q

# The benchmarks (`python -m benchmarks`): every comparison, benchmarks/results/latest.json,
# the chart docs/images/benchmarks.png and docs/benchmarks.md's table; fails when a target is
# missed. As root with apt, wrk is installed when missing; s3verless 0.1.1 gets a virtual
# environment of its own. Either missing: its section is skipped, with the reason.
BENCH_STAMP := $(VENV)/.installed-bench
S3VERLESS_VENV := .venv-bench-s3verless

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@if ! command -v wrk >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing wrk for the end-to-end benchmark"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk \
				>/dev/null) || echo "wrk could not be installed: the end-to-end benchmark will skip"; \
		else \
			echo "no wrk, and no root apt to install it: the end-to-end benchmark will skip"; \
		fi; \
	fi
	@if [ ! -x $(S3VERLESS_VENV)/bin/python ]; then \
		echo "making $(S3VERLESS_VENV) with s3verless 0.1.1"; \
		($(PYTHON) -m venv $(S3VERLESS_VENV) && $(S3VERLESS_VENV)/bin/python -m pip install \
			--quiet 's3verless==0.1.1' 'moto[server]>=5.1.5') || (rm -rf $(S3VERLESS_VENV); \
			echo "s3verless 0.1.1 could not be installed: its comparison will skip"); \
	fi
	$(BIN)/python -m benchmarks

demo: $(DEMO_STAMP)
	$(BIN)/s3auth demo

clean:
	rm -rf $(VENV) .s3auth-demo site
