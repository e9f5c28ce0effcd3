"""Configuration: config.toml loaded into typed, validated section models (pydantic v2).

Every setting has a default here and is documented in config.toml at the repository root.
Secrets never come from the file: the bot token is read from TELEGRAM_BOT_TOKEN.
A bad value raises ConfigError whose message names the key; the CLI turns it into one line and
exit code 2.

The sections are pydantic dataclasses: pydantic checks types and values when one is built, and
they stay plain frozen dataclasses to the code that reads them. `Config.with_overrides` (or
`dataclasses.replace`, which runs the same checks) makes a changed copy.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import field
from datetime import date, time, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, cast
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    ConfigDict,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.dataclasses import dataclass
from pydantic_core import ErrorDetails

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = ROOT / "config.toml"

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
LANGUAGES = ("vi", "en")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


T = TypeVar("T")


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


# Setting types: the stored value stays what the file says (a str, an int); the validator only
# checks it. A ValueError's text becomes the "problem" half of "key: problem".


def _parses(parse: Callable[[str], object]) -> AfterValidator:
    def check(text: str) -> str:
        parse(text)
        return text

    return AfterValidator(check)


def _between(low: int, high: int, why: str = "") -> AfterValidator:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"{low} to {high}{why}")
        return value

    return AfterValidator(check)


def _satisfies(ok: Callable[[Any], bool], why: str) -> AfterValidator:
    def check(value: Any) -> Any:
        if not ok(value):
            raise ValueError(why)
        return value

    return AfterValidator(check)


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


Clock = Annotated[StrictStr, _parses(parse_clock)]
Duration = Annotated[StrictStr, _parses(parse_duration)]
WeekdayClock = Annotated[StrictStr, _parses(parse_weekday_clock)]
Weekday = Annotated[StrictStr, AfterValidator(_weekday)]
IsoDate = Annotated[StrictStr, AfterValidator(_iso_date)]
HttpUrl = Annotated[StrictStr, AfterValidator(_http_url)]

_SECTION = ConfigDict(extra="forbid", validate_default=True)


@dataclass(frozen=True, config=_SECTION)
class BotSection:
    admins: list[StrictInt] = field(default_factory=list)
    timezone: Annotated[StrictStr, AfterValidator(_zone)] = "Asia/Ho_Chi_Minh"
    language: Literal["vi", "en"] = "vi"
    data_dir: StrictStr = "data"
    log_level: Annotated[StrictStr, _satisfies(lambda v: v.upper() in LOG_LEVELS, "not a logging level")] = (
        "INFO"
    )
    # "text": one line per record for people; "json": one JSON object per line for a log
    # collector (bot/logs.py). Both pass the redacting filter.
    log_format: Literal["text", "json"] = "text"


@dataclass(frozen=True, config=_SECTION)
class TelegramSection:
    api_base_url: HttpUrl = "https://api.telegram.org/bot"
    api_base_file_url: HttpUrl = "https://api.telegram.org/file/bot"
    username: StrictStr = ""
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: StrictStr = ""
    webhook_listen: StrictStr = "127.0.0.1"
    webhook_port: Annotated[StrictInt, _between(1, 65535, " (a TCP port)")] = 8443
    poll_timeout: Annotated[StrictInt, _between(0, 60, " seconds")] = 30
    concurrent_updates: Annotated[StrictInt, _between(1, 256)] = 8
    rate_limiter: StrictBool = True

    @field_validator("webhook_url")
    @classmethod
    def _public_https_in_webhook_mode(cls, url: str, info: ValidationInfo) -> str:
        parsed = urlparse(url)
        if info.data.get("mode") == "webhook" and (parsed.scheme != "https" or not parsed.netloc):
            raise ValueError("webhook mode needs a public https URL")
        return url


@dataclass(frozen=True, config=_SECTION)
class DatabaseSection:
    url: Annotated[
        StrictStr,
        _satisfies(
            lambda url: url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")),
            "use sqlite+aiosqlite:///… or postgresql+asyncpg://…",
        ),
    ] = "sqlite+aiosqlite:///data/tiendo.db"
    echo: StrictBool = False
    on_outdated_schema: Literal["migrate", "refuse"] = "migrate"


_EVIDENCE_EXTENSIONS = ["pdf", "doc", "docx", "xls", "xlsx", "odt", "ods", "jpg", "jpeg", "png", "zip"]


@dataclass(frozen=True, config=_SECTION)
class ReportingSection:
    period: Literal["weekly", "monthly", "quarterly"] = "weekly"
    cutoff_weekday: Weekday = "thursday"
    cutoff_time: Clock = "17:00"
    cutoff_day: Annotated[StrictInt, _between(1, 28)] = 25
    draft_timeout: Duration = "24h"
    draft_check_interval: Annotated[StrictInt, _between(10, 86400, " seconds")] = 300
    max_text_length: Annotated[StrictInt, _between(50, 3500)] = 2000
    evidence_max_mb: Annotated[StrictInt, _between(1, 20, " (the Bot API serves files up to 20 MB)")] = 20
    evidence_extensions: list[StrictStr] = field(default_factory=lambda: list(_EVIDENCE_EXTENSIONS))


@dataclass(frozen=True, config=_SECTION)
class WorkSection:
    days: list[Weekday] = field(default_factory=lambda: list(WEEKDAYS[:5]))
    start: Clock = "08:00"
    end: Clock = "17:00"
    country: StrictStr = "VN"
    extra_days_off: list[IsoDate] = field(default_factory=list)
    working_weekend_days: list[IsoDate] = field(default_factory=list)

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: str, info: ValidationInfo) -> str:
        start = info.data.get("start")
        if start is not None and parse_clock(end) <= parse_clock(start):
            raise ValueError("must be later than work.start")
        return end


@dataclass(frozen=True, config=_SECTION)
class NudgesSection:
    before_days: list[
        Annotated[StrictInt, _satisfies(lambda d: d > 0, "working days before must be positive")]
    ] = field(default_factory=lambda: [7, 3, 1])
    on_the_day: StrictBool = True
    overdue_every_days: Annotated[StrictInt, _satisfies(lambda d: d >= 1, "at least 1")] = 2
    escalate_after_days: StrictInt = 3
    include_coordinating: StrictBool = False
    send_at: Clock = "09:00"
    period_reminders: list[WeekdayClock] = field(default_factory=lambda: ["thursday 09:00", "friday 09:00"])
    dispatch_interval: Annotated[StrictInt, _between(1, 300, " seconds")] = 5
    plan_interval: Annotated[StrictInt, _between(10, 3600, " seconds")] = 120
    max_per_second: Annotated[
        StrictInt, _between(1, 30, " (Telegram allows about 30 messages per second)")
    ] = 28


@dataclass(frozen=True, config=_SECTION)
class DigestSection:
    schedule: WeekdayClock = "friday 16:00"
    templates_dir: StrictStr = ""
    parent_body: StrictStr = "BỘ KHOA HỌC VÀ CÔNG NGHỆ"
    issuing_body: StrictStr = "VĂN PHÒNG BỘ"
    issuing_body_name: StrictStr = "Văn phòng Bộ"  # as a sentence names it (and the Word file's author)
    issuing_code: StrictStr = "VP"
    place: StrictStr = "Hà Nội"
    # The signature block (Decree 30): authority line (KT./TL./Q. + the leader's title), the
    # signer's own title and name.
    signer_authority: StrictStr = "TL. BỘ TRƯỞNG"
    signer_title: StrictStr = "CHÁNH VĂN PHÒNG"
    signer_name: StrictStr = ""
    recipients: list[StrictStr] = field(
        default_factory=lambda: [
            "Bộ trưởng (để báo cáo)",
            "Các Thứ trưởng (để biết)",
            "Lưu: VT, VP",
        ]
    )
    # Used when the report data carries no programme record.
    programme_title: StrictStr = "Chương trình hành động"
    decision: StrictStr = ""


@dataclass(frozen=True, config=_SECTION)
class InvitesSection:
    default_expiry: Duration = "7d"


@dataclass(frozen=True, config=_SECTION)
class AdminSection:
    import_max_kb: Annotated[StrictInt, _between(1, 10240)] = 2048
    audit_default: Annotated[StrictInt, _between(1, 100)] = 20


@dataclass(frozen=True, config=_SECTION)
class ImportSection:
    """[import]: the bounds on every plan file (`tiendo import` and /import in chat)."""

    max_rows: Annotated[StrictInt, _between(1, 1_000_000)] = 10_000
    max_unpacked_mb: Annotated[StrictInt, _between(1, 1024)] = 40
    max_ratio: Annotated[StrictInt, _between(10, 10_000)] = 200
    memory_mb: Annotated[StrictInt, _between(128, 16_384)] = 384
    seconds: Annotated[StrictInt, _between(1, 3600)] = 30


@dataclass(frozen=True, config=_SECTION)
class HealthSection:
    """[health]: /healthz, /readyz and /metrics on a listener of their own (bot/health.py);
    port 0 opens none (webhook mode serves them beside the webhook anyway)."""

    listen: StrictStr = "127.0.0.1"
    port: Annotated[StrictInt, _between(0, 65535, " (a TCP port, or 0 for none)")] = 0


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


@dataclass(frozen=True, config=ConfigDict(extra="forbid", arbitrary_types_allowed=True))
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
        resolved: dict[str, Any] = {}
        for name, value in changes.items():
            if name in SECTIONS and isinstance(value, Mapping):
                value = _checked(partial(dataclasses.replace, getattr(self, name), **value), name)
            resolved[name] = value
        # cast: mypy does not see pydantic's dataclasses as dataclasses.replace's kind.
        return _checked(lambda: dataclasses.replace(cast(Any, self), **resolved))


def _key(loc: tuple[int | str, ...]) -> str:
    key = ""
    if loc and isinstance(loc[0], str):
        loc = (FILE_NAMES.get(loc[0], loc[0]), *loc[1:])
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def describe(error: ErrorDetails) -> str:
    """One pydantic error as 'key: problem', the key spelled as in the file (bot.admins[0])."""
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"[{loc[0]}]: unknown section" if len(loc) == 1 else f"{_key(loc)}: unknown setting"
    if len(loc) == 1 and loc[0] in SECTIONS and kind.startswith("dataclass"):
        return f"[{FILE_NAMES.get(str(loc[0]), loc[0])}]: expected a table of settings"
    if kind == "value_error":
        problem = str(error.get("ctx", {}).get("error", error["msg"]))
    else:
        problem = f"{error['msg'][:1].lower()}{error['msg'][1:]}, got {error['input']!r}"
    return f"{_key(loc)}: {problem}"


def _checked(build: Callable[[], T], section: str = "") -> T:
    """build(), with pydantic's first complaint turned into ConfigError('key: problem')."""
    try:
        return build()
    except ValidationError as exc:
        error = exc.errors()[0]
        if section:
            error["loc"] = (section, *error["loc"])
        raise ConfigError(describe(error)) from None


_CONFIG = TypeAdapter(Config)


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
    raw["token"] = env.get("TELEGRAM_BOT_TOKEN", "").strip()
    raw["source"] = path.resolve()
    return _checked(lambda: _CONFIG.validate_python(raw))
