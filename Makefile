# nnbook: `make book` sets up and builds the book; `make test` sets up and runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
JOBS   ?= 2

.PHONY: setup book test test-unit test-notebooks data doctor clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

setup: $(BIN)/activate
	$(PY) -m pip install -q -e ".[test,book,teach]"
	@# PyTorch is a reference for tests and benchmarks only, never a dependency of nnbook.
	@# Tests that need it are skipped when it cannot be installed.
	-$(PY) -m pip install -q "torch==2.13.0" || echo "torch not installed: reference tests will be skipped"
	$(PY) -m nnbook data fetch mnist --quiet

data: $(BIN)/activate
	$(PY) -m nnbook data fetch mnist

doctor:
	$(PY) -m nnbook doctor

book: setup
	$(BIN)/jupyter-book build . -W -n --keep-going

# After the tests, the book is built and its HTML checked (tests/test_book_html.py: what a
# reader sees: no raw TeX, no "((6.1))", no stray $); the build takes 45 s to 2.5 min on 2 cores.
test: setup
	$(PY) -m pytest -n $(JOBS) --dist loadfile tests book --nbval-lax --nbval-current-env --nbval-cell-timeout=300 -p no:cacheprovider --ignore=tests/test_book_html.py
	$(BIN)/jupyter-book build . -W -n
	$(PY) -m pytest -q -p no:cacheprovider tests/test_book_html.py

test-unit:
	$(PY) -m pytest -n $(JOBS) tests

test-notebooks:
	$(PY) -m pytest -n $(JOBS) --dist loadfile book --nbval-lax --nbval-current-env --nbval-cell-timeout=300

clean:
	rm -rf _build .pytest_cache .hypothesis
