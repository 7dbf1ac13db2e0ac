# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean postgresql

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is installed first with an exact pin: an unpinned torch pulls a CUDA build of several GB.
$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lstmlab memory --quick

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest
	node --test tests/js/

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

# PostgreSQL server binaries (initdb, pg_ctl) for the study's multi-machine test; only where missing.
postgresql:
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq postgresql >/dev/null; }

clean:
	rm -rf $(VENV) build src/*.egg-info
