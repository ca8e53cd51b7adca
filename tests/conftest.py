"""Session-wide test set-up: the TestClient's host name, and the key-leak check over every log line.

Host names: the gateway serves only loopback names when bound to loopback (docs/security.md, "Host and
Origin"); Starlette's TestClient sends ``Host: testserver``, so the suite allows that one name through the
ordinary setting (``QMTGATE_WEB__ALLOWED_HOSTS``). Tests of the rule itself pass their own ``web`` settings,
which win over the environment; the tests that clear ``QMTGATE_*`` use no TestClient.

Key leaks (issue 17, item 6): every API key made during the session (``qmtgate.security.keys.generate_key``
is wrapped at import, before any test module imports it) is registered, and every log line any handler
formats (``logging.Handler.format``: the console, files, pytest's own capture, uvicorn's handlers, whatever
the logger's propagation) is searched for a registered key's secret. At the end of the session the log
files the tests wrote under the session's temporary directory are searched too. A hit fails the session
(exit status 1) and names the line, with the secret cut out. The cost is a substring test per registered
secret on each formatted line.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QMTGATE_WEB__ALLOWED_HOSTS", '["testserver"]')

# The simulator's shared data directory (downloads, user sectors, clock anchor: issue 19) must never be
# the user's own: a session-wide temporary one here (also for session-scoped fixtures, built before
# any function fixture), and a fresh one per test below so tests do not see each other's downloads.
_SIM_DATA_ROOT = Path(tempfile.mkdtemp(prefix="qmtgate-test-simdata-"))
atexit.register(shutil.rmtree, _SIM_DATA_ROOT, True)
os.environ["QMTGATE_SIM_DATA_DIR"] = str(_SIM_DATA_ROOT / "session")


#: fixtures that start a real server or process (uvicorn on loopback, `qmtgate serve`, a recorder run)
LIVE_FIXTURES = frozenset({"serve", "sim_server", "server", "gateway", "launched_gateway", "recorded"})
#: words in a test module's source that mean it starts one itself
LIVE_WORDS = ("subprocess", "Popen(", "start_server(", "uvicorn", "multiprocessing")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``live`` every test that starts real servers or processes, so ``make test-fast`` (``-m "not
    live and not slow"``) keeps the unit and in-process tests; ``make test`` runs them all."""
    starts_processes: dict[Path, bool] = {}
    for item in items:
        path = Path(item.path)
        if path not in starts_processes:
            text = path.read_text(encoding="utf-8")
            starts_processes[path] = any(word in text for word in LIVE_WORDS)
        if starts_processes[path] or LIVE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)


@pytest.fixture(autouse=True)
def _sim_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test's simulator installs get their own empty data directory (spawned children inherit
    it through the environment)."""
    monkeypatch.setenv("QMTGATE_SIM_DATA_DIR", str(tmp_path_factory.mktemp("simdata")))


class KeyLeakWatch:
    """Secrets of the keys made in this session and the log lines found holding one."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # secret -> key id
        self.leaks: list[str] = []

    def register(self, token: str) -> None:
        parts = token.split("_", 2)
        if len(parts) == 3 and parts[2]:
            self.secrets[parts[2]] = parts[1]

    def check(self, text: str, where: str) -> None:
        if not self.secrets:
            return
        for secret, key_id in list(self.secrets.items()):
            if secret in text:
                shown = f"{where}: key qg_{key_id}_...: {text.replace(secret, '<SECRET>')[:300]}"
                if shown not in self.leaks:  # pytest formats a record once per capture handler
                    self.leaks.append(shown)

    def scan_files(self, root: Path) -> None:
        if not self.secrets or not root.is_dir():
            return
        for path in root.rglob("*"):
            name = path.name.lower()
            if not path.is_file() or not (".log" in name or name.endswith((".jsonl", ".err", ".out"))):
                continue
            try:
                text = path.read_bytes().decode("utf-8", "replace")
            except OSError:
                continue
            self.check(text, f"log file {path}")


WATCH = KeyLeakWatch()


def _install() -> None:
    import qmtgate.security.keys as keys

    original = keys.generate_key

    def generate_key(*args: Any, **kwargs: Any) -> Any:
        new = original(*args, **kwargs)
        WATCH.register(new.token)
        return new

    generate_key.__doc__ = original.__doc__
    generate_key.__wrapped__ = original  # type: ignore[attr-defined]
    keys.generate_key = generate_key  # type: ignore[assignment]

    format_record = logging.Handler.format

    def format(self: logging.Handler, record: logging.LogRecord) -> str:
        text = format_record(self, record)
        WATCH.check(text, f"log record {record.name}")
        return text

    logging.Handler.format = format  # type: ignore[method-assign]


_install()


@pytest.fixture
def key_leaks() -> Iterator[KeyLeakWatch]:
    """The session's watch; a test that leaks on purpose (to prove the watch works) clears what it added."""
    yield WATCH


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        with contextlib.suppress(OSError, ValueError):
            WATCH.scan_files(factory.getbasetemp())
    if WATCH.leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["API KEY LEAK: full keys made by the tests were found in log output:", *WATCH.leaks[:20]]
        if reporter is not None:
            reporter.write_sep("=", "API key leak", red=True)
            for line in lines:
                reporter.write_line(line)
        else:
            print("\n".join(lines))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
