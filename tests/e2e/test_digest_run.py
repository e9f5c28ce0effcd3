"""The real `tiendo run` sends the scheduled digest once, with its files, and not again after
a restart (catch-up at start-up: the schedule is set to today 00:00, already past); the files
are rendered in a child process, so the bot never loads what renders them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import WEEKDAYS
from storage.db import Database
from storage.repositories.digest import DigestRepository
from storage.repositories.users import UserRepository
from tests.conftest import EXAMPLE_PLAN
from tests.support.botapi import BotAPIServer
from tests.support.process import BotProcess

pytestmark = pytest.mark.slow
MANAGER = 9001
# Compiled parts of matplotlib, Pillow, lxml (python-docx) and MarkupSafe (Jinja2), as mapped files.
RENDERING_LIBRARIES = ("/matplotlib/", "/PIL/", "/lxml/", "/markupsafe/")


@pytest.fixture
def server() -> Iterator[BotAPIServer]:
    with BotAPIServer() as server:
        yield server


async def _subscribed_manager(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            users = UserRepository(session)
            user = await users.upsert(MANAGER, "Hùng", None, None)
            await users.grant_role(user, "manager")
            DigestRepository(session).subscribe(user.id, datetime.now(ZoneInfo("UTC")))
    finally:
        await db.dispose()


def test_scheduled_digest_is_sent_once_across_a_restart(server: BotAPIServer, tmp_path: Path) -> None:
    today = WEEKDAYS[datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).weekday()]
    bot = BotProcess(server, tmp_path, extra_config=f'[digest]\nschedule = "{today} 00:00"\n')
    assert bot.cli("import", str(EXAMPLE_PLAN)).returncode == 0
    asyncio.run(_subscribed_manager(bot.database_url))
    api = server.api
    api.user(MANAGER, "Hùng")
    with bot:
        sent = api.wait_sent(MANAGER, 4, timeout=60)
        assert [m.method for m in sent] == ["sendMessage", "sendPhoto", "sendDocument", "sendDocument"]
        assert "Báo cáo tiến độ tuần từ" in (sent[0].plain_text or "")
        assert sent[2].document is not None and sent[2].document["file_name"].endswith(".docx")
        assert sent[3].document is not None and sent[3].document["file_name"].endswith(".xlsx")
        # Rendered in a child process: what renders the chart, Word and Excel (and its ~57 MiB)
        # was never loaded into the bot.
        assert bot.process is not None
        maps = Path(f"/proc/{bot.process.pid}/maps").read_text()
        assert [lib for lib in RENDERING_LIBRARIES if lib in maps] == []
        # Let the dispatcher record the last send: a kill -9 between Telegram's answer and that
        # record would (by the outbox's design) send that one message again.
        time.sleep(1.5)
        bot.restart()
        # The bot answers again, and its digest check (1 s after start) has run.
        api.send_text(MANAGER, "/start")
        api.wait_sent(MANAGER, 5, timeout=20)
        time.sleep(3)
        assert [m.method for m in api.sent(MANAGER)][4:] == ["sendMessage"]
    assert api.rejected == []
