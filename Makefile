# Two commands set everything up on a fresh machine: `make book` and `make test`.
# Both create the pinned environment in .venv when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# Fixed thread counts keep floating-point sums in one order, so stored outputs reproduce.
export OMP_NUM_THREADS := 1
export OPENBLAS_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export MPLBACKEND := Agg
# Property tests draw the same examples on every run (tests/conftest.py); HYPOTHESIS_PROFILE=dev
# explores new ones.
export HYPOTHESIS_PROFILE ?= ci

.PHONY: all env book test unit nbval execute bench student anywhere lab pdf clean help

help:
	@echo "make book     build the HTML book into _build/html (creates .venv if missing)"
	@echo "make test     run unit tests, notebook hygiene tests and nbval (creates .venv if missing)"
	@echo "make execute  re-execute every chapter notebook in place (authors, after changing mlteach)"
	@echo "make bench    run the speed benchmarks in benchmarks/"
	@echo "make student  write student editions (no solutions) into _build/student"
	@echo "make anywhere write the full chapters for any Jupyter front end into _build/anywhere"
	@echo "make pdf      print the book to _build/pdf/mlteach.pdf and one PDF per chapter"
	@echo "make lab      open the chapter notebooks in JupyterLab (MyST rendered by jupyterlab-myst)"

env: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . --warningiserror --nitpick --keep-going
	$(PY) tools/make_anywhere.py --html _build/html   # the .ipynb downloads: plain markdown
	@echo "Open _build/html/index.html"

# The book is built first (zero warnings, or the test fails) so that tests/test_site.py can check
# the rendered pages in headless Chromium; those tests skip, saying why, where no browser exists.
test: $(STAMP)
	$(MAKE) --no-print-directory book
	$(PY) -m pytest tests -q -p no:cacheprovider
	$(MAKE) --no-print-directory nbval

unit: $(STAMP)
	$(PY) -m pytest tests -q -p no:cacheprovider

nbval: $(STAMP)
	@if [ -z "$(NOTEBOOKS)" ]; then echo "nbval: no notebooks yet"; else \
	  $(PY) -m pytest --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
	    -p no:cacheprovider -q $(NOTEBOOKS); fi

execute: $(STAMP)
	$(PY) tools/execute_notebooks.py

bench: $(STAMP)
	$(PY) benchmarks/run.py

student: $(STAMP)
	$(PY) tools/make_student.py

# The full chapters (solutions, outputs) in plain Jupyter markdown: glued numbers written in,
# roles and directives rewritten, so JupyterLab, VS Code and Colab show them as the book does.
anywhere: $(STAMP)
	$(PY) tools/make_anywhere.py

# JupyterLab from the pinned environment, with jupyterlab-myst so the notebooks' MyST markdown
# (admonitions, roles, math) renders as in the book. LAB_ARGS passes options, e.g. --no-browser.
# As root (containers, Colab-like machines) JupyterLab needs --allow-root.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# The HTML book printed by Debian's Chromium (tools/make_pdf.py): equations and figures as on
# screen. Needs `apt-get install chromium`.
pdf: book
	$(PY) tools/make_pdf.py

clean:
	rm -rf _build
