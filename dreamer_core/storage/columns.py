"""Names of the obs and action columns of a tabular export, from the observation spec.

``obs.<term>.<element>`` per element of each observation term (``obs.joint_pos.FR_hip_joint``,
``obs.base_ang_vel.x``) and ``action.<joint>``; without a spec, numbered (``obs.0``, ``action.0``).
"""

from __future__ import annotations

from dreamer_core.spec import PolicySpec

# Terms with one element per actuated joint, in action order.
_PER_JOINT = {"joint_pos", "joint_vel", "prev_action"}
# Terms whose elements are named axes.
_AXES = {
    "base_ang_vel": ("x", "y", "z"),
    "base_lin_vel": ("x", "y", "z"),
    "projected_gravity": ("x", "y", "z"),
    "roll_pitch": ("roll", "pitch"),
}


def _elements(term: str, width: int, joints: tuple[str, ...]) -> tuple[str, ...]:
    """Element names of one term; numbered (``0``, ``1``, ...) where the spec does not name them
    (e.g. ``foot_contacts``, whose foot order lives in the robot config)."""
    if term in _PER_JOINT and width == len(joints):
        return joints
    axes = _AXES.get(term, ())
    if len(axes) == width:
        return axes
    return tuple(str(i) for i in range(width))


def column_names(spec: PolicySpec | None, obs_dim: int, act_dim: int) -> tuple[list[str], list[str]]:
    """(obs column names, action column names); numbered when ``spec`` is None.

    Raises ValueError when ``spec`` does not describe ``obs_dim`` x ``act_dim`` data.
    """
    if spec is None:
        return [f"obs.{i}" for i in range(obs_dim)], [f"action.{i}" for i in range(act_dim)]
    if (spec.obs_dim, spec.act_dim) != (obs_dim, act_dim):
        raise ValueError(
            f"the observation spec of robot {spec.robot_id!r} describes obs_dim={spec.obs_dim}, "
            f"act_dim={spec.act_dim}, but the data has obs_dim={obs_dim}, act_dim={act_dim}"
        )
    obs = [f"obs.{term}.{e}" for term, width in spec.observation for e in _elements(term, width, spec.action_joints)]
    return obs, [f"action.{joint}" for joint in spec.action_joints]
