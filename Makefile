# Intro to PyTorch — the two commands a learner needs: `make lab` and `make test`.
#
# Variables (make VAR=value):
#   DATA    data root for the data sets (default: ~/.pytorch, or $PYTORCH_COURSE_DATA)
#   MIRROR  offline copy of the data sets to use before downloading (e.g. ../shared/data)
#   PORT    JupyterLab's port (default 8888)
#   JOBS    parallel test workers (default 2)

PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8888
JOBS   ?= 2
BIN    := $(VENV)/bin
KERNEL := intro-pytorch
PARTS  := $(notdir $(wildcard solutions/[0-9]*))
STAMP  := $(VENV)/.course-installed

ifneq ($(strip $(DATA)),)
export PYTORCH_COURSE_DATA := $(abspath $(DATA))
endif
ifneq ($(strip $(MIRROR)),)
export PYTORCH_COURSE_MIRROR := $(abspath $(MIRROR))
endif
.PHONY: help env lab test exercises data bench grade browser sandbox clean

help:
	@sed -n '1,8p' Makefile
	@echo "Targets: lab test exercises data bench grade browser sandbox clean"

# The course environment: a virtual environment with the pinned packages, helper.py installed into
# it (so `import helper` works from every folder) and the course's Jupyter kernel registered in it.
env: $(STAMP)
$(STAMP): requirements.txt pyproject.toml jupyter/overrides.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python 3 (Intro to PyTorch)"
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp jupyter/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $@

# JupyterLab on the course folder, opening on README.md (the parts in order; markdown opens as a preview).
lab: env
	$(BIN)/jupyter lab --port=$(PORT) --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/README.md \
		$(if $(filter 0,$(shell id -u)),--allow-root)

# Every test: helper unit tests, notebook execution (nbval), exercise sync, check strength, grading, browser.
# One thread per test worker: PyTorch's threads spin while they wait, and two workers with two threads
# each on a 2-core machine ran the notebooks several times slower than one thread each.
test: env browser sandbox
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(JOBS) --dist loadscope tests solutions --nbval-lax \
		--nbval-cell-timeout=600 -p no:cacheprovider

# Regenerate the learners' notebooks/ from the nbgrader sources in solutions/.
exercises: env
	for part in $(PARTS); do \
		(cd grader && ../$(BIN)/nbgrader generate_assignment "$$part" --force --no-db --log-level=WARN) || exit 1; \
	done

# Fetch the data sets into the data root (or copy them from MIRROR).
data: env
	$(BIN)/python -c "import helper; helper.get_mnist(True); helper.get_mnist(False); \
		helper.get_mnist(True, fashion=True); helper.get_mnist(False, fashion=True); print(helper.cat_dog_dir())"

# Execution time and final metrics of every solution notebook.
bench: env
	$(BIN)/python tools/bench.py

# Grade a folder of learner submissions: make grade SUBMISSIONS=path/to/submissions [OUT=grades]
grade: env sandbox
	$(BIN)/python grader/grade.py "$(SUBMISSIONS)" --out "$(or $(OUT),grades)"

# bubblewrap: the sandbox in which `make grade` runs learners' code (grading still works without it, and
# its summary then says the sandbox was off).
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) \
			|| echo "bubblewrap could not be installed: grading runs without its sandbox"; \
		else echo "bubblewrap is missing (sudo apt-get install bubblewrap): grading runs without its sandbox"; fi; }

# Debian's Chromium for the browser test (browser downloads are impossible offline); skipped where
# it cannot be installed, and the browser test then says so.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "chromium could not be installed: the browser test will be skipped"; \
		else echo "chromium is missing (install it: sudo apt-get install chromium): the browser test will be skipped"; fi; }

clean:
	rm -rf $(VENV) artifacts grades .pytest_cache *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
