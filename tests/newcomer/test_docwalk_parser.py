"""The doc walk's reader: fences, annotations, commands, addresses (so the walk itself cannot pass vacuously)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .docwalk import blocks_of, point_at, shell_commands

DOC = """# T

<!-- walk: skip Windows paths -->
```bash
qmtgate cert --out-dir C:\\\\x
```

<!-- walk: expect 2025-09-30 -->
<!-- walk: skip-line revoke: needs an id -->
```sh
curl 'localhost:8000/a?b=1' \\
     -o x.json    # a comment
qmtgate keys revoke --keys-file k.json 5c30
curl 'localhost:8000/q?s=#frag'
```

```python
print(1)
```

<!-- walk: with-previous -->
```python
print(2)
```

```json
{"a": 1}
```
"""


def test_reads_blocks_annotations_and_commands(tmp_path: Path) -> None:
    doc = tmp_path / "t.md"
    doc.write_text(DOC, encoding="utf-8")
    blocks = blocks_of(doc)
    assert [b.kind for b in blocks] == ["shell", "shell", "python", "python", None]
    assert blocks[0].skip == "Windows paths"
    assert blocks[1].expect == ["2025-09-30"] and blocks[1].skip is None
    assert [" ".join(c.split()) for c in shell_commands(blocks[1])] == [
        "curl 'localhost:8000/a?b=1' -o x.json",
        "curl 'localhost:8000/q?s=#frag'",
    ]
    assert blocks[3].with_previous and not blocks[2].with_previous
    assert point_at("http://gateway:8000/x http://localhost:8000", "127.0.0.1:9") == (
        "http://127.0.0.1:9/x http://127.0.0.1:9"
    )


def test_a_skip_needs_a_reason(tmp_path: Path) -> None:
    doc = tmp_path / "t.md"
    doc.write_text("<!-- walk: skip -->\n```sh\ncurl x\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="needs a reason"):
        blocks_of(doc)
