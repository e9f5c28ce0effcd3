"""The Bot API client (bot/bot_api_http.py): what reaches Telegram and what comes back, over
the stand-in and over a scripted server that answers the way real servers sometimes do."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.request import HTTPXRequest

from bot.app import _bot_api_requests
from bot.bot_api_http import BotAPIRequest
from tests.support.botapi import DEFAULT_TOKEN, BotAPIServer

USER = 4242
OK = json.dumps({"ok": True, "result": True}).encode()

Reply = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


@asynccontextmanager
async def bot_on(server: BotAPIServer, request: BotAPIRequest) -> AsyncIterator[Bot]:
    bot = Bot(DEFAULT_TOKEN, base_url=server.base_url, base_file_url=server.base_file_url, request=request)
    async with bot:
        yield bot


async def test_messages_buttons_and_files_reach_the_stand_in_as_sent() -> None:
    with BotAPIServer() as server:
        server.api.user(USER, "Hà")
        async with bot_on(server, BotAPIRequest(4)) as bot:
            text = "Nhiệm vụ 1.5: <b>đã hoàn thành</b> 100% & gửi báo cáo"
            keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Gửi ✅", callback_data="rp:send:7")]])
            sent = await bot.send_message(USER, text, parse_mode="HTML", reply_markup=keyboard)
            assert sent.chat.id == USER
            (stored,) = server.api.wait_sent(USER, 1)
            assert stored.plain_text == "Nhiệm vụ 1.5: đã hoàn thành 100% & gửi báo cáo"
            assert stored.reply_markup is not None and "rp:send:7" in json.dumps(stored.reply_markup)
            # An upload (multipart) goes through httpx; the download comes back through this client.
            word = bytes(range(256)) * 400
            document = await bot.send_document(USER, word, filename="báo cáo.docx")
            assert document.document is not None
            file = await bot.get_file(document.document.file_id)
            assert bytes(await file.download_as_bytearray()) == word


class Scripted:
    """A server on 127.0.0.1 that reads each request and answers with `reply` (which says
    whether to keep the connection); counts connections and requests."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Scripted:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/bot{DEFAULT_TOKEN}/"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                if not await self.reply(request, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed.set()
            writer.close()


def answer(body: bytes = OK, status: str = "200 OK", headers: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body


def replying(data: bytes, keep: bool = True) -> Reply:
    async def reply(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(data)
        await writer.drain()
        return keep

    return reply


async def call(url: str, request: BotAPIRequest, **kwargs: object) -> tuple[int, bytes]:
    return await request.do_request(url + "getMe", "POST", **kwargs)  # type: ignore[arg-type]


async def test_a_connection_is_kept_and_reused_across_calls() -> None:
    async with Scripted(replying(answer())) as server:
        request = BotAPIRequest(4)
        for _ in range(5):
            assert await call(server.url, request) == (200, OK)
        await request.shutdown()
    assert server.connections == 1 and len(server.requests) == 5
    assert server.requests[0].startswith(b"POST /bot" + DEFAULT_TOKEN.encode() + b"/getMe HTTP/1.1\r\n")


async def test_chunked_answers_and_answers_that_end_with_the_connection_are_read_whole() -> None:
    body = json.dumps({"ok": True, "result": {"text": "Báo cáo " * 500}}).encode()
    chunks = b"".join(
        b"%x; ext=1\r\n%s\r\n" % (len(body[i : i + 700]), body[i : i + 700]) for i in range(0, len(body), 700)
    )
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\nX-Trailer: 1\r\n\r\n"
    async with Scripted(replying(chunked)) as server:
        request = BotAPIRequest(4)
        assert await call(server.url, request) == (200, body)
        assert await call(server.url, request) == (200, body)
        await request.shutdown()
    assert server.connections == 1
    to_the_end = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + body
    async with Scripted(replying(to_the_end, keep=False)) as server:
        request = BotAPIRequest(4)
        assert await call(server.url, request) == (200, body)
        assert await call(server.url, request) == (200, body)
        await request.shutdown()
    assert server.connections == 2  # the end of the body was the end of the connection


async def test_closed_or_dropped_connections_cost_a_new_connection_not_an_error() -> None:
    async with Scripted(replying(answer(headers="Connection: close\r\n"), keep=False)) as server:
        request = BotAPIRequest(4)
        assert await call(server.url, request) == (200, OK)
        assert await call(server.url, request) == (200, OK)
        await request.shutdown()
    assert server.connections == 2

    async def once_then_drop(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer())  # keep-alive, as far as the client knows
        await writer.drain()
        return False  # but the server closes it while idle

    async with Scripted(once_then_drop) as server:
        request = BotAPIRequest(4)
        assert await call(server.url, request) == (200, OK)
        await asyncio.wait_for(server.closed.wait(), 5)
        await asyncio.sleep(0.05)  # the FIN reaches the client's idle connection
        assert await call(server.url, request) == (200, OK)
        await request.shutdown()
    assert server.connections == 2


async def test_a_kept_connection_closed_just_as_it_is_taken_costs_one_more_try_not_an_error() -> None:
    async def first_connection_dies_unanswered(request: bytes, writer: asyncio.StreamWriter) -> bool:
        if len(server.requests) == 2:
            return False  # the server's idle timeout won the race: closed without a word
        writer.write(answer())
        return True

    async with Scripted(first_connection_dies_unanswered) as server:
        request = BotAPIRequest(4)
        assert await call(server.url, request) == (200, OK)
        assert await call(server.url, request) == (200, OK)
        await request.shutdown()
    assert server.connections == 2 and len(server.requests) == 3


async def test_telegram_errors_come_back_as_python_telegram_bot_raises_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # as build_application sets it
    bad = json.dumps({"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}).encode()
    flood = json.dumps(
        {"ok": False, "error_code": 429, "description": "Too Many Requests", "parameters": {"retry_after": 7}}
    ).encode()
    replies = iter([answer(bad, "400 Bad Request"), answer(flood, "429 Too Many Requests")])

    async def reply(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(next(replies))
        return True

    async with Scripted(reply) as server:
        bot = Bot(DEFAULT_TOKEN, base_url=server.url.rsplit("/bot", 1)[0] + "/bot", request=BotAPIRequest(2))
        try:
            with pytest.raises(BadRequest, match="Chat not found"):
                await bot.send_message(USER, "x")
            with pytest.raises(RetryAfter, match="Retry in 0:00:07"):
                await bot.send_message(USER, "x")
        finally:
            await bot.request.shutdown()


async def test_timeouts_are_timed_out_and_the_late_connection_is_not_reused() -> None:
    async def slow_first(request: bytes, writer: asyncio.StreamWriter) -> bool:
        if len(slow_first.seen) == 0:  # type: ignore[attr-defined]
            slow_first.seen.append(1)  # type: ignore[attr-defined]
            await asyncio.sleep(0.5)
        writer.write(answer())
        return True

    slow_first.seen = []  # type: ignore[attr-defined]
    async with Scripted(slow_first) as server:
        request = BotAPIRequest(4, read_timeout=0.1)
        with pytest.raises(TimedOut):
            await call(server.url, request)
        assert await call(server.url, request) == (200, OK)  # on a new connection
        await request.shutdown()
    assert server.connections == 2


async def test_a_full_pool_is_a_pool_timeout_and_a_cancelled_call_frees_its_place() -> None:
    release = asyncio.Event()

    async def held(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await release.wait()
        writer.write(answer())
        return True

    async with Scripted(held) as server:
        request = BotAPIRequest(1, pool_timeout=0.1)
        first = asyncio.ensure_future(call(server.url, request))
        await asyncio.sleep(0.05)
        with pytest.raises(TimedOut, match="Pool timeout"):
            await call(server.url, request)
        first.cancel()  # the caller gave up: its connection is closed, its place freed
        with pytest.raises(asyncio.CancelledError):
            await first
        release.set()
        assert await call(server.url, request) == (200, OK)
        await request.shutdown()
    assert server.connections == 2


@pytest.mark.parametrize(
    "data",
    [
        b"SSH-2.0-OpenSSH_9.2\r\n",  # not HTTP
        b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 101 + b"\r\n",  # header lines without end
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n",  # a line without end
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}",  # the connection ends mid-body
        b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"",  # closed without a word
    ],
)
async def test_a_malformed_or_cut_answer_is_a_network_error(data: bytes) -> None:
    async with Scripted(replying(data, keep=False)) as server:
        request = BotAPIRequest(4)
        with pytest.raises(NetworkError) as raised:
            await call(server.url, request)
        assert not isinstance(raised.value, TimedOut)
        await request.shutdown()


async def test_nothing_listening_is_a_network_error() -> None:
    async with Scripted(replying(answer())) as server:
        url = server.url
    request = BotAPIRequest(4)
    with pytest.raises(NetworkError, match="connection failed"):
        await call(url, request)


async def test_https_with_the_given_tls_context(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip("openssl cannot make a certificate here")
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    trusted = ssl.create_default_context(cafile=str(cert))
    made_contexts: list[int] = []

    def tls() -> ssl.SSLContext:
        made_contexts.append(1)
        return trusted

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer())
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=served)
    port = server.sockets[0].getsockname()[1]
    request = BotAPIRequest(2, tls=tls)
    try:
        for _ in range(3):
            assert await request.do_request(f"https://localhost:{port}/bot{DEFAULT_TOKEN}/getMe", "GET") == (
                200,
                OK,
            )
        # A certificate the context does not trust is refused.
        untrusting = BotAPIRequest(2, tls=lambda: ssl.create_default_context())
        with pytest.raises(NetworkError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.do_request(f"https://localhost:{port}/bot{DEFAULT_TOKEN}/getMe", "GET")
    finally:
        await request.shutdown()
        server.close()
        await server.wait_closed()
    assert made_contexts == [1]  # made once, at the first https connection


def test_a_proxy_in_the_environment_keeps_httpx_which_honours_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    answers, updates = _bot_api_requests(None, None)
    assert isinstance(answers, BotAPIRequest) and isinstance(updates, BotAPIRequest)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    answers, updates = _bot_api_requests(None, None)
    assert isinstance(answers, HTTPXRequest) and isinstance(updates, HTTPXRequest)
