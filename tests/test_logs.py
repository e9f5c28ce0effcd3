"""The redacting log filter: secrets out of messages, arguments, tracebacks, every logger."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bot.logs import RedactingFilter, setup_logging

TOKEN = "123456:AAHk-secret-token-part-xyz0123456789"
WEBHOOK = "0123456789abcdef0123456789abcdef"
CODE = "Xy3_k9Qm-TzL0aB7cD2eF5gH"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    setup_logging("DEBUG", [TOKEN, WEBHOOK])
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


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


def test_ordinary_text_is_left_alone() -> None:
    redact = RedactingFilter([TOKEN]).redact
    for text in ["Nhiệm vụ 1.2 đã báo cáo", "update 12345678 handled", "sha " + "a" * 64, "/start"]:
        assert redact(text) == text
