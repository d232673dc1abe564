# Source this file to use the stack from a shell: `source scripts/env.sh`.
# It activates .venv (pinned Python packages incl. the ROS 2 Kilted wheels) and
# the colcon workspace overlay (dreamer_msgs, dreamer_ros).
_dreamer_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -x "$_dreamer_root/.venv/bin/python" ]; then
  echo "scripts/env.sh: $_dreamer_root/.venv is missing; run 'make setup' first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
source "$_dreamer_root/.venv/bin/activate"
# The wheels install ROS packages into the venv prefix; ament and CMake must look there.
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
if [ -f "$_dreamer_root/ros2_ws/install/setup.bash" ]; then
  # colcon's setup scripts read unset variables; relax nounset while sourcing.
  _dreamer_u=$(set +o | grep nounset); set +u
  # shellcheck disable=SC1091
  source "$_dreamer_root/ros2_ws/install/setup.bash"
  eval "$_dreamer_u"
fi
export AMENT_PREFIX_PATH="$AMENT_PREFIX_PATH:$VIRTUAL_ENV"
export DREAMER_ROOT="$_dreamer_root"
unset _dreamer_root _dreamer_u
