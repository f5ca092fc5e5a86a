"""The twin's host classes against their sources (tests/twin/host_classes.py, tests/twin/README.md "Host classes")."""

from __future__ import annotations

import datetime as dt
import re
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.twin import host_classes
from tests.twin.host_classes import AUTOMATIC_PROXY, THREE_STEP, class_for_build, host_class, proxy_order
from tests.twin.scripts import tls_probe

README = Path(__file__).resolve().parents[2] / "twin" / "README.md"


def _readme_rows() -> dict[int, list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Host classes", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if cells and cells[0].isdigit():
            rows[int(cells[0])] = cells
    return rows


def test_the_readme_documents_every_class_with_the_tables_values():
    rows = _readme_rows()
    assert sorted(rows) == sorted(host_classes.HOST_CLASSES)
    for build, known in host_classes.HOST_CLASSES.items():
        cells = rows[build]
        assert cells[2] == known.powershell, build
        assert cells[3] == (str(known.dotnet_release) if known.dotnet_release else "none"), build
        assert cells[4] == ", ".join(known.tls_protocols), build
        assert cells[5] == known.proxy_order, build
        assert cells[6] == ("yes" if known.scheduled_tasks_module else "no"), build


def test_the_scheduledtasks_module_ships_from_server_2012_and_no_override_adds_it():
    # Microsoft Learn, ScheduledTasks module (Windows Server 2012 and later); WMF 5.1 does not add it to 2008 R2.
    shipped = [class_for_build(build).scheduled_tasks_module for build in (7601, 9600, 14393, 17763, 20348)]
    assert shipped == [False, True, True, True, True]
    with pytest.raises(ValueError, match="os.overrides: unknown keys"):
        host_class({"build": 7601, "overrides": {"scheduled_tasks_module": True}})


@pytest.mark.parametrize(("build", "powershell", "release"), [
    (7601, "2.0", None), (9600, "4.0", 378675), (14393, "5.1", 394802), (17763, "5.1", 461814), (20348, "5.1", 528449)])
def test_each_release_ships_its_documented_powershell_and_dotnet(build, powershell, release):
    # Microsoft Learn: "Windows PowerShell System Requirements"; "How to: Determine which .NET Framework versions are
    # installed" (the Release DWORD per OS).
    known = class_for_build(build)
    assert (known.powershell, known.dotnet_release) == (powershell, release)


def test_cryptoapi_proxy_order_changes_with_windows_10():
    # KB 2623724: three steps up to 2008 R2 (2012 R2 inferred), WINHTTP_ACCESS_TYPE_AUTOMATIC_PROXY from Windows 10.
    assert [proxy_order(b) for b in (7601, 9600, 14393, 17763, 20348)] == [THREE_STEP] * 2 + [AUTOMATIC_PROXY] * 3


def test_an_unknown_build_is_a_2022_host_and_overrides_apply():
    assert class_for_build(12345).name == "2022"
    upgraded = host_class({"build": 9600, "overrides": {"powershell": "5.1", "dotnet_release": 528040}})
    assert (upgraded.name, upgraded.powershell, upgraded.dotnet_release) == ("2012r2", "5.1", 528040)
    with pytest.raises(ValueError, match="os.overrides: unknown keys"):
        host_class({"build": 9600, "overrides": {"psversion": "5.1"}})
    with pytest.raises(ValueError, match="tls_protocols"):
        host_class({"build": 9600, "overrides": {"tls_protocols": ["Ssl3"]}})


@pytest.fixture(scope="module")
def server_files(tmp_path_factory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "peer.lab.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(hours=1))
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("peer")
    (folder / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    return folder / "c.pem", folder / "k.pem"


def _handshake(server_files, server_class, client_class) -> str:
    """The protocol a client of ``client_class`` negotiates with a server of ``server_class`` (or the error)."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(*map(str, server_files))
    server_class.limit(server)
    client = client_class.limit(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    listener = socket.create_server(("127.0.0.1", 0))
    outcome: dict[str, str] = {}

    def serve() -> None:
        conn, _address = listener.accept()
        try:
            with server.wrap_socket(conn, server_side=True) as tls:
                outcome["server"] = tls.version() or ""
        except (OSError, ssl.SSLError) as exc:
            outcome["server"] = str(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname()) as sock, client.wrap_socket(sock) as tls:
            return tls.version() or ""
    except (OSError, ssl.SSLError) as exc:
        return f"TLS: {exc}"
    finally:
        thread.join(5)
        listener.close()


def test_a_2008r2_peer_speaks_tls10_and_later_hosts_still_enable_it(server_files):
    # Protocols in TLS/SSL (Schannel SSP): 2008 R2 enables TLS 1.0 only by default; 2012 R2-2022 still enable TLS 1.0.
    peer = class_for_build(7601)
    for build in (9600, 14393, 17763, 20348):
        assert _handshake(server_files, peer, class_for_build(build)) == "TLSv1", build


def test_tls13_needs_both_ends_on_2022(server_files):
    assert _handshake(server_files, class_for_build(20348), class_for_build(20348)) == "TLSv1.3"
    assert _handshake(server_files, class_for_build(17763), class_for_build(20348)) == "TLSv1.2"


def test_a_host_that_disabled_tls10_shares_no_protocol_with_a_2008r2_peer(server_files):
    hardened = host_class({"build": 20348, "overrides": {"tls_protocols": ["Tls12", "Tls13"]}})
    error = _handshake(server_files, class_for_build(7601), hardened)
    assert tls_probe._no_common_protocol(error), error
    raw = {"tcp_connect_ms": 1, "handshake_ms": 2, "protocol": None, "chain_status": None, "trust_status": [],
           "error": error}
    assert tls_probe._translate(raw, "127.0.0.1", 5061)["error"] == tls_probe.NO_COMMON_PROTOCOL


def test_the_probe_offers_tls10_to_12_by_name_as_windows_powershell_51_does():
    assert re.fullmatch(r"Tls, Tls11, Tls12", ", ".join(tls_probe.OFFERED))
