"""The redacting log filter: secrets out of messages, arguments, tracebacks, every logger."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import RedactingFilter, setup_logging

TOKEN = "123456:AAHk-secret-token-part-xyz0123456789"
WEBHOOK = "0123456789abcdef0123456789abcdef"
CODE = "Xy3_k9Qm-TzL0aB7cD2eF5gH"


@contextlib.contextmanager
def _capture(fmt: str) -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    setup_logging("DEBUG", [TOKEN, WEBHOOK], fmt)
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


@pytest.fixture(params=["text", "json"])
def captured(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    with _capture(request.param) as stream:
        yield stream


def test_every_logger_at_every_level_goes_through_the_filter(captured: io.StringIO) -> None:
    logging.getLogger("telegram.ext.Updater").debug("setWebhook %s", {"secret_token": WEBHOOK})
    logging.getLogger("httpx").info("HTTP Request: POST https://api.telegram.org/bot%s/getMe", TOKEN)
    logging.getLogger("tiendo").warning("update %s", {"text": f"/start {CODE}"})
    logging.getLogger("bot.app").error("link https://t.me/bot?start=%s sent", CODE)
    try:
        raise RuntimeError(f"failed calling /bot{TOKEN}/sendMessage with {CODE}")
    except RuntimeError:
        logging.getLogger("telegram.ext.Application").exception("handler failed")
    text = captured.getvalue()
    assert TOKEN not in text and WEBHOOK not in text and CODE not in text
    assert text.count("[secret]") == 3 and text.count("[invite]") == 3
    assert "RuntimeError" in text  # the traceback itself is kept


def test_json_lines_are_one_object_per_record() -> None:
    with _capture("json") as captured:
        try:
            raise ValueError(f"bad token {TOKEN}")
        except ValueError:
            logging.getLogger("bot.app").exception("update %s failed", 42)
        logging.getLogger("bot.jobs").info("Nhắc việc: %s", "nhiệm vụ 5.9")
    first, second = (json.loads(line) for line in captured.getvalue().splitlines())
    assert first["level"] == "ERROR" and first["logger"] == "bot.app"
    assert first["message"] == "update 42 failed"
    assert "ValueError: bad token [secret]" in first["exception"] and TOKEN not in first["exception"]
    assert second["message"] == "Nhắc việc: nhiệm vụ 5.9" and first["time"].endswith("+00:00")


def test_ordinary_text_is_left_alone() -> None:
    redact = RedactingFilter([TOKEN]).redact
    for text in ["Nhiệm vụ 1.2 đã báo cáo", "update 12345678 handled", "sha " + "a" * 64, "/start"]:
        assert redact(text) == text
