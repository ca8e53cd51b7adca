"""``qmtgate doctor``: check the machine qmtgate runs on and say what to fix, in English and Chinese.

Each check is a plain function returning :class:`Check` results, with its environment passed in (paths,
ports, the Python to probe), so tests run them on any OS. Nothing here changes the machine.

Checks: Python version and architecture; whether ``xtquant`` imports and which version (in a subprocess
with a timeout: importing xtquant contacts the package index and initialises a native client); QMT instance
discovery as the SDK does it (``%USERPROFILE%\\.xtquant\\*\\xtdata.cfg``) and whether the xtdata port
(58610 or the discovered ones) answers; the userdata folder; clock and time zone; whether the serve port is
free; the security set-up (keys, TLS) for the bind address; and firewall advice on Windows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from qmtgate.config import Settings

Status = Literal["ok", "warn", "fail", "info"]
DEFAULT_XTDATA_PORT = 58610
CST = dt.timezone(dt.timedelta(hours=8))


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    summary: str
    fix_en: str = ""
    fix_zh: str = ""
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class QmtInstance:
    """One ``xtdata.cfg`` found by discovery."""

    config_file: Path
    ip: str
    port: int
    root_dir: str


# -- python ------------------------------------------------------------------------------------------------


def check_python(
    version: tuple[int, int] | None = None, bits: int | None = None, system: str | None = None
) -> list[Check]:
    version = version or sys.version_info[:2]
    bits = bits or struct.calcsize("P") * 8
    system = system or platform.system()
    text = f"Python {version[0]}.{version[1]}, {bits}-bit, {system}"
    if version < (3, 10) or version >= (3, 14):
        return [
            Check(
                "python",
                "fail",
                text,
                "qmtgate needs Python 3.10-3.13 (xtquant supports up to 3.13): install 64-bit Python 3.12.",
                "qmtgate 需要 Python 3.10-3.13（xtquant 最高支持 3.13）：请安装 64 位 Python 3.12。",
            )
        ]
    if bits != 64:
        return [
            Check(
                "python",
                "fail",
                text,
                "xtquant is 64-bit only: install the 64-bit (x86-64) Python.",
                "xtquant 只支持 64 位：请安装 64 位（x86-64）Python。",
            )
        ]
    return [Check("python", "ok", text)]


# -- xtquant -----------------------------------------------------------------------------------------------


def check_xtquant(python: str | None = None, timeout: float = 60.0, system: str | None = None) -> list[Check]:
    """Import ``xtquant.xtdata`` in a child process and report its version and location."""
    system = system or platform.system()
    script = (
        "import json, importlib.metadata as m\n"
        "import xtquant, xtquant.xtdata\n"
        "try:\n v = m.version('xtquant')\n"
        "except Exception:\n v = getattr(xtquant, '__version__', 'unknown')\n"
        "print(json.dumps({'version': v, 'path': xtquant.__file__}))\n"
    )
    try:
        done = subprocess.run(
            [python or sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return [
            Check(
                "xtquant",
                "warn",
                f"importing xtquant took more than {timeout:g} s",
                "xtquant checks for updates online when imported; on an offline PC this can stall. qmtgate "
                "still works, start-up is just slower.",
                "导入 xtquant 时会联网检查更新，离线电脑上可能卡顿；qmtgate 仍可使用，只是启动较慢。",
            )
        ]
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        if system != "Windows":
            return [
                Check(
                    "xtquant",
                    "info",
                    f"xtquant not importable here ({last[:160]}); qmtgate will use the built-in simulator",
                    "xtquant runs on Windows only; on this machine `--source sim` serves simulated data.",
                    "xtquant 只能在 Windows 上运行；本机可用 `--source sim` 提供模拟行情。",
                )
            ]
        return [
            Check(
                "xtquant",
                "fail",
                f"cannot import xtquant: {last[:200]}",
                "Install it into THIS Python: `python -m pip install xtquant` (or copy the xtquant folder from "
                "your broker's QMT into site-packages). 'rpc init failed' means the package is damaged: reinstall.",
                "请在当前 Python 中安装：`python -m pip install xtquant`（或把券商 QMT 自带的 xtquant 文件夹复制到 "
                "site-packages）。出现 'rpc init failed' 说明安装损坏，请重新安装。",
            )
        ]
    try:
        info = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        info = {"version": "unknown", "path": ""}
    return [
        Check("xtquant", "ok", f"xtquant {info.get('version')} imports ({info.get('path')})", details=info)
    ]


# -- QMT ---------------------------------------------------------------------------------------------------


def discover_instances(home: Path | None = None) -> list[QmtInstance]:
    """Every ``<home>/.xtquant/*/xtdata.cfg`` (the SDK's discovery; JSON with ip, port, root_dir)."""
    home = home or Path.home()
    found: list[QmtInstance] = []
    for cfg in sorted((home / ".xtquant").glob("*/xtdata.cfg")):
        try:
            data = json.loads(cfg.read_text(encoding="utf-8", errors="replace"))
            found.append(
                QmtInstance(
                    cfg, str(data.get("ip") or "127.0.0.1"), int(data["port"]), str(data.get("root_dir", ""))
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def port_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_qmt(
    settings: Settings,
    home: Path | None = None,
    probe: Callable[[str, int], bool] = port_answers,
    system: str | None = None,
) -> list[Check]:
    """QMT discovery and reachability, and the userdata folder of each instance found."""
    system = system or platform.system()
    checks: list[Check] = []
    instances = discover_instances(home)
    targets: list[tuple[str, int]] = []
    if settings.xtquant.port is not None:
        targets.append((settings.xtquant.ip or "127.0.0.1", settings.xtquant.port))
    targets += [(i.ip if i.ip not in ("", "0.0.0.0") else "127.0.0.1", i.port) for i in instances]
    targets.append(("127.0.0.1", DEFAULT_XTDATA_PORT))
    targets = list(dict.fromkeys(targets))
    if instances:
        checks.append(
            Check(
                "qmt_discovery",
                "ok",
                f"{len(instances)} QMT instance(s) registered: "
                + ", ".join(f"{i.ip}:{i.port} ({i.config_file.parent.name})" for i in instances),
            )
        )
    elif system != "Windows":
        checks.append(_no_qmt_here(system))
    else:
        checks.append(
            Check(
                "qmt_discovery",
                "warn",
                f"no xtdata.cfg under {(home or Path.home()) / '.xtquant'}",
                "Start QMT (极简模式 / miniQMT) and log in, as the same Windows user that runs qmtgate. A service "
                "running as another account (LocalSystem) cannot see it: set xtquant.port = 58610 in the config.",
                "请启动 QMT（极简模式/miniQMT）并登录，且与运行 qmtgate 的是同一个 Windows 用户。以其他账户（如 "
                "LocalSystem）运行的服务看不到它：请在配置中设置 xtquant.port = 58610。",
            )
        )
    reachable = [f"{h}:{p}" for h, p in targets if probe(h, p)]
    if reachable:
        checks.append(Check("qmt_port", "ok", "xtdata answers on " + ", ".join(reachable)))
    elif system != "Windows":
        pass  # _no_qmt_here already said it: QMT is a Windows program
    else:
        checks.append(
            Check(
                "qmt_port",
                "fail",
                "no xtdata port answers (" + ", ".join(f"{h}:{p}" for h, p in targets) + ")",
                "QMT is not running or not logged in, or its data service is off. Open QMT, log in, tick "
                "'极简模式' for miniQMT, then run doctor again.",
                "QMT 未运行、未登录，或数据服务未开启。请打开 QMT 并登录（miniQMT 需勾选“极简模式”），然后重新运行 doctor。",
            )
        )
    for inst in instances:
        if not inst.root_dir:
            continue
        userdata = Path(inst.root_dir) / "userdata_mini"
        if userdata.is_dir():
            checks.append(Check("userdata", "ok", f"userdata folder {userdata}"))
        else:
            checks.append(
                Check(
                    "userdata",
                    "warn",
                    f"userdata folder not found at {userdata}",
                    "The QMT install folder moved or is not miniQMT; trading (xttrader) needs the userdata_mini path.",
                    "QMT 安装目录已移动或不是 miniQMT；交易（xttrader）需要 userdata_mini 路径。",
                )
            )
    return checks


def _no_qmt_here(system: str) -> Check:
    """Linux/macOS: QMT cannot run here; say what works instead of Windows set-up steps."""
    return Check(
        "qmt",
        "info",
        f"no QMT on this {system} machine (QMT and xtquant run only on Windows)",
        "Here qmtgate serves the built-in simulated market (`qmtgate serve --source sim`). For real data run "
        "qmtgate on the Windows PC beside a logged-in QMT and connect to it from this machine with "
        "qmtgate.client or qmtgate.remote (README.md).",
        "QMT 与 xtquant 只能在 Windows 上运行。本机可用内置模拟行情（`qmtgate serve --source sim`）；如需真实行情，"
        "请在登录了 QMT 的 Windows 电脑上运行 qmtgate，再从本机用 qmtgate.client 或 qmtgate.remote 连接。",
    )


# -- clock, port, security ---------------------------------------------------------------------------------


def check_clock(
    now: float | None = None, utc_offset: dt.timedelta | None = None, system: str | None = None
) -> list[Check]:
    now = now if now is not None else time.time()
    local = dt.datetime.fromtimestamp(now).astimezone()
    offset = utc_offset if utc_offset is not None else local.utcoffset() or dt.timedelta(0)
    cst = dt.datetime.fromtimestamp(now, CST)
    hours = offset.total_seconds() / 3600
    summary = f"local time {local:%Y-%m-%d %H:%M:%S} (UTC{hours:+g}), China time {cst:%Y-%m-%d %H:%M:%S}"
    if offset != dt.timedelta(hours=8):
        return [
            Check(
                "clock",
                "info",
                summary,
                "The PC is not on China time. qmtgate converts times explicitly, so data is right; only your "
                "own scripts that use naive local times may be off by the difference.",
                "本机不是北京时间。qmtgate 会显式换算时区，数据不受影响；只有您自己用本地时间的脚本可能有偏差。",
            )
        ]
    if (system or platform.system()) == "Windows":
        fix_en = (
            "Keep Windows time synchronisation on (Settings > Time > Sync now): stale-market alerts use it."
        )
        fix_zh = "请保持 Windows 时间同步开启（设置 > 时间 > 立即同步）：行情停滞告警依赖系统时间。"
    else:
        fix_en = "Keep the clock synchronised (NTP: timedatectl / System Settings > Date & Time)."
        fix_zh = "请保持系统时间同步（NTP：timedatectl / 系统设置 > 日期与时间）。"
    return [Check("clock", "ok", summary, fix_en, fix_zh)]


def port_owner_command(port: int, system: str | None = None) -> str:
    """The command that shows which process listens on ``port``, for this OS."""
    system = system or platform.system()
    if system == "Windows":
        return f"netstat -ano | findstr :{port}"
    if system == "Darwin":
        return f"lsof -nP -iTCP:{port} -sTCP:LISTEN"
    return f"ss -ltnp 'sport = :{port}'"


def probe_qmtgate(host: str, port: int, timeout: float = 5.0) -> dict[str, object] | None:
    """The liveness answer of a qmtgate on ``host:port`` (HTTP, then HTTPS), or None if it is not one."""
    import httpx

    target = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    if ":" in target:
        target = f"[{target}]"
    for scheme in ("http", "https"):
        try:
            # identity only (no data, no key): a self-signed certificate is expected on a LAN gateway
            r = httpx.get(f"{scheme}://{target}:{port}/api/v1/health/live", timeout=timeout, verify=False)
            body = r.json()
        except (httpx.HTTPError, ValueError):
            continue
        if r.status_code == 200 and isinstance(body, dict) and {"status", "source", "version"} <= set(body):
            return body
    return None


def check_port(
    host: str,
    port: int,
    *,
    probe: Callable[[str, int], dict[str, object] | None] = probe_qmtgate,
    system: str | None = None,
) -> list[Check]:
    """Can ``host:port`` be bound now? A qmtgate already serving there is fine (doctor beside a gateway)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bind_host = "" if host in ("0.0.0.0", "::") else host
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((bind_host, port))
    except OSError as e:
        running = probe(host, port)
        if running is not None:
            return [
                Check(
                    "port",
                    "ok",
                    f"{host}:{port} is served by a running qmtgate {running.get('version')} "
                    f"(source {running.get('source')})",
                    details=dict(running),
                )
            ]
        command = port_owner_command(port, system)
        return [
            Check(
                "port",
                "fail",
                f"{host}:{port} is not free ({e.strerror or e})",
                f"Another program uses port {port}: stop it or serve with --port <other>. "
                f"`{command}` shows which process.",
                f"端口 {port} 已被其他程序占用：请关闭它，或用 --port 换一个端口。`{command}` 可查看占用进程。",
            )
        ]
    return [Check("port", "ok", f"{host}:{port} is free")]


def check_security(settings: Settings) -> list[Check]:
    from qmtgate.security.policy import check_serve_policy

    findings = check_serve_policy(settings)
    if not findings:
        text = "loopback only" if settings.host in ("127.0.0.1", "::1", "localhost") else "keys and TLS set"
        return [Check("security", "ok", f"bind {settings.host}: {text}")]
    return [
        Check(
            "security",
            "fail" if f.fatal else "warn",
            f.message,
            "See docs/security.md: `qmtgate keys create`, `qmtgate cert`, then serve with --keys-file and "
            "--tls-cert/--tls-key.",
            "参见 docs/security.md：先执行 `qmtgate keys create` 和 `qmtgate cert`，再用 --keys-file 与 "
            "--tls-cert/--tls-key 启动。",
        )
        for f in findings
    ]


def check_firewall(settings: Settings, system: str | None = None) -> list[Check]:
    system = system or platform.system()
    if system != "Windows" or settings.host in ("127.0.0.1", "::1", "localhost"):
        return []
    port = settings.port
    return [
        Check(
            "firewall",
            "info",
            f"clients on the LAN need an inbound rule for TCP {port}",
            "In an administrator PowerShell: New-NetFirewallRule -DisplayName 'qmtgate' -Direction Inbound "
            f"-Protocol TCP -LocalPort {port} -Action Allow -Profile Private. Keep the network profile 'Private'; "
            "never allow it on 'Public'.",
            "在管理员 PowerShell 中执行：New-NetFirewallRule -DisplayName 'qmtgate' -Direction Inbound -Protocol "
            f"TCP -LocalPort {port} -Action Allow -Profile Private。网络类型请设为“专用”，不要在“公用”网络放行。",
        )
    ]


# -- trading -----------------------------------------------------------------------------------------------

_TRADING_FIXES: dict[str, tuple[str, str]] = {
    "account_id_missing": (
        "Set trading.account_id (or MINIQMT_ACCOUNT_ID) to the account logged in on this QMT.",
        "请设置 trading.account_id（或环境变量 MINIQMT_ACCOUNT_ID）为 QMT 上已登录的资金账号。",
    ),
    "userdata_path_missing": (
        "Set trading.userdata_path (or MINIQMT_USERDATA_PATH) to miniQMT's userdata_mini folder, e.g. "
        r"D:\国金证券QMT交易端\userdata_mini.",
        r"请设置 trading.userdata_path（或 MINIQMT_USERDATA_PATH）为 miniQMT 的 userdata_mini 目录，例如 "
        r"D:\国金证券QMT交易端\userdata_mini。",
    ),
    "userdata_path_not_userdata_mini": (
        "Point trading.userdata_path at the userdata_mini folder inside the QMT install folder (not userdata, "
        "not the install folder itself).",
        "trading.userdata_path 应指向 QMT 安装目录下的 userdata_mini 目录（不是 userdata，也不是安装目录本身）。",
    ),
    "userdata_path_not_found": (
        "The folder does not exist: check the QMT install folder (miniQMT creates userdata_mini at its first "
        "login).",
        "该目录不存在：请检查 QMT 安装目录（miniQMT 首次登录后才会创建 userdata_mini）。",
    ),
}


def check_trading(settings: Settings, system: str | None = None) -> list[Check]:
    """With trading on: the settings the trader needs to connect (the lane's own rules), the audit
    database's folder, and a key that may trade."""
    from qmtgate.source.trading.lane import settings_problem, simulator_chosen

    t = settings.trading
    if not t.enabled:
        return [
            Check("trading", "info", "trading is off (the default); docs/trading.md says how to enable it")
        ]
    simulated = simulator_chosen(settings, system)
    checks: list[Check] = []
    problem = settings_problem(t, simulated, paper_default=simulated)
    if problem is None:
        if t.account_id:
            checks.append(
                Check("trading", "ok", f"account {t.account_id} ({t.account_type}), {t.userdata_path}")
            )
        else:  # settings_problem allowed it: the simulator's paper account
            accounts = ", ".join(settings.sim.paper_accounts)
            checks.append(
                Check("trading", "ok", f"the simulator's paper account ([sim] paper_accounts: {accounts})")
            )
    else:
        fix_en, fix_zh = _TRADING_FIXES.get(
            problem.reason, ("See docs/trading.md.", "参见 docs/trading.md。")
        )
        checks.append(Check("trading", "fail", problem.message, fix_en, fix_zh, {"reason": problem.reason}))
    folder = Path(t.audit_path).absolute().parent
    if folder.is_dir() and os.access(folder, os.W_OK):
        checks.append(Check("trading_audit", "ok", f"audit trail {Path(t.audit_path).absolute()}"))
    else:
        checks.append(
            Check(
                "trading_audit",
                "fail",
                f"the audit trail's folder {folder} is missing or not writable",
                "Create the folder or set trading.audit_path to a writable place: no order is accepted "
                "without its audit row.",
                "请创建该目录，或把 trading.audit_path 设为可写的位置：没有审计记录，网关不接受任何委托。",
            )
        )
    checks += _kill_switch_check(t.audit_path)
    if not settings.auth.active and not t.allow_loopback_without_auth:
        checks.append(
            Check(
                "trading_keys",
                "warn",
                "auth is off: every trading request will be refused (trading needs a key with the trade scope)",
                "Create one: `qmtgate keys create --keys-file keys.json --scope trade`, and serve with "
                "--keys-file keys.json.",
                "请创建交易密钥：`qmtgate keys create --keys-file keys.json --scope trade`，并以 "
                "--keys-file keys.json 启动。",
            )
        )
    elif settings.auth.active and not _has_trade_key(settings):
        checks.append(
            Check(
                "trading_keys",
                "warn",
                "no active API key has the trade scope: every trading request will be refused",
                "`qmtgate keys create --keys-file <your keys file> --scope trade` (and --scope read,stream for "
                "the data it also needs).",
                "请执行 `qmtgate keys create --keys-file <密钥文件> --scope trade` 创建交易密钥。",
            )
        )
    return checks


def _kill_switch_check(audit_path: str) -> list[Check]:
    """A kill switch left on in the audit database: the gateway will refuse every order after a start."""
    from qmtgate.source.trading.audit import stored_state
    from qmtgate.source.trading.service import KILL_SWITCH

    switch = stored_state(audit_path, KILL_SWITCH)
    if not switch or not switch.get("halted"):
        return []
    since = switch.get("since_ms")
    when = dt.datetime.fromtimestamp(since / 1000, CST).strftime("%Y-%m-%d %H:%M:%S") if since else "?"
    return [
        Check(
            "trading_kill_switch",
            "warn",
            f"the kill switch is on (since {when} CST, key {switch.get('key_id')}): every new order is refused",
            "When it is safe to trade again: `qmtgate trading resume --url <gateway> --api-key <admin key>`.",
            "确认可以恢复交易后执行：`qmtgate trading resume --url <网关地址> --api-key <管理密钥>`。",
            {"since_ms": since, "key_id": switch.get("key_id")},
        )
    ]


def _has_trade_key(settings: Settings) -> bool:
    from qmtgate.security.guard import has_scope
    from qmtgate.security.keys import KeyFileError, KeyStore

    try:
        records = KeyStore(settings.auth.keys, settings.auth.keys_file).records
    except KeyFileError:
        return True  # the security check reports an unreadable key file
    return any(has_scope(r, "trade") and not r.revoked for r in records)


# -- all ---------------------------------------------------------------------------------------------------


def run_checks(settings: Settings, *, probe_xtquant: bool = True) -> list[Check]:
    checks = check_python()
    if probe_xtquant:
        checks += check_xtquant()
    checks += check_qmt(settings)
    checks += check_clock()
    checks += check_port(settings.host, settings.port)
    checks += check_security(settings)
    checks += check_trading(settings)
    checks += check_firewall(settings)
    return checks


_MARK = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL", "info": "INFO"}


def render(checks: Sequence[Check], *, as_json: bool = False) -> str:
    if as_json:
        return json.dumps([asdict(c) for c in checks], ensure_ascii=False, indent=2, default=str)
    lines: list[str] = []
    for c in checks:
        lines.append(f"[{_MARK[c.status]}] {c.name}: {c.summary}")
        if c.fix_en and c.status != "ok":
            lines.append(f"       fix:  {c.fix_en}")
        if c.fix_zh and c.status != "ok":
            lines.append(f"       建议: {c.fix_zh}")
    failed = sum(c.status == "fail" for c in checks)
    lines.append(
        f"{failed} problem(s) to fix / 需处理的问题：{failed} 个"
        if failed
        else "all essential checks passed / 关键检查全部通过"
    )
    return "\n".join(lines)


def exit_code(checks: Sequence[Check]) -> int:
    return 1 if any(c.status == "fail" for c in checks) else 0
