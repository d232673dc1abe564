"""dreamer_core: the ROS-free heart of the Dreamer legged-robot stack.

Subpackages are named by role:

- ``transforms``/``distributions``/``networks``/``models``: DreamerV3 building blocks (torch)
- ``algorithms``: losses and the agent's training and policy steps (torch)
- ``storage``: the durable replay store (numpy only)
- ``deploy``: ONNX export (torch) and the onboard policy runtime (onnxruntime only)
- ``robots``/``envs``: robot configs and the simulated Unitree A1 (MuJoCo)

Importing ``dreamer_core`` itself pulls in neither torch nor ROS, so the onboard
image can use the runtime without the learner's dependencies.
"""

__version__ = "0.1.0"
