"""Self-signed certificates for HTTPS on a LAN (``qmtgate cert``), and fingerprints of existing ones.

Clients pin the printed SHA-256 fingerprint (:func:`qmtgate.security.pinning.pinned_ssl_context`) instead of
trusting a CA. The key is ECDSA P-256 (fast handshakes, supported everywhere); the certificate names
``localhost``, the loopback addresses and whatever hosts/IPs are given, so clients that do check names
(browsers, curl with ``--cacert``) work too.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qmtgate.security.pinning import der_fingerprint, format_fingerprint


@dataclass(frozen=True)
class CertificateInfo:
    cert_file: Path
    key_file: Path
    fingerprint: str  # AB:CD:... SHA-256 of the DER certificate
    names: tuple[str, ...]
    not_after: dt.datetime


def default_names() -> list[str]:
    """localhost, loopback and this machine's host name (the usual LAN name)."""
    names = ["localhost", "127.0.0.1", "::1"]
    host = socket.gethostname()
    if host and host not in names:
        names.append(host)
    return names


def make_self_signed(
    cert_file: Path,
    key_file: Path,
    names: Sequence[str] = (),
    *,
    days: int = 825,
    common_name: str = "qmtgate",
) -> CertificateInfo:
    """Write a new key and self-signed certificate (PEM); never overwrites existing files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    for path in (cert_file, key_file):
        if path.exists():
            raise FileExistsError(f"{path} exists; move it away or choose another --out-dir")
    all_names = list(dict.fromkeys([*default_names(), *names]))
    alt: list[x509.GeneralName] = []
    for name in all_names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    not_after = now + dt.timedelta(days=days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(key_file, key_pem)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    der = cert.public_bytes(serialization.Encoding.DER)
    return CertificateInfo(
        cert_file, key_file, format_fingerprint(der_fingerprint(der)), tuple(all_names), not_after
    )


def certificate_fingerprint(cert_file: Path) -> str:
    """``AB:CD:...`` SHA-256 fingerprint of the first certificate of a PEM file."""
    import ssl

    pem = cert_file.read_text(encoding="ascii")
    start = pem.index("-----BEGIN CERTIFICATE-----")
    end = pem.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
    return format_fingerprint(der_fingerprint(ssl.PEM_cert_to_DER_cert(pem[start:end])))


def _write_private(path: Path, data: bytes) -> None:
    # Owner-only on POSIX; on Windows the file inherits the folder's ACL (keep it in the service's folder).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
