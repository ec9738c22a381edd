# Single entry point. `make book` and `make test` set everything up first (system packages, .venv).
VENV   ?= .venv
PYTHON := $(VENV)/bin/python
# Tools of the virtual environment first: nbgrader needs `alembic` on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: help setup book book-cache test check release serve clean

help:
	@echo "make book     set up, then build the website into _build/html"
	@echo "make test     set up, then run the whole test suite (every core)"
	@echo "make check    the unit tier only: the inner loop while you work (about a minute)"
	@echo "make release  regenerate exercises/ from solutions/"
	@echo "make serve    serve _build/html on http://127.0.0.1:8000"
	@echo "make clean    remove the build and the execution cache"

setup: $(VENV)/.installed node_modules/.installed $(VENV)/ipywidgets-7.7.1/.installed

# rfc3987-syntax is removed after the install: jsonschema imports it whenever it is installed (an extra that
# jupyter-events asks for), and it compiles 38 grammars, a second of CPU in every process that imports nbformat (each
# grading run, each nbgrader step, each test worker). No schema of this stack uses the formats it checks (iri).
$(VENV)/.installed: requirements.txt pyproject.toml .ci/install-system-packages
	bash .ci/install-system-packages
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.txt
	$(PYTHON) -m pip uninstall --quiet --yes rfc3987-syntax
	touch $@

# Colab's ipywidgets, beside the course's 8.x: tests/test_widget_versions.py puts it first on PYTHONPATH.
$(VENV)/ipywidgets-7.7.1/.installed: $(VENV)/.installed
	$(PYTHON) -m pip install --quiet --no-deps --target $(VENV)/ipywidgets-7.7.1 ipywidgets==7.7.1 ipython_genutils==0.2.0
	touch $@

# The website's own copies of MathJax (served by the site) and axe-core (browser tests), from npm.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The execution cache matches each chapter on its code only (MyST-NB). Like CI's cache key (pages.yml), it is
# dropped when the helper package or the requirements change, so that no chapter keeps outputs of old helpers.
CACHE_KEY := _build/.jupyter_cache.key
book-cache:
	@key=$$( (find dlcourse -name '*.py' -not -path '*/__pycache__/*' | LC_ALL=C sort | xargs sha256sum; \
	          sha256sum requirements.txt) | sha256sum | cut -d' ' -f1); \
	if [ "$$(cat $(CACHE_KEY) 2>/dev/null)" != "$$key" ]; then \
	  if [ -d _build/.jupyter_cache ]; then echo "dlcourse/ or requirements.txt changed: execution cache dropped"; fi; \
	  rm -rf _build/.jupyter_cache; mkdir -p _build; echo "$$key" > $(CACHE_KEY); \
	fi

# The chapters run first, in parallel (one per core), into the execution cache: jupyter-cache's own executor, with
# the build's timeout. The build then reads each from the cache; MyST-NB alone would run them one after another.
# A chapter that fails there is not cached, so the build runs it again and reports its error as usual.
CHAPTERS := $(sort $(wildcard book/*.ipynb))
book: setup book-cache
	$(PYTHON) -m autograder pages
	mkdir -p _build/.jupyter_cache
	$(VENV)/bin/jcache notebook --cache-path _build/.jupyter_cache add $(CHAPTERS) >/dev/null
	DLCOURSE_STATIC_WIDGETS=1 $(VENV)/bin/jcache project --cache-path _build/.jupyter_cache execute \
	  --executor local-parallel --timeout 300
	DLCOURSE_STATIC_WIDGETS=1 $(VENV)/bin/jupyter-book build . -W --keep-going
	@echo "Book built: open _build/html/index.html"

# pytest-xdist, one worker per core; tests/conftest.py keeps the book and browser tests on one worker (one build)
# and the hub tests on one worker (local accounts). PYTEST_ARGS: more arguments, e.g. test files or @a-list-of-ids.
test: setup
	$(PYTHON) -m pytest -n auto --dist loadgroup $(PYTEST_ARGS)

check: setup
	$(PYTHON) -m pytest -m unit -n auto

release: setup
	$(PYTHON) -m autograder release

serve:
	$(PYTHON) -m http.server --directory _build/html --bind 127.0.0.1 8000

clean:
	rm -rf _build .jupyter_cache
