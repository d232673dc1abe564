from glob import glob

from setuptools import find_packages, setup

package_name = "dreamer_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
        ("share/" + package_name + "/robot_configs", glob("robot_configs/*.yaml")),
    ],
    install_requires=["setuptools"],
    extras_require={"test": ["pytest"]},  # colcon test runs test/ with pytest
    zip_safe=True,
    maintainer="Dreamer ROS maintainers",
    maintainer_email="maintainers@dreamer-ros.dev",
    description="ROS 2 nodes of the Dreamer legged-robot stack.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sim_robot = dreamer_ros.entry_points:sim_robot",
            "control_node = dreamer_ros.entry_points:control_node",
            "replay_node = dreamer_ros.entry_points:replay_node",
            "learner_node = dreamer_ros.entry_points:learner_node",
            "dreamer-stack = dreamer_ros.stack_launcher:main",
        ],
    },
)
