"""The Bot API client: python-telegram-bot's request interface over kept-alive HTTP/1.1.

Every answer, question and receipt the bot sends is one Bot API call. Through python-telegram-bot's
default client (httpx, through httpcore, anyio and h11) a sendMessage cost 1.05 ms of CPU, against
0.27 ms through this one (one connection, python-telegram-bot's own work included); in
`bench/report_flow.py` httpx was two thirds of the bot's CPU per step. `BotAPIRequest` sends
the calls the Bot API makes of its clients, and nothing else:

- POST with the parameters form-encoded as python-telegram-bot encodes them (the same bytes
  its httpx client sends), and GET for file downloads;
- HTTP/1.1 with connections kept alive and reused (at most `pool_size` in use at once; waiting
  for one longer than the pool timeout is a TimedOut, as with httpx), over TLS for https;
- a response read by its Content-Length, chunked, or to the end of the connection, with the
  read timeout applying to each wait for bytes (as httpx's does), and the status line and
  headers bounded (64 KiB a line, 100 lines).

A call that uploads a file (multipart) goes through python-telegram-bot's httpx client, made
when first needed. `_bot_api_requests` (bot/app.py) keeps httpx for everything when a proxy is
set in the environment (HTTPS_PROXY and the like), which httpx honours and this does not, and for
whatever a test or caller hands it instead.

Failures are python-telegram-bot's: TimedOut for a timeout, NetworkError for anything else on
the way (refused, reset, a malformed answer), so that callers see what they saw with httpx. A
connection is reused only after a complete answer that did not ask to close it; one that failed
or was cancelled mid-call is closed. A kept connection that ends before the first byte of its
answer had been closed by the server while idle (a race with the server's keep-alive timeout):
the call goes again, once, on a new connection. Each call is logged at DEBUG with its URL, as
httpx logs it; the URL carries the token, which bot/logs.py's filter replaces in every line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlsplit

from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, HTTPXRequest, RequestData

MAX_LINE: Final = 64 * 1024
MAX_HEADERS: Final = 100
READ_CHUNK: Final = 256 * 1024

log = logging.getLogger(__name__)
# python-telegram-bot's "not given" marker for a timeout (its class lives in a private module).
_DEFAULT = type(BaseRequest.DEFAULT_NONE)


class _Broken(Exception):
    """The answer was not HTTP, or the connection ended before its end."""


class _Unanswered(_Broken):
    """The connection ended before the first byte of an answer."""


@dataclass(frozen=True)
class _Origin:
    """Where a URL's connections go: scheme, host and port, and the Host header to send."""

    tls: bool
    host: str
    port: int
    host_header: str


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        """Still open at both ends: an idle connection the server closed has seen EOF."""
        return not (self.writer.is_closing() or self.reader.at_eof())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


def _origin(scheme: str, host: str | None, port: int | None) -> _Origin:
    if scheme not in ("http", "https") or not host:
        raise NetworkError(f"Bot API URL not supported: {scheme!r} scheme, host {host!r}")
    tls = scheme == "https"
    default = 443 if tls else 80
    port = port or default
    name = f"[{host}]" if ":" in host else host
    return _Origin(tls, host, port, name if port == default else f"{name}:{port}")


class BotAPIRequest(BaseRequest):
    """python-telegram-bot's BaseRequest over kept-alive HTTP/1.1 connections (see the module)."""

    def __init__(
        self,
        pool_size: int = 256,
        *,
        connect_timeout: float | None = 5.0,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
        tls: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        """`tls`: makes the TLS context for https (certifi's CA bundle, as httpx's, if not
        given), called once, at the first https connection."""
        self._pool_size = pool_size
        self._timeouts = {
            "connect": connect_timeout,
            "read": read_timeout,
            "write": write_timeout,
            "pool": pool_timeout,
        }
        self._media_write_timeout = media_write_timeout
        self._make_tls = tls
        self._tls: ssl.SSLContext | None = None
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._slots: asyncio.Semaphore | None = None
        self._files: HTTPXRequest | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._timeouts["read"]

    async def initialize(self) -> None:
        """Nothing to open: connections are made on first use."""

    async def shutdown(self) -> None:
        connections = [c for idle in self._idle.values() for c in idle] + list(self._busy)
        self._idle.clear()
        self._busy.clear()
        for connection in connections:
            connection.close()
        if connections:  # let the transports finish closing while the loop still runs
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await asyncio.gather(
                        *(c.writer.wait_closed() for c in connections), return_exceptions=True
                    )
        if self._files is not None:
            files, self._files = self._files, None
            await files.shutdown()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if request_data is not None and request_data.contains_files:
            files = await self._file_client()
            return await files.do_request(
                url,
                method,
                request_data,
                read_timeout=self._timeout("read", read_timeout),
                write_timeout=self._media_write_timeout
                if isinstance(write_timeout, _DEFAULT)
                else self._timeout("write", write_timeout),
                connect_timeout=self._timeout("connect", connect_timeout),
                pool_timeout=self._timeout("pool", pool_timeout),
            )
        parts = urlsplit(url)
        origin = _origin(parts.scheme, parts.hostname, parts.port)
        target = quote(parts.path or "/", safe="/%:@&=+$,;~!*'()") + (
            f"?{parts.query}" if parts.query else ""
        )
        body = request_data.url_encoded_parameters().encode() if request_data is not None else b""
        head = [
            f"{method} {target} HTTP/1.1",
            f"Host: {origin.host_header}",
            f"User-Agent: {self.USER_AGENT}",
        ]
        if method != "GET" or body:
            head += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
        message = ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body
        timeouts = (
            self._timeout("connect", connect_timeout),
            self._timeout("read", read_timeout),
            self._timeout("write", write_timeout),
        )
        await self._take_slot(self._timeout("pool", pool_timeout))
        try:
            status, payload = await self._exchange(origin, message, method, *timeouts)
        finally:
            assert self._slots is not None
            self._slots.release()
        log.debug("%s %s: HTTP %s", method, url, status)
        return status, payload

    def _timeout(self, kind: str, given: object) -> float | None:
        """The timeout a call gives (None: no limit), or this client's when it gives PTB's
        DEFAULT_NONE (a DefaultValue)."""
        if isinstance(given, _DEFAULT):
            return self._timeouts[kind]
        return None if given is None else float(given)  # type: ignore[arg-type]

    async def _take_slot(self, timeout: float | None) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._pool_size)
        if not self._slots.locked():
            await self._slots.acquire()
            return
        try:
            async with asyncio.timeout(timeout):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise TimedOut(
                "Pool timeout: all connections in the connection pool are in use. The request was "
                "not sent to Telegram."
            ) from exc

    async def _exchange(
        self,
        origin: _Origin,
        message: bytes,
        method: str,
        connect_timeout: float | None,
        read_timeout: float | None,
        write_timeout: float | None,
    ) -> tuple[int, bytes]:
        """One call. A kept connection the server closed while it lay idle can be taken just
        before its end is seen: such a connection ending without a byte of answer is a race lost,
        not a failure, and the call goes again once on a new connection (as browsers do)."""
        connection, reused = await self._connection(origin, connect_timeout)
        while True:
            self._busy.add(connection)
            keep = False
            try:
                connection.writer.write(message)
                if connection.writer.transport.get_write_buffer_size():
                    async with asyncio.timeout(write_timeout):
                        await connection.writer.drain()
                status, payload, keep = await _read_response(connection.reader, read_timeout, method)
                return status, payload
            except (_Unanswered, ConnectionResetError, BrokenPipeError) as exc:
                if not reused:
                    raise _failed(exc) from exc
            except TimeoutError as exc:
                raise TimedOut() from exc
            except (OSError, EOFError, ValueError, asyncio.LimitOverrunError, _Broken) as exc:
                raise _failed(exc) from exc
            finally:
                self._busy.discard(connection)
                if keep and connection.usable():
                    self._idle.setdefault(origin, []).append(connection)
                else:
                    connection.close()
            log.debug("a kept connection to the Bot API had been closed; calling again on a new one")
            connection, reused = await self._open(origin, connect_timeout), False

    async def _connection(self, origin: _Origin, timeout: float | None) -> tuple[_Connection, bool]:
        """A kept connection to the origin (True), or a new one (False)."""
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection, True
            connection.close()
        return await self._open(origin, timeout), False

    async def _open(self, origin: _Origin, timeout: float | None) -> _Connection:
        tls = self._tls_context() if origin.tls else None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                    limit=MAX_LINE,
                )
        except TimeoutError as exc:
            raise TimedOut("Connecting to the Bot API timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            raise _failed(exc) from exc
        return _Connection(reader, writer)

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = self._make_tls() if self._make_tls is not None else _default_tls()
        return self._tls

    async def _file_client(self) -> HTTPXRequest:
        """python-telegram-bot's own client, for uploads (multipart), with the same TLS context."""
        if self._files is None:
            files = HTTPXRequest(
                connection_pool_size=max(1, min(self._pool_size, 8)),
                connect_timeout=self._timeouts["connect"],
                read_timeout=self._timeouts["read"],
                write_timeout=self._timeouts["write"],
                pool_timeout=self._timeouts["pool"],
                media_write_timeout=self._media_write_timeout,
                httpx_kwargs={"verify": self._tls_context()},
            )
            await files.initialize()
            self._files = files
        return self._files


def _failed(exc: BaseException) -> NetworkError:
    """What a call that broke on the way raises: one line naming what broke."""
    return NetworkError(f"Bot API connection failed: {type(exc).__name__}: {exc}")


def _default_tls() -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context()


async def _read_response(
    reader: asyncio.StreamReader, read_timeout: float | None, method: str
) -> tuple[int, bytes, bool]:
    """The status, the body and whether the connection may carry another call. The status line
    and headers must come within read_timeout, and then each piece of the body (as with httpx,
    whose read timeout is per read: a large download is not cut off while it progresses)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(None) as deadline:

        def arm() -> None:
            deadline.reschedule(None if read_timeout is None else loop.time() + read_timeout)

        arm()
        while True:
            status, version, length, chunked, connection = await _read_head(reader)
            if not 100 <= status < 200 or status == 101:
                break  # an interim answer (100 Continue) is followed by the real one
        if status == 101:
            return status, b"", False
        keep = b"close" not in connection if version == b"HTTP/1.1" else b"keep-alive" in connection
        if method == "HEAD" or status in (204, 304):
            return status, b"", keep
        if chunked:
            return status, await _read_chunked(reader, arm), keep
        if length is not None:
            return status, await _read_exactly(reader, length, arm), keep
        parts: list[bytes] = []
        while True:  # neither: the body ends with the connection
            arm()
            part = await reader.read(READ_CHUNK)
            if not part:
                return status, b"".join(parts), False
            parts.append(part)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, bytes, int | None, bool, bytes]:
    """The status line and headers: status, HTTP version, Content-Length, chunked, Connection."""
    status_line = await reader.readline()
    if not status_line:
        raise _Unanswered("the server closed the connection without answering")
    version, _, rest = status_line.rstrip(b"\r\n").partition(b" ")
    code = rest[:3]
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise _Broken("the answer is not HTTP")
    length: int | None = None
    chunked = False
    connection = b""
    for _ in range(MAX_HEADERS):
        header = await reader.readuntil(b"\n")
        if header in (b"\r\n", b"\n"):
            return int(code), version, length, chunked, connection
        name, colon, value = header.partition(b":")
        if not colon:
            raise _Broken("a header line without a colon")
        name = name.strip().lower()
        value = value.strip()
        if name == b"content-length":
            if not value.isdigit() or (length is not None and int(value) != length):
                raise _Broken("a bad Content-Length")
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = value.lower().endswith(b"chunked")
        elif name == b"connection":
            connection = value.lower()
    raise _Broken(f"more than {MAX_HEADERS} header lines")


async def _read_chunked(reader: asyncio.StreamReader, arm: Callable[[], None]) -> bytes:
    parts: list[bytes] = []
    while True:
        arm()
        size = int((await reader.readuntil(b"\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            for _ in range(MAX_HEADERS):  # trailers, up to the empty line
                if (await reader.readuntil(b"\n")) in (b"\r\n", b"\n"):
                    return b"".join(parts)
            raise _Broken(f"more than {MAX_HEADERS} trailer lines")
        parts.append(await _read_exactly(reader, size, arm))
        if (await reader.readuntil(b"\n")).strip():
            raise _Broken("a chunk longer than its size")


async def _read_exactly(reader: asyncio.StreamReader, size: int, arm: Callable[[], None]) -> bytes:
    parts: list[bytes] = []
    while size > 0:
        arm()
        part = await reader.read(min(size, READ_CHUNK))
        if not part:
            raise _Broken("the server closed the connection mid-answer")
        parts.append(part)
        size -= len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)
