# Onboard image: control_node only. No torch: dreamer_core without extras (numpy, onnxruntime,
# cryptography, ...) + the ROS 2 Kilted PyPI wheels + a colcon build of ros2_ws.
# NOT BUILT WITH DOCKER: the project's machines have no Docker engine. The pip and colcon
# steps mirror the Makefile and were run outside Docker; see docker/README.md.
#
#   docker build -f docker/onboard.Dockerfile -t dreamer-onboard .
FROM python:3.11-slim-bookworm

# cmake + a C/C++ compiler build the dreamer_msgs interface package.
# Versions pinned to Debian 12 (bookworm), the base image's release (hadolint DL3008).
RUN apt-get update && apt-get install -y --no-install-recommends \
        cmake=3.25.1-1 g++=4:12.2.0-3 make=4.3-4.1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/dreamer
# The ros-* wheels come from the index the project's machines use; pass it if it is not your default:
#   --build-arg PIP_EXTRA_INDEX_URL=https://...
ARG PIP_EXTRA_INDEX_URL
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1

COPY requirements.txt pyproject.toml README.md ./
COPY dreamer_core dreamer_core
COPY scripts scripts
COPY robot_configs robot_configs
COPY launch launch
COPY ros2_ws/src ros2_ws/src

# Same venv layout as `make venv`, so scripts/env.sh works unchanged.
RUN python -m venv .venv \
    && grep -E '^(ros-|colcon-)' requirements.txt > /tmp/ros.txt \
    && .venv/bin/pip install -c requirements.txt -r /tmp/ros.txt . \
    && .venv/bin/python scripts/fix_ros_wheel_paths.py

RUN bash -c 'source scripts/env.sh && cd ros2_ws && colcon build --event-handlers console_cohesion- summary+ \
      --cmake-args -DPython3_EXECUTABLE=$VIRTUAL_ENV/bin/python -DBUILD_TESTING=OFF \
    && source /opt/dreamer/scripts/env.sh && python -c "import dreamer_ros.control_node"'

COPY docker/entrypoint.sh /entrypoint.sh
ENTRYPOINT ["/entrypoint.sh"]
# dreamer-stack stops its nodes cleanly on SIGINT only (it has no SIGTERM handler).
STOPSIGNAL SIGINT
# Mount the robot config, the public key folder and an output folder, e.g.
#   -v /etc/dreamer:/keys:ro -v $PWD/my_robot.yaml:/config/robot.yaml:ro -v /var/dreamer:/data
CMD ["python", "-m", "dreamer_ros.stack_launcher", "onboard", "--robot", "/config/robot.yaml", \
     "--keys-dir", "/keys", "--run-dir", "/data/onboard"]
