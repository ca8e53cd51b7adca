"""Structured access logs, rotation, and the doctor's checks on a prepared environment."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.support import FakeXtdata, make_source
from qmtgate.api.app import create_app
from qmtgate.config import LogSettings, Settings
from qmtgate.ops import doctor
from qmtgate.ops.logs import ACCESS_LOGGER, JsonFormatter, setup_logging, shutdown_logging
from security.support import header, make_keys


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_access_log_records_request_id_key_route_status_and_duration() -> None:
    keys = make_keys()
    app = create_app(Settings(source="sim", auth={"keys": keys.records()}), make_source(FakeXtdata()))
    handler = ListHandler()
    access = logging.getLogger(ACCESS_LOGGER)
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        with TestClient(app) as c:
            r = c.get(
                "/api/v1/instruments/600000.SH", headers={**header(keys.read), "X-Request-ID": "abc-123"}
            )
            assert r.headers["X-Request-ID"] == "abc-123"
            generated = c.get("/api/v1/health/live", headers={"X-Request-ID": "bad id with spaces"})
            assert len(generated.headers["X-Request-ID"]) == 16
    finally:
        access.removeHandler(handler)
        access.setLevel(logging.NOTSET)
    first = handler.records[0]
    assert first.request_id == "abc-123"  # type: ignore[attr-defined]
    assert first.key_id == keys.read.record.id  # type: ignore[attr-defined]
    assert first.route == "/api/v1/instruments/{code}"  # type: ignore[attr-defined]
    assert first.status == 200 and first.duration_ms > 0  # type: ignore[attr-defined]
    line = json.loads(JsonFormatter().format(first))
    assert {
        "ts",
        "level",
        "logger",
        "message",
        "request_id",
        "key_id",
        "route",
        "status",
        "duration_ms",
    } <= set(line)
    assert line["logger"] == ACCESS_LOGGER


def test_log_file_rotates(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "qmtgate.log"
    setup_logging("info", LogSettings(format="json", file=path, max_bytes=10_000, backups=2))
    try:
        log = logging.getLogger("qmtgate.test")
        for i in range(400):
            log.info("line %d %s", i, "x" * 50)
        shutdown_logging()  # the listener thread writes; stopping it drains the queue
        assert path.exists() and (tmp_path / "logs" / "qmtgate.log.1").exists()
        assert not (tmp_path / "logs" / "qmtgate.log.3").exists()
        assert json.loads(path.read_text(encoding="utf-8").splitlines()[-1])["message"].startswith("line 399")
    finally:
        shutdown_logging()
        logging.getLogger().setLevel(logging.WARNING)


def test_doctor_finds_qmt_like_the_sdk_and_probes_its_port(tmp_path: Path) -> None:
    root = tmp_path / "国金QMT"
    (root / "userdata_mini").mkdir(parents=True)
    inst = tmp_path / "home" / ".xtquant" / "abc"
    inst.mkdir(parents=True)
    (inst / "xtdata.cfg").write_text(
        json.dumps({"ip": "127.0.0.1", "port": 58611, "root_dir": str(root)}), encoding="utf-8"
    )
    probed: list[tuple[str, int]] = []

    def probe(host: str, port: int) -> bool:
        probed.append((host, port))
        return port == 58611

    checks = {c.name: c for c in doctor.check_qmt(Settings(), home=tmp_path / "home", probe=probe)}
    assert checks["qmt_discovery"].status == "ok" and "127.0.0.1:58611" in checks["qmt_discovery"].summary
    assert checks["qmt_port"].status == "ok"
    assert checks["userdata"].status == "ok"
    assert ("127.0.0.1", 58610) in probed  # the SDK's default is tried too
    empty = {
        c.name: c
        for c in doctor.check_qmt(
            Settings(), home=tmp_path / "nobody", probe=lambda h, p: False, system="Windows"
        )
    }
    assert empty["qmt_discovery"].status == "warn" and "xtdata.cfg" in empty["qmt_discovery"].summary
    assert empty["qmt_discovery"].fix_zh


@pytest.mark.slow  # probes ports and the clock for ~10 s
def test_doctor_python_clock_port_security_firewall() -> None:
    assert doctor.check_python((3, 12), 64, "Windows")[0].status == "ok"
    assert doctor.check_python((3, 9), 64, "Windows")[0].status == "fail"
    assert doctor.check_python((3, 12), 32, "Windows")[0].status == "fail"
    import datetime as dt

    assert doctor.check_clock(utc_offset=dt.timedelta(hours=8))[0].status == "ok"
    assert doctor.check_clock(utc_offset=dt.timedelta(hours=0))[0].status == "info"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = doctor.check_port("127.0.0.1", port)[0]
    assert result.status == "fail" and str(port) in result.fix_en and result.fix_zh
    open_lan = doctor.check_security(Settings(host="0.0.0.0"))
    assert any(c.status == "fail" for c in open_lan)
    assert doctor.check_firewall(Settings(host="0.0.0.0", port=8123), "Windows")[0].fix_en.count("8123") == 1
    assert doctor.check_firewall(Settings(), "Windows") == []


def test_doctor_reports_a_missing_xtquant_in_plain_words() -> None:
    result = doctor.check_xtquant(system="Windows")[0]  # this Python has no xtquant
    assert result.status == "fail" and "pip install xtquant" in result.fix_en and "安装" in result.fix_zh
    text = doctor.render([result])
    assert "FAIL" in text and "建议" in text
    assert doctor.exit_code([result]) == 1


@pytest.mark.parametrize("as_json", [False, True])
def test_doctor_command_runs(as_json: bool) -> None:
    from typer.testing import CliRunner

    from qmtgate import cli

    args = ["doctor", "--skip-import"] + (["--json"] if as_json else [])
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code in (0, 1), result.output
    if as_json:
        names = {c["name"] for c in json.loads(result.stdout)}
        assert {"python", "clock", "port", "security"} <= names
        assert {"qmt_discovery", "qmt_port"} <= names or "qmt" in names  # "qmt": not Windows, no QMT here


def test_doctor_checks_trading_settings_the_way_the_lane_does(tmp_path: Path) -> None:
    from qmtgate.security.keys import generate_key

    def trading(system: str = "Windows", **overrides: object) -> dict[str, doctor.Check]:
        base = {"enabled": True, "account_id": "8880001", "audit_path": str(tmp_path / "audit.sqlite"),
                "userdata_path": str(tmp_path / "userdata_mini"), "allow_loopback_without_auth": True}  # fmt: skip
        settings = Settings(source="xtquant", trading={**base, **overrides.pop("trading", {})}, **overrides)
        return {c.name: c for c in doctor.check_trading(settings, system)}

    assert doctor.check_trading(Settings())[0].status == "info"  # off by default: one line saying so
    missing = trading(trading={"account_id": ""})["trading"]
    assert missing.status == "fail" and missing.details == {"reason": "account_id_missing"} and missing.fix_zh
    wrong = trading(trading={"userdata_path": str(tmp_path / "userdata")})["trading"]
    assert wrong.details == {"reason": "userdata_path_not_userdata_mini"}
    assert trading()["trading"].details == {"reason": "userdata_path_not_found"}  # not created yet
    assert trading("Linux")["trading"].status == "ok"  # the simulator takes any path
    paper = trading("Linux", trading={"account_id": "", "userdata_path": ""})["trading"]
    assert paper.status == "ok" and "paper account" in paper.summary and "8880001" in paper.summary
    (tmp_path / "userdata_mini").mkdir()
    good = trading()
    assert (
        good["trading"].status == "ok" and good["trading_audit"].status == "ok" and "trading_keys" not in good
    )
    nowhere = trading(trading={"audit_path": str(tmp_path / "no" / "such" / "audit.sqlite")})
    assert nowhere["trading_audit"].status == "fail"
    unkeyed = trading(trading={"allow_loopback_without_auth": False})
    assert unkeyed["trading_keys"].status == "warn" and "--scope trade" in unkeyed["trading_keys"].fix_en
    reader = generate_key("reader", ["read"]).record.model_dump()
    assert trading(auth={"keys": [reader]})["trading_keys"].status == "warn"  # no key may trade
    trader = generate_key("trader", ["read", "trade"]).record.model_dump()
    assert "trading_keys" not in trading(auth={"keys": [reader, trader]})


def test_doctor_warns_of_a_kill_switch_left_on(tmp_path: Path) -> None:
    from qmtgate.source.trading.audit import AuditTrail
    from qmtgate.source.trading.service import KILL_SWITCH

    audit = tmp_path / "audit.sqlite"
    settings = Settings(source="sim", trading={"enabled": True, "account_id": "8880001", "audit_path": str(audit),
                                               "userdata_path": str(tmp_path / "userdata_mini")})  # fmt: skip
    names = {c.name for c in doctor.check_trading(settings, "Linux")}
    assert "trading_kill_switch" not in names and not audit.exists()  # no file: nothing read, nothing made
    trail = AuditTrail(audit)
    try:
        trail.set_state(KILL_SWITCH, {"halted": True, "since_ms": 1749695400000, "key_id": "boss"})
        on = {c.name: c for c in doctor.check_trading(settings, "Linux")}["trading_kill_switch"]  # beside it
        assert on.status == "warn" and "2025-06-12 10:30:00 CST" in on.summary and "resume" in on.fix_en
        trail.set_state(KILL_SWITCH, {"halted": False, "since_ms": 1749695500000, "key_id": "boss"})
        assert "trading_kill_switch" not in {c.name for c in doctor.check_trading(settings, "Linux")}
    finally:
        trail.close()
