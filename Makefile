# Intro to PyTorch — the two commands a learner needs: `make lab` and `make test`.
#
# Variables (make VAR=value):
#   DATA    data root for the data sets (default: ~/.pytorch, or $PYTORCH_COURSE_DATA)
#   MIRROR  offline copy of the data sets to use before downloading (e.g. ../shared/data)
#   PORT    JupyterLab's port (default 8888)
#   JOBS    parallel test workers (default 4: on 2 cores, three left a third of the CPU time unused)

PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8888
JOBS   ?= 4
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.course-installed
# The course's facts live in course.py (standard library only, so the system Python can answer).
KERNEL := $(shell $(PYTHON) course.py kernel)
KERNEL_DISPLAY_NAME := $(shell $(PYTHON) course.py kernel-display-name)

ifneq ($(strip $(DATA)),)
export PYTORCH_COURSE_DATA := $(abspath $(DATA))
endif
ifneq ($(strip $(MIRROR)),)
export PYTORCH_COURSE_MIRROR := $(abspath $(MIRROR))
endif
.PHONY: help env env-all lock test-latest test-python lab test lint exercises drawings links host-env data bench bench-grade gpu-bundle grade formgrader browser sandbox clean

help:
	@sed -n '1,8p' Makefile
	@echo "Targets: lab test lint exercises drawings links data bench bench-grade gpu-bundle grade formgrader browser sandbox clean env env-all lock test-latest test-python"

# The course environment: a virtual environment with the locked packages, helper.py installed into it (so
# `import helper` works from every folder) and the course's Jupyter kernel registered in it. Two sets, both from the
# lock files of requirements/ (`make lock` writes them from pyproject.toml; every package pinned, with hashes):
# `env`, the learner's (the notebooks, JupyterLab, nbgrader's Validate), for `make lab`; `env-all`, everything
# (the grader's Dask, the tests' pytest, nbval, Playwright, ruff, uv), for `make test` and `make grade`. The
# grader's course version hashes requirements/course.lock.
# jupyter/jupyter_config.json: every Jupyter program of the environment (JupyterLab, nbgrader) talks to its
# kernels over encrypted channels (CurveZMQ), so kernels do not warn about plain-text TCP;
# jupyter/nbgrader_config.py: the course id for every nbgrader program of the environment.
# rfc3987-syntax, jsonschema's optional IRI checker (via jupyter-events), builds a parser when imported: 1.2 s
# of CPU in every nbformat and nbgrader process (about 100 in `make test`); nothing here checks IRIs.
# The editable install warns that it puts a folder on sys.path: that is what it is for.
# install_course: $(1) the lock, $(2) the environment's folder, $(3) the Python that makes it.
LEARNER_LOCK := requirements/learner.lock
COURSE_LOCK  := requirements/course.lock
define install_course
	test -x $(2)/bin/python || $(3) -m venv $(2)
	$(2)/bin/python -m pip install --upgrade --quiet pip
	$(2)/bin/python -m pip install --quiet --require-hashes -r $(1)
	$(2)/bin/python -m pip uninstall --quiet --quiet --yes rfc3987-syntax
	PYTHONWARNINGS='ignore:Editable installation' $(2)/bin/python -m pip install --quiet --no-deps -e .
	$(2)/bin/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "$(KERNEL_DISPLAY_NAME)"
	mkdir -p $(2)/share/jupyter/lab/settings $(2)/etc/jupyter
	cp jupyter/overrides.json $(2)/share/jupyter/lab/settings/overrides.json
	cp jupyter/jupyter_config.json jupyter/nbgrader_config.py $(2)/etc/jupyter/
endef
env: $(VENV)/.learner-installed
env-all: $(STAMP)
$(VENV)/.learner-installed: $(LEARNER_LOCK) pyproject.toml course.py $(wildcard jupyter/*)
	$(call install_course,$(LEARNER_LOCK),$(VENV),$(PYTHON))
	touch $@
$(STAMP): $(COURSE_LOCK) pyproject.toml course.py $(wildcard jupyter/*)
	$(call install_course,$(COURSE_LOCK),$(VENV),$(PYTHON))
	touch $@

# The lock files, from pyproject.toml's dependencies (requirements/learner.lock) and with its extras grader and
# dev (requirements/course.lock), for every platform and Python the course supports (uv's universal resolution);
# the learner's set takes the versions of the whole, and Binder installs a copy of it (binder/requirements.txt:
# repo2docker copies that one file into its image before the rest of the repository, so a link's target would
# not be there yet). Run it after changing a pin in pyproject.toml.
lock: env-all
	$(BIN)/uv pip compile pyproject.toml --extra grader --extra dev --universal --generate-hashes \
		--python-version 3.11 --quiet -o $(COURSE_LOCK)
	$(BIN)/uv pip compile pyproject.toml --universal --generate-hashes --python-version 3.11 --quiet \
		-c $(COURSE_LOCK) -o $(LEARNER_LOCK)
	cp $(LEARNER_LOCK) binder/requirements.txt

# JupyterLab on the course folder, opening on README.md (the parts in order; markdown opens as a preview);
# warnings and errors only, and the address to open.
lab: env
	$(BIN)/jupyter lab --port=$(PORT) --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/README.md \
		--log-level=WARN --LabApp.log_level=WARN \
		$(if $(filter 0,$(shell id -u)),--allow-root)

# Every test: lint, helper unit tests and doctests, notebook execution with every check's wrong answers (nbval),
# exercise sync, grading, browser. One thread per test worker: PyTorch's threads spin while they wait, and two
# workers with two threads each on a 2-core machine ran the notebooks several times slower than one thread each.
# Budget: the test phase stays under 15 minutes on a 2-core machine (docs/development.md, "Tests and CI").
# Each test module and each notebook is one unit of work (--dist loadscope), handed out in collection order
# (--no-loadscope-reorder): the root conftest.py puts the longest units first.
test: env-all host-env browser sandbox lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(JOBS) --dist loadscope --no-loadscope-reorder \
		tests solutions helper.py coursedata.py course.py checks/core.py \
		--doctest-modules --nbval-lax --nbval-cell-timeout=600 -p no:cacheprovider --durations=12

# ruff: lint and format check of the Python files and the solution notebooks (settings: pyproject.toml).
lint: env-all
	$(BIN)/ruff check --quiet .
	$(BIN)/ruff format --check --quiet .

# Regenerate the learners' notebooks/ from the nbgrader sources in solutions/ (every part, one nbgrader run).
exercises: env
	cd grader && ../$(BIN)/nbgrader generate_assignment "*" --force --no-db --log-level=ERROR

# Draw the course's drawings (tools/drawings.py) into the solution notebooks that show them; then `make exercises`.
drawings: env
	$(BIN)/python tools/drawings.py

# Stamp the course's public address (pyproject.toml's [project.urls] Repository, else a GitHub origin) into
# the notebooks' first cells and the README: cloud badges that open each exercise at REF, and the address from
# which a cloud notebook installs the course (tools/links.py); then the exercises again.
# make links [REF=main] [ADDRESS=https://github.com/OWNER/NAME]
links: env
	$(BIN)/python tools/links.py --ref "$(or $(REF),main)" $(if $(ADDRESS),--address "$(ADDRESS)")
	$(MAKE) exercises

# A stand-in for a cloud notebook's own packages (tests/test_hosts.py): Python 3.12 as on Colab (pyenv's, where
# there is one; else $(PYTHON)), another torch and torchvision than the lock's, the few other packages the
# course uses that Colab and Kaggle have (whatever versions pip picks), and not the course itself.
HOST_VENV := .venv-host
HOST_PYTHON = $(shell p=$(call python_for,3.12); command -v $$p >/dev/null 2>&1 && echo $$p || echo $(PYTHON))
host-env: $(HOST_VENV)/.installed
$(HOST_VENV)/.installed: requirements/host.txt
	rm -rf $(HOST_VENV)
	$(HOST_PYTHON) -m venv $(HOST_VENV)
	$(HOST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(HOST_VENV)/bin/python -m pip install --quiet -r requirements/host.txt
	touch $@

# Fetch the data sets into the data root (or copy them from MIRROR).
data: env
	$(BIN)/python -c "import course, coursedata; coursedata.prepare_data(course.DATASETS); print(coursedata.data_root())"

# A canary for the next PyTorch: every part (solutions, with every check's wrong and right answers) in a separate
# environment, .venv-latest, with the newest torch and torchvision the registry offers and the rest of the
# learner's set unpinned; the pinned course is untouched. Breakage shows here before learners meet it.
# PIP_CONSTRAINT=/dev/null lifts, for this install only, constraints that pip's configuration sets (a machine's
# cap on torch); the line `newest: ...` says which versions it got.
# Deprecations raised by the course's own code are errors: DeprecationWarning and FutureWarning (PyTorch's
# category for a deprecated call) attributed to a line of the course's modules (COURSE_CODE) or of a notebook's
# cells (__main__ in the kernel). Two places: pytest's -W for the tests' own process (given after
# pyproject.toml's filter that ignores deprecations, so they win there) and PYTHONWARNINGS for the notebooks'
# kernels (nbval starts them with its environment; IPython adds no filter of its own). Both match a whole
# module name, no pattern: the checks' modules are listed from checks/. A library's deprecation raised inside
# the library still only warns.
LATEST := .venv-latest
COURSE_CODE := $(shell $(PYTHON) course.py modules) checks \
	$(patsubst checks/%.py,checks.%,$(filter-out checks/__init__.py,$(wildcard checks/*.py)))
DEPRECATIONS := DeprecationWarning FutureWarning
as_errors = $(foreach category,$(DEPRECATIONS),$(foreach module,$(1),error::$(category):$(module)))
comma := ,
empty :=
space := $(empty) $(empty)
test-latest: env
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	PIP_CONSTRAINT=/dev/null $(LATEST)/bin/python -m pip install --quiet --upgrade \
		$(shell $(PYTHON) course.py learner-packages) nbval pytest pytest-xdist
	PYTHONWARNINGS='ignore:Editable installation' $(LATEST)/bin/python -m pip install --quiet --no-deps -e .
	$(LATEST)/bin/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "$(KERNEL_DISPLAY_NAME)"
	$(LATEST)/bin/python -c "import sys, torch, torchvision; print('newest: torch', torch.__version__, \
		'torchvision', torchvision.__version__, 'python', sys.version.split()[0])"
	$(LATEST)/bin/python -c "import course, helper, torch; new = helper._minor(torch.__version__); \
		new > course.TORCH_NEWEST and print('newer than course.TORCH_NEWEST', course.TORCH_NEWEST, \
		'(helper.check_environment warns learners with it): raise it when this run passes')"
	OMP_NUM_THREADS=1 PYTHONWARNINGS='$(subst $(space),$(comma),$(call as_errors,$(COURSE_CODE) __main__))' \
		$(LATEST)/bin/python -m pytest -n $(JOBS) --dist loadscope --no-loadscope-reorder -p no:cacheprovider \
		$(addprefix -W ,$(call as_errors,$(COURSE_CODE))) \
		--nbval-lax --nbval-cell-timeout=600 $(addprefix solutions/,$(shell $(PYTHON) course.py parts))

# Parts 1–4 (solutions, with every check's wrong and right answers) on other Pythons: make test-python
# [PYTHONS="3.12 3.13"], or one, make test-python-3.13 (make -k goes on to the next after a failure). Each in
# .venv-pyX.Y, made from pyenv's newest X.Y (else pythonX.Y on the PATH): the learner's lock (hashes required,
# as `make env` installs it), the tests' nbval, pytest and pytest-xdist at the course lock's versions, the
# course's kernel registered in that environment only (--sys-prefix; its pytest finds it before any other).
PYTHONS ?= 3.12 3.13
python_for = $(shell v=$$(pyenv latest $(1) 2>/dev/null) && echo $$(pyenv prefix $$v)/bin/python$(1) \
	|| echo python$(1))
test-python: $(addprefix test-python-,$(PYTHONS))
test-python-%:
	rm -rf $(VENV)-py$*
	$(call install_course,$(LEARNER_LOCK),$(VENV)-py$*,$(call python_for,$*))
	$(VENV)-py$*/bin/python -m pip install --quiet -c $(COURSE_LOCK) nbval pytest pytest-xdist
	$(VENV)-py$*/bin/python -c "import sys, torch; from jupyter_client.kernelspec import KernelSpecManager; \
		print('python', sys.version.split()[0], 'torch', torch.__version__, \
		'kernel', KernelSpecManager().get_kernel_spec('$(KERNEL)').argv[0])"
	OMP_NUM_THREADS=1 $(VENV)-py$*/bin/python -m pytest -n $(JOBS) --dist loadscope --no-loadscope-reorder \
		-p no:cacheprovider --nbval-lax --nbval-cell-timeout=600 \
		$(addprefix solutions/,$(wordlist 1,4,$(shell $(PYTHON) course.py parts)))

# Execution time and final metrics of every solution notebook.
bench: env
	$(BIN)/python tools/bench.py

# What a bare GPU machine needs to run every solution notebook and its checks (artifacts/gpu-bundle, <= 60 MiB).
gpu-bundle: env
	$(BIN)/python tools/gpu_bundle.py

# Grade a folder of learner submissions: make grade SUBMISSIONS=path/to/submissions [OUT=grades]
# [SOURCE=folder of the parts' nbgrader sources, default solutions/]
# [SCHEDULER=tcp://HOST:PORT of a running Dask scheduler; default: an embedded cluster on this machine]
# [HINT_COST=points each hint taken costs on its check; default 0] [VARIANTS=1|0: per-learner hidden inputs;
# default course.VARIANTS] [ROSTER=CSV file: folder,login,email,name for the LMS files] [HAND_GRADES=keep|drop:
# hand grades over a resubmission]
grade: env-all sandbox
	$(BIN)/python -m grader "$(SUBMISSIONS)" --out "$(or $(OUT),grades)" $(if $(SOURCE),--source "$(SOURCE)") \
		$(if $(SCHEDULER),--scheduler "$(SCHEDULER)") $(if $(HINT_COST),--hint-cost "$(HINT_COST)") \
		$(if $(filter 1,$(VARIANTS)),--variants) $(if $(filter 0,$(VARIANTS)),--no-variants) \
		$(if $(ROSTER),--roster "$(ROSTER)") $(if $(HAND_GRADES),--hand-grades "$(HAND_GRADES)")

# nbgrader's formgrader on a grading run's output, for hand grades and comments (they reach grades.csv, the LMS
# files and the feedback pages at the next `make grade`): make formgrader [OUT=grades] [FORMGRADER_PORT=8889]
formgrader: env-all
	$(BIN)/python -m grader.formgrader "$(or $(OUT),grades)" --port $(or $(FORMGRADER_PORT),8889)

# Grading's throughput: a generated class graded with 1 and 2 workers, embedded and through a loopback scheduler.
bench-grade: env-all sandbox
	$(BIN)/python tools/bench_grade.py

# System packages from Debian, installed when missing and make runs as root; elsewhere it says what to do.
# $(1): the command, $(2): the package, $(3): what happens without it.
define system_package
	@command -v $(1) >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null) \
			|| echo "$(2) could not be installed: $(3)"; \
		else echo "$(2) is missing (sudo apt-get install $(2)): $(3)"; fi; }
endef

# bubblewrap: the sandbox in which `make grade` runs learners' code.
sandbox:
	$(call system_package,bwrap,bubblewrap,grading runs without its sandbox and its summary says so)

# Debian's Chromium for the browser test (browser downloads are impossible offline).
browser:
	$(call system_package,chromium,chromium,the browser test will be skipped)

# The environment and caches; never grades/ (the default OUT of `make grade`: records, gradebook, secret).
clean:
	rm -rf $(VENV) $(LATEST) $(VENV)-py* $(HOST_VENV) artifacts .pytest_cache *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
