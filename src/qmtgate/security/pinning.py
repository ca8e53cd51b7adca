"""Certificate fingerprint pinning for clients of a gateway with a self-signed certificate.

``qmtgate cert`` prints the SHA-256 fingerprint of the certificate it made. A client that knows it does
not need a CA: :func:`pinned_ssl_context` returns an :class:`ssl.SSLContext` that completes the TLS
handshake only when the server's certificate has that fingerprint. The check runs inside the handshake
(the context's socket and object classes are subclasses whose ``do_handshake`` verifies the peer
certificate), so no request bytes, and no API key, are sent to a server with another certificate. It works
wherever an ``SSLContext`` is accepted and the library lets the context wrap the connection: httpx
(``httpx.Client(verify=ctx)``), websockets (``connect(url, ssl=ctx)``), asyncio streams, ``urllib``.

Host names are not checked: the pin identifies the server more precisely than a name would.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import ssl
from collections.abc import Iterable

_HEX = re.compile(r"^[0-9a-f]{64}$")


class FingerprintMismatch(ssl.SSLCertVerificationError):
    """The server's certificate is not the pinned one."""


def normalize_fingerprint(fingerprint: str) -> str:
    """Lower-case hex without separators; accepts ``AB:CD:...``, ``abcd...`` and ``sha256:`` prefixes."""
    text = fingerprint.strip().lower()
    if text.startswith("sha256:") or text.startswith("sha256/"):
        text = text[7:]
    text = text.replace(":", "").replace(" ", "")
    if not _HEX.match(text):
        raise ValueError(f"not a SHA-256 fingerprint (64 hex digits): {fingerprint!r}")
    return text


def format_fingerprint(hex_digest: str) -> str:
    """``AB:CD:...`` (the form openssl and browsers show)."""
    text = normalize_fingerprint(hex_digest)
    return ":".join(text[i : i + 2] for i in range(0, len(text), 2)).upper()


def der_fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, lower-case hex."""
    return hashlib.sha256(der).hexdigest()


def verify_peer_fingerprint(der: bytes | None, pins: Iterable[str]) -> None:
    """Raise :class:`FingerprintMismatch` unless ``der`` hashes to one of ``pins`` (normalized hex)."""
    if der is None:
        raise FingerprintMismatch("the server sent no certificate")
    actual = der_fingerprint(der)
    if not any(hmac.compare_digest(actual, pin) for pin in pins):
        raise FingerprintMismatch(
            f"server certificate fingerprint {format_fingerprint(actual)} is not the pinned one"
        )


def pinned_ssl_context(fingerprint: str | Iterable[str]) -> ssl.SSLContext:
    """A client context that accepts exactly the certificates with these SHA-256 fingerprints.

    Pass several fingerprints to roll a certificate over without downtime. TLS 1.2 is the minimum.
    """
    raw = [fingerprint] if isinstance(fingerprint, str) else list(fingerprint)
    pins = tuple(normalize_fingerprint(f) for f in raw)
    if not pins:
        raise ValueError("at least one fingerprint is required")

    class _PinnedSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            super().do_handshake(block)
            try:
                verify_peer_fingerprint(self.getpeercert(binary_form=True), pins)
            except FingerprintMismatch:
                self.close()
                raise

    class _PinnedObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            super().do_handshake()
            verify_peer_fingerprint(self.getpeercert(binary_form=True), pins)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The CA chain and host name are replaced by the pin, checked in do_handshake above.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.sslsocket_class = _PinnedSocket
    context.sslobject_class = _PinnedObject
    return context
