"""Read the runnable examples out of README.md and docs/*.md, as a newcomer would copy them.

A fenced block is an example when its language is a shell (``sh``, ``bash``, ``console``, or none with a
first word the walk knows) or ``python``. The text just above a fence may carry walk annotations in HTML
comments, which a rendered page does not show::

    <!-- walk: skip Windows paths -->          not run; the reason is required
    <!-- walk: with-previous -->               python: run after the previous python block of the file
    <!-- walk: expect 2025-09-30 -->           the block's output must contain this text (repeatable)
    <!-- walk: skip-line keys revoke: needs an id from keys list -->   shell lines containing the text
                                                                      before ':' are not run

Nothing else is rewritten in a block except what points at the gateway (``localhost:8000`` and the
documents' example hosts) and, for commands that would run forever, a bound on their run time.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

SHELL_LANGS = {"sh", "bash", "console", "shell"}
#: First words of an untyped block that make it a shell example.
SHELL_WORDS = {"curl", "qmtgate", "make", ".venv/bin/python", ".venv/bin/qmtgate"}
#: Hosts the documents use for "your gateway".
GATEWAY_HOSTS = ("localhost:8000", "127.0.0.1:8000", "gateway:8000", "192.168.1.20:8000")

_FENCE = re.compile(r"^(\s*)```([A-Za-z0-9_+-]*)\s*$")
_WALK = re.compile(r"<!--\s*walk:\s*(.*?)\s*-->")


@dataclass
class Block:
    """One fenced example with where it stands and what the annotations above it say."""

    doc: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    skip: str | None = None
    with_previous: bool = False
    expect: list[str] = field(default_factory=list)
    skip_lines: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.doc.name}:{self.line}"

    @property
    def kind(self) -> str | None:
        """``shell``, ``python`` or None (not an example: output, JSON, TOML, a protocol sketch)."""
        if self.lang in SHELL_LANGS:
            return "shell"
        if self.lang == "python":
            return "python"
        if not self.lang:
            first = next((ln.split()[0] for ln in self.text.splitlines() if ln.strip()), "")
            if first in SHELL_WORDS:
                return "shell"
        return None


def blocks_of(doc: Path) -> list[Block]:
    """Every fenced block of ``doc``, with the walk annotations of the lines just above it."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang = m.group(1), m.group(2).lower()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not _FENCE.match(lines[i]):
            line = lines[i]
            body.append(line[len(indent) :] if line.startswith(indent) else line)
            i += 1
        block = Block(doc, start + 1, lang, "\n".join(body) + "\n")
        j = start - 1
        while j >= 0 and (not lines[j].strip() or _WALK.search(lines[j])):
            for note in _WALK.findall(lines[j]):
                _annotate(block, note)
            j -= 1
        out.append(block)
        i += 1
    return out


def _annotate(block: Block, note: str) -> None:
    word, _, rest = note.partition(" ")
    if word == "skip":
        if not rest:
            raise ValueError(f"{block.where}: 'walk: skip' needs a reason")
        block.skip = rest
    elif word == "with-previous":
        block.with_previous = True
    elif word == "expect":
        block.expect.append(rest)
    elif word == "skip-line":
        text, _, reason = rest.partition(":")
        if not reason.strip():
            raise ValueError(f"{block.where}: 'walk: skip-line' needs a reason after ':'")
        block.skip_lines.append(text.strip())
    else:
        raise ValueError(f"{block.where}: unknown walk annotation {note!r}")


def shell_commands(block: Block) -> list[str]:
    """The block's commands: continuation lines joined, comments and prompts dropped."""
    commands: list[str] = []
    pending = ""
    for raw in block.text.splitlines():
        line = raw.rstrip()
        if line.startswith("$ "):
            line = line[2:]
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        command = _strip_comment(line).strip()
        if not command:
            continue
        if any(text in command for text in block.skip_lines):
            continue
        commands.append(command)
    return commands


def _strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a ``#`` inside quotes stays)."""
    quote = None
    for k, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (k == 0 or line[k - 1].isspace()):
            return line[:k]
    return line


def point_at(text: str, host_port: str) -> str:
    """``text`` with the documents' gateway addresses replaced by ``host_port``."""
    for host in GATEWAY_HOSTS:
        text = text.replace(host, host_port)
    return text


def argv(command: str) -> list[str]:
    return shlex.split(command)
