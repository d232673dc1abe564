"""Every parameter each dreamer_ros node declares, by executable (docs/nodes.md lists them): a params
file is checked against these before any node starts (dreamer_ros.stacks.check_params_file)."""

from __future__ import annotations

from dreamer_ros.params import ROBOT_CONFIG, Param

NODES = ("sim_robot", "control_node", "replay_node", "learner_node")

def declared_parameters(executable: str) -> dict[str, Param]:
    """The parameters `executable` declares; `robot_config` included (every node has it)."""
    # Imported here: the node modules load onnxruntime and MuJoCo, only needed once a file is checked.
    from dreamer_ros import control_node, learner_node, replay_node, sim_robot

    tables = {
        "sim_robot": sim_robot.PARAMETERS,
        "control_node": control_node.PARAMETERS,
        "replay_node": {**replay_node.STORE_PARAMETERS, **replay_node.ADMISSION_PARAMETERS,
                        **replay_node.robot_id_parameters("")},
        "learner_node": learner_node.PARAMETERS,
    }
    return {"robot_config": ROBOT_CONFIG, **tables[executable]}
