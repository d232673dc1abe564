"""Launch files (launch_ros API only) and the dreamer-stack launcher start the same nodes, and
`ros2 launch` (launch.LaunchService) runs and stops the sim stack cleanly.

The launch tests need `launch` and `launch_ros`, which have no PyPI wheels: `make setup` installs
them into .venv when ../shared/ros2-launch exists (with composition_interfaces built in ros2_ws),
and any ROS 2 Kilted install has them. Without them those tests skip; everything else runs everywhere.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from ament_index_python.packages import get_package_prefix, get_package_share_directory
from stack_harness import ctrl_c, launched

from dreamer_core.deploy import generate_keypair
from dreamer_core.robots.config import load_robot_config
from dreamer_ros.stacks import STACKS, stack_nodes

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]
SHARE = Path(get_package_share_directory("dreamer_ros"))
LAUNCH_API = {"launch", "launch.actions", "launch.substitutions", "launch_ros.actions", "ament_index_python.packages"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_launch_file_uses_only_the_launch_api(stack):
    path = REPO / "launch" / f"{stack}.launch.py"
    assert imported_modules(path) == {"dreamer_ros.launch_description"}
    assert f'stack_launch_description("{stack}")' in path.read_text()
    assert (SHARE / "launch" / path.name).is_file(), "launch files are installed to share/dreamer_ros/launch"


def test_colcon_test_runs_the_packages_own_tests(tmp_path):
    """`colcon test` in ros2_ws runs dreamer_ros/test (it ran 0 tests before the package declared pytest)."""
    ws = REPO / "ros2_ws"
    subprocess.run(["colcon", "--log-base", str(tmp_path / "log"), "test", "--packages-select", "dreamer_ros",
                    "--test-result-base", str(tmp_path / "results")], cwd=ws, check=True, capture_output=True,
                   timeout=600)
    summary = subprocess.run(["colcon", "test-result", "--test-result-base", str(tmp_path / "results")], cwd=ws,
                             capture_output=True, text=True, timeout=60).stdout
    found = re.search(r"Summary: (\d+) tests, 0 errors, 0 failures", summary)
    assert found and int(found[1]) >= 20, summary


def test_launch_description_module_imports():
    path = REPO / "ros2_ws/src/dreamer_ros/dreamer_ros/launch_description.py"
    extra = imported_modules(path) - LAUNCH_API - {"os", "sys", "dreamer_ros.stacks", "dreamer_ros.keystore"}
    assert not extra, f"launch_description.py imports outside the launch API: {extra}"


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_stack_nodes_resolve_to_installed_executables_and_params(stack, tmp_path):
    specs = stack_nodes(stack, robot="a1_sim", config_dir=SHARE / "config", run_dir=tmp_path, namespace="/a1")
    assert [s.executable for s in specs] == list(STACKS[stack])
    for spec in specs:
        assert os.access(Path(get_package_prefix("dreamer_ros")) / "lib/dreamer_ros" / spec.executable, os.X_OK)
        param_file, overrides = spec.parameters
        assert Path(param_file).is_file() and overrides["robot_config"] == "a1_sim"
        assert spec.namespace == "/a1"
    os.environ.pop("DREAMER_ROBOT_CONFIGS", None)
    assert load_robot_config(SHARE / "robot_configs" / "a1_sim.yaml").robot_id == "a1_sim"


def require_launch_ros():
    """The real `launch` and `launch_ros` packages (the repository's own launch/ folder is not one)."""
    pytest.importorskip("launch_ros", reason="launch_ros has no PyPI wheel: make setup with ../shared/ros2-launch, "
                                             "or a ROS 2 install")
    import launch

    assert launch.__file__ is not None, f"`import launch` found a namespace package: {list(launch.__path__)}"
    return launch


def test_launch_ros_builds_the_same_nodes(tmp_path):
    launch = require_launch_ros()
    from dreamer_ros.launch_description import stack_launch_description

    description = stack_launch_description("offboard")
    context = launch.LaunchContext()
    generate_keypair(tmp_path / "keys")
    context.launch_configurations.update({"run_dir": str(tmp_path), "keys_dir": str(tmp_path / "keys")})
    nodes = []
    for entity in description.entities:
        for sub in entity.visit(context) or []:
            nodes.append(sub)
    assert [n.node_executable for n in nodes] == ["replay_node", "learner_node"]


LAUNCH_RUNNER = textwrap.dedent("""
    import sys
    from launch import LaunchService
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    service = LaunchService()
    service.include_launch_description(IncludeLaunchDescription(
        PythonLaunchDescriptionSource(sys.argv[1]),
        launch_arguments={"run_dir": sys.argv[2], "keys_dir": sys.argv[3], "params_file": sys.argv[4]}.items()))
    sys.exit(service.run())
""")


@pytest.mark.slow
def test_ros2_launch_runs_the_sim_stack_and_stops_it_cleanly_on_ctrl_c(tmp_path, ros_env):
    """What `ros2 launch launch/sim.launch.py` then Ctrl-C does: SIGINT reaches launch and every node at once."""
    require_launch_ros()
    from dreamer_core.storage import ReplayStore

    run_dir, log = tmp_path / "run", tmp_path / "launch.log"
    env = {**ros_env, "ROS_LOG_DIR": str(tmp_path / "ros_log")}
    keys, _ = generate_keypair(tmp_path / "keys")
    params = tmp_path / "my_params.yaml"
    params.write_text("control_node:\n  ros__parameters:\n    initial_policy_amplitude: 0.25\n")
    command = [sys.executable, "-c", LAUNCH_RUNNER, str(REPO / "launch" / "sim.launch.py"), str(run_dir),
               str(keys.parent), str(params)]
    with launched(command, env, log) as proc:
        deadline = time.monotonic() + 300
        # Every node up (the learner last: it imports torch) and transitions flowing into replay.
        while not (re.search(r"\[learner_node-\d+\].*waiting for", log.read_text(errors="replace"))
                   and stored_steps(run_dir) >= 100):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(1.0)
        assert parameter_of("control_node", "initial_policy_amplitude") == 0.25  # params_file:= reached the node
        text = ctrl_c(proc, log, timeout=60)
    assert "Traceback" not in text and "escalating to 'SIGTERM'" not in text, text[-3000:]
    published = re.search(r"published (\d+) transitions in session (\S+)", text)
    assert published and "replay store closed" in text and "checkpoint saved" in text, text[-3000:]
    with ReplayStore(run_dir / "replay", readonly=True) as store:
        seqs = np.sort(np.concatenate([c["seq"] for _, c in store.iter_steps(session_id=published.group(2))]))
    # SIGINT reached the replay node at the same time as the control node: it drained what the
    # control node still sent (its closing transition included) before closing, so nothing is lost.
    assert len(seqs) == int(published.group(1)) >= 100 and np.array_equal(seqs, np.arange(len(seqs)))
    assert "the replay node stopped before this node" not in text, text[-3000:]


def parameter_of(node: str, name: str):
    """`ros2 param get /<node> <name>`."""
    from stack_harness import RemoteParameters

    from dreamer_ros.stack_launcher import DiagnosticsWatcher

    watcher = DiagnosticsWatcher(node_name="param_reader")  # spins the client's node
    try:
        return RemoteParameters(watcher.node, f"/{node}").get(name)[name]
    finally:
        watcher.close()


@pytest.mark.parametrize(("content", "why"), [
    (None, "not found"),
    ("learner_node:\n  ros__parameters:\n    export_every_updates: 0\n",
     "under `learner_node`: parameter export_every_updates: 0 is outside"),
])
def test_launch_refuses_an_unusable_params_file_before_any_node_starts(tmp_path, capsys, content, why):
    launch = require_launch_ros()
    from dreamer_ros.launch_description import stack_launch_description

    generate_keypair(tmp_path / "keys")
    params = tmp_path / "mine.yaml"
    if content is not None:
        params.write_text(content)
    context = launch.LaunchContext()
    context.launch_configurations.update({"run_dir": str(tmp_path), "keys_dir": str(tmp_path / "keys"),
                                          "params_file": str(params)})
    with pytest.raises(SystemExit) as stopped:  # `ros2 launch` exits with it, as dreamer-stack does
        for entity in stack_launch_description("offboard").entities:
            entity.visit(context)
    assert stopped.value.code == 2
    said = capsys.readouterr().err
    assert f"cannot start, nothing was started: params file {params}" in said and why in said, said


def stored_steps(run_dir: Path) -> int:
    from dreamer_core.storage import ReplayStore

    if not (run_dir / "replay" / "store.json").is_file():
        return 0
    with ReplayStore(run_dir / "replay", readonly=True) as store:
        return int(store.stats()["steps"])


@pytest.mark.parametrize("stack, node, ready_file, ready", [
    ("offboard", "learner_node", "logs/learner_node.log", "waiting for"),
    # The runner recorded the control node's diagnostics: its constructor has returned (a Ctrl-C before
    # that ends the node quietly, without a session to close).
    ("onboard", "control_node", "launcher/diagnostics.jsonl", '"control_node"'),
])
def test_runner_stops_the_stack_on_ctrl_c_without_a_traceback(stack, node, ready_file, ready, tmp_path, ros_env):
    keys = generate_keypair(tmp_path / "keys")[0].parent
    env = {**ros_env, "XDG_STATE_HOME": str(tmp_path / "state")}  # the onboard control node's default state_dir
    command = [sys.executable, "-m", "dreamer_ros.stack_launcher", stack, "--run-dir", str(tmp_path),
               "--keys-dir", str(keys)]
    # Started as a shell starts a background job (SIGINT ignored, inherited across exec): the runner
    # must still stop on Ctrl-C, not leave its nodes stopped and report them as exited early.
    proc = subprocess.Popen(
        ["bash", "-c", 'trap "" INT; exec "$@"', "background-job", *command], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    log = tmp_path / ready_file
    try:
        deadline = time.monotonic() + 240
        while not (log.is_file() and ready in log.read_text(errors="replace")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
            time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the runner and every node get it at once
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, out
    assert "done (interrupted)" in out and f"started {node}" in out
    logs = {path.stem: path.read_text(errors="replace") for path in (tmp_path / "logs").glob("*.log")}
    assert not [name for name, text in logs.items() if "Traceback" in text or "Traceback" in out], (out, logs)
    if stack == "offboard":
        assert (tmp_path / "replay" / "store.json").is_file() and "replay store closed" in logs["replay_node"]
        assert "checkpoint saved" in logs["learner_node"]
        # The session report comes last, and says what it could not show.
        assert out.rstrip().splitlines()[-1] == f"[dreamer-stack] session report: {tmp_path / 'report.html'}"
        # Before it, the report's verdict line (here: nothing ran at all) and why no learned version did.
        assert out.rstrip().splitlines()[-3].startswith("[dreamer-stack] verdict: too few complete episodes")
        assert out.rstrip().splitlines()[-2].startswith(
            "[dreamer-stack] why: the actor has not trained yet: the learner made 0 updates")
        assert "No data: the replay store holds no session yet" in (tmp_path / "report.html").read_text()
    else:
        assert "published 0 transitions" in logs["control_node"]  # no robot: no sensor data, no episode
        # Only outputs that exist are listed: the onboard stack keeps no replay data and no learner output.
        assert "replay data:" not in out and "policy bundles:" not in out and "session report" not in out
    assert (tmp_path / "launcher" / "diagnostics.jsonl").stat().st_size > 0  # what the monitor saw


def test_runner_rejects_an_unknown_stack():
    result = subprocess.run([sys.executable, "-m", "dreamer_ros.stack_launcher", "everything"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_control_node_with_a_missing_key_exits_with_the_reason(tmp_path, ros_env):
    exe = Path(get_package_prefix("dreamer_ros")) / "lib/dreamer_ros/control_node"
    result = subprocess.run(
        [str(exe), "--ros-args", "-p", "robot_config:=a1_sim", "-p", f"public_key:={tmp_path / 'missing.pub'}"],
        env=ros_env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "configure failed" in result.stderr + result.stdout and "missing.pub" in result.stderr + result.stdout


def run_launcher(*args: str, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dreamer_ros.stack_launcher", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=cwd)


def test_runner_refuses_a_bad_robot_config_before_starting_anything(tmp_path):
    config = yaml.safe_load((SHARE / "robot_configs" / "a1_sim.yaml").read_text())
    config["joints"][2]["kp"] = "stiff"
    config["safety"]["max_tilt"] = 0.5  # misspelt max_tilt_rad
    bad = tmp_path / "bad_robot.yaml"
    bad.write_text(yaml.safe_dump(config))
    generate_keypair(tmp_path / "keys")
    result = run_launcher("sim", "--robot", str(bad), "--run-dir", str(tmp_path / "run"),
                          "--keys-dir", str(tmp_path / "keys"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"robot config {bad} is invalid" in result.stderr and "nothing was started" in result.stderr
    assert "joints.2.kp" in result.stderr and "safety.max_tilt: unknown key" in result.stderr
    assert "started" not in result.stdout and not (tmp_path / "run").exists()


@pytest.mark.parametrize("content, problem", [
    (None, "not found"),
    ("control_node: [unclosed\n", "is not readable YAML"),
    ("control_node:\n  explore: false\n", "must hold `ros__parameters:`"),
    ("control_node:\n  ros__parameters:\n    public_key: /tmp/other.pub\n", "sets `public_key`"),
    # What the issue found starting all four nodes, then exiting rc 1 after 16 s, or ignored (rc 0):
    ("control_node:\n  ros__parameters:\n    initial_policy_amplitude: 2.0\n", "is outside [0.0, 1.0]"),
    ("control_node:\n  ros__parameters:\n    seed: zero\n", "seed: 'zero' is not an integer"),
    ("control_node:\n  ros__parameters:\n    initial_polcy: stand\n", "did you mean `initial_policy`?"),
    ("/**:\n  ros__parameters:\n    use_sim_time: true\n", "use_sim_time is not supported"),
])
def test_runner_refuses_an_unusable_params_file_before_starting_anything(content, problem, tmp_path):
    generate_keypair(tmp_path / "keys")
    params = tmp_path / "my_params.yaml"
    if content is not None:
        params.write_text(content)
    result = run_launcher("sim", "--params-file", str(params), "--run-dir", str(tmp_path / "run"),
                          "--keys-dir", str(tmp_path / "keys"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "nothing was started: --params-file: params file " + str(params) in result.stderr
    assert problem in result.stderr
    assert "started" not in result.stdout and not (tmp_path / "run").exists()


@pytest.mark.parametrize("executable, setting, message", [
    ("control_node", "initial_policy:=walk",
     "parameter initial_policy: 'walk' is not allowed; use one of stand, random"),
    ("sim_robot", "real_time_factor:=500.0", "parameter real_time_factor: "),
    ("replay_node", "chunk_length:=true", "parameter chunk_length: "),
])
def test_a_node_given_a_value_it_does_not_allow_exits_naming_it(executable, setting, message, tmp_path, ros_env):
    exe = Path(get_package_prefix("dreamer_ros")) / "lib/dreamer_ros" / executable
    result = subprocess.run([str(exe), "--ros-args", "-p", setting, "-p", f"replay_dir:={tmp_path / 'replay'}"],
                            capture_output=True, text=True, timeout=120, env=ros_env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"[{executable}] cannot start: {message}" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("stack, missing", [("sim", "policy_signing.key"), ("onboard", "policy_signing.pub")])
def test_runner_never_creates_keys_and_names_the_missing_one(stack, missing, tmp_path):
    result = run_launcher(stack, "--run-dir", str(tmp_path / "run"), "--keys-dir", str(tmp_path / "typo"))
    assert result.returncode == 2
    assert f"{tmp_path / 'typo' / missing} not found" in result.stderr
    assert "dreamer-policy keygen --out" in result.stderr
    assert not (tmp_path / "typo").exists() and not (tmp_path / "run").exists()


def test_a_key_pair_that_does_not_match_is_refused_by_runner_and_launch_before_anything_starts(tmp_path, capsys):
    """The learner signing with one pair and the robot checking with another refused every bundle, found
    only at the first promotion."""
    keys, _ = generate_keypair(tmp_path / "keys")
    other_pub = generate_keypair(tmp_path / "other")[1]
    (keys.parent / "policy_signing.pub").write_bytes(other_pub.read_bytes())
    result = run_launcher("sim", "--run-dir", str(tmp_path / "run"), "--keys-dir", str(keys.parent))
    assert result.returncode == 2 and "nothing was started" in result.stderr, result.stderr
    assert "policy_signing.key (key " in result.stderr and "are not one pair" in result.stderr
    assert not (tmp_path / "run").exists()
    launch = require_launch_ros()
    from dreamer_ros.launch_description import stack_launch_description

    context = launch.LaunchContext()
    context.launch_configurations.update({"run_dir": str(tmp_path / "run"), "keys_dir": str(keys.parent)})
    with pytest.raises(SystemExit) as stopped:
        for entity in stack_launch_description("sim").entities:
            entity.visit(context)
    assert stopped.value.code == 2 and "are not one pair" in capsys.readouterr().err


def test_runner_says_why_a_node_exited_early(tmp_path, ros_env):
    run = tmp_path / "run"
    run.mkdir()
    (run / "replay").write_text("not a store")  # the replay node cannot open it
    keys = generate_keypair(tmp_path / "keys")[0].parent
    result = subprocess.run(["dreamer-stack", "offboard", "--run-dir", str(run), "--keys-dir", str(keys),
                             "--minutes", "3"], env=ros_env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0, result.stdout
    assert "node(s) exited early: ['replay_node']" in result.stderr
    assert "replay_node exited with status 1:" in result.stderr
    assert f"[replay_node] cannot start: cannot open replay store {run / 'replay'}" in result.stderr


@pytest.mark.parametrize("executable", sorted({n for nodes in STACKS.values() for n in nodes}))
def test_node_help_prints_usage_and_writes_nothing(executable, tmp_path):
    exe = Path(get_package_prefix("dreamer_ros")) / "lib/dreamer_ros" / executable
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "ROS_LOG_DIR": str(tmp_path / "ros_log")}
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {executable} [--help] [--ros-args")
    assert f"docs/nodes.md#{executable}" in result.stdout
    assert list(tmp_path.iterdir()) == []  # no runs/, no state, no ROS log


def test_a_node_with_a_bad_robot_config_exits_with_one_line(tmp_path, ros_env):
    bad = tmp_path / "bad.yaml"
    bad.write_text("robot_id: x\n")
    exe = Path(get_package_prefix("dreamer_ros")) / "lib/dreamer_ros/replay_node"
    result = subprocess.run([str(exe), "--ros-args", "-p", f"robot_config:={bad}", "-p",
                             f"replay_dir:={tmp_path / 'replay'}"], capture_output=True, text=True, timeout=60,
                            env=ros_env)
    assert result.returncode == 1
    assert "[replay_node] cannot start: bad.yaml: joints: Field required" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "replay").exists()


def test_progress_line_shows_real_return_version_last_decision_and_robot_verdict():
    from dreamer_ros.stack_launcher import progress_line

    assert progress_line({}) == ("policy v- | return - | last decision: - | episodes - swaps - watchdog - | "
                                 "replay - steps | learner - updates")
    latest = {
        "control_node": {"policy_version": "3", "canary": "v4 2/5 episodes", "episode_return_mean": "812.4567",
                         "episode_return_version": "3", "episodes": "41.0", "swaps": "2", "watchdog": "ok"},
        "replay_node": {"steps": "996.000"},
        "learner_node": {"last_decision": "v4 held back", "last_decision_reason": "x" * 200, "updates": "120"},
    }
    assert progress_line(latest) == (
        "policy v3 (canary v4 2/5 episodes) | return 812.46 (v3, last 10) | last decision: v4 held back: "
        + "x" * 90 + "… | episodes 41 swaps 2 watchdog ok | replay 996 steps | learner 120 updates")
    latest["control_node"]["last_verdict"] = "v3 rolled back to v2: return 629.65 < 3529.02"
    assert progress_line(latest) == (
        "policy v3 (canary v4 2/5 episodes) | return 812.46 (v3, last 10) | last decision: v4 held back: "
        + "x" * 90 + "… | robot: v3 rolled back to v2: return 629.65 < 3529.02 | episodes 41 swaps 2 watchdog ok "
        "| replay 996 steps | learner 120 updates")


def test_progress_line_shows_offline_training_once_it_has_begun():
    from dreamer_ros.stack_launcher import progress_line

    learner = {"updates": "120", "offline": "collecting: last new step 0 s ago (offline after 30 s)"}
    assert progress_line({"learner_node": learner}).endswith("| learner 120 updates")
    learner["offline"] = "training: 40/500 updates, 1.2/60 min"
    assert progress_line({"learner_node": learner}).endswith(
        "| learner 120 updates, offline training: 40/500 updates, 1.2/60 min")


@pytest.mark.parametrize("args, problem", [
    ("sim --sessions 0 --session-minutes 1", "--sessions must be at least 1, got 0"),
    ("sim --sessions 2", "--sessions needs --session-minutes M with M > 0, got none"),
    ("sim --sessions 2 --session-minutes 0", "--sessions needs --session-minutes M with M > 0, got 0"),
    ("sim --sessions 2 --session-minutes 1 --between-minutes -5", "--between-minutes must be >= 0, got -5"),
    ("sim --sessions 2 --session-minutes 1 --minutes 3", "--minutes does not apply to a sessions run"),
    ("offboard --sessions 2 --session-minutes 1", "--sessions needs the sim stack, not offboard"),
    ("sim --between-minutes 2", "--session-minutes and --between-minutes need --sessions N"),
    ("sim --minutes -1", "--minutes must be >= 0 (0 = until Ctrl-C), got -1"),
    ("sim --minutes nan", "--minutes must be a finite number of minutes, got nan"),
    ("sim --sessions 2 --session-minutes inf", "--session-minutes must be a finite number of minutes, got inf"),
])
def test_runner_refuses_run_lengths_it_cannot_run(args, problem, capsys):
    from dreamer_ros.stack_launcher import parse_args

    with pytest.raises(SystemExit) as exited:
        parse_args(args.split())
    assert exited.value.code == 2 and f"dreamer-stack: error: {problem}" in capsys.readouterr().err
    assert parse_args(["sim", "--sessions", "1", "--session-minutes", "0.5"]).between_minutes == 0.0


def test_learner_node_with_a_missing_key_names_it_and_the_command(tmp_path, ros_env):
    exe = Path(get_package_prefix("dreamer_ros")) / "lib/dreamer_ros/learner_node"
    missing = tmp_path / "typo" / "policy_signing.key"
    result = subprocess.run([str(exe), "--ros-args", "-p", f"private_key:={missing}", "-p",
                             f"run_dir:={tmp_path / 'learner'}", "-p", f"replay_dir:={tmp_path / 'replay'}"],
                            capture_output=True, text=True, timeout=180, env=ros_env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"[learner_node] cannot start: signing key {missing} not found" in result.stderr
    assert "dreamer-policy keygen" in result.stderr and "Traceback" not in result.stderr
    assert not missing.parent.exists()  # no key was made
