"""Logging set-up: one stderr handler on the root logger, no secret in any line, and
repeated identical lines rate-limited (bot.logrepeat).

Every library logs through the root handler (python-telegram-bot, httpx, APScheduler, ours), so
a filter on that handler sees every record at every level. It rewrites the record's text, its
traceback and its stack with the secrets replaced:

* the bot token (in every Bot API URL, and in some exception texts);
* the webhook secret (the path Telegram posts to and the header it sends; setWebhook's
  parameters show it at DEBUG);
* invite codes: a /start payload or deep link, and anything shaped like a code
  (secrets.token_urlsafe(18): 24 characters of A-Z a-z 0-9 _ -), wherever it appears:
  updates and sent messages are logged whole at DEBUG.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from bot.logrepeat import RepeatFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_START_PAYLOAD = re.compile(r"(/start(?:@\w+)?[ \t]+|[?&]start=)[A-Za-z0-9_-]{1,64}")
# 24 URL-safe characters with both cases, standing alone: the shape of an invite code.
_CODE_SHAPED = re.compile(
    r"(?<![A-Za-z0-9_-])(?=[A-Za-z0-9_-]*[a-z])(?=[A-Za-z0-9_-]*[A-Z])[A-Za-z0-9_-]{24}(?![A-Za-z0-9_-])"
)


class RedactingFilter(logging.Filter):
    """Replaces secrets in a record's message, traceback and stack before any handler formats it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first: a secret that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._formatter = logging.Formatter()

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[secret]")
        text = _START_PAYLOAD.sub(r"\1[invite]", text)
        return _CODE_SHAPED.sub("[invite]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self._formatter.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (`[bot] log_format = "json"`): time (UTC, ISO 8601), level,
    logger, message, and the traceback or stack when there is one. It formats what the
    handler's filters left: the message, traceback and stack already redacted."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:  # a record that did not pass the filter
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False)


class BootstrapAbortFilter(logging.Filter):
    """Drops python-telegram-bot's traceback when start-up (getMe, setWebhook) fails: the
    command line says why in one sentence instead (bot.cli). Kept at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.name.startswith("telegram")
            and record.levelno >= logging.ERROR
            and "Network Retry Loop (Bootstrap" in record.getMessage()
        )


class TransientTelegramFilter(logging.Filter):
    """A 429 (RetryAfter) or a network error or 5xx (NetworkError, TimedOut) is Telegram's
    weather, not our fault: it is logged once, at WARNING, in one line, by whoever handles it.

    PTB's rate limiter logs each 429 itself before raising it to the caller, which handles it
    (the outbox retries after the delay it names): that record is dropped. Records that carry
    such an error (a poll that failed, a handler whose reply failed) lose their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("telegram.ext.AIORateLimiter") and "Rate limit hit" in str(record.msg):
            return False
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and _transient(exc):
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _transient(exc: BaseException) -> bool:
    from telegram.error import BadRequest, NetworkError, RetryAfter

    # BadRequest is a NetworkError in PTB's hierarchy, but it is our mistake: kept whole.
    return isinstance(exc, RetryAfter) or (isinstance(exc, NetworkError) and not isinstance(exc, BadRequest))


def setup_logging(level: str, secrets: Iterable[str] = (), fmt: str = "text") -> RedactingFilter:
    """Log to stderr at `level` through the redacting filter, as text lines or (fmt "json")
    JSON lines; returns the filter."""
    redacting = RedactingFilter(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(FORMAT))
    if level.upper() != "DEBUG":
        handler.addFilter(BootstrapAbortFilter())
    handler.addFilter(TransientTelegramFilter())
    handler.addFilter(redacting)
    # Last, so that it counts lines as they will be written (redacted, at their final level).
    handler.addFilter(RepeatFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    debug = level.upper() == "DEBUG"
    # httpx logs each request URL at INFO: shown (redacted) only when debugging. httpcore's
    # DEBUG lines are byte-level noise.
    logging.getLogger("httpx").setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.INFO if debug else logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return redacting
