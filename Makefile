# Set-up and everyday targets. `make run` and `make test` create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of torch, installed before everything else: an unpinned torch (or any
# package that asks for one) would pull a CUDA build of several GB.
TORCH := torch==2.13.0
OUT ?= outputs/main

.PHONY: setup run test test-fast lab notebooks student bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## run: the main job, a privacy-utility sweep on mnist-5k (resumes if interrupted)
run: $(STAMP)
	$(BIN)/dpkit sweep --out $(OUT)

## test: the whole test suite, notebooks included (fast profile)
test: $(STAMP)
	bash scripts/install-browser.sh
	DPKIT_PROFILE=fast DPKIT_REQUIRE_BROWSER=1 $(BIN)/python -m pytest tests
	DPKIT_PROFILE=fast $(BIN)/python -m pytest --nbval-lax notebooks

## lab: JupyterLab on the notebook series
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

## notebooks: re-execute the instructor notebooks in the full profile, keeping outputs
notebooks: $(STAMP)
	for nb in notebooks/*.ipynb; do \
		$(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=900 "$$nb" || exit 1; \
	done

## student: student copies without solutions or outputs, in student/
student: $(STAMP)
	$(BIN)/python scripts/make_student.py --out student

## bench: speed and memory measurements, written to benchmarks/RESULTS.md
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build outputs student .pytest_cache
