# ctr-lab: `make run` and `make test` are all a fresh machine needs (see README.md).
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
VENV4 := .venv-spark4
PY := $(VENV)/bin/python
PY4 := $(VENV4)/bin/python
RUN_DIR ?= build/case_study
export PYTHON

SETUP_INPUTS := pyproject.toml tools/setup_env.sh
# The kernels: the local one as `pysparkkernel` (the notebooks' kernelspec) in .venv, sparkmagic's
# where only the Livy tests look (they put its folder on JUPYTER_PATH).
KERNELS := $(VENV)/share/ctr-lab/sparkmagic-kernels/kernels/pysparkkernel/kernel.json
# JupyterLab's defaults in .venv (`make lab`, the browser suite): no prompt to fetch Jupyter's news
# from the internet and no check for a newer JupyterLab than the lab pins. A student's own
# settings still change them.
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
# The Jupyter server in .venv saves a notebook under EMR's kernel display name, not the local
# kernel's: opening and saving a notebook leaves the repository's file as it was.
SERVER_CONFIG := $(VENV)/etc/jupyter/jupyter_server_config.json
# JupyterLab refuses to run as root without --allow-root (the lab supports root on Debian).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
LAB_ARGS ?=

.PHONY: help run lab test lint unit unit-spark4 notebooks-check notebooks-check-spark4 notebooks livy livy-contract cluster browser samples bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: $(SETUP_INPUTS)
	@bash tools/setup_env.sh $(VENV) lab,dev
	@touch $@

# Every target that starts local Spark needs the archive: through $(KERNELS), or by name.
$(VENV)/.jvm-archive: $(VENV)/.installed
	@echo "make: building the JVM class-data archive so local Spark starts faster (a minute, once)"
	@start=$$SECONDS; $(VENV)/bin/ctr-lab jvm-archive >$(VENV)/jvm-archive.log 2>&1 \
	  && echo "make: JVM archive built in $$((SECONDS - start)) s (log: $(VENV)/jvm-archive.log)" \
	  || echo "make: local Spark will start without the archive (slower); see $(VENV)/jvm-archive.log"
	@touch $@

# magics.py holds the kernelspec (its display name): a change to it is installed again.
$(KERNELS): $(VENV)/.installed $(VENV)/.jvm-archive ctr_lab/tools/magics.py
	@$(VENV)/bin/ctr-lab kernel install --sys-prefix --sparkmagic

$(VENV4)/.installed: $(SETUP_INPUTS)
	@bash tools/setup_env.sh $(VENV4) spark4,dev
	@touch $@

$(LAB_OVERRIDES): tools/jupyterlab_overrides.json $(VENV)/.installed
	@mkdir -p $(@D) && cp $< $@

$(SERVER_CONFIG): tools/jupyter_server_config.json $(VENV)/.installed
	@mkdir -p $(@D) && cp $< $@

run: $(KERNELS) ## Set up .venv and run every notebook of the case study on local Spark (exercises solved)
	@$(VENV)/bin/ctr-lab run --out $(RUN_DIR)

lab: $(KERNELS) $(LAB_OVERRIDES) $(SERVER_CONFIG) ## JupyterLab on 127.0.0.1 with the notebooks and the local kernel (LAB_ARGS=... adds options)
	@JUPYTER_PREFER_ENV_PATH=1 $(VENV)/bin/jupyter lab --ip=127.0.0.1 $(ALLOW_ROOT) \
	  --ServerApp.root_dir=notebooks --LabApp.default_url=/lab/tree/00_setup.ipynb $(LAB_ARGS)

# The notebooks' outputs on the local kernel are checked by `browser` (each saved file through
# nbval's comparison); `notebooks-check` is the same check through nbval alone.
# `make test` runs its suites in two lanes side by side (tools/side_by_side.sh; each output line
# starts with its lane's name), each lane ending about when the other does (BENCHMARKS.md, "The
# test suite"): first .venv's install, the lint and the JVM archive's build (side by side) and
# the lab environment's Spark tests (`-m spark`), beside .venv-spark4's install, the PySpark 4
# pass and the lab environment's Spark tests of UNIT_LATE (the second lane waits for the first
# one's setup before it uses .venv); then the notebooks, in the browser (those with exercises in
# their solution versions) and then through the EMR-like Livy (which reloads the models the
# browser's runs saved in build/ rather than training them again), beside the rest of the Livy
# suite with the notebooks of LIVY_EARLY, the cluster suite and then the notebooks of LIVY_LATE
# through Livy (`make livy` is the Livy parts), with the lab environment's tests without Spark in
# a third lane at a lower priority, in the CPU the notebook lanes leave idle as they wait on Livy
# (`make unit` is the `.venv` parts of the unit tests). Spark tests in that lane took the
# notebook lanes' CPU instead (BENCHMARKS.md).
test: ## Set up both environments and run the test suite
	@mkdir -p $(dir $(SETUP_DONE)) && rm -f $(SETUP_DONE) $(SETUP_FAILED)
	@tools/side_by_side.sh \
	  "setup, unit (spark)" \
	  "{ $(MAKE) --no-print-directory -j2 --output-sync=line lint $(KERNELS) \
	       || { touch $(SETUP_FAILED); exit 1; }; } && touch $(SETUP_DONE) \
	     && $(PY) -m pytest --ignore=tests/e2e $(addprefix --ignore=,$(UNIT_LATE)) -m spark" \
	  "setup-spark4, unit-spark4, unit (spark, late)" \
	  "$(MAKE) --no-print-directory unit-spark4 && $(WAIT_FOR_SETUP) \
	     && $(PY) -m pytest $(UNIT_LATE) -m spark"
	@tools/side_by_side.sh "browser, livy (notebooks)" \
	  "$(MAKE) --no-print-directory browser \
	     && $(PY) -m pytest $(LIVY_NOTEBOOKS) -k 'not ($(LIVY_EARLY) or $(LIVY_LATE))'" \
	  "livy (the rest), cluster, livy (late)" \
	  "$(PY) -m pytest $(LIVY_REST) tests/e2e/livy/test_livy_notebooks.py \
	     -k 'not test_notebook_runs_through_sparkmagic or $(LIVY_EARLY)' \
	     && $(MAKE) --no-print-directory cluster \
	     && $(PY) -m pytest tests/e2e/livy/test_livy_notebooks.py -k '$(LIVY_LATE)'" \
	  "unit (no spark, niced)" "$(PY) -m pytest --ignore=tests/e2e -m 'not spark'"
	@echo "make test: all checks passed"

lint: $(VENV)/.installed ## ruff, Python 3.9 compatibility (vermin) and mypy
	@$(VENV)/bin/ruff check ctr_lab tests benchmarks
	@$(VENV)/bin/ruff format --check ctr_lab tests benchmarks
	@$(VENV)/bin/vermin --no-tips --violations --target=3.9- --eval-annotations --backport dataclasses ctr_lab
	@$(VENV)/bin/mypy

unit: $(KERNELS) ## The test suite on the lab environment (PySpark 3.5)
	@$(PY) -m pytest --ignore=tests/e2e

unit-spark4: $(VENV4)/.installed ## The tests that run Spark, again on the newest PySpark 4.x
	@$(PY4) -m pytest --ignore=tests/e2e --spark-only

# nbval over every notebook with the local kernel, the sessions in one driver JVM.
NBVAL_ARGS := -p no:randomly -p tests.nbval_shared_jvm -p tests.nbval_progress --nbval notebooks \
  --nbval-kernel-name pysparkkernel --nbval-sanitize-with notebooks/nbval_sanitize.cfg \
  --nbval-kernel-startup-timeout 120 -o testpaths=notebooks

notebooks-check: $(KERNELS) ## nbval alone: every notebook against its committed outputs (local kernel, one JVM)
	@CTR_LAB_PROGRESS=0 $(PY) -m pytest $(NBVAL_ARGS)

# The same check on the newest PySpark 4.x, for instructors moving the course to a newer Spark
# than EMR 7's: the committed outputs (made on PySpark 3.5) must come out the same.
# .venv-spark4 gets the packages that run the local kernel (the `kernel` extra) and the kernel.
notebooks-check-spark4: $(VENV4)/.kernel ## `make notebooks-check` on the newest PySpark 4.x (.venv-spark4)
	@CTR_LAB_PROGRESS=0 $(PY4) -m pytest $(NBVAL_ARGS)

$(VENV4)/.kernel: $(VENV4)/.installed
	@bash tools/setup_env.sh $(VENV4) spark4,dev,kernel
	@$(VENV4)/bin/ctr-lab kernel install --sys-prefix
	@touch $@

notebooks: $(KERNELS) ## Re-execute every notebook (student version) with the local kernel and save its outputs
	@$(VENV)/bin/ctr-lab run --in-place

# The lab environment's Spark tests that `make test` runs in its second lane, after the PySpark 4
# pass, so that both lanes end about together.
UNIT_LATE := tests/test_cli.py tests/test_docstrings.py tests/test_grade.py tests/test_session.py

# `make test`'s first lane sets up .venv (the lint, the JVM archive, the kernels) while the second
# installs .venv-spark4 and runs the PySpark 4 pass; the second waits for one of these files
# before its tests that use .venv.
SETUP_DONE := build/make-test/setup-done
SETUP_FAILED := build/make-test/setup-failed
WAIT_FOR_SETUP := until [ -e $(SETUP_DONE) ]; do [ ! -e $(SETUP_FAILED) ] || exit 1; sleep 1; done

# The Livy tests that read the bucket `ctr-lab emr upload` fills (with the models in build/).
LIVY_NOTEBOOKS := tests/e2e/livy/test_livy_notebooks.py tests/e2e/livy/test_livy_emr_like.py
# The rest of the Livy suite (pytest runs files in the order given: these before the notebooks).
LIVY_REST := $(filter-out $(LIVY_NOTEBOOKS),$(wildcard tests/e2e/livy/test_*.py))
# The notebooks `make test` runs through Livy in the second notebook lane: 00 and 06 (which
# starts two sessions), which reload no model the browser saved, with the rest of the Livy suite
# beside the browser; 02 and 03 (whose models the browser has saved by then; a missing one is
# trained through Livy instead) after the cluster suite. The Livy suite waits on
# sessions and sparkmagic's polling more than it computes: it runs beside the browser, and the
# cluster suite beside the first lane's notebooks through Livy, so that each lane's waits leave
# the other's work the CPU.
LIVY_EARLY := 00_setup or 06_cluster
LIVY_LATE := 02_sampling or 03_model

livy: $(KERNELS) ## Every notebook through the real sparkmagic kernel and the Livy test server
	@$(PY) -m pytest tests/e2e/livy

livy-contract: $(KERNELS) ## `make livy` without the notebooks: the server, the kernel, the session-kill fault
	@$(PY) -m pytest tests/e2e/livy --deselect tests/e2e/livy/test_livy_notebooks.py

cluster: $(VENV)/.installed $(VENV)/.jvm-archive ## A Spark standalone cluster (master + 2 workers) and the fault tests
	@$(PY) -m pytest tests/e2e/cluster tests/e2e/test_remote_python.py

browser: $(KERNELS) $(LAB_OVERRIDES) $(SERVER_CONFIG) ## Headless Chromium runs every notebook in JupyterLab (exercises solved), saves it, checks it with nbval's comparison
	@$(PY) -m pytest tests/e2e/browser

samples: $(VENV)/.installed ## Regenerate data_samples/ (the test suite checks they reproduce)
	@$(PY) -m ctr_lab.tools.make_samples --write

bench: $(VENV)/.installed $(VENV)/.jvm-archive ## Run the benchmarks side by side; results into build/bench and BENCHMARKS.md
	@$(VENV)/bin/ctr-lab bench

clean: ## Remove build outputs (keeps the environments)
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
