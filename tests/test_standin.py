"""Tests of the Telegram Bot API stand-in (tests/support/botapi.py) with a real PTB Application."""

from __future__ import annotations

import base64
import datetime as dtm
import json
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from html import escape
from pathlib import Path
from typing import Any

import pytest
from telegram import Bot, BotCommand, BotCommandScopeChat, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.support.botapi import (
    DEFAULT_TOKEN,
    BotAPIServer,
    FakeBotAPI,
    FloodLimits,
    StandinRequest,
    parse_html,
)

USER_ID = 4242
ROOT = Path(__file__).resolve().parents[1]


def _png(width: int, height: int) -> bytes:
    """A tiny valid PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _standin_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("standin-")]


@contextmanager
def serving(api: FakeBotAPI | None = None) -> Iterator[BotAPIServer]:
    """A started server that must leave no thread behind."""
    with BotAPIServer(api) as server:
        yield server
    assert _standin_threads() == []


def build_app(builder: ApplicationBuilder) -> Application:
    """A small bot: /start with an inline keyboard, a button that edits, documents downloaded."""
    app = builder.build()

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.effective_user is not None
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Đồng ý", callback_data="yes")]])
        name = escape(update.effective_user.first_name)
        await update.message.reply_text(
            f"<b>Xin chào</b>, {name}!", parse_mode=ParseMode.HTML, reply_markup=keyboard
        )

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Đã ghi nhận")
        await query.edit_message_text(f"Bạn đã chọn: <i>{query.data}</i>", parse_mode="HTML")

    async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.document is not None
        telegram_file = await update.message.document.get_file()
        data = await telegram_file.download_as_bytearray()
        context.bot_data["received"] = bytes(data)
        context.bot_data["file_name"] = update.message.document.file_name
        await update.message.reply_text(f"Đã nhận {len(data)} byte")

    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_handler(MessageHandler(filters.Document.ALL, on_document))
    return app


@asynccontextmanager
async def running(app: Application) -> AsyncIterator[Application]:
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


async def exercise_flow(api: FakeBotAPI, app: Application) -> None:
    """/start -> reply with a keyboard; press -> edit; document -> downloaded by the bot."""
    api.user(USER_ID, "Lan <3", username="lan")

    api.send_text(USER_ID, "/start")
    [reply] = await api.wait_sent_async(USER_ID, 1, timeout=3)
    assert reply.method == "sendMessage"
    assert reply.text == "<b>Xin chào</b>, Lan &lt;3!"
    assert reply.plain_text == "Xin chào, Lan <3!"
    assert reply.entities == [{"type": "bold", "offset": 0, "length": 8}]
    assert reply.parse_mode == "HTML"
    assert reply.reply_markup == {"inline_keyboard": [[{"text": "Đồng ý", "callback_data": "yes"}]]}

    update = api.press_button(USER_ID, reply.message_id, reply.button_data("Đồng ý"))
    query_id = update["callback_query"]["id"]
    await api.wait_for_async(lambda: reply.edits == 1, timeout=3)
    assert reply.text == "Bạn đã chọn: <i>yes</i>"
    assert reply.plain_text == "Bạn đã chọn: yes"
    assert reply.reply_markup is None  # editing without reply_markup drops the keyboard
    assert api.message(USER_ID, reply.message_id)["edit_date"] >= reply.wall_time - 1
    [answer] = api.answered_callbacks
    assert (answer.callback_query_id, answer.text) == (query_id, "Đã ghi nhận")

    content = bytes(range(256)) * 12 + "tiếng Việt".encode()
    api.send_document(USER_ID, "báo cáo.pdf", content, "application/pdf")
    messages = await api.wait_sent_async(USER_ID, 2, timeout=3)
    assert messages[1].plain_text == f"Đã nhận {len(content)} byte"
    assert app.bot_data["received"] == content
    assert app.bot_data["file_name"] == "báo cáo.pdf"
    # message ids are per chat and shared by both directions: /start=1, reply=2, document=3
    assert [m.message_id for m in messages] == [2, 4]
    assert api.rejected == []


@pytest.mark.asyncio
async def test_flow_over_http() -> None:
    with serving() as server:
        api = server.api
        builder = (
            ApplicationBuilder()
            .token(api.token)
            .base_url(server.base_url)
            .base_file_url(server.base_file_url)
        )
        app = build_app(builder)
        async with running(app):
            await exercise_flow(api, app)
        counts = api.call_counts()
        assert counts["getMe"] == 1 and counts["deleteWebhook"] == 1
        assert counts["getFile"] == 1 and counts["answerCallbackQuery"] == 1


@pytest.mark.asyncio
async def test_flow_in_process() -> None:
    api = FakeBotAPI()
    builder = (
        ApplicationBuilder()
        .token(api.token)
        .request(StandinRequest(api))
        .get_updates_request(StandinRequest(api))
    )
    app = build_app(builder)
    async with running(app):
        await exercise_flow(api, app)
    assert api.conflicts == 0


@pytest.fixture(params=["http", "in_process"])
def bot_and_api(request: pytest.FixtureRequest) -> Iterator[tuple[Bot, FakeBotAPI]]:
    """A plain Bot wired to a fresh stand-in, over HTTP or in process."""
    api = FakeBotAPI()
    api.user(USER_ID, "Minh")
    if request.param == "in_process":
        yield Bot(api.token, request=StandinRequest(api)), api
        return
    with serving(api) as server:
        yield Bot(api.token, base_url=server.base_url, base_file_url=server.base_file_url), api


@pytest.mark.asyncio
async def test_injected_faults(bot_and_api: tuple[Bot, FakeBotAPI], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # RetryAfter.retry_after as a timedelta
    bot, api = bot_and_api
    async with bot:
        api.fail_next(USER_ID, "retry_after", retry_after=7)
        with pytest.raises(RetryAfter) as retry:
            await bot.send_message(USER_ID, "một")
        assert retry.value.retry_after == dtm.timedelta(seconds=7)
        sent = await bot.send_message(USER_ID, "hai")  # only the next call failed
        assert sent.text == "hai" and sent.from_user is not None and sent.from_user.is_bot

        api.fail_next(USER_ID, "forbidden")
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(USER_ID, "ba")

        api.fail_next(USER_ID, "chat_not_found", method="sendChatAction")
        await bot.send_message(USER_ID, "bốn")  # not a chat action: unaffected
        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.send_chat_action(USER_ID, "typing")

        api.block(USER_ID)
        for _ in range(2):
            with pytest.raises(Forbidden):
                await bot.send_message(USER_ID, "năm")
        api.unblock(USER_ID)
        await bot.send_message(USER_ID, "sáu")

    assert [m.plain_text for m in api.sent(USER_ID)] == ["hai", "bốn", "sáu"]
    rejected = api.rejected
    assert [r.status for r in rejected] == [429, 403, 400, 403, 403]
    assert all(r.injected for r in rejected)


@pytest.mark.asyncio
async def test_validation_like_telegram(bot_and_api: tuple[Bot, FakeBotAPI]) -> None:
    bot, api = bot_and_api
    async with bot:
        with pytest.raises(BadRequest, match="Message text is empty"):
            await bot.send_message(USER_ID, "  ")
        with pytest.raises(BadRequest, match="Message is too long"):
            await bot.send_message(USER_ID, "<b>" + "a" * 4097 + "</b>", parse_mode="HTML")
        await bot.send_message(USER_ID, "<b>" + "ư" * 4096 + "</b>", parse_mode="HTML")
        with pytest.raises(BadRequest, match="Can't parse entities: unsupported start tag"):
            await bot.send_message(USER_ID, "a <br> b", parse_mode="HTML")
        with pytest.raises(BadRequest, match="Can't parse entities: can't find end tag"):
            await bot.send_message(USER_ID, "<b>đậm", parse_mode="HTML")
        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.send_message(999, "ai đó")
        too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="đ" * 33)]])
        with pytest.raises(BadRequest, match="Button_data_invalid"):
            await bot.send_message(USER_ID, "nút", reply_markup=too_long)

        message = await bot.send_message(USER_ID, "cũ")
        with pytest.raises(BadRequest, match="Message is not modified"):
            await bot.edit_message_text("cũ", USER_ID, message.message_id)
        with pytest.raises(BadRequest, match="Message to edit not found"):
            await bot.edit_message_text("mới", USER_ID, 12345)
        assert await bot.delete_message(USER_ID, message.message_id)
        with pytest.raises(BadRequest, match="Message to delete not found"):
            await bot.delete_message(USER_ID, message.message_id)
    assert len(api.rejected) == 9
    assert not any(r.injected for r in api.rejected)
    assert api.sent(USER_ID)[-1].deleted


@pytest.mark.asyncio
async def test_uploads_commands_and_files(bot_and_api: tuple[Bot, FakeBotAPI]) -> None:
    bot, api = bot_and_api
    async with bot:
        payload = "Xin chào thế giới\n".encode() * 100
        doc_message = await bot.send_document(
            USER_ID,
            payload,
            filename="thống kê.txt",
            caption="<b>Báo cáo</b>",
            parse_mode="HTML",
        )
        assert doc_message.document is not None
        assert doc_message.document.file_name == "thống kê.txt"
        assert doc_message.caption == "Báo cáo"
        file = await bot.get_file(doc_message.document.file_id)
        assert bytes(await file.download_as_bytearray()) == payload
        again = await bot.send_document(USER_ID, doc_message.document.file_id)
        assert again.document is not None
        assert again.document.file_unique_id == doc_message.document.file_unique_id

        photo = await bot.send_photo(USER_ID, _png(3, 2))
        assert (photo.photo[-1].width, photo.photo[-1].height) == (3, 2)
        with pytest.raises(BadRequest, match="Image_process_failed"):
            await bot.send_photo(USER_ID, b"not an image")

        await bot.set_my_commands([BotCommand("start", "Bắt đầu")])
        scope = BotCommandScopeChat(USER_ID)
        await bot.set_my_commands([BotCommand("help", "Trợ giúp")], scope=scope, language_code="vi")
        assert [c.command for c in await bot.get_my_commands()] == ["start"]
        vi = await bot.get_my_commands(scope=scope, language_code="vi")
        assert [(c.command, c.description) for c in vi] == [("help", "Trợ giúp")]
        await bot.delete_my_commands(scope=scope, language_code="vi")
        assert await bot.get_my_commands(scope=scope, language_code="vi") == ()
        assert api.commands() == [{"command": "start", "description": "Bắt đầu"}]

        chat = await bot.get_chat(USER_ID)
        assert chat.first_name == "Minh"
        assert await bot.send_chat_action(USER_ID, "upload_document")
        info = await bot.get_webhook_info()
        assert info.url == ""

    [document, second, picture] = api.sent(USER_ID)
    assert document.caption == "<b>Báo cáo</b>" and document.plain_text == "Báo cáo"
    assert document.document is not None and document.document["file_size"] == len(payload)
    assert second.document == document.document
    assert picture.photo is not None and picture.method == "sendPhoto"
    assert [a.action for a in api.chat_actions] == ["upload_document"]
    assert [r.description for r in api.rejected] == ["Bad Request: IMAGE_PROCESS_FAILED"]


@pytest.mark.asyncio
async def test_long_poll_returns_when_an_update_arrives() -> None:
    api = FakeBotAPI()
    bot = Bot(api.token, request=StandinRequest(api), get_updates_request=StandinRequest(api))
    async with bot:
        timer = threading.Timer(0.1, api.send_text, args=(USER_ID, "xin chào"))
        started = time.monotonic()
        timer.start()
        updates = await bot.get_updates(timeout=5)
        elapsed = time.monotonic() - started
        timer.join()
        assert elapsed < 1.0
        assert [u.message.text for u in updates if u.message] == ["xin chào"]
        # the offset confirms the update; an empty poll with timeout 0 returns at once
        assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == ()
        assert api.pending_updates() == []


def test_http_long_poll_wrong_token_and_control_surface() -> None:
    with serving() as server:

        def request(path: str, data: Any = None) -> tuple[int, Any]:
            body = None if data is None else json.dumps(data).encode()
            req = urllib.request.Request(
                server.url + path, data=body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(req, timeout=5) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read())

        assert request("/botWRONG:TOKEN/getMe") == (
            401,
            {"ok": False, "error_code": 401, "description": "Unauthorized"},
        )
        assert request(f"/bot{DEFAULT_TOKEN}/noSuchMethod")[0] == 404
        status, me = request(f"/bot{DEFAULT_TOKEN}/getMe")
        assert status == 200 and me["result"]["is_bot"] is True
        assert me["result"]["username"] == "tiendo_test_bot"

        timer = threading.Timer(
            0.1, request, args=("/_standin/send_text", {"user_id": 7, "text": "/start abc"})
        )
        started = time.monotonic()
        timer.start()
        status, polled = request(f"/bot{DEFAULT_TOKEN}/getUpdates", {"timeout": 5})
        timer.join()
        assert status == 200 and time.monotonic() - started < 1.0
        [update] = polled["result"]
        assert update["message"]["entities"] == [{"offset": 0, "length": 6, "type": "bot_command"}]

        keyboard = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
        status, sent = request(
            f"/bot{DEFAULT_TOKEN}/sendMessage", {"chat_id": 7, "text": "hi", "reply_markup": keyboard}
        )
        assert status == 200
        message_id = sent["result"]["message_id"]
        status, pressed = request(
            "/_standin/press_button", {"user_id": 7, "message_id": message_id, "data": "a"}
        )
        assert status == 200
        assert pressed["result"]["callback_query"]["message"]["reply_markup"]
        status, listed = request("/_standin/sent?chat_id=7")
        assert [m["text"] for m in listed["result"]] == ["hi"]
        content = base64.b64encode(b"abc").decode()
        status, _ = request(
            "/_standin/send_document", {"user_id": 7, "filename": "a.txt", "content": content}
        )
        assert status == 200
        assert request("/_standin/fail_next", {"chat_id": 7, "kind": "retry_after"})[0] == 200
        status, limited = request(f"/bot{DEFAULT_TOKEN}/sendMessage", {"chat_id": 7, "text": "x"})
        assert status == 429 and limited["parameters"] == {"retry_after": 1}
        assert request("/_standin/block", {"chat_id": 7})[0] == 200
        assert request(f"/bot{DEFAULT_TOKEN}/sendMessage", {"chat_id": 7, "text": "x"})[0] == 403
        status, counts = request("/_standin/calls")
        assert counts["result"]["sendMessage"] == 3 and counts["result"]["getMe"] == 1


@pytest.mark.asyncio
async def test_wrong_token_raises_invalid_token() -> None:
    with serving() as server:
        bot = Bot("999:WRONG", base_url=server.base_url)
        with pytest.raises(InvalidToken):
            async with bot:
                pass


@pytest.mark.asyncio
async def test_flood_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    api = FakeBotAPI(flood_limits=FloodLimits(per_chat=2, per_chat_window=30.0))
    api.user(USER_ID)
    async with Bot(api.token, request=StandinRequest(api)) as bot:
        await bot.send_message(USER_ID, "1")
        await bot.send_message(USER_ID, "2")
        with pytest.raises(RetryAfter) as retry:
            await bot.send_message(USER_ID, "3")
        assert retry.value.retry_after == dtm.timedelta(seconds=30)
    assert len(api.sent(USER_ID)) == 2


def test_parse_html_matches_telegram() -> None:
    text, entities = parse_html(
        '😀 <b>đậm <i>nghiêng</i></b> &lt;x&gt; &amp;c <a href="https://t.me/x?a=1&amp;b=2">l</a>'
        '<pre><code class="language-python">x = 1</code></pre>'
    )
    assert text == "😀 đậm nghiêng <x> &c lx = 1"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 11},
        {"type": "italic", "offset": 7, "length": 7},
        {"type": "text_link", "offset": 22, "length": 1, "url": "https://t.me/x?a=1&b=2"},
        {"type": "pre", "offset": 23, "length": 5, "language": "python"},
    ]
    for bad in ("a < b", "<b>x</i>", "</b>", "<span>x</span>", "<b x"):
        with pytest.raises(ValueError):
            parse_html(bad)


def test_blocking_wait_from_another_thread() -> None:
    api = FakeBotAPI()
    api.user(1)

    def bot_thread() -> None:
        time.sleep(0.05)
        api.call("sendMessage", {"chat_id": "1", "text": "từ luồng khác"})

    worker = threading.Thread(target=bot_thread)
    worker.start()
    [message] = api.wait_sent(1, 1, timeout=2)
    worker.join()
    assert message.text == "từ luồng khác"
    with pytest.raises(TimeoutError, match="expected 2 message"):
        api.wait_sent(1, 2, timeout=0.05)


def test_standalone_cli() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.botapi", "--port", "0", "--token", "1:T"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("ready http://127.0.0.1:")
        base_url = line.split()[1]
        with urllib.request.urlopen(f"{base_url}1:T/getMe", timeout=5) as response:
            assert json.loads(response.read())["result"]["id"] == 7000000001
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0
        if process.stdout is not None:
            process.stdout.close()
