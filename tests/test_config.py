"""config.toml: defaults, the environment, and one clear line naming a bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, load_config
from tests.conftest import ROOT


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_matches_the_defaults() -> None:
    config = load_config(ROOT / "config.toml", env={})
    assert config.bot.timezone == "Asia/Ho_Chi_Minh"
    assert config.bot.language == "vi"
    assert config.database.url == "sqlite+aiosqlite:///data/tiendo.db"
    assert config.telegram.api_base_url == "https://api.telegram.org/bot"


def test_an_empty_file_gives_the_same_settings_as_the_shipped_one(tmp_path: Path) -> None:
    shipped = load_config(ROOT / "config.toml", env={})
    empty = load_config(write(tmp_path, ""), env={})
    for section in (
        "bot",
        "telegram",
        "database",
        "reporting",
        "work",
        "nudges",
        "digest",
        "invites",
        "imports",
    ):
        assert getattr(shipped, section) == getattr(empty, section), section


def test_environment_supplies_token_and_database(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, ""),
        env={
            "TELEGRAM_BOT_TOKEN": "42:abc",
            "TIENDO_DATABASE_URL": "postgresql+asyncpg://x@h/db",
        },
    )
    assert config.token == "42:abc"
    assert config.database_url == "postgresql+asyncpg://x@h/db"
    assert "42:abc" not in repr(config)


def test_tiendo_config_selects_another_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[bot]\nlanguage = "en"\n')
    assert load_config(env={"TIENDO_CONFIG": str(path)}).bot.language == "en"


def test_relative_sqlite_path_is_beside_the_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), env={})
    assert config.database_url == f"sqlite+aiosqlite:///{tmp_path}/data/tiendo.db"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[bot]\nadmins = ["x"]\n', "bot.admins[0]"),
        ("[bot]\ncolour = 1\n", "bot.colour"),
        ('[bot]\ntimezone = "Mars/Olympus"\n', "bot.timezone"),
        ('[telegram]\napi_base_url = "ftp://x"\n', "telegram.api_base_url"),
        ('[telegram]\napi_base_url = "not a url"\n', "telegram.api_base_url"),
        ('[database]\nurl = "mysql://x"\n', "database.url"),
        ('[database]\necho = "yes"\n', "database.echo"),
        ('[work]\nstart = "25:00"\n', "work.start"),
        ('[work]\nextra_days_off = ["2025-02-30"]\n', "work.extra_days_off[0]"),
        ('[digest]\nschedule = "funday 16:00"\n', "digest.schedule"),
        ("[nope]\n", "[nope]"),
        ('[bot]\nlanguage = "fr"\n', "bot.language"),
        ("[telegram]\nwebhook_port = true\n", "telegram.webhook_port"),
        ('[telegram]\nmode = "webhook"\n', "telegram.webhook_url"),
        ('[work]\nstart = "09:00"\nend = "08:00"\n', "work.end"),
        ("[work]\ndays = []\n", "work.days"),  # no working day: no reminder could ever be placed
        ("[reporting]\nevidence_max_mb = 21\n", "reporting.evidence_max_mb"),
        ('[nudges]\nperiod_reminders = ["friday 09:00", "someday"]\n', "nudges.period_reminders[1]"),
        ("bot = 3\n", "[bot]"),
        ('token = "42:abc"\n', "[token]"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env={})
    assert str(caught.value).startswith(key)


def test_cli_stops_with_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[bot]\ntimezone = "Nowhere/City"\n')
    assert main(["--config", str(path), "init"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "bot.timezone" in err


def test_a_bad_database_url_from_the_environment_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^database\.url: "):
        load_config(write(tmp_path, ""), env={"TIENDO_DATABASE_URL": "mysql://x"})


def test_with_overrides_changes_only_the_named_keys_and_checks_them(tmp_path: Path) -> None:
    base = load_config(write(tmp_path, '[bot]\nlanguage = "en"\n'), env={})
    changed = base.with_overrides(bot={"admins": [7]}, token="1:x")
    assert changed.bot.admins == [7] and changed.bot.language == "en" and changed.token == "1:x"
    assert base.bot.admins == [] and base.token == ""
    with pytest.raises(ConfigError, match=r"^bot\.timezone: unknown time zone 'Nowhere/City'"):
        base.with_overrides(bot={"timezone": "Nowhere/City"})
    with pytest.raises(ConfigError, match=r"^bot\.colour: unknown setting"):
        base.with_overrides(bot={"colour": 1})
