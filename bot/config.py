"""Configuration: config.toml loaded into typed, validated section models (msgspec).

Every setting has a default here and is documented in config.toml at the repository root.
Secrets never come from the file: the bot token is read from TELEGRAM_BOT_TOKEN.
A bad value raises ConfigError whose message names the key; the CLI turns it into one line and
exit code 2.

The sections are plain frozen dataclasses. msgspec checks each section's types when the file is
loaded (strictly: "1" is not a number, true is not a port), and the checks written beside the
types (`Annotated[str, Check(...)]`) check the values. msgspec rather than pydantic: the same
typed models at a twentieth of the memory (pydantic cost a running bot ~9 MiB, issue 12
item 8). `Config.with_overrides` makes a changed, checked copy.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = ROOT / "config.toml"

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
LANGUAGES = ("vi", "en")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A setting is missing, unknown or has a bad value; the message names the key."""


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


# Setting types: the stored value stays what the file says (a str, an int); a Check only
# checks it. A ValueError's text becomes the "problem" half of "key: problem".


@dataclass(frozen=True)
class Check:
    """A check on a setting's value, written in its type: Annotated[int, Check(...)]."""

    check: Callable[[Any], object]  # raises ValueError(problem)


def _parses(parse: Callable[[str], object]) -> Check:
    return Check(parse)


def _between(low: int, high: int, why: str = "") -> Check:
    def check(value: int) -> None:
        if not low <= value <= high:
            raise ValueError(f"{low} to {high}{why}")

    return Check(check)


def _satisfies(ok: Callable[[Any], bool], why: str) -> Check:
    def check(value: Any) -> None:
        if not ok(value):
            raise ValueError(why)

    return Check(check)


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


def _http_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return url


def _iso_date(text: str) -> str:
    try:
        date.fromisoformat(text)
    except ValueError:
        raise ValueError("not a date like 2025-05-02") from None
    return text


def _weekday(day: str) -> str:
    if day not in WEEKDAYS:
        raise ValueError(f"not a weekday name: {day!r}")
    return day


Clock = Annotated[str, _parses(parse_clock)]
Duration = Annotated[str, _parses(parse_duration)]
WeekdayClock = Annotated[str, _parses(parse_weekday_clock)]
Weekday = Annotated[str, Check(_weekday)]
IsoDate = Annotated[str, Check(_iso_date)]
HttpUrl = Annotated[str, Check(_http_url)]
LogLevel = Annotated[str, _satisfies(lambda level: level.upper() in LOG_LEVELS, "not a logging level")]


@dataclass(frozen=True)
class BotSection:
    admins: list[int] = field(default_factory=list)
    timezone: Annotated[str, Check(_zone)] = "Asia/Ho_Chi_Minh"
    language: Literal["vi", "en"] = "vi"
    data_dir: str = "data"
    log_level: LogLevel = "INFO"
    # "text": one line per record for people; "json": one JSON object per line for a log
    # collector (bot/logs.py). Both pass the redacting filter.
    log_format: Literal["text", "json"] = "text"


@dataclass(frozen=True)
class TelegramSection:
    api_base_url: HttpUrl = "https://api.telegram.org/bot"
    api_base_file_url: HttpUrl = "https://api.telegram.org/file/bot"
    username: str = ""
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1"
    webhook_port: Annotated[int, _between(1, 65535, " (a TCP port)")] = 8443
    poll_timeout: Annotated[int, _between(0, 60, " seconds")] = 30
    concurrent_updates: Annotated[int, _between(1, 256)] = 8
    rate_limiter: bool = True

    def problems(self) -> Iterator[tuple[str, str]]:
        parsed = urlparse(self.webhook_url)
        if self.mode == "webhook" and (parsed.scheme != "https" or not parsed.netloc):
            yield "webhook_url", "webhook mode needs a public https URL"


@dataclass(frozen=True)
class DatabaseSection:
    url: Annotated[
        str,
        _satisfies(
            lambda url: url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")),
            "use sqlite+aiosqlite:///… or postgresql+asyncpg://…",
        ),
    ] = "sqlite+aiosqlite:///data/tiendo.db"
    echo: bool = False
    on_outdated_schema: Literal["migrate", "refuse"] = "migrate"


_EVIDENCE_EXTENSIONS = ["pdf", "doc", "docx", "xls", "xlsx", "odt", "ods", "jpg", "jpeg", "png", "zip"]


@dataclass(frozen=True)
class ReportingSection:
    period: Literal["weekly", "monthly", "quarterly"] = "weekly"
    cutoff_weekday: Weekday = "thursday"
    cutoff_time: Clock = "17:00"
    cutoff_day: Annotated[int, _between(1, 28)] = 25
    draft_timeout: Duration = "24h"
    draft_check_interval: Annotated[int, _between(10, 86400, " seconds")] = 300
    max_text_length: Annotated[int, _between(50, 3500)] = 2000
    evidence_max_mb: Annotated[int, _between(1, 20, " (the Bot API serves files up to 20 MB)")] = 20
    evidence_extensions: list[str] = field(default_factory=lambda: list(_EVIDENCE_EXTENSIONS))


@dataclass(frozen=True)
class WorkSection:
    days: list[Weekday] = field(default_factory=lambda: list(WEEKDAYS[:5]))
    start: Clock = "08:00"
    end: Clock = "17:00"
    country: str = "VN"
    extra_days_off: list[IsoDate] = field(default_factory=list)
    working_weekend_days: list[IsoDate] = field(default_factory=list)

    def problems(self) -> Iterator[tuple[str, str]]:
        if not self.days:
            yield "days", "at least one working day"
        if parse_clock(self.end) <= parse_clock(self.start):
            yield "end", "must be later than work.start"


@dataclass(frozen=True)
class NudgesSection:
    before_days: list[Annotated[int, _satisfies(lambda d: d > 0, "working days before must be positive")]] = (
        field(default_factory=lambda: [7, 3, 1])
    )
    on_the_day: bool = True
    overdue_every_days: Annotated[int, _satisfies(lambda d: d >= 1, "at least 1")] = 2
    escalate_after_days: int = 3
    include_coordinating: bool = False
    send_at: Clock = "09:00"
    period_reminders: list[WeekdayClock] = field(default_factory=lambda: ["thursday 09:00", "friday 09:00"])
    dispatch_interval: Annotated[int, _between(1, 300, " seconds")] = 5
    plan_interval: Annotated[int, _between(10, 3600, " seconds")] = 120
    max_per_second: Annotated[int, _between(1, 30, " (Telegram allows about 30 messages per second)")] = 28


@dataclass(frozen=True)
class DigestSection:
    schedule: WeekdayClock = "friday 16:00"
    templates_dir: str = ""
    parent_body: str = "BỘ KHOA HỌC VÀ CÔNG NGHỆ"
    issuing_body: str = "VĂN PHÒNG BỘ"
    issuing_body_name: str = "Văn phòng Bộ"  # as a sentence names it (and the Word file's author)
    issuing_code: str = "VP"
    place: str = "Hà Nội"
    # The signature block (Decree 30): authority line (KT./TL./Q. + the leader's title), the
    # signer's own title and name.
    signer_authority: str = "TL. BỘ TRƯỞNG"
    signer_title: str = "CHÁNH VĂN PHÒNG"
    signer_name: str = ""
    recipients: list[str] = field(
        default_factory=lambda: [
            "Bộ trưởng (để báo cáo)",
            "Các Thứ trưởng (để biết)",
            "Lưu: VT, VP",
        ]
    )
    # Used when the report data carries no programme record.
    programme_title: str = "Chương trình hành động"
    decision: str = ""


@dataclass(frozen=True)
class InvitesSection:
    default_expiry: Duration = "7d"


@dataclass(frozen=True)
class AdminSection:
    import_max_kb: Annotated[int, _between(1, 10240)] = 2048
    audit_default: Annotated[int, _between(1, 100)] = 20


@dataclass(frozen=True)
class ImportSection:
    """[import]: the bounds on every plan file (`tiendo import` and /import in chat)."""

    max_rows: Annotated[int, _between(1, 1_000_000)] = 10_000
    max_unpacked_mb: Annotated[int, _between(1, 1024)] = 40
    max_ratio: Annotated[int, _between(10, 10_000)] = 200
    memory_mb: Annotated[int, _between(128, 16_384)] = 384
    seconds: Annotated[int, _between(1, 3600)] = 30


@dataclass(frozen=True)
class HealthSection:
    """[health]: /healthz, /readyz and /metrics on a listener of their own (bot/health.py);
    port 0 opens none (webhook mode serves them beside the webhook anyway)."""

    listen: str = "127.0.0.1"
    port: Annotated[int, _between(0, 65535, " (a TCP port, or 0 for none)")] = 0


SECTIONS = (
    "bot",
    "telegram",
    "database",
    "reporting",
    "work",
    "nudges",
    "digest",
    "invites",
    "admin",
    "imports",
    "health",
)
# Sections whose name in the file is not their field's name ("import" is a Python keyword).
FILE_NAMES = {"imports": "import"}


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
    imports: ImportSection = field(default_factory=ImportSection)  # [import] in the file
    health: HealthSection = field(default_factory=HealthSection)
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

    def with_overrides(self, **changes: Any) -> Config:
        """A checked copy with some settings changed, e.g. (tests)
        `config.with_overrides(bot={"admins": [1000]}, database={"url": url}, token="1:x")`.

        A section given as a dict changes only the keys it names; a section object or a top-level
        field (token, source) replaces the whole value. Bad values raise ConfigError like the file.
        """
        raw: dict[str, Any] = {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}
        token, source = changes.pop("token", self.token), changes.pop("source", self.source)
        for name, value in changes.items():
            if name not in SECTIONS:
                raise TypeError(f"Config has no section {name!r}")
            raw[name] = {**raw[name], **value} if isinstance(value, Mapping) else dataclasses.asdict(value)
        return _build(raw, token, source)


SECTION_TYPES: dict[str, type[Any]] = {
    "bot": BotSection,
    "telegram": TelegramSection,
    "database": DatabaseSection,
    "reporting": ReportingSection,
    "work": WorkSection,
    "nudges": NudgesSection,
    "digest": DigestSection,
    "invites": InvitesSection,
    "admin": AdminSection,
    "imports": ImportSection,
    "health": HealthSection,
}


def _file_key(section: str, path: str = "") -> str:
    """A key as the file spells it: bot.admins[0], import.max_rows."""
    name = FILE_NAMES.get(section, section)
    if not path:
        return name
    return f"{name}{path}" if path.startswith("[") else f"{name}.{path}"


def _type_error(section: str, error: msgspec.ValidationError) -> ConfigError:
    """msgspec's complaint ("Expected `int`, got `str` - at `$.admins[0]`") as 'key: problem'."""
    text = str(error)
    problem, _, where = text.rpartition(" - at `$")
    if not _:
        problem, where = text, "`"
    problem = problem[:1].lower() + problem[1:]
    return ConfigError(f"{_file_key(section, where.rstrip('`').lstrip('.'))}: {problem}")


def _check_value(key: str, hint: Any, value: Any) -> None:
    """Run the Checks written in a setting's type (and its items' types) on its value."""
    if get_origin(hint) is Annotated:
        base, *marks = get_args(hint)
        for mark in marks:
            if isinstance(mark, Check):
                try:
                    mark.check(value)
                except ValueError as exc:
                    raise ConfigError(f"{key}: {exc}") from None
        _check_value(key, base, value)
    elif get_origin(hint) is list:
        (item,) = get_args(hint)
        for index, element in enumerate(value):
            _check_value(f"{key}[{index}]", item, element)


def _section(name: str, raw: object) -> Any:
    """One section from the file's table: known keys only, types, then values."""
    kind = SECTION_TYPES[name]
    if not isinstance(raw, Mapping):
        raise ConfigError(f"[{FILE_NAMES.get(name, name)}]: expected a table of settings")
    known = {f.name for f in dataclasses.fields(kind)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{_file_key(name, str(key))}: unknown setting")
    try:
        section = msgspec.convert(dict(raw), kind, strict=True)
    except msgspec.ValidationError as exc:
        raise _type_error(name, exc) from None
    for key, hint in get_type_hints(kind, include_extras=True).items():
        _check_value(_file_key(name, key), hint, getattr(section, key))
    for key, problem in getattr(section, "problems", lambda: ())():
        raise ConfigError(f"{_file_key(name, key)}: {problem}")
    return section


def _build(raw: Mapping[str, Any], token: str, source: Path | None) -> Config:
    sections = {name: _section(name, raw.get(name, {})) for name in SECTIONS}
    return Config(**sections, token=token, source=source)


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load the config file (TIENDO_CONFIG or ./config.toml) and apply the environment.

    From the environment only: TELEGRAM_BOT_TOKEN (the token), TIENDO_DATABASE_URL (overrides
    [database] url), TIENDO_WEBHOOK_PORT (overrides [telegram] webhook_port: one per process
    when several share a host, deploy/systemd/tiendo@.service) and TIENDO_CONFIG (which file),
    as README documents.
    """
    env = os.environ if env is None else env
    if path is None:
        path = env.get("TIENDO_CONFIG") or (
            Path("config.toml") if Path("config.toml").exists() else DEFAULT_CONFIG_PATH
        )
    path = Path(path)
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    in_file = {name: FILE_NAMES.get(name, name) for name in SECTIONS}
    for name in list(raw):
        if name not in in_file.values():  # also keeps `token` and `source` out of the file
            raise ConfigError(f"[{name}]: unknown section")
    for field_name, name in in_file.items():
        if name != field_name and name in raw:
            raw[field_name] = raw.pop(name)
    database = raw.get("database", {})
    if env.get("TIENDO_DATABASE_URL") and isinstance(database, dict):
        raw["database"] = {**database, "url": env["TIENDO_DATABASE_URL"]}
    telegram = raw.get("telegram", {})
    port = env.get("TIENDO_WEBHOOK_PORT", "").strip()
    if port and isinstance(telegram, dict):
        raw["telegram"] = {**telegram, "webhook_port": int(port) if port.isdigit() else port}
    return _build(raw, env.get("TELEGRAM_BOT_TOKEN", "").strip(), path.resolve())
