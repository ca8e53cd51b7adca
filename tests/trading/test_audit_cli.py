"""``qmtgate trading audit`` prints one China-time day of the audit trail (JSON lines or CSV)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from qmtgate import cli
from qmtgate.source.trading.audit import CST, AuditTrail


def test_audit_prints_a_day(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    trail = AuditTrail(db)
    trail.append("request.place", {"code": "600000.SH"}, request_id="r1", key_id="k1", client_order_id="c1")
    trail.append("response.place", {"status": "accepted"}, request_id="r1", key_id="k1", client_order_id="c1")
    trail.close()
    today = dt.datetime.now(CST).date()
    runner = CliRunner()
    out = runner.invoke(cli.app, ["trading", "audit", "--path", str(db), "--day", today.isoformat()])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines()]
    assert [r["kind"] for r in rows] == ["request.place", "response.place"]
    assert rows[0]["payload"] == {"code": "600000.SH"} and rows[0]["key_id"] == "k1"
    as_csv = runner.invoke(
        cli.app, ["trading", "audit", "--path", str(db), "--day", today.isoformat(), "--format", "csv"]
    )
    table = list(csv.reader(io.StringIO(as_csv.output)))
    assert table[0][2] == "kind" and [r[2] for r in table[1:]] == ["request.place", "response.place"]
    other = runner.invoke(cli.app, ["trading", "audit", "--path", str(db), "--day", "2020-01-02"])
    assert other.exit_code == 0 and other.output == ""
    missing = runner.invoke(cli.app, ["trading", "audit", "--path", str(tmp_path / "nope.sqlite")])
    assert missing.exit_code == 2 and not (tmp_path / "nope.sqlite").exists()
    bad = runner.invoke(cli.app, ["trading", "audit", "--path", str(db), "--day", "2020-13-01"])
    assert bad.exit_code == 2
