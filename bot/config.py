"""Configuration: config.toml loaded into typed, validated section models.

Every setting has a default here and is documented in config.toml at the repository root.
Secrets never come from the file: the bot token is read from TELEGRAM_BOT_TOKEN.
A bad value raises ConfigError whose message names the key; the CLI turns it into one line and
exit code 2.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = ROOT / "config.toml"

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
LANGUAGES = ("vi", "en")


class ConfigError(ValueError):
    """A setting is missing, unknown or has a bad value; the message names the key."""


@dataclass(frozen=True)
class BotSection:
    admins: list[int] = field(default_factory=list)
    timezone: str = "Asia/Ho_Chi_Minh"
    language: str = "vi"
    data_dir: str = "data"
    log_level: str = "INFO"


@dataclass(frozen=True)
class TelegramSection:
    api_base_url: str = "https://api.telegram.org/bot"
    api_base_file_url: str = "https://api.telegram.org/file/bot"
    username: str = ""
    mode: str = "polling"
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    poll_timeout: int = 30
    concurrent_updates: int = 8
    rate_limiter: bool = True


@dataclass(frozen=True)
class DatabaseSection:
    url: str = "sqlite+aiosqlite:///data/tiendo.db"
    echo: bool = False
    on_outdated_schema: str = "migrate"


@dataclass(frozen=True)
class ReportingSection:
    period: str = "weekly"
    cutoff_weekday: str = "thursday"
    cutoff_time: str = "17:00"
    cutoff_day: int = 25
    draft_timeout: str = "24h"
    draft_check_interval: int = 300
    max_text_length: int = 2000
    evidence_max_mb: int = 20
    evidence_extensions: list[str] = field(
        default_factory=lambda: [
            "pdf",
            "doc",
            "docx",
            "xls",
            "xlsx",
            "odt",
            "ods",
            "jpg",
            "jpeg",
            "png",
            "zip",
        ]
    )


@dataclass(frozen=True)
class WorkSection:
    days: list[str] = field(default_factory=lambda: ["monday", "tuesday", "wednesday", "thursday", "friday"])
    start: str = "08:00"
    end: str = "17:00"
    country: str = "VN"
    extra_days_off: list[str] = field(default_factory=list)
    working_weekend_days: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NudgesSection:
    before_days: list[int] = field(default_factory=lambda: [7, 3, 1])
    on_the_day: bool = True
    overdue_every_days: int = 2
    escalate_after_days: int = 3
    include_coordinating: bool = False
    send_at: str = "09:00"
    period_reminders: list[str] = field(default_factory=lambda: ["thursday 09:00", "friday 09:00"])
    dispatch_interval: int = 5
    plan_interval: int = 120
    max_per_second: int = 28


@dataclass(frozen=True)
class DigestSection:
    schedule: str = "friday 16:00"
    templates_dir: str = ""
    parent_body: str = "BỘ KHOA HỌC VÀ CÔNG NGHỆ"
    issuing_body: str = "VĂN PHÒNG BỘ"
    issuing_code: str = "VP"
    place: str = "Hà Nội"
    signer_title: str = "CHÁNH VĂN PHÒNG"
    signer_name: str = ""
    recipients: list[str] = field(
        default_factory=lambda: [
            "Bộ trưởng (để báo cáo)",
            "Các Thứ trưởng (để biết)",
            "Lưu: VT, VP.",
        ]
    )


@dataclass(frozen=True)
class InvitesSection:
    default_expiry: str = "7d"


@dataclass(frozen=True)
class AdminSection:
    import_max_kb: int = 2048
    audit_default: int = 20


@dataclass(frozen=True)
class ImportSection:
    """[import]: the bounds on every plan file (`tiendo import` and /import in chat)."""

    max_rows: int = 10_000
    max_unpacked_mb: int = 40
    max_ratio: int = 200
    memory_mb: int = 384
    seconds: int = 30


@dataclass(frozen=True)
class Config:
    bot: BotSection = field(default_factory=BotSection)
    telegram: TelegramSection = field(default_factory=TelegramSection)
    database: DatabaseSection = field(default_factory=DatabaseSection)
    reporting: ReportingSection = field(default_factory=ReportingSection)
    work: WorkSection = field(default_factory=WorkSection)
    nudges: NudgesSection = field(default_factory=NudgesSection)
    digest: DigestSection = field(default_factory=DigestSection)
    invites: InvitesSection = field(default_factory=InvitesSection)
    admin: AdminSection = field(default_factory=AdminSection)
    # [import] in the file ("import" is a Python keyword).
    imports: ImportSection = field(default_factory=ImportSection)
    # Not from the file: the secret token (environment) and where the file was.
    token: str = field(default="", repr=False)
    source: Path | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.bot.timezone)

    @property
    def data_path(self) -> Path:
        path = Path(self.bot.data_dir)
        if not path.is_absolute() and self.source is not None:
            path = self.source.parent / path
        return path

    @property
    def database_url(self) -> str:
        """The database URL with a relative SQLite path resolved against the config's folder."""
        url = self.database.url
        prefix = "sqlite+aiosqlite:///"
        if url.startswith(prefix) and self.source is not None:
            rest = url[len(prefix) :]
            if rest and not rest.startswith((":memory:", "/")):
                return prefix + str(self.source.parent / rest)
        return url

    @property
    def draft_timeout(self) -> timedelta:
        return parse_duration(self.reporting.draft_timeout)

    def with_overrides(self, **sections: object) -> Config:
        """Return a copy with whole sections or top-level fields replaced (used by tests)."""
        return dataclasses.replace(self, **sections)  # type: ignore[arg-type]


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """Parse '90s', '30m', '24h', '7d' or '2w' into a timedelta."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"not a duration like 30m, 24h or 7d: {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_clock(text: str) -> time:
    """Parse 'HH:MM' (24-hour)."""
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if not match:
        raise ValueError(f"not a time like 09:00: {text!r}")
    return time(int(match.group(1)), int(match.group(2)))


def parse_weekday_clock(text: str) -> tuple[int, time]:
    """Parse 'friday 16:00' into (weekday Monday=0, time)."""
    parts = text.lower().split()
    if len(parts) != 2 or parts[0] not in WEEKDAYS:
        raise ValueError(f"not a schedule like 'friday 16:00': {text!r}")
    return WEEKDAYS.index(parts[0]), parse_clock(parts[1])


def _check_type(key: str, value: object, annotation: object) -> object:
    origin = typing.get_origin(annotation)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
        return [_check_type(f"{key}[{i}]", v, item_type) for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"{key}: unsupported setting type")
    assert isinstance(annotation, type)
    # bool is an int in Python: refuse it where a number is expected and vice versa.
    if annotation is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    if not isinstance(value, annotation):
        raise ConfigError(f"{key}: expected {annotation.__name__}, got {value!r}")
    return value


def _build_section(name: str, cls: type, raw: object) -> object:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}]: expected a table of settings")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{name}.{key}: unknown setting")
    values = {key: _check_type(f"{name}.{key}", value, hints[key]) for key, value in raw.items()}
    return cls(**values)


def _validate(config: Config) -> None:
    def check(key: str, ok: bool, why: str) -> None:
        if not ok:
            raise ConfigError(f"{key}: {why}")

    try:
        ZoneInfo(config.bot.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"bot.timezone: unknown time zone {config.bot.timezone!r}") from None
    check("bot.language", config.bot.language in LANGUAGES, f"must be one of {LANGUAGES}")
    check(
        "bot.log_level",
        config.bot.log_level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
        "not a logging level",
    )
    for key in ("api_base_url", "api_base_file_url"):
        url = getattr(config.telegram, key)
        parsed = urlparse(url)
        check(
            f"telegram.{key}",
            parsed.scheme in ("http", "https") and bool(parsed.netloc),
            f"not an http(s) URL: {url!r}",
        )
    check("telegram.mode", config.telegram.mode in ("polling", "webhook"), "must be 'polling' or 'webhook'")
    if config.telegram.mode == "webhook":
        parsed = urlparse(config.telegram.webhook_url)
        check(
            "telegram.webhook_url",
            parsed.scheme == "https" and bool(parsed.netloc),
            "webhook mode needs a public https URL",
        )
    check("telegram.webhook_port", 0 < config.telegram.webhook_port < 65536, "not a port")
    check("telegram.poll_timeout", 0 <= config.telegram.poll_timeout <= 60, "0 to 60 seconds")
    check("telegram.concurrent_updates", 1 <= config.telegram.concurrent_updates <= 256, "1 to 256")
    url = config.database_url
    check(
        "database.url",
        url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")),
        "use sqlite+aiosqlite:///… or postgresql+asyncpg://…",
    )
    check(
        "database.on_outdated_schema",
        config.database.on_outdated_schema in ("migrate", "refuse"),
        "must be 'migrate' or 'refuse'",
    )
    rep = config.reporting
    check(
        "reporting.period",
        rep.period in ("weekly", "monthly", "quarterly"),
        "must be weekly, monthly or quarterly",
    )
    check("reporting.cutoff_weekday", rep.cutoff_weekday in WEEKDAYS, "not a weekday name")
    check("reporting.cutoff_day", 1 <= rep.cutoff_day <= 28, "1 to 28")
    check("reporting.draft_check_interval", 10 <= rep.draft_check_interval <= 86400, "10 to 86400 seconds")
    check("reporting.max_text_length", 50 <= rep.max_text_length <= 3500, "50 to 3500")
    check(
        "reporting.evidence_max_mb",
        1 <= rep.evidence_max_mb <= 20,
        "1 to 20 (the Bot API serves files up to 20 MB)",
    )
    for key, text, parse in (
        ("reporting.cutoff_time", rep.cutoff_time, parse_clock),
        ("reporting.draft_timeout", rep.draft_timeout, parse_duration),
        ("work.start", config.work.start, parse_clock),
        ("work.end", config.work.end, parse_clock),
        ("nudges.send_at", config.nudges.send_at, parse_clock),
        ("digest.schedule", config.digest.schedule, parse_weekday_clock),
        ("invites.default_expiry", config.invites.default_expiry, parse_duration),
    ):
        try:
            parse(text)  # type: ignore[operator]
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    for i, text in enumerate(config.nudges.period_reminders):
        try:
            parse_weekday_clock(text)
        except ValueError as exc:
            raise ConfigError(f"nudges.period_reminders[{i}]: {exc}") from None
    check(
        "work.end",
        parse_clock(config.work.end) > parse_clock(config.work.start),
        "must be later than work.start",
    )
    for i, day in enumerate(config.work.days):
        check(f"work.days[{i}]", day in WEEKDAYS, f"not a weekday name: {day!r}")
    for key in ("extra_days_off", "working_weekend_days"):
        for i, text in enumerate(getattr(config.work, key)):
            try:
                date.fromisoformat(text)
            except ValueError:
                raise ConfigError(f"work.{key}[{i}]: not a date like 2025-05-02") from None
    check(
        "nudges.before_days",
        all(d > 0 for d in config.nudges.before_days),
        "working days before must be positive",
    )
    check("nudges.overdue_every_days", config.nudges.overdue_every_days >= 1, "at least 1")
    check("nudges.dispatch_interval", 1 <= config.nudges.dispatch_interval <= 300, "1 to 300")
    check("admin.import_max_kb", 1 <= config.admin.import_max_kb <= 10240, "1 to 10240")
    check("admin.audit_default", 1 <= config.admin.audit_default <= 100, "1 to 100")
    check("import.max_rows", 1 <= config.imports.max_rows <= 1_000_000, "1 to 1000000")
    check("import.max_unpacked_mb", 1 <= config.imports.max_unpacked_mb <= 1024, "1 to 1024")
    check("import.max_ratio", 10 <= config.imports.max_ratio <= 10_000, "10 to 10000")
    check("import.memory_mb", 128 <= config.imports.memory_mb <= 16_384, "128 to 16384")
    check("import.seconds", 1 <= config.imports.seconds <= 3600, "1 to 3600")
    check("nudges.plan_interval", 10 <= config.nudges.plan_interval <= 3600, "10 to 3600")
    check(
        "nudges.max_per_second",
        1 <= config.nudges.max_per_second <= 30,
        "1 to 30 (Telegram allows about 30 messages per second)",
    )


_SECTIONS = {f.name: f.type for f in dataclasses.fields(Config) if f.name not in ("token", "source")}
# Sections whose name in the file is not their field's name.
_FILE_NAMES = {"import": "imports"}


def load_config(path: str | Path | None = None, env: typing.Mapping[str, str] | None = None) -> Config:
    """Load the config file (TIENDO_CONFIG or ./config.toml) and apply the environment."""
    env = os.environ if env is None else env
    if path is None:
        path = env.get("TIENDO_CONFIG") or (
            Path("config.toml") if Path("config.toml").exists() else DEFAULT_CONFIG_PATH
        )
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    hints = typing.get_type_hints(Config)
    sections: dict[str, object] = {}
    for name, value in raw.items():
        field_name = _FILE_NAMES.get(name, name)
        if field_name not in _SECTIONS or name in _FILE_NAMES.values():
            raise ConfigError(f"[{name}]: unknown section")
        sections[field_name] = _build_section(name, hints[field_name], value)
    config = Config(
        **sections,
        token=env.get("TELEGRAM_BOT_TOKEN", "").strip(),  # type: ignore[arg-type]
        source=path.resolve(),
    )
    if env.get("TIENDO_DATABASE_URL"):
        config = dataclasses.replace(
            config, database=dataclasses.replace(config.database, url=env["TIENDO_DATABASE_URL"])
        )
    _validate(config)
    return config
