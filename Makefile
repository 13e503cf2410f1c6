# Set-up and entry points. `make test` and `make demo` work from a fresh clone: they create .venv and install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# The tse_mini recipe: mini corpus -> i-vectors (EER) -> TseNet -> SI-SDRi table, example wavs and spectrograms
# in demo_out/exp/tsenet (about 10 minutes on 2 CPU cores after the install).
demo: $(STAMP)
	PYTHON=$(abspath $(BIN)/python) bash recipes/tse_mini/run.sh --work $(CURDIR)/demo_out

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_conv_tasnet.py

clean:
	rm -rf $(VENV) demo_out exp
