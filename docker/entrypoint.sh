#!/bin/bash
# Same environment as `source scripts/env.sh` in a checkout: venv, colcon overlay,
# AMENT_PREFIX_PATH / CMAKE_PREFIX_PATH / RMW_IMPLEMENTATION. Then run the command.
source /opt/dreamer/scripts/env.sh || exit 1
exec "$@"
