# Fresh-machine entry points.  `make demo` and `make test` set everything up first;
# a second run only re-checks the stamps (seconds).
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.supersub-installed
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Tiny-ImageNet: a folder, the official zip, or a tar(.xz) in the official layout.
SUPERSUB_DATA ?= $(firstword $(wildcard ../shared/data/tiny-imagenet-200.tar.xz))
export SUPERSUB_DATA

.PHONY: setup wordnet browser demo test test-fast docs clean

setup: $(STAMP) wordnet

# --no-compile: Python compiles what is imported on first use; byte-compiling every installed
# file up front (torch's thousands) took a third of the setup time.  The test targets let Python
# write what it compiled (even where PYTHONDONTWRITEBYTECODE is set), so each of the suite's many
# processes does not compile torch again.
$(STAMP): pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --no-compile -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-compile --no-deps -e .
	touch $@

# WordNet 3.0: nltk's corpus if present, else Debian's wordnet-base, else nltk's downloader.
wordnet: $(STAMP)
	@$(PY) -c "import hierarchy; hierarchy.load_wordnet()" 2>/dev/null && echo "WordNet 3.0: ok" || { \
	  if command -v apt-get >/dev/null; then \
	    $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wordnet-base >/dev/null; \
	  else \
	    $(PY) -m nltk.downloader -q wordnet; \
	  fi; \
	  $(PY) -c "import hierarchy; print('WordNet', hierarchy.load_wordnet().get_version(), 'installed')"; }

# The main job: tree -> embed (cached) -> routed memory -> predictions -> evaluation -> report,
# then the network-level model (fine-tuned generalist + delta specialists) and the best routed
# system against the best flat one.
# By default a subset (100 train and 20 val images per class); FULL=1 uses everything.
DEMO      := runs/demo
DEMO_DATA := $(if $(FULL),--per-class 450,--per-class 100)
DEMO_VAL  := $(if $(FULL),--full,--per-class 20)
# Calibration: train images the models are not built from (FULL=1 builds on 450 per class, calibrates on 50).
DEMO_HELD := $(if $(FULL),450,100)
DEMO_CAL  := $(if $(FULL),50,10)
# BACKEND=milvus://127.0.0.1:19530/demo keeps the memory in Milvus (see `supersub milvus serve`).
DEMO_BACKEND := $(if $(BACKEND),--backend $(BACKEND) --overwrite,)
# Headless Chromium renders the HTML report in the tests (Debian's package).
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

demo: setup
	$(VENV)/bin/supersub tree build --dataset tiny-imagenet-200 --cut balanced:10 -o $(DEMO)/tree.json -q
	$(VENV)/bin/supersub tree show $(DEMO)/tree.json --brief
	$(VENV)/bin/supersub build --tree $(DEMO)/tree.json $(DEMO_DATA) $(DEMO_BACKEND) -o $(DEMO)/model
	$(VENV)/bin/supersub memory info $(DEMO)/model
	$(VENV)/bin/supersub predict --model $(DEMO)/model --top 3 --neighbours 3 \
	  $$($(PY) -c "from memory import tiny_imagenet; print(*tiny_imagenet('val').paths[100:102])")
	$(VENV)/bin/supersub evaluate --model $(DEMO)/model --split val $(DEMO_VAL) -o $(DEMO)/eval
	$(VENV)/bin/supersub report --predictions $(DEMO)/eval/predictions.csv --model $(DEMO)/model \
	  --system routed --baseline flat -o $(DEMO)/report
	$(VENV)/bin/supersub build --tree $(DEMO)/tree.json $(DEMO_DATA) --router generalist \
	  --specialist tail-delta --dev-per-class 10 -o $(DEMO)/network
	$(VENV)/bin/supersub evaluate --model $(DEMO)/network --split val $(DEMO_VAL) -o $(DEMO)/network-eval
	$(VENV)/bin/supersub compare $(DEMO)/eval/metrics.json $(DEMO)/network-eval/metrics.json
	$(VENV)/bin/supersub calibrate --model $(DEMO)/network --split train --skip-per-class $(DEMO_HELD) \
	  --per-class $(DEMO_CAL) --no-progress
	$(VENV)/bin/supersub evaluate --model $(DEMO)/network --split val $(DEMO_VAL) --accuracy 0.9 \
	  --decision crm --no-progress -o $(DEMO)/network-hedged

# The complete suite, as CI runs it: every test, a time limit per test, the 25 slowest listed.
# One worker process per core (pytest-xdist), each test file on one worker, each worker on one
# thread: most tests run small operations that a second thread only slows down (OpenMP threads
# spin waiting for work), so on 2 cores two single-threaded workers take half the time of one
# two-threaded run (7.5 against 15.4 minutes when last compared; the suite now takes about 5).
TEST_PAR := OMP_NUM_THREADS=1
TEST_XDIST := -n auto --dist loadfile
test: setup browser
	env -u PYTHONDONTWRITEBYTECODE $(TEST_PAR) $(PY) -m pytest -q --timeout=900 --durations=25 $(TEST_XDIST)

# The edit loop: everything but the tests that start processes, a Milvus server or a browser,
# need the real data, or are slow (about 1.5 minutes on 2 cores).
FAST_TIERS := not (subprocess or milvus_server or browser or data or slow)
test-fast: setup
	env -u PYTHONDONTWRITEBYTECODE $(TEST_PAR) $(PY) -m pytest -q --timeout=300 --durations=10 $(TEST_XDIST) \
	  -m "$(FAST_TIERS)"

# The documentation: MkDocs (Material) with the API reference from the docstrings, built strictly
# (a warning, a broken link or an unreadable docstring fails it), into site/.
DOCS_STAMP := $(VENV)/.supersub-docs-installed
$(DOCS_STAMP): requirements-docs.txt $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check --no-compile -r requirements-docs.txt
	touch $@

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -q

clean:
	rm -rf $(VENV) runs site .pytest_cache
