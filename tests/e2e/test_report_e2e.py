"""The guided /report end to end: the real `tiendo run` process against the Bot API stand-in on
127.0.0.1; two users of different units report (one with a document), then the process is
SIGKILLed in the middle of a third user's report and that user carries on after the restart.

Run with -s to print the whole conversation of the first user as they saw it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_PLAN
from tests.support.botapi import BotAPIServer, FakeBotAPI, SentMessage
from tests.support.process import BotProcess

pytestmark = pytest.mark.slow


class User:
    """A simulated person: writes or presses, and waits for the bot's next message."""

    def __init__(self, api: FakeBotAPI, user_id: int, name: str) -> None:
        self.api, self.id, self.name = api, user_id, name
        api.user(user_id, name)
        self.transcript: list[str] = []

    def _next(self) -> SentMessage:
        count = len(self.api.sent(self.id)) + 1
        reply = self.api.wait_sent(self.id, count, timeout=15)[-1]
        buttons = " ".join(f"[{b['text']}]" for b in reply.buttons)
        self.transcript.append(
            f"  tiendo: {reply.plain_text}" + (f"\n          {buttons}" if buttons else "")
        )
        return reply

    def says(self, text: str) -> SentMessage:
        self.transcript.append(f"{self.name}: {text}")
        self.api.send_text(self.id, text)
        return self._next()

    def sends_file(self, name: str, content: bytes) -> SentMessage:
        self.transcript.append(f"{self.name}: (gửi tệp {name})")
        self.api.send_document(self.id, name, content, "application/pdf")
        return self._next()

    def presses(self, message: SentMessage, label: str) -> SentMessage:
        self.transcript.append(f"{self.name}: bấm [{label}]")
        self.api.press_button(self.id, message.message_id, message.button_data(label))
        return self._next()


# No reminders in the middle of these conversations, whatever the day and hour the tests run:
# no period reminders, and the example's deadlines (long past: overdue nudges) moved far ahead.
NO_REMINDERS = "[nudges]\nperiod_reminders = []\n"
LATER = "UPDATE tasks SET deadline = '2099-12-31' WHERE deadline IS NOT NULL"


@pytest.fixture
def server() -> Iterator[BotAPIServer]:
    with BotAPIServer() as server:
        yield server


def invite(bot: BotProcess, unit: str) -> str:
    result = bot.cli("invite", unit, "--role", "focal")
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[1].strip()


def test_two_reports_then_kill_in_the_middle_of_a_third(server: BotAPIServer, tmp_path: Path) -> None:
    api = server.api
    bot = BotProcess(server, tmp_path, extra_config=NO_REMINDERS)
    assert bot.cli("import", str(EXAMPLE_PLAN)).returncode == 0
    bot.execute(LATER)
    codes = {unit: invite(bot, unit) for unit in ("TTRA", "KHTC", "VP")}
    lan, minh, hoa = User(api, 801, "Lan"), User(api, 802, "Minh"), User(api, 803, "Hoa")
    bot.start()
    try:
        assert "Thanh tra" in (lan.says(f"/start {codes['TTRA']}").plain_text or "")
        minh.says(f"/start {codes['KHTC']}")
        hoa.says(f"/start {codes['VP']}")

        # Lan (TTRA): the whole flow, with a target value and a document.
        page = lan.says("/report")
        ask = lan.presses(page, next(b["text"] for b in page.buttons if b["text"].startswith("5.14")))
        ask = lan.presses(ask, "Đang thực hiện")
        ask = lan.presses(ask, "75%")
        lan.says("Đã giải quyết 30/35 đơn thư trong tuần")
        summary = lan.says("86")
        lan.presses(summary, "➕ Kiến nghị")
        summary = lan.says("Đề nghị bổ sung cán bộ")
        lan.presses(summary, "➕ Minh chứng")
        ask = lan.sends_file("bien-ban.pdf", b"%PDF-1.4 bien ban hop")
        summary = lan.presses(ask, "Xong")
        receipt = lan.presses(summary, "Gửi")
        assert (receipt.plain_text or "").startswith("✅ Đã ghi nhận báo cáo #1")

        # Minh (KHTC): a short one, straight to task 1.1.
        ask = minh.says("/report 1.1")
        minh.presses(ask, "Đã hoàn thành")
        summary = minh.says("Đã trình Bộ trưởng")
        receipt = minh.presses(summary, "Gửi")
        assert "#2" in (receipt.plain_text or "")

        # Hoa (VP) is half-way when the machine loses power.
        ask = hoa.says("/report 4.4")
        ask = hoa.presses(ask, "Gặp vướng mắc")
        hoa.says("40")
        question = hoa.says("Đã xây dựng dự thảo")
        assert "bắt buộc" in (question.plain_text or "")
        bot.kill()
        hoa.transcript.append("-- kill -9; tiendo run restarted --")
        bot.start()
        # Her current question is asked again once at start-up (it may not have reached her);
        # she answers it, and no earlier step is asked again.
        reasked = api.sent(803)[-1]
        assert "khởi động lại" in (reasked.plain_text or "") and "bắt buộc" in (reasked.plain_text or "")
        summary = hoa.says("Chưa có ý kiến các đơn vị")
        text = summary.plain_text or ""
        assert "Gặp vướng mắc" in text and "40%" in text and "Đã xây dựng dự thảo" in text
        receipt = hoa.presses(summary, "Gửi")
        assert "#3" in (receipt.plain_text or "")
        asked = [line for line in hoa.transcript if line.startswith("  tiendo:")]
        assert sum("Kết quả đạt được" in line for line in asked) == 1
    finally:
        bot.stop()
    assert api.rejected == []

    rows, reports, drafts = bot.rows(
        "select sha256, local_path from attachments",
        "select count(*) from progress_reports",
        "select count(*) from drafts",
    )
    assert len(rows) == 1 and Path(rows[0][1]).read_bytes() == b"%PDF-1.4 bien ban hop"
    assert reports == [(3,)]
    assert drafts == [(0,)]
    print(
        "\n".join(
            [
                "",
                "--- /report as Lan saw it ---",
                *lan.transcript,
                "--- Hoa, across the kill ---",
                *hoa.transcript,
            ]
        )
    )


def test_a_clean_restart_mid_report_asks_nobody_again(server: BotAPIServer, tmp_path: Path) -> None:
    """SIGTERM (a deploy, a reboot) half-way through a report: the process handles what it took
    and stops; after the start nobody is asked their question again (it reached them), and the
    report goes on where it was."""
    api = server.api
    bot = BotProcess(server, tmp_path, extra_config=NO_REMINDERS)
    assert bot.cli("import", str(EXAMPLE_PLAN)).returncode == 0
    bot.execute(LATER)
    hoa = User(api, 803, "Hoa")
    bot.start()
    try:
        hoa.says(f"/start {invite(bot, 'VP')}")
        ask = hoa.says("/report 4.4")
        ask = hoa.presses(ask, "Gặp vướng mắc")
        hoa.says("40")
        question = hoa.says("Đã xây dựng dự thảo")
        assert "bắt buộc" in (question.plain_text or "")
        assert bot.stop() == 0
        seen = len(api.sent(803))
        bot.start()
        api.send_text(803, "Chưa có ý kiến các đơn vị")

        def summary() -> SentMessage | None:
            return next(
                (m for m in api.sent(803)[seen:] if "Đã xây dựng dự thảo" in (m.plain_text or "")), None
            )

        shown = api.wait_for(summary, timeout=15)
        # Nothing asked again (found among whatever else came).
        assert not [m for m in api.sent(803)[seen:] if "khởi động lại" in (m.plain_text or "")]
        assert "Chưa có ý kiến các đơn vị" in (shown.plain_text or "")
        api.press_button(803, shown.message_id, shown.button_data("Gửi"))
        api.wait_for(
            lambda: any("Đã ghi nhận báo cáo #1" in (m.plain_text or "") for m in api.sent(803)), timeout=15
        )
    finally:
        bot.stop()
