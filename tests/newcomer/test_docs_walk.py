"""A newcomer's walk: start the gateway as ``make run`` does and run every example of the documents.

The gateway is the ``qmtgate serve`` of this environment with no options but a free port (``make run``
adds none), on the simulator, at a simulated after-hours time. The walk does not wait for readiness: the
first example runs as soon as the port accepts connections. Every shell and python block of README.md
and docs/*.md is run as written (docwalk.py says what is rewritten: the gateway's address, a bound on
commands that would run forever); a block fails on a non-zero exit, a traceback, an HTTP status of 400 or
more, or output that lacks what the document's ``walk: expect`` says. Blocks that cannot run on Linux say
why in a ``walk: skip`` annotation beside them. At the end the gateway's own log must hold no traceback,
no 5xx and no warning a normal start should not give.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .docwalk import Block, argv, blocks_of, point_at, shell_commands

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
QMTGATE = BIN / ("qmtgate.exe" if os.name == "nt" else "qmtgate")
#: A Friday evening in Asia/Shanghai (sim.wall_time): after the close, as when a newcomer tries it.
AFTER_HOURS = "20261204203000"
STATUS_MARK = "__HTTP_STATUS__"
#: Lines of the gateway's log that a normal start and an ordinary walk must not produce.
BAD_LOG = re.compile(r"Traceback|DEGRADED|backfill failed|Exception in ASGI| 5\d\d( |$)")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gateway_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("QMTGATE_CONFIG", None)
    env["QMTGATE_SIM__WALL_TIME"] = AFTER_HOURS
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Gateway:
    """``qmtgate serve`` in its own process, its output collected on a thread."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [str(QMTGATE), "serve", *args, "--port", str(self.port)],
            cwd=cwd,
            env=_gateway_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_accepting(self, timeout: float = 60) -> None:
        """Until the port takes a TCP connection: the moment a newcomer can type the first command."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("gateway exited at start:\n" + "\n".join(self.lines[-40:]))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"gateway not accepting after {timeout} s:\n" + "\n".join(self.lines[-40:]))

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("gateway did not stop within 15 s of SIGTERM") from None
        finally:
            self._reader.join(timeout=5)

    def log(self) -> str:
        return "\n".join(self.lines)


def _examples() -> list[Block]:
    out: list[Block] = []
    for doc in DOCS:
        out.extend(b for b in blocks_of(doc) if b.kind is not None)
    return out


EXAMPLES = _examples()


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    gw = Gateway()
    gw.wait_accepting()
    yield gw
    code = gw.stop()
    bad = [line for line in gw.lines if BAD_LOG.search(line)]
    assert not bad, "the gateway's log during the walk:\n" + "\n".join(bad[:40])
    assert code in (0, -15, 143), f"gateway exit code {code}"


@pytest.fixture(scope="module")
def workdirs() -> Iterator[dict[Path, Path]]:
    """One working directory per document: a document's blocks build on each other's files."""
    with tempfile.TemporaryDirectory(prefix="qmtgate-walk-") as root:
        dirs = {doc: Path(root) / doc.stem for doc in DOCS}
        for d in dirs.values():
            d.mkdir()
        yield dirs


def test_every_document_has_examples_or_says_none() -> None:
    """The walk found the documents' examples (a parser change that finds none would pass vacuously)."""
    by_doc = {b.doc.name for b in EXAMPLES}
    assert "README.md" in by_doc and "rest.md" in by_doc and "client.md" in by_doc
    assert sum(1 for b in EXAMPLES if b.skip is None) >= 15


@pytest.mark.parametrize("block", EXAMPLES, ids=[b.where for b in EXAMPLES])
def test_example_runs(block: Block, gateway: Gateway, workdirs: dict[Path, Path]) -> None:
    if block.skip:
        pytest.skip(f"{block.where}: {block.skip}")
    cwd = workdirs[block.doc]
    host_port = f"127.0.0.1:{gateway.port}"
    if block.kind == "python":
        output = _run_python(block, host_port, cwd, gateway)
    else:
        output = "\n".join(_run_shell(command, host_port, cwd) for command in shell_commands(block))
    for text in block.expect:
        assert text in output, (
            f"{block.where}: the document says the output shows {text!r}; got:\n{output[-3000:]}"
        )


def _run_python(block: Block, host_port: str, cwd: Path, gateway: Gateway) -> str:
    source = block.text
    if block.with_previous:
        earlier = [b for b in EXAMPLES if b.doc == block.doc and b.kind == "python" and b.line < block.line]
        assert earlier, f"{block.where}: with-previous but no python block before it"
        source = earlier[-1].text + "\n" + source
    script = cwd / f"block_{block.line}.py"
    script.write_text(point_at(source, host_port), encoding="utf-8")
    env = dict(os.environ, QMTGATE_URL=gateway.url, PYTHONUNBUFFERED="1")
    env.pop("QMTGATE_API_KEY", None)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "Traceback" not in output, f"{block.where} failed:\n{output[-4000:]}"
    return output


def _run_shell(command: str, host_port: str, cwd: Path) -> str:
    words = argv(point_at(command, host_port))
    head = words[0]
    if (
        head == "make"
    ):  # `make run` is the gateway this walk started; `make test` (and its fast lane) this run
        assert words[1:2] in (["run"], ["test"], ["test-fast"]), f"unexpected make target in {command!r}"
        return ""
    if head == "curl":
        return _curl(words, cwd)
    if head in ("qmtgate", ".venv/bin/qmtgate"):
        return _qmtgate(words[1:], cwd)
    if head == ".venv/bin/python":
        words[0] = sys.executable
        return _check(subprocess.run(words, cwd=ROOT, capture_output=True, text=True, timeout=300), command)
    raise AssertionError(f"the walk does not know how to run {command!r}: annotate the block")


def _curl(words: list[str], cwd: Path) -> str:
    done = subprocess.run(
        [words[0], "-sS", "--max-time", "60", "-w", f"\n{STATUS_MARK}%{{http_code}}", *words[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=90,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"curl failed ({done.returncode}): {' '.join(words)}\n{output[-2000:]}"
    status = int(output.rsplit(STATUS_MARK, 1)[1].strip()[:3])
    assert status < 400, f"{' '.join(words)} answered {status}:\n{output[-2000:]}"
    assert "Traceback" not in output
    return output


def _qmtgate(args: list[str], cwd: Path) -> str:
    if args[:1] == ["serve"]:
        return _serve_briefly(args[1:], cwd)
    if args[:1] == ["record"] and "--duration" not in args:
        args = [*args, "--duration", "5"]
    done = subprocess.run(
        [str(QMTGATE), *args], cwd=cwd, env=_gateway_env(), capture_output=True, text=True, timeout=300
    )
    return _check(done, "qmtgate " + " ".join(args))


def _serve_briefly(args: list[str], cwd: Path) -> str:
    """A ``qmtgate serve`` line of a document: it starts, answers liveness, and stops on SIGTERM."""
    gw = Gateway(*args, cwd=cwd)
    try:
        gw.wait_accepting()
        scheme = "https" if "--tls-cert" in args else "http"
        url = f"{scheme}://127.0.0.1:{gw.port}/api/v1/health/live"
        r = httpx.get(url, timeout=30, verify=False)  # the pin is the clients' business, tested elsewhere
        assert r.status_code == 200, r.text
    finally:
        gw.stop()
    log = gw.log()
    assert "Traceback" not in log, log[-4000:]
    return log


def _check(done: subprocess.CompletedProcess[str], command: str) -> str:
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{output[-4000:]}"
    assert "Traceback" not in output, f"{command}:\n{output[-4000:]}"
    return output
