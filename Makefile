# One-command set-up and the two entry points of the project: `make demo`, `make test`.
# Every target is idempotent: a second run with nothing changed only checks stamps.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
STAMP_VENV := $(VENV)/.installed
STAMP_WS := ros2_ws/install/.built
WS_SOURCES := $(shell find ros2_ws/src -type f -not -path '*/__pycache__/*' 2>/dev/null)
RUN := source scripts/env.sh &&
MINUTES ?= 5
# The demo's policy signing keys: made once by `dreamer-policy keygen`, never by the stack itself.
KEYS_DIR ?= runs/keys
# The demo's learner judges a candidate every 20 updates instead of 100, so that a few CPU minutes show
# decisions (the file says why); a real robot's stack keeps the installed defaults.
DEMO_PARAMS ?= ros2_ws/src/dreamer_ros/config/demo_params.yaml
# The demo's task: the simulated A1 learning to trot, with the learner recipe measured on it
# (docs/simulation.md#the-walking-task); DEMO_ROBOT=a1_sim DEMO_PRESET=xs for the standing task.
DEMO_ROBOT ?= a1_sim_trot
DEMO_PRESET ?= a1_trot
# `make sessions`: short robot sessions with offline training in the breaks between them.
SESSIONS ?= 3
SESSION_MINUTES ?= 2
BETWEEN_MINUTES ?= 5
# launch/launch_ros wheels for the launch tests only (no PyPI wheels exist); used when present.
LAUNCH_DEPS := ../shared/ros2-launch
HAVE_LAUNCH := $(wildcard $(LAUNCH_DEPS)/wheels)
comma := ,
STAMP_LAUNCH := $(VENV)/.launch-installed
# The `ros2` command (launch, node, param, topic, service, lifecycle, interface, pkg, run): wheels in
# ../shared/ros2-cli, used when present together with the launch wheels.
CLI_DEPS := ../shared/ros2-cli
HAVE_CLI := $(and $(HAVE_LAUNCH),$(wildcard $(CLI_DEPS)/wheels))
STAMP_CLI := $(VENV)/.cli-installed

.PHONY: setup venv build test lint keys demo check-minutes sessions bench clean help

help:
	@echo "make setup  - create/refresh .venv from pinned versions and colcon-build ros2_ws"
	@echo "make test   - setup, then ruff, hadolint and the full pytest suite (unit, ROS integration, end-to-end);"
	@echo "              the report test opens the page in headless Chromium (Debian package chromium, which"
	@echo "              .ci/run installs) and skips, saying so, where it is missing"
	@echo "make demo   - setup, then run the simulated A1 learning loop (MINUTES=$(MINUTES)) and print the report's path"
	@echo "make sessions - setup, then SESSIONS=$(SESSIONS) robot sessions of SESSION_MINUTES=$(SESSION_MINUTES) with"
	@echo "              BETWEEN_MINUTES=$(BETWEEN_MINUTES) of offline training between them; the report shows return per session"
	@echo "make bench  - setup, then run every benchmark in bench/ (not part of CI)"
	@echo "make clean  - remove .venv and the colcon build"

setup: venv build

venv: $(STAMP_VENV) $(if $(HAVE_LAUNCH),$(STAMP_LAUNCH)) $(if $(HAVE_CLI),$(STAMP_CLI))

$(STAMP_VENV): requirements.txt pyproject.toml scripts/fix_ros_wheel_paths.py
	@echo "[setup] creating/refreshing $(VENV) from requirements.txt (pinned; torch==2.13.0 CPU wheel)"
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	@echo "[setup] installing dreamer_core (editable)"
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@echo "[setup] pointing the ROS 2 wheels' CMake exports at $(VENV)"
	@$(VENV)/bin/python scripts/fix_ros_wheel_paths.py
	@touch $@

$(STAMP_LAUNCH): $(STAMP_VENV) requirements-launch.txt $(wildcard $(LAUNCH_DEPS)/wheels/*.whl)
	@echo "[setup] installing launch and launch_ros from $(LAUNCH_DEPS) (launch tests only)"
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-launch.txt 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
		$(LAUNCH_DEPS)/wheels/launch-[0-9]*.whl $(LAUNCH_DEPS)/wheels/launch_ros-[0-9]*.whl
	@touch $@

$(STAMP_CLI): $(STAMP_LAUNCH) requirements-cli.txt $(wildcard $(CLI_DEPS)/wheels/*.whl)
	@echo "[setup] installing the ros2 command line from $(CLI_DEPS) (ros2 launch, node, param, topic, ...)"
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-cli.txt 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps $(CLI_DEPS)/wheels/*.whl \
		$(LAUNCH_DEPS)/wheels/ros2launch-[0-9]*.whl $(LAUNCH_DEPS)/wheels/launch_xml-[0-9]*.whl \
		$(LAUNCH_DEPS)/wheels/launch_yaml-[0-9]*.whl
	@touch $@

build: $(STAMP_WS)

# With $(LAUNCH_DEPS) present, its composition_interfaces (which launch_ros imports) is built in the
# same workspace; the product itself never needs it.
$(STAMP_WS): $(STAMP_VENV) $(WS_SOURCES) $(if $(HAVE_LAUNCH),$(STAMP_LAUNCH))
	@echo "[setup] colcon build in ros2_ws (dreamer_msgs, dreamer_ros$(if $(HAVE_LAUNCH),$(comma) composition_interfaces))"
	@$(RUN) cd ros2_ws && colcon --log-level error build --symlink-install --event-handlers console_cohesion- summary+ \
		--base-paths src $(if $(HAVE_LAUNCH),$(abspath $(LAUNCH_DEPS))/composition_interfaces) \
		--cmake-args -DPython3_EXECUTABLE=$$VIRTUAL_ENV/bin/python -DBUILD_TESTING=OFF
	@ln -sf ../../scripts/dreamer-stack $(VENV)/bin/dreamer-stack
	@touch $@

lint: setup
	@echo "[test] ruff check, hadolint"
	@$(RUN) ruff check .
	@$(RUN) hadolint docker/onboard.Dockerfile docker/offboard.Dockerfile

test: lint
	@echo "[test] pytest"
	@$(RUN) python -m pytest

keys: setup
	@test -f $(KEYS_DIR)/policy_signing.key || { $(RUN) dreamer-policy keygen --out $(KEYS_DIR); }

demo: check-minutes keys
	@$(RUN) dreamer-stack sim --robot $(DEMO_ROBOT) --preset $(DEMO_PRESET) --minutes $(MINUTES) \
		--keys-dir $(KEYS_DIR) --params-file $(DEMO_PARAMS)

# Before anything is set up or started: 0 would run until Ctrl-C, a typo would run forever.
check-minutes:
	@[[ "$(MINUTES)" =~ ^[0-9]*\.?[0-9]+$$ && "$(MINUTES)" =~ [1-9] ]] || \
		{ echo "make demo: MINUTES must be a positive number of minutes, got '$(MINUTES)'" >&2; exit 2; }

sessions: keys
	@$(RUN) dreamer-stack sim --robot $(DEMO_ROBOT) --preset $(DEMO_PRESET) --sessions $(SESSIONS) \
		--session-minutes $(SESSION_MINUTES) --between-minutes $(BETWEEN_MINUTES) --keys-dir $(KEYS_DIR) \
		--params-file $(DEMO_PARAMS)

bench: setup
	@for b in bench/*.py; do echo "[bench] $$b"; $(RUN) python $$b; done

clean:
	rm -rf $(VENV) ros2_ws/build ros2_ws/install ros2_ws/log
