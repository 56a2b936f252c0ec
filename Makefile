# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup deps run test test-fast test-kernel bench demo clean

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# venv, dependencies, migrations; idempotent.
setup: $(VENV)/.installed
	mkdir -p "$${REVIEWAPP_VAR_DIR:-var}"
	$(BIN)/python manage.py migrate --noinput -v 0

# Debian packages (public-inbox, qemu, busybox-static, cpio, chromium, bubblewrap) and the guest kernel.
deps:
	scripts/install-system-deps
	scripts/fetch-kernel "$${REVIEWAPP_VAR_DIR:-var}/kernel" >/dev/null

demo: setup
	$(BIN)/python manage.py demo load

run: setup deps demo
	@echo "reviewapp on http://$(HOST):$(PORT)/ (worker and beat running; Ctrl-C stops all)"
	scripts/run-all $(HOST) $(PORT)

test: setup deps
	$(BIN)/pytest -q

# Only the real-kernel tests (uffd-kernel suite on Debian's 6.1); `make test` runs them too.
test-kernel: setup deps
	REVIEWAPP_KERNEL_TESTS=1 $(BIN)/pytest -q -m kernel_build

test-fast: setup
	$(BIN)/pytest -q tests/unit -p no:cacheprovider

bench: setup
	$(BIN)/python bench/ingest_bench.py

clean:
	rm -rf var/test-* var/broker var/broker-done
