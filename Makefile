# Set-up and entry points. `make test` and `make demo` work from a fresh clone: they create .venv and install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo docs bench clean

# Everything (the dev extra), and asteroid for the tests that compare with it: asteroid 0.7.0 declares pins that
# conflict with current torch / lightning, so it comes without its declared dependencies (the dev extra has the
# ones it imports).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps 'asteroid==0.7.0'
	touch $(STAMP)

# In parallel, one pytest-xdist worker per core (tests/conftest.py gives each its share of the cores as torch
# threads, and hands out the longest tests first); tests marked xdist_group share a costly fixture and run on one
# worker. The 15 slowest are listed.
test: $(STAMP)
	$(BIN)/python -m pytest -q tests -n auto --dist loadgroup --no-loadscope-reorder --durations=15

# The tse_mini recipe: mini corpus -> i-vectors (EER) -> TseNet -> SI-SDRi table, confidence, example wavs and
# spectrograms in demo_out/exp/tsenet; TseNet trains 4 of the recipe's 16 epochs, so that the whole demo, install
# included, takes under 15 minutes on 2 CPU cores (recipes/tse_mini/README.md has the figures of both).
DEMO_EPOCHS ?= 4
demo: $(STAMP)
	PYTHON=$(abspath $(BIN)/python) bash recipes/tse_mini/run.sh --work $(CURDIR)/demo_out trainer.max_epochs=$(DEMO_EPOCHS)

# The documentation site in site/ (warnings are errors); `$(BIN)/mkdocs serve` previews it while editing.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_conv_tasnet.py

clean:
	rm -rf $(VENV) demo_out exp site
