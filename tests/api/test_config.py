from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError

from qmtgate.config import ConfigFileError, Settings, SimClock, SourceKind, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("QMTGATE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def toml_file(tmp_path: Path) -> Path:
    path = tmp_path / "qmtgate.toml"
    path.write_text(
        'host = "0.0.0.0"\nport = 9001\nsource = "sim"\n\n[sim]\nseed = 3\nspeed = 60.0\n\n'
        "[executor]\nhistory_timeout = 45\n",
        encoding="utf-8",
    )
    return path


def test_defaults_bind_loopback() -> None:
    settings = load_settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.source is SourceKind.AUTO
    assert settings.sim.clock is SimClock.LIVE
    assert settings.sim.seed == 0
    assert settings.static_refresh_time == dt.time(9, 0)


def test_precedence_cli_over_env_over_toml(toml_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMTGATE_PORT", "9002")
    monkeypatch.setenv("QMTGATE_SIM__CLOCK", "manual")
    monkeypatch.setenv("QMTGATE_SIM__SEED", "5")
    settings = load_settings(toml_file, port=None, sim={"seed": 7, "speed": None})

    assert settings.host == "0.0.0.0"  # TOML only
    assert settings.port == 9002  # env beats TOML; the CLI flag was not given
    assert settings.sim.seed == 7  # CLI beats env and TOML
    assert settings.sim.speed == 60.0  # TOML, merged key by key with the other sources
    assert settings.sim.clock is SimClock.MANUAL  # env
    assert settings.executor.history_timeout == 45.0
    assert settings.executor.snapshot_timeout == 5.0


def test_config_file_from_environment(toml_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMTGATE_CONFIG", str(toml_file))
    assert load_settings().port == 9001


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError):
        load_settings(tmp_path / "nope.toml")


def test_typos_and_bad_values_are_rejected(tmp_path: Path) -> None:
    typo = tmp_path / "typo.toml"
    typo.write_text("prot = 1\n", encoding="utf-8")
    with pytest.raises(ValidationError):
        load_settings(typo)
    with pytest.raises(ValidationError):
        load_settings(port=70000)
    with pytest.raises(ValidationError):
        load_settings(source="qmt")
    with pytest.raises(ValidationError):
        load_settings(sim={"speed": 0})
    with pytest.raises(ValidationError):
        load_settings(sim={"start": "2025-01-02"})


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]


def test_every_field_is_documented() -> None:
    models = [
        Settings,
        *(type(getattr(Settings(), name)) for name in ("sim", "xtquant", "executor", "limits", "quotes")),
    ]
    for model in models:
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


def test_the_quote_cache_group_is_quotes_and_the_old_name_hub_still_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().quotes.mmap_threshold == 4 * 1024 * 1024
    monkeypatch.setenv("QMTGATE_HUB__MMAP_THRESHOLD", "0")  # documented in docs/reliability.md
    monkeypatch.setenv("QMTGATE_HUB__GC_FREEZE", "false")
    settings = load_settings()
    assert settings.quotes.mmap_threshold == 0 and settings.quotes.gc_freeze is False
    assert not hasattr(settings, "hub")  # one name inside the code
    monkeypatch.setenv("QMTGATE_QUOTES__MMAP_THRESHOLD", "1048576")  # the new name wins
    assert load_settings().quotes.mmap_threshold == 1048576 and load_settings().quotes.gc_freeze is False
    monkeypatch.delenv("QMTGATE_HUB__MMAP_THRESHOLD")
    monkeypatch.delenv("QMTGATE_HUB__GC_FREEZE")
    monkeypatch.delenv("QMTGATE_QUOTES__MMAP_THRESHOLD")
    old = tmp_path / "old.toml"
    old.write_text('[hub]\nenabled = false\nmarkets = ["SH"]\n', encoding="utf-8")
    settings = load_settings(old)
    assert settings.quotes.enabled is False and settings.quotes.markets == ("SH",)
    assert Settings(hub={"markets": ["BJ"]}).quotes.markets == ("BJ",)
    with pytest.raises(ValueError):
        Settings(hub={"markets": ["XX"]})  # validated like the new name
