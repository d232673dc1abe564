"""Robot side: the control node (ONNX policy, safety, transitions).

    ros2 launch dreamer_ros onboard.launch.py robot:=a1_sim run_dir:=~/dreamer_runs/today
"""

from dreamer_ros.launch_description import stack_launch_description


def generate_launch_description():
    return stack_launch_description("onboard")
