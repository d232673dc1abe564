"""dreamer_core: the ROS-free heart of the Dreamer legged-robot stack.

Subpackages are named by role:

- ``transforms``/``distributions``/``networks``/``models``: DreamerV3 networks and the exported tick (torch)
- ``algorithms``: objectives, returns, the agent, model trust and promotion (torch)
- ``runners``: the learner loop, the online loop and the train-ratio limiter (torch)
- ``spec``/``config``/``io``: the robot-policy contract, learner presets, atomic writes
- ``storage``: the durable replay store (numpy only)
- ``deploy``: ONNX export (torch) and the onboard policy runtime (onnxruntime only)
- ``robots``/``envs``: robot configs and the simulated Unitree A1 (MuJoCo)
- ``control``: the control node's per-tick controller and safety (numpy only)

Importing ``dreamer_core`` itself pulls in neither torch nor ROS, so the onboard
image can use the runtime without the learner's dependencies.
"""

__version__ = "0.1.0"
