"""A DEBUG run of the real `tiendo run` logs no token, webhook secret or live invite code.

The run sets its webhook (whose secret setWebhook's parameters carry), receives an invite
/start through that webhook, makes an invite in chat (the link goes out in a message) and
answers: every library logs at DEBUG meanwhile (PTB, httpx, ours), and the log is grepped.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import _webhook_path
from bot.config import load_config
from tests.conftest import EXAMPLE_PLAN
from tests.support.botapi import DEFAULT_TOKEN, BotAPIServer
from tests.support.process import BotProcess, free_port, webhook_config

pytestmark = pytest.mark.slow

ADMIN = 900
NEWCOMER = 557


@pytest.fixture
def server() -> Iterator[BotAPIServer]:
    with BotAPIServer() as server:
        yield server


def _post(port: int, secret: str, update_id: int, user_id: int, text: str) -> int:
    command = text.split()[0]
    update = {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1700000000,
            "text": text,
            "entities": [{"offset": 0, "length": len(command), "type": "bot_command"}],
            "chat": {"id": user_id, "type": "private", "first_name": "Hà"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Hà"},
        },
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/telegram/{secret}",
        data=json.dumps(update).encode(),
        headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def test_a_debug_run_logs_no_token_webhook_secret_or_invite_code(
    server: BotAPIServer, tmp_path: Path
) -> None:
    api = server.api
    port = free_port()
    bot = BotProcess(
        server,
        tmp_path,
        extra_config=webhook_config(port),
    )
    bot.config_path.write_text(
        bot.config_path.read_text(encoding="utf-8").replace(
            "[bot]\n", f'[bot]\nadmins = [{ADMIN}]\nlog_level = "DEBUG"\n'
        ),
        encoding="utf-8",
    )
    assert bot.cli("import", str(EXAMPLE_PLAN)).returncode == 0
    code = bot.cli("invite", "VP", "--role", "focal").stdout.splitlines()[1]
    secret = _webhook_path(load_config(bot.config_path, env={"TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN}))
    api.user(NEWCOMER, "Hà")
    api.user(ADMIN, "Quản trị")
    with bot:
        assert api.webhook_info()["url"].endswith(secret)  # the webhook was set with the secret
        assert _post(port, secret, 1, NEWCOMER, f"/start {code}") == 200
        (welcome,) = api.wait_sent(NEWCOMER, 1, timeout=15)
        assert "Văn phòng Bộ" in (welcome.plain_text or "")
        # An invite made in chat: its link goes out in a message, which PTB logs at DEBUG.
        assert _post(port, secret, 2, ADMIN, "/invite VP focal") == 200
        (invite,) = api.wait_sent(ADMIN, 1, timeout=15)
        chat_code = (invite.plain_text or "").split("start=")[-1].split()[0]
        assert len(chat_code) >= 20
        # A second, unused code also travels in an update (someone forwards their link).
        assert _post(port, secret, 3, NEWCOMER, f"/start@tiendo_test_bot {chat_code}") == 200
        api.wait_sent(NEWCOMER, 2, timeout=15)
    log = "".join(bot.log)
    # The run really logged at DEBUG, through PTB and its Bot API client (each URL), including
    # the webhook set-up.
    assert " DEBUG telegram" in log and " DEBUG bot.bot_api_http: POST" in log and "setWebhook" in log
    assert len(bot.log) > 50
    token_secret_part = DEFAULT_TOKEN.split(":", 1)[1]
    for needle, what in [
        (DEFAULT_TOKEN, "token"),
        (token_secret_part, "token"),
        (secret, "webhook secret"),
        (code, "invite code"),
        (chat_code, "invite code made in chat"),
    ]:
        leaks = [line for line in bot.log if needle in line]
        assert leaks == [], f"{what} in {len(leaks)} lines, e.g. {leaks[0][:300]}"
    assert "[invite]" in log and "[secret]" in log  # they were there, and were replaced
