"""The SROS2 keystore `dreamer-stack keystore create` writes: layout, certificates, signatures, permissions.

The PyPI Fast DDS in this venv has no DDS Security plugins (see
test_security_enforced.py), so these tests check the generated files the way the
plugins would read them: S/MIME signatures with OpenSSL (the library Fast DDS
verifies them with), certificates against the identity CA, and the XML against
the structure of the OMG DDS Security schemas.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from ament_index_python.packages import get_package_share_directory
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from dreamer_ros import keystore
from dreamer_ros.keystore import ENCLAVE_FILES, KeystoreError, allows, granted_topics, smime_content
from dreamer_ros.ros_graph import LIFECYCLE_SERVICES, OPERATOR_SERVICES
from dreamer_ros.stack_launcher import node_command
from dreamer_ros.stacks import STACKS, stack_nodes

pytestmark = pytest.mark.ros

NS = "/r1"
SHARE = Path(get_package_share_directory("dreamer_ros"))
OPENSSL = shutil.which("openssl")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("keystore") / "keystore"
    assert keystore.main(["create", str(root), "--robot", "a1_sim", "--namespace", NS]) == 0
    return root


def enclave_dirs(root: Path) -> dict[str, Path]:
    return {"/" + str(p.parent.relative_to(root / "enclaves")): p.parent for p in (root / "enclaves").rglob("key.pem")}


def permissions(root: Path, enclave: str) -> tuple[list[str], list[str]]:
    return granted_topics(smime_content((root / "enclaves" / enclave.strip("/") / "permissions.p7s").read_bytes()))


def test_every_node_of_every_stack_has_an_enclave_and_keys_stay_private(store):
    nodes = {name for stack in STACKS.values() for name in stack}
    assert set(enclave_dirs(store)) == {f"{NS}/{n}" for n in nodes | {"operator", "monitor"}}
    for folder in enclave_dirs(store).values():
        assert sorted(p.name for p in folder.iterdir()) == sorted([*ENCLAVE_FILES, "permissions.xml"])
        assert stat.S_IMODE((folder / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((store / "private").stat().st_mode) == 0o700
    for key in (store / "private").iterdir():
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_certificates_name_the_enclave_and_chain_to_the_identity_ca(store):
    identity_ca = x509.load_pem_x509_certificate((store / "public/identity_ca.cert.pem").read_bytes())
    permissions_ca = x509.load_pem_x509_certificate((store / "public/permissions_ca.cert.pem").read_bytes())
    assert identity_ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert identity_ca.subject != permissions_ca.subject
    for enclave, folder in enclave_dirs(store).items():
        cert = x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes())
        assert cert.subject.rfc4514_string() == f"CN={enclave}"
        cert.verify_directly_issued_by(identity_ca)
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert isinstance(cert.public_key().curve, ec.SECP256R1)  # prime256v1, as DDS Security's PKI-DH needs
        assert (folder / "identity_ca.cert.pem").read_bytes() == (store / "public/identity_ca.cert.pem").read_bytes()
        assert (folder / "permissions_ca.cert.pem").read_bytes() == (
            store / "public/permissions_ca.cert.pem").read_bytes()


def openssl_verify(signed: Path, ca: Path) -> subprocess.CompletedProcess:
    return subprocess.run([OPENSSL, "smime", "-verify", "-text", "-in", str(signed), "-CAfile", str(ca)],
                          capture_output=True)


@pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command (the library Fast DDS verifies S/MIME with)")
def test_signed_documents_verify_against_the_permissions_ca_only(store, tmp_path):
    permissions_ca, identity_ca = store / "public/permissions_ca.cert.pem", store / "public/identity_ca.cert.pem"
    governance = openssl_verify(store / "enclaves/governance.p7s", permissions_ca)
    assert governance.returncode == 0, governance.stderr
    assert governance.stdout.replace(b"\r\n", b"\n") == (store / "enclaves/governance.xml").read_bytes()
    for folder in enclave_dirs(store).values():
        signed = openssl_verify(folder / "permissions.p7s", permissions_ca)
        assert signed.returncode == 0, signed.stderr
        assert signed.stdout.replace(b"\r\n", b"\n") == (folder / "permissions.xml").read_bytes()
        assert openssl_verify(folder / "governance.p7s", permissions_ca).returncode == 0
        assert openssl_verify(folder / "permissions.p7s", identity_ca).returncode != 0
    # A permission added by editing the signed file breaks the signature.
    original = enclave_dirs(store)[f"{NS}/replay_node"] / "permissions.p7s"
    forged = tmp_path / "forged.p7s"
    forged.write_bytes(original.read_bytes().replace(b"<topic>rt/diagnostics</topic>",
                                                     b"<topic>rt/r1/transitions</topic>"))
    assert forged.read_bytes() != original.read_bytes()
    assert openssl_verify(forged, permissions_ca).returncode != 0


def children(element: ET.Element) -> list[str]:
    return [child.tag for child in element]


def check_domains(domains: ET.Element) -> None:
    assert domains.tag == "domains" and len(domains) >= 1
    for item in domains:
        assert item.tag in ("id", "id_range")
        if item.tag == "id_range":
            assert children(item) in (["min", "max"], ["min"], ["max"])
            assert all(int(v.text) >= 0 for v in item)


def test_governance_follows_the_dds_security_schema_and_protects_everything(store):
    # Element order and values of omg_shared_ca_governance.xsd (DDS Security 1.1, 9.4.1.2).
    dds = ET.parse(store / "enclaves/governance.xml").getroot()
    assert dds.tag == "dds" and children(dds) == ["domain_access_rules"]
    (rule,) = dds.find("domain_access_rules")
    assert children(rule) == ["domains", "allow_unauthenticated_participants", "enable_join_access_control",
                              "discovery_protection_kind", "liveliness_protection_kind", "rtps_protection_kind",
                              "topic_access_rules"]
    check_domains(rule.find("domains"))
    assert rule.findtext("allow_unauthenticated_participants") == "false"
    assert rule.findtext("enable_join_access_control") == "true"
    assert {rule.findtext(k) for k in ("discovery_protection_kind", "liveliness_protection_kind",
                                       "rtps_protection_kind")} == {"ENCRYPT"}
    (topic_rule,) = rule.find("topic_access_rules")
    assert children(topic_rule) == ["topic_expression", "enable_discovery_protection", "enable_liveliness_protection",
                                    "enable_read_access_control", "enable_write_access_control",
                                    "metadata_protection_kind", "data_protection_kind"]
    assert topic_rule.findtext("topic_expression") == "*"
    assert topic_rule.findtext("enable_read_access_control") == "true"
    assert topic_rule.findtext("enable_write_access_control") == "true"


def test_permissions_follow_the_dds_security_schema(store):
    # Element order of omg_shared_ca_permissions.xsd (DDS Security 1.1, 9.4.1.3).
    for enclave, folder in enclave_dirs(store).items():
        dds = ET.parse(folder / "permissions.xml").getroot()
        assert dds.tag == "dds" and children(dds) == ["permissions"]
        (grant,) = dds.find("permissions")
        assert grant.tag == "grant" and grant.get("name") == enclave
        assert children(grant) == ["subject_name", "validity", "allow_rule", "default"]
        assert grant.findtext("subject_name") == f"CN={enclave}"
        assert children(grant.find("validity")) == ["not_before", "not_after"]
        assert grant.findtext("validity/not_before") < grant.findtext("validity/not_after")
        rule = grant.find("allow_rule")
        assert children(rule) == ["domains", "publish", "subscribe"]
        check_domains(rule.find("domains"))
        for kind in ("publish", "subscribe"):
            assert children(rule.find(kind)) == ["topics"]
            assert set(children(rule.find(kind).find("topics"))) == {"topic"}
        assert grant.findtext("default") == "DENY"


def who_may_publish(store: Path, dds_topic: str) -> set[str]:
    return {enclave for enclave in enclave_dirs(store) if allows(permissions(store, enclave)[0], dds_topic)}


def who_may_subscribe(store: Path, dds_topic: str) -> set[str]:
    return {enclave for enclave in enclave_dirs(store) if allows(permissions(store, enclave)[1], dds_topic)}


def test_only_the_operator_may_call_services_that_change_what_the_robot_does(store):
    for service in (*OPERATOR_SERVICES, *LIFECYCLE_SERVICES, "set_parameters"):
        assert who_may_publish(store, f"rq{NS}/control_node/{service}Request") == {f"{NS}/operator"}, service
        assert who_may_subscribe(store, f"rq{NS}/control_node/{service}Request") == {f"{NS}/control_node"}
    assert who_may_publish(store, f"rq{NS}/sim_robot/pauseRequest") == {f"{NS}/operator"}
    # The control node stands the simulated robot up again after each episode.
    assert who_may_publish(store, f"rq{NS}/sim_robot/resetRequest") == {f"{NS}/operator", f"{NS}/control_node"}


def test_data_topics_have_exactly_their_writers(store):
    assert who_may_publish(store, f"rt{NS}/transitions") == {f"{NS}/control_node"}
    assert who_may_subscribe(store, f"rt{NS}/transitions") == {f"{NS}/replay_node", f"{NS}/operator"}
    assert who_may_publish(store, f"rt{NS}/policy_bundles") == {f"{NS}/learner_node"}
    assert who_may_publish(store, f"rt{NS}/forward_position_controller/commands") == {f"{NS}/control_node"}
    assert who_may_publish(store, f"rt{NS}/joint_states") == {f"{NS}/sim_robot"}
    # Stopping stays easy: every enclave may latch the e-stop (releasing it is the operator's service).
    assert who_may_publish(store, f"rt{NS}/estop") == set(enclave_dirs(store))
    assert who_may_subscribe(store, f"rt{NS}/estop") == {f"{NS}/control_node"}


def test_create_again_keeps_keys_and_rotate_renews_them(store, tmp_path):
    root = tmp_path / "ks"
    shutil.copytree(store, root)
    before = {e: (f / "key.pem").read_bytes() for e, f in enclave_dirs(root).items()}
    ca = (root / "private/identity_ca.key.pem").read_bytes()
    assert keystore.main(["create", str(root), "--robot", "a1_sim", "--namespace", NS]) == 0
    assert {e: (f / "key.pem").read_bytes() for e, f in enclave_dirs(root).items()} == before
    assert keystore.main(["create", str(root), "--robot", "a1_sim", "--namespace", NS, "--rotate"]) == 0
    after = {e: (f / "key.pem").read_bytes() for e, f in enclave_dirs(root).items()}
    assert all(after[e] != before[e] for e in before)
    assert (root / "private/identity_ca.key.pem").read_bytes() == ca


def test_check_refuses_a_keystore_the_stack_outgrew(store, tmp_path, capsys):
    assert keystore.main(["check", str(store), "--robot", "a1_sim", "--namespace", NS]) == 0
    config = yaml.safe_load((SHARE / "robot_configs/a1_sim.yaml").read_text())
    config["topics"]["transitions"] = "transitions_v2"
    changed = tmp_path / "a1_changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    assert keystore.main(["check", str(store), "--robot", str(changed), "--namespace", NS]) == 2
    err = capsys.readouterr().err
    assert f"publish rt{NS}/transitions_v2" in err and "keystore create" in err


def test_check_names_a_missing_file_and_a_robot_holds_only_its_enclaves(store, tmp_path, capsys):
    robot = tmp_path / "robot_keystore"
    shutil.copytree(store / "enclaves/r1/control_node", robot / "enclaves/r1/control_node")
    args = ["check", str(robot), "--robot", "a1_sim", "--namespace", NS, "--stack", "onboard"]
    assert keystore.main([*args, "--enclave", f"{NS}/control_node"]) == 0
    (robot / "enclaves/r1/control_node/permissions.p7s").unlink()
    assert keystore.main([*args, "--enclave", f"{NS}/control_node"]) == 2
    assert "missing permissions.p7s" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "refusal"), [("cert.pem", "cert.pem is not signed by identity_ca"),
                                               ("permissions.p7s", "permissions.p7s is not signed by permissions_ca")])
def test_files_from_another_keystore_are_refused(store, tmp_path, name, refusal):
    other = tmp_path / "other"
    assert keystore.main(["create", str(other), "--robot", "a1_sim", "--namespace", NS]) == 0
    mixed = tmp_path / "mixed"
    shutil.copytree(store, mixed)
    keystore.check_enclave(mixed, f"{NS}/operator")
    shutil.copy(other / "enclaves/r1/operator" / name, mixed / "enclaves/r1/operator" / name)
    with pytest.raises(KeystoreError, match=refusal):
        keystore.check_enclave(mixed, f"{NS}/operator")


def test_use_keystore_gives_each_node_its_enclave_and_enforces(store, tmp_path):
    specs = stack_nodes("sim", robot="a1_sim", config_dir=SHARE / "config", run_dir=tmp_path, namespace=NS)
    env, warnings = keystore.use_keystore(store, specs, robot="a1_sim", stack="sim", namespace=NS, monitor=True)
    assert warnings == []
    assert env == {"ROS_SECURITY_ENABLE": "true", "ROS_SECURITY_STRATEGY": "Enforce",
                   "ROS_SECURITY_KEYSTORE": str(store.resolve())}
    for spec in specs:
        cmd = node_command(spec, tmp_path)
        assert cmd[cmd.index("--enclave") + 1] == f"{NS}/{spec.name}"
        assert cmd.index("--enclave") > cmd.index("--ros-args")

