"""SROS2 (DDS Security) keystore for a stack, generated from its ROS graph.

    dreamer-stack keystore create KEYSTORE --robot a1_sim [--namespace robot1] [--stack sim]
    dreamer-stack keystore check KEYSTORE --robot a1_sim [--namespace robot1] [--stack sim]

The layout is the one `ros2 security` uses, so its tools work on the result:

    public/identity_ca.cert.pem      signs every participant's certificate
    public/permissions_ca.cert.pem   signs governance and permissions
    private/*_ca.key.pem             the two CA keys: keep them on the admin machine, never on a robot
    enclaves/governance.xml|.p7s
    enclaves/<enclave>/cert.pem, key.pem, identity_ca.cert.pem, permissions_ca.cert.pem,
                       governance.p7s, permissions.xml, permissions.p7s

One enclave per node (`/<namespace>/<node>`), one for the operator and one for
dreamer-stack's monitor. Permissions come from `dreamer_ros.ros_graph`; see
docs/security.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import email
import sys
import xml.etree.ElementTree as ET
from fnmatch import fnmatchcase
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from dreamer_core.io import atomic_write
from dreamer_ros.params import load_installed_robot_config
from dreamer_ros.ros_graph import MONITOR, Access, enclave_path, stack_graph
from dreamer_ros.stacks import STACKS, NodeSpec, stack_nodes

IDENTITY_CA = "identity_ca"
PERMISSIONS_CA = "permissions_ca"
ENCLAVE_FILES = ("cert.pem", "key.pem", "identity_ca.cert.pem", "permissions_ca.cert.pem",
                 "governance.p7s", "permissions.p7s")
# DDS domain ids ROS uses (0..232): a keystore does not break when ROS_DOMAIN_ID changes.
DOMAIN_RANGE = (0, 232)
CA_DAYS = 3650
EXPIRY_WARNING = dt.timedelta(days=30)
PERMISSIONS_SCHEMA = "http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_permissions.xsd"
GOVERNANCE_SCHEMA = "http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_governance.xsd"


class KeystoreError(RuntimeError):
    """A keystore that is missing, incomplete or does not cover the stack; the message says what to do."""


def security_env(keystore: str | Path) -> dict[str, str]:
    """Environment that makes every ROS 2 participant authenticate, encrypt and obey its permissions.

    Enforce: a participant whose enclave is missing or invalid refuses to start
    instead of falling back to plain DDS.
    """
    return {"ROS_SECURITY_ENABLE": "true", "ROS_SECURITY_STRATEGY": "Enforce",
            "ROS_SECURITY_KEYSTORE": str(Path(keystore).resolve())}


# -- certificates ---------------------------------------------------------------------

def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _valid_from() -> dt.datetime:
    # A day early: a robot whose clock lags the admin machine's must not see "not yet valid".
    return _now() - dt.timedelta(days=1)


def _certificate(subject: str, key, issuer: x509.Certificate | None, issuer_key, days: int) -> x509.Certificate:
    """An X.509 certificate for `key` named CN=`subject`; self-signed (a CA) when `issuer` is None."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    start = _valid_from()
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=0 if issuer is None else None),
                              critical=True))
    return builder.sign(issuer_key, hashes.SHA256())


def _new_key() -> ec.EllipticCurvePrivateKey:
    # DDS Security's builtin PKI-DH authentication uses prime256v1 (= SECP256R1) or RSA-2048.
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    atomic_write(path, pem, mode=0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    atomic_write(path, cert.public_bytes(serialization.Encoding.PEM))


def _load_ca(root: Path, name: str) -> tuple[x509.Certificate, object]:
    """The CA `name` of the keystore at `root`, created (10 years) if it has none yet."""
    cert_path, key_path = root / "public" / f"{name}.cert.pem", root / "private" / f"{name}.key.pem"
    if cert_path.is_file() != key_path.is_file():
        raise KeystoreError(f"{root}: {name} has only one of {cert_path.name} and {key_path.name}; restore the "
                            "missing file from your backup, or start a new keystore and redistribute it")
    if not cert_path.is_file():
        key = _new_key()
        cert = _certificate(f"dreamer_ros {name}", key, None, key, CA_DAYS)
        _write_key(key_path, key)
        _write_cert(cert_path, cert)
        return cert, key
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    return cert, key


def sign_smime(content: bytes, cert: x509.Certificate, key) -> bytes:
    """`content` as a clear-signed S/MIME message (what DDS Security reads from *.p7s)."""
    options = [pkcs7.PKCS7Options.Text, pkcs7.PKCS7Options.DetachedSignature]
    return (pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(cert, key, hashes.SHA256())
            .sign(serialization.Encoding.SMIME, options))


def smime_parts(signed: bytes) -> tuple[bytes, list[x509.Certificate]]:
    """(signed document, certificates of its signature) of an S/MIME file.

    No signature check here (`cryptography` has no PKCS#7 verification; the DDS
    plugin does it with OpenSSL): this reads what a document says and who claims to sign it.
    """
    message = email.message_from_bytes(signed)
    if not message.is_multipart() or len(message.get_payload()) != 2:
        raise KeystoreError("not a multipart/signed S/MIME document")
    text, signature = message.get_payload()
    certificates = pkcs7.load_der_pkcs7_certificates(signature.get_payload(decode=True))
    return text.get_payload(decode=True).replace(b"\r\n", b"\n"), certificates


def smime_content(signed: bytes) -> bytes:
    """The signed document inside an S/MIME file."""
    return smime_parts(signed)[0]


# -- governance and permissions ---------------------------------------------------------

def _domains(parent: ET.Element) -> None:
    domains = ET.SubElement(parent, "domains")
    rng = ET.SubElement(domains, "id_range")
    ET.SubElement(rng, "min").text = str(DOMAIN_RANGE[0])
    ET.SubElement(rng, "max").text = str(DOMAIN_RANGE[1])


def _document(root: ET.Element, schema: str) -> bytes:
    root.set("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
    root.set("xsi:noNamespaceSchemaLocation", schema)
    ET.indent(root)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"


def governance_xml() -> bytes:
    """Domain rules: only authenticated participants join; discovery, liveliness and data are encrypted;
    every topic is read- and write-access-controlled (a participant needs a permission for each)."""
    dds = ET.Element("dds")
    rule = ET.SubElement(ET.SubElement(dds, "domain_access_rules"), "domain_rule")
    _domains(rule)
    for tag, text in (("allow_unauthenticated_participants", "false"), ("enable_join_access_control", "true"),
                      ("discovery_protection_kind", "ENCRYPT"), ("liveliness_protection_kind", "ENCRYPT"),
                      ("rtps_protection_kind", "ENCRYPT")):
        ET.SubElement(rule, tag).text = text
    topic_rule = ET.SubElement(ET.SubElement(rule, "topic_access_rules"), "topic_rule")
    for tag, text in (("topic_expression", "*"), ("enable_discovery_protection", "true"),
                      ("enable_liveliness_protection", "true"), ("enable_read_access_control", "true"),
                      ("enable_write_access_control", "true"), ("metadata_protection_kind", "ENCRYPT"),
                      ("data_protection_kind", "ENCRYPT")):
        ET.SubElement(topic_rule, tag).text = text
    return _document(dds, GOVERNANCE_SCHEMA)


def permissions_xml(enclave: str, access: Access, not_before: dt.datetime, not_after: dt.datetime) -> bytes:
    """The grant of `enclave`: allow exactly the DDS topics of `access`, deny everything else."""
    dds = ET.Element("dds")
    grant = ET.SubElement(ET.SubElement(dds, "permissions"), "grant", name=enclave)
    ET.SubElement(grant, "subject_name").text = f"CN={enclave}"
    validity = ET.SubElement(grant, "validity")
    ET.SubElement(validity, "not_before").text = not_before.strftime("%Y-%m-%dT%H:%M:%S")
    ET.SubElement(validity, "not_after").text = not_after.strftime("%Y-%m-%dT%H:%M:%S")
    rule = ET.SubElement(grant, "allow_rule")
    _domains(rule)
    for kind, names in zip(("publish", "subscribe"), access.dds_topics(), strict=True):
        topics = ET.SubElement(ET.SubElement(rule, kind), "topics")
        for name in sorted(names):
            ET.SubElement(topics, "topic").text = name
    ET.SubElement(grant, "default").text = "DENY"
    return _document(dds, PERMISSIONS_SCHEMA)


def granted_topics(permissions: bytes) -> tuple[list[str], list[str]]:
    """(publish, subscribe) topic expressions that a permissions document allows."""
    rule = ET.fromstring(permissions).find("permissions/grant/allow_rule")
    if rule is None:
        return [], []
    return ([t.text for t in rule.findall("publish/topics/topic")],
            [t.text for t in rule.findall("subscribe/topics/topic")])


def allows(patterns: list[str], dds_topic: str) -> bool:
    """Whether a DDS topic name matches one of the permission's topic expressions (fnmatch, as DDS does)."""
    return any(fnmatchcase(dds_topic, pattern) for pattern in patterns)


# -- the keystore -----------------------------------------------------------------------

def _enclave_dir(root: Path, enclave: str) -> Path:
    return root / "enclaves" / enclave.strip("/")


def create_keystore(root: str | Path, graph: dict[str, Access], *, days: int = 365,
                    rotate: bool = False) -> dict[str, str]:
    """Create or update the keystore at `root` for `graph` (enclave -> access); returns what was done per enclave.

    CAs are created once. Governance and every enclave's permissions are always
    regenerated and signed (they follow the stack definition). A participant's
    key and certificate are made when missing, or renewed for all with `rotate`.
    """
    root = Path(root)
    for sub, mode in (("public", 0o755), ("private", 0o700), ("enclaves", 0o755)):
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub).chmod(mode)
    identity_ca, identity_key = _load_ca(root, IDENTITY_CA)
    permissions_ca, permissions_key = _load_ca(root, PERMISSIONS_CA)
    governance = governance_xml()
    governance_signed = sign_smime(governance, permissions_ca, permissions_key)
    atomic_write(root / "enclaves" / "governance.xml", governance)
    atomic_write(root / "enclaves" / "governance.p7s", governance_signed)
    done = {}
    start = _valid_from()
    for enclave, access in sorted(graph.items()):
        folder = _enclave_dir(root, enclave)
        folder.mkdir(parents=True, exist_ok=True)
        fresh = rotate or not ((folder / "cert.pem").is_file() and (folder / "key.pem").is_file())
        if fresh:
            key = _new_key()
            _write_key(folder / "key.pem", key)
            _write_cert(folder / "cert.pem", _certificate(enclave, key, identity_ca, identity_key, days))
        # Copies, not links: an enclave folder is what gets copied to the machine that runs the node.
        _write_cert(folder / "identity_ca.cert.pem", identity_ca)
        _write_cert(folder / "permissions_ca.cert.pem", permissions_ca)
        atomic_write(folder / "governance.p7s", governance_signed)
        permissions = permissions_xml(enclave, access, start, start + dt.timedelta(days=days))
        atomic_write(folder / "permissions.xml", permissions)
        atomic_write(folder / "permissions.p7s", sign_smime(permissions, permissions_ca, permissions_key))
        done[enclave] = "new key and certificate" if fresh else "permissions updated"
    return done


def check_enclave(root: str | Path, enclave: str, access: Access | None = None) -> list[str]:
    """Check that enclave `enclave` of the keystore at `root` can be used now; returns warnings.

    Raises KeystoreError naming the missing file, the untrusted or expired
    certificate, or (given `access`) the topic its permissions do not allow.
    """
    folder = _enclave_dir(Path(root), enclave)
    what = f"enclave {enclave} in keystore {root}"
    missing = [name for name in ENCLAVE_FILES if not (folder / name).is_file()]
    if missing:
        raise KeystoreError(f"{what}: missing {', '.join(missing)} in {folder}; run `dreamer-stack keystore "
                            "create` on the admin machine and copy the enclave folder here")
    cert = x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((folder / "identity_ca.cert.pem").read_bytes())
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise KeystoreError(f"{what}: cert.pem is not signed by identity_ca.cert.pem ({exc!r})") from exc
    permissions_ca = x509.load_pem_x509_certificate((folder / "permissions_ca.cert.pem").read_bytes())
    for name in ("governance.p7s", "permissions.p7s"):
        if permissions_ca not in smime_parts((folder / name).read_bytes())[1]:
            raise KeystoreError(f"{what}: {name} is not signed by permissions_ca.cert.pem (files from two "
                                "keystores?); copy the whole enclave folder from one keystore")
    warnings = []
    now = _now()
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise KeystoreError(f"{what}: certificate valid {cert.not_valid_before_utc} to {cert.not_valid_after_utc},"
                            " not now; renew it with `dreamer-stack keystore create --rotate`")
    if cert.not_valid_after_utc - now < EXPIRY_WARNING:
        warnings.append(f"{what}: certificate expires {cert.not_valid_after_utc:%Y-%m-%d}; renew it with "
                        "`dreamer-stack keystore create --rotate`")
    if access is not None:
        publish, subscribe = granted_topics(smime_content((folder / "permissions.p7s").read_bytes()))
        write, read = access.dds_topics()
        lacking = sorted({f"publish {t}" for t in write if not allows(publish, t)}
                         | {f"subscribe {t}" for t in read if not allows(subscribe, t)})
        if lacking:
            raise KeystoreError(f"{what}: its permissions do not allow {', '.join(lacking)}; the stack changed "
                                "since the keystore was made: run `dreamer-stack keystore create` again")
    return warnings


def graph_for(robot: str, namespace: str, stacks: list[str]) -> dict[str, Access]:
    """The enclaves and their access for `robot`'s `stacks` in `namespace` (what the keystore covers)."""
    config = load_installed_robot_config(robot)
    graph: dict[str, Access] = {}
    for stack in stacks:
        # Paths do not matter here: only which nodes run and with which topic overrides.
        specs = stack_nodes(stack, robot=robot, config_dir="", run_dir="", namespace=namespace)
        for enclave, access in stack_graph(specs, config, namespace).items():
            graph.setdefault(enclave, Access()).merge(access)
    return graph


def use_keystore(keystore: str | Path, specs: list[NodeSpec], *, robot: str, stack: str, namespace: str = "",
                 monitor: bool = False) -> tuple[dict[str, str], list[str]]:
    """Turn SROS2 on for the nodes `specs` of `stack`: (environment for them, warnings).

    Sets each spec's enclave after checking that the keystore holds it, that it is
    valid now and that its permissions allow everything the node uses (and the
    same for dreamer-stack's monitor with `monitor`). Raises KeystoreError otherwise.
    """
    graph = graph_for(robot, namespace, [stack])
    for spec in specs:
        spec.enclave = enclave_path(spec.namespace, spec.name)
    enclaves = [spec.enclave for spec in specs] + ([monitor_enclave(namespace)] if monitor else [])
    warnings = [w for enclave in enclaves for w in check_enclave(keystore, enclave, graph[enclave])]
    return security_env(keystore), warnings


def monitor_enclave(namespace: str) -> str:
    return enclave_path(namespace, MONITOR)


def enclave_ros_args(enclave: str) -> list[str]:
    """rclpy.init arguments that make a process's participant use `enclave`."""
    return ["--ros-args", "--enclave", enclave]


# -- command line ---------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dreamer-stack keystore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("create", "check"),
                        help="create: make or update the keystore; check: verify it covers the stack")
    parser.add_argument("keystore", type=Path, help="keystore folder")
    parser.add_argument("--robot", default="a1_sim", help="robot config name or YAML path (default a1_sim)")
    parser.add_argument("--namespace", default="", help="namespace of the robot's nodes")
    parser.add_argument("--stack", action="append", choices=sorted(STACKS), dest="stacks",
                        help="stacks whose nodes get enclaves (repeatable; default: sim, which has every node; "
                             "a real robot: --stack onboard --stack offboard)")
    parser.add_argument("--days", type=int, default=365, help="validity of new certificates and permissions")
    parser.add_argument("--rotate", action="store_true", help="create: new key and certificate for every enclave")
    parser.add_argument("--enclave", action="append", dest="enclaves",
                        help="check: only this enclave (repeatable; default all), e.g. those a robot holds")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    graph = graph_for(args.robot, args.namespace, args.stacks or ["sim"])
    try:
        if args.action == "create":
            done = create_keystore(args.keystore, graph, days=args.days, rotate=args.rotate)
            for enclave, what in done.items():
                print(f"  {enclave:<40} {what}")
            print(f"keystore {args.keystore.resolve()}: {len(done)} enclaves. The CA keys in private/ stay on this "
                  "machine; copy each enclaves/<enclave> folder only to the machine that runs it (docs/security.md).")
            return 0
        unknown = sorted(set(args.enclaves or []) - set(graph))
        if unknown:
            raise KeystoreError(f"no such enclave in this stack: {unknown}; the stack has {sorted(graph)}")
        for enclave in args.enclaves or sorted(graph):
            for warning in check_enclave(args.keystore, enclave, graph[enclave]):
                print(f"WARNING: {warning}", file=sys.stderr)
            print(f"  {enclave:<40} ok")
        return 0
    except KeystoreError as exc:
        print(f"dreamer-stack keystore: {exc}", file=sys.stderr)
        return 2
