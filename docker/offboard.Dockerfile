# Offboard image: replay_node + learner_node, CUDA torch. dreamer_core[learner,bag] with
# torch==2.13.0 (pinned as in requirements.txt), rosbags for dreamer-replay's bag export/import,
# + the ROS 2 Kilted PyPI wheels + ros2_ws.
# NOT BUILT WITH DOCKER: the project's machines have no Docker engine. The pip and colcon
# steps mirror the Makefile and were run outside Docker; see docker/README.md.
#
#   docker build -f docker/offboard.Dockerfile -t dreamer-offboard .
#
# Base: plain Python 3.11. The Linux torch wheels from PyPI bring their own CUDA runtime
# libraries (nvidia-* wheels); the host needs only the NVIDIA driver and the NVIDIA Container
# Toolkit (`docker run --gpus all`). The two ENV lines below tell the toolkit what to mount.
FROM python:3.11-slim-bookworm
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility

# Versions pinned to Debian 12 (bookworm), the base image's release (hadolint DL3008).
RUN apt-get update && apt-get install -y --no-install-recommends \
        cmake=3.25.1-1 g++=4:12.2.0-3 make=4.3-4.1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/dreamer
# ros-* wheels: see onboard.Dockerfile. For a specific CUDA build of torch add e.g.
#   --build-arg PIP_EXTRA_INDEX_URL="https://download.pytorch.org/whl/cu128 <ros index>"
ARG PIP_EXTRA_INDEX_URL
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1

COPY requirements.txt pyproject.toml README.md ./
COPY dreamer_core dreamer_core
COPY scripts scripts
COPY robot_configs robot_configs
COPY launch launch
COPY ros2_ws/src ros2_ws/src

RUN python -m venv .venv \
    && grep -E '^(ros-|colcon-)' requirements.txt > /tmp/ros.txt \
    && .venv/bin/pip install -c requirements.txt -r /tmp/ros.txt '.[learner,bag]' \
    && .venv/bin/python scripts/fix_ros_wheel_paths.py

RUN bash -c 'source scripts/env.sh && cd ros2_ws && colcon build --event-handlers console_cohesion- summary+ \
      --cmake-args -DPython3_EXECUTABLE=$VIRTUAL_ENV/bin/python -DBUILD_TESTING=OFF \
    && source /opt/dreamer/scripts/env.sh && python -c "import torch, dreamer_ros.learner_node; print(\"torch\", torch.__version__)"'

COPY docker/entrypoint.sh /entrypoint.sh
ENTRYPOINT ["/entrypoint.sh"]
# dreamer-stack stops its nodes cleanly on SIGINT only (it has no SIGTERM handler).
STOPSIGNAL SIGINT
# Mount the robot config, the signing key folder (policy_signing.key, mode 0600, owned by the
# container user) and a persistent data folder (replay, checkpoints, bundles, TensorBoard).
CMD ["python", "-m", "dreamer_ros.stack_launcher", "offboard", "--robot", "/config/robot.yaml", \
     "--keys-dir", "/keys", "--run-dir", "/data/offboard", "--preset", "s"]
