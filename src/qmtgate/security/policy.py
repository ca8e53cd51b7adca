"""Start-up policy: may the gateway serve with these settings on this address?

The gateway runs on the PC that holds a broker login, so exposure must be deliberate: a non-loopback bind
needs API keys (auth on and at least one active key) unless the operator passes ``--insecure-no-auth``,
which only permits the start and is announced loudly. TLS needs both files. Problems are returned as
``(fatal, message)`` pairs so the CLI decides how to print them and tests can check them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from qmtgate.config import Settings
from qmtgate.security.keys import KeyFileError, KeyStore


@dataclass(frozen=True)
class PolicyFinding:
    fatal: bool
    message: str


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def active_key_count(settings: Settings) -> int:
    if not settings.auth.active:
        return 0
    return KeyStore(settings.auth.keys, settings.auth.keys_file).active_count()


def check_serve_policy(settings: Settings, *, insecure_no_auth: bool = False) -> list[PolicyFinding]:
    """What stands against serving ``settings``; any ``fatal`` finding means: do not start."""
    findings: list[PolicyFinding] = []
    tls = settings.tls
    if (tls.cert_file is None) != (tls.key_file is None):
        findings.append(PolicyFinding(True, "TLS needs both --tls-cert and --tls-key"))
    for label, path in (("certificate", tls.cert_file), ("key", tls.key_file)):
        if path is not None and not path.is_file():
            findings.append(PolicyFinding(True, f"TLS {label} file not found: {path}"))
    try:
        keys = active_key_count(settings)
    except KeyFileError as e:
        return [*findings, PolicyFinding(True, str(e))]
    if settings.auth.active and keys == 0:
        findings.append(
            PolicyFinding(
                False,
                "auth is on but no active API key exists: every request but liveness will be refused; "
                "create one with `qmtgate keys create`",
            )
        )
    if is_loopback(settings.host):
        return findings
    if keys == 0:
        if not insecure_no_auth:
            findings.append(
                PolicyFinding(
                    True,
                    f"refusing to bind {settings.host} (reachable from the network) without an API key. "
                    "Create one with `qmtgate keys create --scope read` and serve with --keys-file, or bind "
                    "127.0.0.1, or pass --insecure-no-auth if this network is trusted and you accept the risk",
                )
            )
        else:
            findings.append(
                PolicyFinding(
                    False,
                    f"INSECURE: serving {settings.host} with NO AUTHENTICATION (--insecure-no-auth). Anyone who "
                    "can reach this port can read market data and start downloads on this PC.",
                )
            )
    if tls.cert_file is None:
        findings.append(
            PolicyFinding(
                False,
                f"serving {settings.host} over plain HTTP: API keys cross the network in clear text; "
                "use --tls-cert/--tls-key (`qmtgate cert` makes a pair)",
            )
        )
    return findings
