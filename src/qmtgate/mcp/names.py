"""What a user types for a security -> the code the gateway serves.

Codes in any spelling (``600519``, ``sh600519``, ``600519.XSHG``...) go to the gateway unchanged: it owns the
one normalization rule (``qmtgate/codes.py``: bare digits by prefix, never an index; ambiguous prefixes
refused) and answers canonical ``600519.SH`` codes, or ``invalid_code`` / ``ambiguous_code`` /
``unknown_code``. Duplicating that rule here would let the two drift.

Chinese names (``贵州茅台``, or a unique part of one: ``茅台``) are resolved here, because the gateway has no
name search: :class:`NameIndex` reads the members of the broad exchange sectors once and their instrument
names in batches, then answers from memory. A name that matches several instruments is refused with the
candidates (an assistant then asks which one), never guessed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from mcp.server.mcpserver.exceptions import ToolError

from qmtgate.mcp.gateway import Gateway

#: The sectors whose members make up the name index (those the gateway lists; others are skipped).
NAME_SECTORS: tuple[str, ...] = ("沪深A股", "京市A股", "沪深指数", "沪深ETF", "沪深基金")
#: Codes per ``/instruments`` request while building the index (the gateway's default limit is 1000).
BATCH = 500


def is_name(text: str) -> bool:
    """A code spelling is ASCII letters, digits and dots; anything else is taken for a name."""
    return not text.isascii()


class NameIndex:
    """Instrument names -> codes, read from the gateway on the first name asked for."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._names: dict[str, list[str]] | None = None  # name -> codes
        self._codes: dict[str, str] = {}  # code -> name
        self._lock = asyncio.Lock()

    async def _load(self) -> dict[str, list[str]]:
        async with self._lock:
            if self._names is not None:
                return self._names
            available = set(await self.gateway.call("sectors"))
            codes: list[str] = []
            for sector in NAME_SECTORS:
                if sector in available:
                    codes.extend(await self.gateway.call("sector_members", sector))
            unique = list(dict.fromkeys(codes))
            names: dict[str, list[str]] = {}
            for i in range(0, len(unique), BATCH):
                for code, name in await self._batch(unique[i : i + BATCH]):
                    names.setdefault(name, []).append(code)
                    self._codes[code] = name
            self._names = names
            return names

    async def _batch(self, codes: list[str]) -> list[tuple[str, str]]:
        """(code, name) of codes; a batch the gateway refuses (a member it does not know, e.g. delisted
        since the sector was built) is split until the one bad code is left out, so the index stays whole."""
        try:
            df = await self.gateway.call("instruments", codes)
        except ToolError:
            if len(codes) == 1:
                return []
            half = len(codes) // 2
            return await self._batch(codes[:half]) + await self._batch(codes[half:])
        return [(c, n) for c, n in zip(df["code"], df["name"], strict=True) if isinstance(n, str) and n]

    async def resolve(self, text: str) -> str:
        """The one code ``text`` names (exact name first, then a unique part of a name)."""
        names = await self._load()
        wanted = text.strip().replace(" ", "")
        exact = names.get(wanted)
        if exact is not None and len(exact) == 1:
            return exact[0]
        found = exact or sorted({c for name, cs in names.items() if wanted in name for c in cs})
        if not found:
            raise ToolError(
                f"no instrument is named {text!r}; give its code, e.g. 600519.SH (code: unknown_name)"
            )
        if len(found) > 1:
            shown = ", ".join(f"{c} {self._codes.get(c, '')}".strip() for c in found[:10])
            more = f" and {len(found) - 10} more" if len(found) > 10 else ""
            raise ToolError(
                f"{text!r} matches {len(found)} instruments: {shown}{more}; give the code (code: ambiguous_name)"
            )
        return found[0]

    async def name_of(self, codes: Iterable[str]) -> dict[str, str]:
        """Names of codes already known to the index (without loading it)."""
        return {c: self._codes[c] for c in codes if c in self._codes}


async def resolve_codes(index: NameIndex, inputs: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Codes for what the user typed, and ``{name typed: code}`` for the names that were resolved."""
    codes: list[str] = []
    resolved: dict[str, str] = {}
    for raw in inputs:
        text = raw.strip()
        if not text:
            raise ToolError("an empty code was given (code: invalid_code)")
        if is_name(text):
            code = await index.resolve(text)
            resolved[text] = code
            codes.append(code)
        else:
            codes.append(text)
    return codes, resolved
