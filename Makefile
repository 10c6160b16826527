# systolic: the two commands a fresh machine needs are `make demo` and `make test`.
# Both create (or refresh, when pyproject.toml changes) the virtual environment in .venv.
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
JOBS    ?= auto

.PHONY: demo test lint bench cluster-bench report docs-images sweep clean distclean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check pip==24.3.1
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/systolic demo

test: lint
	$(PY) -m pytest -n $(JOBS) -q --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff check hdl sim tests

bench: $(STAMP)
	$(VENV)/bin/systolic bench

# The sweep on a local Dask cluster (real scheduler and worker processes) against the
# local pool: build/bench/cluster.json and cluster.md.
cluster-bench: $(STAMP)
	$(VENV)/bin/systolic cluster-bench

report: $(STAMP)
	$(VENV)/bin/systolic report -o build/report

# The README's pictures (docs/*.png): the sweep plots and the wavefront, regenerated.
docs-images: $(STAMP)
	$(VENV)/bin/systolic report --only sweep --only wavefront -o build/docs --docs docs

sweep: $(STAMP)
	$(VENV)/bin/systolic sweep -o build/sweep

clean:
	rm -rf build

distclean: clean
	rm -rf $(VENV) *.egg-info
