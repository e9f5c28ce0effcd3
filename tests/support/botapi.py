"""A stand-in for the Telegram Bot API, for tests and benchmarks of the tiendo bot.

The real Telegram is unreachable from the test environment, so this module imitates the part
of the Bot API that tiendo (python-telegram-bot 22) uses.  Only the standard library is used.

Three layers
------------
``FakeBotAPI``
    The thread-safe, in-memory core.  It holds the bot identity, the queue of pending updates,
    every message the bot sent (with its current text, so edits apply), commands, answered
    callback queries, uploaded files and webhook info.  Tests drive simulated users through it
    (``user``, ``send_text``, ``press_button``, ``send_document``, ``send_photo``), inspect what
    the bot did (``sent``, ``last``, ``rejected``, ``calls``...), wait for it without sleeping
    (``wait_sent`` / ``wait_for`` from another thread, ``wait_sent_async`` /
    ``wait_for_async`` from the event loop the bot runs on) and inject faults (``fail_next``,
    ``block``).
``BotAPIServer``
    Serves a ``FakeBotAPI`` over HTTP on 127.0.0.1 (``ThreadingHTTPServer``), so a real PTB
    ``Application`` can be pointed at it with ``base_url`` / ``base_file_url``.  It also offers a
    small JSON control surface under ``/_standin/`` for driving a server living in another
    process; ``python -m tests.support.botapi --port 8089`` runs it standalone.
``StandinRequest``
    A ``telegram.request.BaseRequest`` that routes PTB's calls straight into a ``FakeBotAPI``:
    no sockets, no threads; long polling waits asynchronously.

What it imitates
----------------
* The exact JSON shapes PTB parses: ``{"ok": true, "result": ...}``, complete ``Message``
  objects (``from`` = the bot, ``chat``, ``date`` in Unix seconds, ``text`` + ``entities``,
  ``reply_markup`` for inline keyboards, ``edit_date`` after edits), ``Update`` objects with
  increasing ``update_id``, callback queries with ``chat_instance``, ``File`` objects.
* Errors with Telegram's status codes and descriptions, which PTB turns into its exceptions:
  429 + ``parameters.retry_after`` (``RetryAfter``), 403 (``Forbidden``), 400 (``BadRequest``),
  401 (``InvalidToken``), 409 (``Conflict``).
* ``getUpdates`` semantics: ``offset`` confirms earlier updates (negative offsets keep the last
  N), ``limit``, ``allowed_updates``, long polling that returns as soon as an update arrives,
  409 while a webhook is set and 409 for a poll superseded by a newer ``getUpdates``.
* Cheap validations that catch real bugs: empty text, text over 4096 / captions over 1024
  UTF-16 code units (after entity parsing), HTML parsing modelled on TDLib's parser (only the
  tags Telegram allows, matched end tags, ``&lt; &gt; &amp; &quot;`` and numeric character
  references, byte offsets in messages), ``callback_data`` of 1-64 bytes, text-only inline
  buttons, "message is not modified", editing/deleting unknown messages, unknown chats,
  unknown or already answered callback queries, bad chat actions, bad command lists, photos
  that are not images, files too big to upload (50 MB) or download (20 MB).
* Telegram quirks worth knowing: ``editMessageText`` / ``editMessageReplyMarkup`` without
  ``reply_markup`` remove the inline keyboard; only inline keyboards are echoed back in
  ``Message.reply_markup``; message ids are counted per chat, shared by both directions.
* Optional flood control (``FloodLimits``): a sliding window per chat, per group and overall
  that answers 429 like Telegram does when a bot sends too fast.

What it does not imitate
------------------------
* MarkdownV2 / Markdown are not parsed: such text is stored and echoed as sent, with no
  entities and no escaping errors.  Only HTML is validated and turned into entities.
* Telegram's automatic entities in user messages (URLs, mentions, hashtags) are not detected;
  only a leading ``/command`` gets its ``bot_command`` entity.  Leading/trailing whitespace is
  not trimmed from texts.
* Webhooks are only recorded: no update is ever POSTed to a webhook URL.
* Inline mode, payments, media groups, stickers, polls, forum topics, business connections and
  every method not listed in ``FakeBotAPI.METHODS`` (they answer 404 "Not Found").
* Photos are not re-encoded and come back as one ``PhotoSize``; thumbnails are ignored; files
  given by HTTP URL are refused (nothing is downloaded).
* Message age limits (48 h for deletion and editing) and per-user privacy settings.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import hashlib
import itertools
import json
import logging
import math
import mimetypes
import os
import re
import signal
import socket
import struct
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from telegram._utils.defaultvalue import DefaultValue
from telegram.error import TimedOut
from telegram.request import BaseRequest, RequestData

__all__ = [
    "BOT_ID",
    "BOT_USERNAME",
    "DEFAULT_TOKEN",
    "FAULT_KINDS",
    "LOST_KINDS",
    "AnsweredCallback",
    "ApiCall",
    "ApiError",
    "BotAPIServer",
    "ChatAction",
    "EntityParseError",
    "FakeBotAPI",
    "FaultMode",
    "FloodLimits",
    "LostResponse",
    "RejectedCall",
    "SentMessage",
    "SimUser",
    "StandinRequest",
    "StoredFile",
    "UploadedFile",
    "parse_html",
    "parse_multipart",
    "utf16_len",
]

_LOG = logging.getLogger(__name__)

T = TypeVar("T")
JSONDict = dict[str, Any]

DEFAULT_TOKEN = "123456:TEST-TOKEN"
BOT_ID = 7000000001
BOT_USERNAME = "tiendo_test_bot"
BOT_FIRST_NAME = "tiendo"

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024

FAULT_KINDS = (
    "retry_after",
    "forbidden",
    "chat_not_found",
    "bad_gateway",
    "server_error",
    "timeout_before",
    "timeout_after",
)
# Faults whose answer never reaches the client: the call is not carried out ("before") or is
# carried out and its answer lost ("after"), as when a connection drops or times out.
LOST_KINDS = frozenset({"timeout_before", "timeout_after"})
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
COMMAND_SCOPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)
SEND_METHODS = frozenset({"sendMessage", "sendDocument", "sendPhoto"})
# What a bot calls in conversations (FaultMode's default): not its start-up calls.
CONVERSATION_METHODS = SEND_METHODS | {
    "editMessageText",
    "editMessageCaption",
    "editMessageReplyMarkup",
    "deleteMessage",
    "answerCallbackQuery",
    "sendChatAction",
}

_CONFLICT_SUPERSEDED = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
_CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
_BAD_QUERY = "Bad Request: query is too old and response timeout expired or query ID is invalid"


# --------------------------------------------------------------------------------------------
# Errors and small helpers
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """A Bot API error answer: HTTP status, Telegram description and optional parameters."""

    def __init__(
        self,
        status: int,
        description: str,
        parameters: JSONDict | None = None,
        *,
        injected: bool = False,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters
        self.injected = injected

    def body(self) -> JSONDict:
        """The JSON body Telegram sends with this error."""
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = dict(self.parameters)
        return body


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def _ok(result: Any) -> JSONDict:
    return {"ok": True, "result": result}


def _not_found() -> JSONDict:
    return {"ok": False, "error_code": 404, "description": "Not Found"}


def _unauthorized() -> JSONDict:
    return {"ok": False, "error_code": 401, "description": "Unauthorized"}


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit of Telegram's offsets and limits."""
    return len(text.encode("utf-16-le")) // 2


def _now() -> int:
    return int(time.time())


# --------------------------------------------------------------------------------------------
# HTML parse mode (modelled on TDLib's parse_html)
# --------------------------------------------------------------------------------------------


class EntityParseError(ValueError):
    """Raised for text Telegram would refuse with "can't parse entities"."""


_HTML_TAGS: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_CHAR_REF = re.compile(r"&(#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,8}|[a-zA-Z]{2,8});")


def _decode_char_ref(ref: str) -> str | None:
    if ref.startswith(("#x", "#X")):
        code = int(ref[2:], 16)
    elif ref.startswith("#"):
        code = int(ref[1:])
    else:
        return _NAMED_ENTITIES.get(ref)
    if code <= 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code)


def _unescape_html(text: str) -> str:
    return _CHAR_REF.sub(lambda m: _decode_char_ref(m.group(1)) or m.group(0), text)


@dataclass
class _OpenTag:
    name: str
    offset: int
    attrs: dict[str, str]
    language: str | None = None


def parse_html(source: str) -> tuple[str, list[JSONDict]]:
    """Parse Telegram-flavoured HTML into plain text and ``MessageEntity`` dicts.

    Offsets and lengths are in UTF-16 code units; entities are sorted by offset, then by
    decreasing length, as Telegram returns them.  Raises :class:`EntityParseError` with a
    TDLib-like message (byte offsets into the UTF-8 source) for text Telegram would refuse.
    """
    out: list[str] = []
    pos = 0
    stack: list[_OpenTag] = []
    entities: list[JSONDict] = []
    i, n = 0, len(source)

    def byte_offset(index: int) -> int:
        return len(source[:index].encode("utf-8"))

    def emit(chunk: str) -> None:
        nonlocal pos
        out.append(chunk)
        pos += utf16_len(chunk)

    def skip_spaces(k: int) -> int:
        while k < n and source[k].isspace():
            k += 1
        return k

    while i < n:
        ch = source[i]
        if ch == "&":
            match = _CHAR_REF.match(source, i)
            decoded = _decode_char_ref(match.group(1)) if match else None
            if match and decoded is not None:
                emit(decoded)
                i = match.end()
            else:
                emit("&")
                i += 1
            continue
        if ch != "<":
            j = i
            while j < n and source[j] not in "<&":
                j += 1
            emit(source[i:j])
            i = j
            continue

        begin = i
        i += 1
        if i < n and source[i] == "/":  # end tag
            i += 1
            j = i
            while j < n and not source[j].isspace() and source[j] != ">":
                j += 1
            name = source[i:j].lower()
            j = skip_spaces(j)
            if j >= n or source[j] != ">":
                raise EntityParseError(f"Unclosed end tag at byte offset {byte_offset(begin)}")
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {byte_offset(begin)}")
            top = stack[-1]
            if name != top.name:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {byte_offset(begin)}, "
                    f'expected "</{top.name}>", found "</{name}>"'
                )
            stack.pop()
            i = j + 1
            length = pos - top.offset
            language = top.attrs.get("class", "")
            if top.name == "code" and stack and stack[-1].name == "pre" and language.startswith("language-"):
                stack[-1].language = language[len("language-") :]
                continue
            if length <= 0:
                continue
            entity: JSONDict = {"type": _HTML_TAGS[top.name], "offset": top.offset, "length": length}
            if top.name == "a":
                href = top.attrs.get("href", "")
                if not href:
                    continue
                entity["url"] = href
            elif top.name == "pre" and top.language:
                entity["language"] = top.language
            elif top.name == "blockquote" and "expandable" in top.attrs:
                entity["type"] = "expandable_blockquote"
            elif top.name == "tg-emoji":
                entity["custom_emoji_id"] = top.attrs["emoji-id"]
            entities.append(entity)
            continue

        # start tag
        j = i
        while j < n and not source[j].isspace() and source[j] != ">":
            j += 1
        if j >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {byte_offset(begin)}")
        name = source[i:j].lower()
        if name not in _HTML_TAGS:
            raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {byte_offset(begin)}')
        attrs: dict[str, str] = {}
        i = j
        while True:
            i = skip_spaces(i)
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {byte_offset(begin)}")
            if source[i] == ">":
                i += 1
                break
            k = i
            while k < n and not source[k].isspace() and source[k] not in "=>":
                k += 1
            attr = source[i:k].lower()
            if not attr:
                raise EntityParseError(
                    f'Empty attribute name in the tag "{name}" at byte offset {byte_offset(begin)}'
                )
            i = skip_spaces(k)
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {byte_offset(begin)}")
            if source[i] != "=":
                attrs[attr] = ""  # a bare attribute, like <blockquote expandable>
                continue
            i = skip_spaces(i + 1)
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {byte_offset(begin)}")
            if source[i] in "'\"":
                end = source.find(source[i], i + 1)
                if end == -1:
                    raise EntityParseError(f"Unclosed start tag at byte offset {byte_offset(begin)}")
                value = source[i + 1 : end]
                i = end + 1
            else:
                k = i
                while k < n and not source[k].isspace() and source[k] != ">":
                    k += 1
                value = source[i:k]
                i = k
            attrs[attr] = _unescape_html(value)
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError('Tag "span" must have class "tg-spoiler"')
        if name == "tg-emoji" and not attrs.get("emoji-id"):
            raise EntityParseError('Tag "tg-emoji" must have attribute "emoji-id"')
        stack.append(_OpenTag(name=name, offset=pos, attrs=attrs))

    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadedFile:
    """One file part of an upload (multipart/form-data or PTB's ``RequestData``)."""

    filename: str | None
    content: bytes
    mime_type: str | None = None


@dataclass
class StoredFile:
    """A file known to the stand-in, uploaded by the bot or sent by a simulated user."""

    file_id: str
    file_unique_id: str
    kind: str  # "document" or "photo"
    content: bytes = field(repr=False)
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def file_size(self) -> int:
        return len(self.content)

    def file_json(self) -> JSONDict:
        """The ``File`` object ``getFile`` returns."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.file_size,
            "file_path": self.file_path,
        }

    def document_json(self) -> JSONDict:
        """The ``Document`` object of a message carrying this file."""
        doc: JSONDict = {}
        if self.file_name is not None:
            doc["file_name"] = self.file_name
        if self.mime_type is not None:
            doc["mime_type"] = self.mime_type
        doc.update(file_id=self.file_id, file_unique_id=self.file_unique_id, file_size=self.file_size)
        return doc

    def photo_json(self) -> list[JSONDict]:
        """The ``PhotoSize`` list of a message carrying this photo (a single size)."""
        return [
            {
                "file_id": self.file_id,
                "file_unique_id": self.file_unique_id,
                "file_size": self.file_size,
                "width": self.width or 1,
                "height": self.height or 1,
            }
        ]


def _image_info(data: bytes) -> tuple[str, int, int] | None:
    """(extension, width, height) of a PNG, JPEG, GIF, WebP or BMP image, else ``None``."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
            width, height = struct.unpack(">II", data[16:24])
            return ".png", width, height
        if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
            width, height = struct.unpack("<HH", data[6:10])
            return ".gif", width, height
        if data.startswith(b"\xff\xd8"):
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    i += 1
                    continue
                marker = data[i + 1]
                if marker == 0xFF:
                    i += 1
                    continue
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                    i += 2
                    continue
                (seg_len,) = struct.unpack(">H", data[i + 2 : i + 4])
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                    return ".jpg", width, height
                i += 2 + seg_len
            return None
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
            chunk = data[12:16]
            if chunk == b"VP8X":
                width = 1 + int.from_bytes(data[24:27], "little")
                height = 1 + int.from_bytes(data[27:30], "little")
            elif chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            else:
                width, height = struct.unpack("<HH", data[26:30])
                width, height = width & 0x3FFF, height & 0x3FFF
            return ".webp", width, height
        if data[:2] == b"BM" and len(data) >= 26:
            width, height = struct.unpack("<ii", data[18:26])
            return ".bmp", width, abs(height)
    except struct.error:
        return None
    return None


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass
class SentMessage:
    """A message the bot sent, kept up to date by later edits and deletion.

    ``text`` / ``caption`` are what the bot sent (markup source, e.g. ``<b>Hi</b>``);
    ``plain_text`` and ``entities`` are what Telegram shows after parsing.
    """

    method: str
    chat_id: int
    message_id: int
    text: str | None
    caption: str | None
    parse_mode: str | None
    reply_markup: JSONDict | None
    plain_text: str | None
    entities: list[JSONDict]
    document: JSONDict | None
    photo: list[JSONDict] | None
    monotonic: float
    wall_time: float
    params: JSONDict = field(repr=False)
    edits: int = 0
    edited_monotonic: float | None = None
    deleted: bool = False
    history: list[JSONDict] = field(default_factory=list, repr=False)

    @property
    def buttons(self) -> list[JSONDict]:
        """The inline keyboard buttons, row by row, flattened."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]

    def button_data(self, label: str) -> str:
        """The ``callback_data`` of the inline button whose text is ``label``."""
        for button in self.buttons:
            if button.get("text") == label and "callback_data" in button:
                return str(button["callback_data"])
        labels = [button.get("text") for button in self.buttons]
        raise LookupError(f"no callback button {label!r} in message {self.message_id}: {labels}")

    def to_dict(self) -> JSONDict:
        """A JSON-serialisable copy."""
        return asdict(self)


@dataclass(frozen=True)
class RejectedCall:
    """A Bot API call answered with an error (``injected`` for fail_next/block faults)."""

    method: str
    chat_id: int | None
    status: int
    description: str
    params: JSONDict
    injected: bool
    monotonic: float
    wall_time: float

    def to_dict(self) -> JSONDict:
        return asdict(self)


@dataclass(frozen=True)
class ApiCall:
    """A successful Bot API call; ``files`` maps upload fields to file names."""

    method: str
    chat_id: int | None
    params: JSONDict
    files: dict[str, str | None]
    monotonic: float
    wall_time: float


@dataclass(frozen=True)
class AnsweredCallback:
    """An ``answerCallbackQuery`` call."""

    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None
    monotonic: float


@dataclass(frozen=True)
class ChatAction:
    """A ``sendChatAction`` call."""

    chat_id: int
    action: str
    monotonic: float


@dataclass(frozen=True)
class FloodLimits:
    """Sliding-window send limits; exceeding one answers 429 with ``retry_after``.

    Defaults follow Telegram's published guidance: about one message per second per chat,
    20 per minute per group, 30 per second overall.  Applies to sendMessage/Document/Photo.
    """

    per_chat: int = 1
    per_chat_window: float = 1.0
    per_group: int = 20
    per_group_window: float = 60.0
    overall: int = 30
    overall_window: float = 1.0


@dataclass
class SimUser:
    """A simulated Telegram user; the methods are shortcuts to the owning :class:`FakeBotAPI`."""

    api: FakeBotAPI = field(repr=False, compare=False)
    id: int
    first_name: str
    username: str | None = None
    language_code: str | None = "vi"
    last_name: str | None = None

    def to_json(self) -> JSONDict:
        """The ``User`` object."""
        user: JSONDict = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    def chat_json(self) -> JSONDict:
        """The private ``Chat`` object of this user."""
        chat: JSONDict = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat

    def send_text(self, text: str, **kwargs: Any) -> JSONDict:
        return self.api.send_text(self.id, text, **kwargs)

    def press_button(self, message_id: int, data: str, **kwargs: Any) -> JSONDict:
        return self.api.press_button(self.id, message_id, data, **kwargs)

    def send_document(
        self,
        filename: str,
        content: bytes,
        mime_type: str = "application/octet-stream",
        **kwargs: Any,
    ) -> JSONDict:
        return self.api.send_document(self.id, filename, content, mime_type, **kwargs)

    def send_photo(self, content: bytes, **kwargs: Any) -> JSONDict:
        return self.api.send_photo(self.id, content, **kwargs)

    def sent(self) -> list[SentMessage]:
        """What the bot sent to this user's private chat."""
        return self.api.sent(self.id)

    def last(self) -> SentMessage:
        return self.api.last(self.id)


@dataclass(frozen=True)
class _Fault:
    kind: str
    retry_after: int
    method: str | None
    delay: float = 0.0


class LostResponse(Exception):
    """The answer to a call never reaches the client (raised by ``FakeBotAPI.call``): the HTTP
    server holds the connection ``delay`` seconds and drops it without a response;
    StandinRequest raises PTB's TimedOut. ``delivered``: whether the call was carried out."""

    def __init__(self, method: str, delivered: bool, delay: float = 0.0) -> None:
        super().__init__(f"{method}: answer lost ({'after' if delivered else 'before'} delivery)")
        self.method = method
        self.delivered = delivered
        self.delay = delay


@dataclass
class FaultMode:
    """Random faults: each call of ``methods`` (CONVERSATION_METHODS when None) fails with
    probability ``rate``, with one of ``kinds`` (FAULT_KINDS), drawn from a seeded generator."""

    rate: float
    kinds: tuple[str, ...] = ("retry_after", "bad_gateway", "server_error", "timeout_before", "timeout_after")
    methods: frozenset[str] | None = None
    seed: int = 0
    retry_after: int = 1
    delay: float = 0.0
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        import random

        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")
        self._random = random.Random(self.seed)

    def draw(self, method: str) -> _Fault | None:
        wanted = method in (CONVERSATION_METHODS if self.methods is None else self.methods)
        if not wanted or self._random.random() >= self.rate:
            return None
        kind = self._random.choice(self.kinds)
        self.injected[kind] += 1
        return _Fault(kind, self.retry_after, method, self.delay)


@dataclass(frozen=True)
class _PollArgs:
    offset: int | None
    limit: int
    timeout: float
    allowed_updates: list[str] | None


# --------------------------------------------------------------------------------------------
# Parameter decoding (JSON bodies carry native values, forms carry strings)
# --------------------------------------------------------------------------------------------


class _Params:
    def __init__(self, raw: Mapping[str, Any], files: Mapping[str, UploadedFile]) -> None:
        self.raw: JSONDict = dict(raw)
        self.files: dict[str, UploadedFile] = dict(files)

    def has(self, name: str) -> bool:
        return self.raw.get(name) not in (None, "")

    def text(self, name: str) -> str | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)

    def integer(self, name: str) -> int | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise _bad(f'field "{name}" must be of type Integer')
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise _bad(f'field "{name}" must be of type Integer') from None

    def number(self, name: str) -> float | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _bad(f'field "{name}" must be a Number') from None

    def flag(self, name: str) -> bool:
        value = self.raw.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1")
        return bool(value)

    def structured(self, name: str) -> Any:
        value = self.raw.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise _bad(f"can't parse {name} JSON object") from None
        return value

    def public(self) -> JSONDict:
        """The parameters as recorded (strings that hold JSON are decoded)."""
        decoded: JSONDict = {}
        for key, value in self.raw.items():
            if isinstance(value, str) and value[:1] in ("{", "["):
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            decoded[key] = value
        return decoded


# --------------------------------------------------------------------------------------------
# The core
# --------------------------------------------------------------------------------------------


class FakeBotAPI:
    """Thread-safe in-memory imitation of the Telegram Bot API (see the module docstring).

    ``call`` / ``call_async`` answer Bot API methods; every other public method is a helper for
    tests.  Helpers that wait come in two flavours: ``wait_for`` / ``wait_sent`` block the
    calling thread (use them when the bot runs in another thread or process), and
    ``wait_for_async`` / ``wait_sent_async`` await on the running event loop (use them when
    the bot runs on the same loop as the test, or it would never get to run).
    """

    METHODS: dict[str, str] = {
        "getMe": "_m_get_me",
        "getUpdates": "",  # handled by call / call_async
        "deleteWebhook": "_m_delete_webhook",
        "setWebhook": "_m_set_webhook",
        "getWebhookInfo": "_m_get_webhook_info",
        "logOut": "_m_true",
        "close": "_m_true",
        "setMyCommands": "_m_set_my_commands",
        "getMyCommands": "_m_get_my_commands",
        "deleteMyCommands": "_m_delete_my_commands",
        "sendMessage": "_m_send_message",
        "editMessageText": "_m_edit_message_text",
        "editMessageCaption": "_m_edit_message_caption",
        "editMessageReplyMarkup": "_m_edit_message_reply_markup",
        "deleteMessage": "_m_delete_message",
        "answerCallbackQuery": "_m_answer_callback_query",
        "sendDocument": "_m_send_document",
        "sendPhoto": "_m_send_photo",
        "sendChatAction": "_m_send_chat_action",
        "getFile": "_m_get_file",
        "getChat": "_m_get_chat",
    }
    _CANONICAL: dict[str, str] = {name.lower(): name for name in METHODS}

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_id: int = BOT_ID,
        bot_username: str = BOT_USERNAME,
        bot_first_name: str = BOT_FIRST_NAME,
        flood_limits: FloodLimits | None = None,
        first_update_id: int = 1,
    ) -> None:
        self.token = token
        self.flood_limits = flood_limits
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._listeners: list[Callable[[], None]] = []
        # Waiters for messages to one chat, woken only by a message to that chat: with many
        # simulated users waiting at once (bench/), waking all of them at every API call
        # made the stand-in, not the bot, the bottleneck.
        self._chat_listeners: dict[int, list[Callable[[], None]]] = defaultdict(list)
        self._me: JSONDict = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._next_update_id = first_update_id
        self._pending: list[JSONDict] = []
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._poll_epoch = 0
        self._conflicts = 0
        self._users: dict[int, SimUser] = {}
        self._chats: dict[int, JSONDict] = {}
        self._next_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], JSONDict] = {}
        self._sent: list[SentMessage] = []
        self._sent_by_chat: dict[int, list[SentMessage]] = defaultdict(list)
        self._sent_index: dict[tuple[int, int], SentMessage] = {}
        self._rejected: list[RejectedCall] = []
        self._calls: list[ApiCall] = []
        self._call_counts: Counter[str] = Counter()
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._callback_queries: dict[str, bool] = {}  # id -> answered
        self._answered: list[AnsweredCallback] = []
        self._chat_actions: list[ChatAction] = []
        self._files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._file_seq = itertools.count(1)
        self._query_seq = itertools.count(1)
        self._webhook: JSONDict = {"url": ""}
        self._faults: dict[int | None, deque[_Fault]] = {}  # None: whatever the chat
        self.fault_mode: FaultMode | None = None
        self._lost: list[tuple[str, int | None, bool]] = []
        self._blocked: set[int] = set()
        self._flood_log: dict[tuple[Any, ...], deque[float]] = {}

    # ---------------------------------------------------------------- state change plumbing

    def _changed(self) -> None:
        """Wake every waiter; the caller holds the lock."""
        self._cond.notify_all()
        for listener in list(self._listeners):
            listener()

    @staticmethod
    def _waker(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> Callable[[], None]:
        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop may be closed already
                loop.call_soon_threadsafe(event.set)

        return wake

    def interrupt_polls(self) -> None:
        """Make every waiting ``getUpdates`` return an empty list now (used on server stop)."""
        with self._lock:
            self._poll_epoch += 1
            self._changed()

    def check_token(self, token: str) -> bool:
        """Whether ``token`` is the configured bot token."""
        return token == self.token

    def unauthorized(self, method: str) -> tuple[int, JSONDict]:
        """Record and answer a call made with a wrong token."""
        with self._lock:
            self._record_rejected(method, _Params({}, {}), ApiError(401, "Unauthorized"))
        return 401, _unauthorized()

    # ---------------------------------------------------------------- simulated users

    def user(
        self,
        user_id: int,
        first_name: str = "Người dùng",
        username: str | None = None,
        language_code: str | None = "vi",
        *,
        last_name: str | None = None,
    ) -> SimUser:
        """Create (or update) a simulated user who has started the bot; returns its handle.

        The user's private chat (id = ``user_id``) becomes known, so the bot may send to it.
        """
        with self._lock:
            handle = SimUser(self, user_id, first_name, username, language_code, last_name)
            self._users[user_id] = handle
            self._chats[user_id] = handle.chat_json()
            return handle

    def group(self, chat_id: int, title: str = "Nhóm thử", chat_type: str = "supergroup") -> JSONDict:
        """Register a group chat (``chat_type`` "group" or "supergroup"); returns its Chat."""
        if chat_type not in ("group", "supergroup"):
            raise ValueError(f"not a group chat type: {chat_type!r}")
        with self._lock:
            self._chats[chat_id] = {"id": chat_id, "title": title, "type": chat_type}
            return copy.deepcopy(self._chats[chat_id])

    def _ensure_user(self, user_id: int) -> SimUser:
        handle = self._users.get(user_id)
        if handle is None:
            handle = self.user(user_id, first_name=f"User {user_id}")
        return handle

    def _chat_for(self, user: SimUser, chat_type: str, chat_id: int | None) -> int:
        if chat_type == "private":
            target = user.id if chat_id is None else chat_id
            if target not in self._chats:
                self._chats[target] = user.chat_json()
            return target
        if chat_type not in ("group", "supergroup"):
            raise ValueError(f"unsupported chat_type {chat_type!r}")
        if chat_id is None:
            raise ValueError(f"chat_id is required for a {chat_type} chat")
        if chat_id not in self._chats:
            self.group(chat_id, f"Nhóm {chat_id}", chat_type)
        return chat_id

    def _allocate_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _user_message(self, user: SimUser, chat_id: int, reply_to: int | None) -> JSONDict:
        message: JSONDict = {
            "message_id": self._allocate_message_id(chat_id),
            "from": user.to_json(),
            "chat": copy.deepcopy(self._chats[chat_id]),
            "date": _now(),
        }
        if reply_to is not None:
            replied = self._messages.get((chat_id, reply_to))
            if replied is None:
                raise LookupError(f"no message {reply_to} in chat {chat_id} to reply to")
            message["reply_to_message"] = _without_reply(replied)
        return message

    def _enqueue(self, kind: str, payload: JSONDict) -> JSONDict:
        update = {"update_id": self._next_update_id, kind: payload}
        self._next_update_id += 1
        self._pending.append(update)
        self._changed()
        return copy.deepcopy(update)

    def send_raw(self, kind: str, body: Any) -> JSONDict:
        """Queue an update exactly as given (``{"update_id": next, kind: body}``), whatever it
        holds: for updates the bot cannot read. Returns the Update."""
        with self._lock:
            return self._enqueue(kind, copy.deepcopy(body))

    def send_unparseable(self) -> JSONDict:
        """Queue a poll as an older Bot API server sends it, without ``persistent_id``, which
        python-telegram-bot 22.8 requires (Bot API 9.6): ``Update.de_json`` raises on it."""
        return self.send_raw(
            "poll",
            {
                "id": "5000000000000000001",
                "question": "Họp giao ban?",
                "options": [{"text": "Có", "voter_count": 0}, {"text": "Không", "voter_count": 0}],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
            },
        )

    def send_text(
        self,
        user_id: int,
        text: str,
        chat_type: str = "private",
        chat_id: int | None = None,
        *,
        entities: Iterable[JSONDict] | None = None,
        reply_to: int | None = None,
    ) -> JSONDict:
        """Queue a text message from a user; returns the Update.

        A leading ``/command`` (optionally ``/command@bot``) gets its ``bot_command`` entity.
        """
        with self._lock:
            user = self._ensure_user(user_id)
            target = self._chat_for(user, chat_type, chat_id)
            message = self._user_message(user, target, reply_to)
            message["text"] = text
            all_entities = list(entities or [])
            command = re.match(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,64})?", text)
            if command:
                all_entities.insert(
                    0, {"offset": 0, "length": utf16_len(command.group(0)), "type": "bot_command"}
                )
            if all_entities:
                message["entities"] = all_entities
            self._messages[(target, message["message_id"])] = message
            return self._enqueue("message", copy.deepcopy(message))

    def press_button(
        self,
        user_id: int,
        message_id: int,
        data: str,
        *,
        chat_id: int | None = None,
        check: bool = True,
        too_old: bool = False,
    ) -> JSONDict:
        """Queue a callback query for the bot's message ``message_id``; returns the Update.

        With ``check`` (the default) the message must currently show a button with this
        ``callback_data``, as a real client can only press existing buttons. With
        ``too_old`` the query has expired by the time the bot answers it (as after a bot's
        downtime): answerCallbackQuery is refused with "query is too old".
        """
        with self._lock:
            user = self._ensure_user(user_id)
            target = user.id if chat_id is None else chat_id
            message = self._messages.get((target, message_id))
            if message is None:
                raise LookupError(f"no message {message_id} in chat {target}")
            if (target, message_id) not in self._sent_index:
                raise ValueError(f"message {message_id} in chat {target} was not sent by the bot")
            if check:
                rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
                datas = [b.get("callback_data") for row in rows for b in row]
                if data not in datas:
                    raise ValueError(
                        f"message {message_id} has no button with callback_data {data!r}; it has {datas}"
                    )
            query_id = f"{abs(user_id)}{next(self._query_seq):06d}"
            if not too_old:
                self._callback_queries[query_id] = False
            query = {
                "id": query_id,
                "from": user.to_json(),
                "message": copy.deepcopy(message),
                "chat_instance": str((target * 2654435761 + 97) % (1 << 62)),
                "data": data,
            }
            return self._enqueue("callback_query", query)

    def send_document(
        self,
        user_id: int,
        filename: str,
        content: bytes,
        mime_type: str = "application/octet-stream",
        *,
        caption: str | None = None,
        chat_type: str = "private",
        chat_id: int | None = None,
    ) -> JSONDict:
        """Queue a message with a document from a user; returns the Update."""
        with self._lock:
            user = self._ensure_user(user_id)
            target = self._chat_for(user, chat_type, chat_id)
            stored = self._register_file("document", bytes(content), file_name=filename, mime_type=mime_type)
            message = self._user_message(user, target, None)
            message["document"] = stored.document_json()
            if caption is not None:
                message["caption"] = caption
            self._messages[(target, message["message_id"])] = message
            return self._enqueue("message", copy.deepcopy(message))

    def send_photo(
        self,
        user_id: int,
        content: bytes,
        *,
        caption: str | None = None,
        chat_type: str = "private",
        chat_id: int | None = None,
    ) -> JSONDict:
        """Queue a message with a photo (one ``PhotoSize``) from a user; returns the Update."""
        with self._lock:
            user = self._ensure_user(user_id)
            target = self._chat_for(user, chat_type, chat_id)
            stored = self._register_file("photo", bytes(content))
            message = self._user_message(user, target, None)
            message["photo"] = stored.photo_json()
            if caption is not None:
                message["caption"] = caption
            self._messages[(target, message["message_id"])] = message
            return self._enqueue("message", copy.deepcopy(message))

    # ---------------------------------------------------------------- inspection

    def sent(self, chat_id: int | None = None) -> list[SentMessage]:
        """The bot's messages in arrival order (live records: edits and deletions update them)."""
        with self._lock:
            if chat_id is None:
                return list(self._sent)
            return list(self._sent_by_chat.get(chat_id, ()))

    def last(self, chat_id: int) -> SentMessage:
        """The latest message the bot sent to ``chat_id``; ``LookupError`` if none."""
        with self._lock:
            if self._sent_by_chat.get(chat_id):
                return self._sent_by_chat[chat_id][-1]
        raise LookupError(f"the bot sent nothing to chat {chat_id}")

    def message(self, chat_id: int, message_id: int) -> JSONDict:
        """The current ``Message`` JSON of any message (bot's or user's) still in the chat."""
        with self._lock:
            found = self._messages.get((chat_id, message_id))
            if found is None:
                raise LookupError(f"no message {message_id} in chat {chat_id}")
            return copy.deepcopy(found)

    @property
    def me(self) -> JSONDict:
        """The bot's ``User`` object as getMe returns it."""
        return dict(self._me)

    @property
    def rejected(self) -> list[RejectedCall]:
        """Every call answered with an error (superseded long polls are not included)."""
        with self._lock:
            return list(self._rejected)

    @property
    def conflicts(self) -> int:
        """How many waiting getUpdates calls were superseded by a newer one (409)."""
        return self._conflicts

    @property
    def answered_callbacks(self) -> list[AnsweredCallback]:
        with self._lock:
            return list(self._answered)

    @property
    def chat_actions(self) -> list[ChatAction]:
        with self._lock:
            return list(self._chat_actions)

    def calls(self, method: str | None = None) -> list[ApiCall]:
        """Successful calls, optionally only those of one method."""
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def call_counts(self) -> dict[str, int]:
        """Number of calls per method, successful or not."""
        with self._lock:
            return dict(self._call_counts)

    def commands(self, scope: JSONDict | None = None, language_code: str = "") -> list[JSONDict]:
        """The commands set for a scope (default scope if omitted) and language."""
        with self._lock:
            return copy.deepcopy(self._commands.get(_scope_key(scope, language_code), []))

    def all_commands(self) -> dict[tuple[str, str], list[JSONDict]]:
        """Every command list, keyed by (scope as sorted JSON, language_code)."""
        with self._lock:
            return copy.deepcopy(self._commands)

    def webhook_info(self) -> JSONDict:
        with self._lock:
            return self._m_get_webhook_info(_Params({}, {}))

    def pending_updates(self) -> list[JSONDict]:
        """Updates not yet confirmed by an offset."""
        with self._lock:
            return copy.deepcopy(self._pending)

    def file(self, file_id: str) -> StoredFile:
        with self._lock:
            return self._files[file_id]

    def download(self, file_path: str) -> bytes | None:
        """The bytes served at ``/file/bot<token>/<file_path>``, or ``None``."""
        with self._lock:
            stored = self._files_by_path.get(file_path)
            return None if stored is None else stored.content

    def _find_file_by_suffix(self, path: str) -> StoredFile | None:
        with self._lock:
            for file_path, stored in self._files_by_path.items():
                if path.endswith("/" + file_path):
                    return stored
        return None

    # ---------------------------------------------------------------- waiting

    def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:
        """Block until ``predicate()`` is truthy (checked on every state change); return it.

        Raises ``TimeoutError``.  Do not call it from the event loop the bot runs on.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s; {self._summary()}")
                self._cond.wait(remaining)

    def wait_sent(self, chat_id: int, count: int = 1, timeout: float = 5.0) -> list[SentMessage]:
        """Block until the bot has sent ``count`` messages to ``chat_id``; return all of them."""
        try:
            return self.wait_for(lambda: _at_least(self.sent(chat_id), count), timeout)
        except TimeoutError:
            raise TimeoutError(self._sent_timeout_message(chat_id, count, timeout)) from None

    async def wait_for_async(
        self, predicate: Callable[[], T | None], timeout: float = 5.0, *, chat_id: int | None = None
    ) -> T:
        """Await until ``predicate()`` is truthy without blocking the event loop; return it.
        With ``chat_id``, the predicate is checked again only when the bot sends a message
        to that chat (it must depend on nothing else)."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        wake = self._waker(loop, event)
        listeners = self._listeners if chat_id is None else self._chat_listeners[chat_id]
        with self._lock:
            listeners.append(wake)
        try:
            deadline = loop.time() + timeout
            while True:
                event.clear()
                with self._lock:
                    value = predicate()
                    if value:
                        return value
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s; {self._summary()}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        finally:
            with self._lock:
                listeners.remove(wake)

    async def wait_sent_async(self, chat_id: int, count: int = 1, timeout: float = 5.0) -> list[SentMessage]:
        """Await until the bot has sent ``count`` messages to ``chat_id``; return all of them."""
        try:
            return await self.wait_for_async(
                lambda: _at_least(self.sent(chat_id), count), timeout, chat_id=chat_id
            )
        except TimeoutError:
            raise TimeoutError(self._sent_timeout_message(chat_id, count, timeout)) from None

    def _sent_timeout_message(self, chat_id: int, count: int, timeout: float) -> str:
        texts = [m.plain_text for m in self.sent(chat_id)]
        return (
            f"expected {count} message(s) to chat {chat_id} within {timeout}s, got "
            f"{len(texts)}: {texts!r}; {self._summary()}"
        )

    def _summary(self) -> str:
        with self._lock:
            rejected = [(r.method, r.description) for r in self._rejected[-5:]]
            return (
                f"pending updates={len(self._pending)}, calls={dict(self._call_counts)}, "
                f"last rejected={rejected}"
            )

    # ---------------------------------------------------------------- fault injection

    def fail_next(
        self,
        chat_id: int | None,
        kind: str,
        retry_after: int = 1,
        *,
        method: str | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``times`` calls aimed at ``chat_id`` (any call, getUpdates included,
        when None; of ``method``, if given) fail.

        ``kind``: "retry_after" (429 with ``parameters.retry_after``), "forbidden" (403 bot
        blocked), "chat_not_found" (400), "bad_gateway" (502), "server_error" (500),
        "timeout_before" (the answer never comes and the call is not carried out) or
        "timeout_after" (carried out, but the answer never comes): the connection is held
        ``delay`` seconds, then dropped (see LostResponse).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        canonical = None if method is None else self._CANONICAL.get(method.lower(), method)
        with self._lock:
            queue = self._faults.setdefault(chat_id, deque())
            for _ in range(times):
                queue.append(_Fault(kind, int(retry_after), canonical, float(delay)))

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: every call aimed at the chat gets 403 until ``unblock``."""
        with self._lock:
            self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        with self._lock:
            self._blocked.discard(chat_id)

    def set_fault_mode(self, mode: FaultMode | None) -> None:
        """Inject random faults from now on (None: stop)."""
        with self._lock:
            self.fault_mode = mode

    def lost_calls(self) -> list[tuple[str, int | None, bool]]:
        """Calls whose answer was lost: (method, chat_id, carried out)."""
        with self._lock:
            return list(self._lost)

    def _take_fault(self, chat_id: int | None, method: str) -> _Fault | None:
        for key in (chat_id, None) if chat_id is not None else (None,):
            queue = self._faults.get(key)
            for fault in list(queue or ()):
                if fault.method is None or fault.method == method:
                    queue.remove(fault)  # type: ignore[union-attr]
                    return fault
        return self.fault_mode.draw(method) if self.fault_mode is not None else None

    def _lose(self, method: str, chat_id: int | None, fault: _Fault, delivered: bool) -> LostResponse:
        self._lost.append((method, chat_id, delivered))
        return LostResponse(method, delivered, fault.delay)

    # ---------------------------------------------------------------- entry points

    def call(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        files: Mapping[str, UploadedFile] | None = None,
    ) -> tuple[int, JSONDict]:
        """Answer one Bot API call: ``(http_status, json_body)``.

        ``params`` values may be native JSON values or form strings (nested objects as JSON
        text).  ``getUpdates`` with a ``timeout`` blocks the calling thread (long polling).
        """
        p = _Params(params or {}, files or {})
        name = self._CANONICAL.get(method.lower())
        if name is None:
            with self._lock:
                self._call_counts[method] += 1
                self._record_rejected(method, p, ApiError(404, "Not Found"))
                self._changed()
            return 404, _not_found()
        if name == "getUpdates":
            return self._get_updates_blocking(p)
        return self._invoke(name, p)

    async def call_async(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        files: Mapping[str, UploadedFile] | None = None,
        *,
        max_wait: float | None = None,
    ) -> tuple[int, JSONDict]:
        """Like :meth:`call`, but long polling awaits instead of blocking.

        If ``max_wait`` (the client's read timeout) is shorter than the poll ``timeout`` and
        nothing arrives in time, ``TimeoutError`` is raised as a real client would.
        """
        if self._CANONICAL.get(method.lower()) != "getUpdates":
            return self.call(method, params, files)
        p = _Params(params or {}, files or {})
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        wake = self._waker(loop, event)
        with self._lock:
            try:
                lost = self._poll_fault(p)
                args = self._poll_args(p)
                generation, epoch = self._begin_poll(args, p)
            except ApiError as exc:
                return self._reject("getUpdates", p, exc)
            if lost is not None:  # what this poll would bring is not confirmed: it comes again
                raise self._lose("getUpdates", None, lost, delivered=True)
            self._listeners.append(wake)
        try:
            wait = args.timeout
            cut_short = max_wait is not None and max_wait < wait
            if cut_short and max_wait is not None:
                wait = max_wait
            deadline = loop.time() + wait
            while True:
                event.clear()
                with self._lock:
                    try:
                        ready = self._poll_ready(generation, epoch, args)
                    except ApiError as exc:
                        self._conflicts += 1
                        return exc.status, exc.body()
                if ready is not None:
                    return 200, _ok(ready)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    if cut_short:
                        raise TimeoutError("read timeout expired during getUpdates")
                    return 200, _ok([])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        finally:
            with self._lock:
                self._listeners.remove(wake)

    def _invoke(self, name: str, p: _Params) -> tuple[int, JSONDict]:
        with self._lock:
            self._call_counts[name] += 1
            chat_id = _maybe_int(p.raw.get("chat_id"))
            fault = self._take_fault(chat_id, name)
            if fault is not None and fault.kind == "timeout_before":
                raise self._lose(name, chat_id, fault, delivered=False)
            if fault is not None and fault.kind not in LOST_KINDS:
                return self._reject(name, p, _fault_error(fault))
            try:
                result = getattr(self, self.METHODS[name])(p)
            except ApiError as exc:
                return self._reject(name, p, exc)
            self._record_call(name, p)
            self._changed()
            if fault is not None:  # timeout_after: done, but the answer is lost
                raise self._lose(name, chat_id, fault, delivered=True)
            return 200, _ok(copy.deepcopy(result))

    def _poll_fault(self, p: _Params) -> _Fault | None:
        """A fault injected into getUpdates (the caller holds the lock): an error is raised
        here; a lost answer is returned, to be raised before (not confirming the offset) or
        after the poll."""
        fault = self._take_fault(None, "getUpdates")
        if fault is None:
            return None
        if fault.kind == "timeout_before":
            self._call_counts["getUpdates"] += 1
            raise self._lose("getUpdates", None, fault, delivered=False)
        if fault.kind not in LOST_KINDS:
            self._call_counts["getUpdates"] += 1
            raise _fault_error(fault)
        return fault

    def _reject(self, name: str, p: _Params, exc: ApiError) -> tuple[int, JSONDict]:
        with self._lock:
            self._record_rejected(name, p, exc)
            self._changed()
        return exc.status, exc.body()

    def _record_rejected(self, name: str, p: _Params, exc: ApiError) -> None:
        chat_id = _maybe_int(p.raw.get("chat_id"))
        self._rejected.append(
            RejectedCall(
                name,
                chat_id,
                exc.status,
                exc.description,
                p.public(),
                exc.injected,
                time.monotonic(),
                time.time(),
            )
        )
        _LOG.debug("rejected %s: %s %s", name, exc.status, exc.description)

    def _record_call(self, name: str, p: _Params) -> None:
        self._calls.append(
            ApiCall(
                name,
                _maybe_int(p.raw.get("chat_id")),
                p.public(),
                {key: upload.filename for key, upload in p.files.items()},
                time.monotonic(),
                time.time(),
            )
        )

    # ---------------------------------------------------------------- getUpdates

    @staticmethod
    def _poll_args(p: _Params) -> _PollArgs:
        limit = p.integer("limit") or 100
        allowed = p.structured("allowed_updates")
        if allowed is not None and not isinstance(allowed, list):
            raise _bad("can't parse allowed_updates JSON array")
        return _PollArgs(
            offset=p.integer("offset"),
            limit=min(max(limit, 1), 100),
            timeout=max(p.number("timeout") or 0.0, 0.0),
            allowed_updates=allowed,
        )

    def _begin_poll(self, args: _PollArgs, p: _Params) -> tuple[int, int]:
        """Confirm the offset and supersede older polls; caller holds the lock."""
        self._call_counts["getUpdates"] += 1
        if self._webhook.get("url"):
            raise ApiError(409, _CONFLICT_WEBHOOK)
        if args.offset is not None:
            if args.offset < 0:
                self._pending = self._pending[args.offset :]
            else:
                self._pending = [u for u in self._pending if u["update_id"] >= args.offset]
        if args.allowed_updates is not None:
            self._allowed_updates = list(args.allowed_updates) or None
        self._record_call("getUpdates", p)
        self._poll_generation += 1
        self._changed()
        return self._poll_generation, self._poll_epoch

    def _poll_ready(self, generation: int, epoch: int, args: _PollArgs) -> list[JSONDict] | None:
        if generation != self._poll_generation:
            raise ApiError(409, _CONFLICT_SUPERSEDED)
        if epoch != self._poll_epoch:
            return []
        if self._allowed_updates is not None:
            allowed = set(self._allowed_updates)
            self._pending = [u for u in self._pending if _update_type(u) in allowed]
        if not self._pending:
            return None
        return copy.deepcopy(self._pending[: args.limit])

    def _get_updates_blocking(self, p: _Params) -> tuple[int, JSONDict]:
        with self._cond:
            try:
                lost = self._poll_fault(p)
                args = self._poll_args(p)
                generation, epoch = self._begin_poll(args, p)
            except ApiError as exc:
                return self._reject("getUpdates", p, exc)
            if lost is not None:
                raise self._lose("getUpdates", None, lost, delivered=True)
            deadline = time.monotonic() + args.timeout
            while True:
                try:
                    ready = self._poll_ready(generation, epoch, args)
                except ApiError as exc:
                    self._conflicts += 1
                    return exc.status, exc.body()
                if ready is not None:
                    return 200, _ok(ready)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return 200, _ok([])
                self._cond.wait(remaining)

    # ---------------------------------------------------------------- method helpers

    def _resolve_chat(self, p: _Params) -> int:
        raw = p.raw.get("chat_id")
        if raw is None or raw == "":
            raise _bad("chat_id is empty")
        value = _maybe_int(raw)
        if value is not None:
            return value
        if isinstance(raw, str) and raw.startswith("@"):
            for chat_id, chat in self._chats.items():
                if chat.get("username", "").lower() == raw[1:].lower():
                    return chat_id
        raise _bad("chat not found")

    def _target_chat(self, p: _Params, method: str, *, blockable: bool = True) -> int:
        """Resolve ``chat_id`` and apply injected faults, blocks and chat existence."""
        chat_id = self._resolve_chat(p)
        if blockable and chat_id in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user", injected=True)
        if chat_id not in self._chats:
            raise _bad("chat not found")
        return chat_id

    @staticmethod
    def _render(
        text: str, parse_mode: str | None, explicit: Any, entities_field: str
    ) -> tuple[str, list[JSONDict]]:
        mode = (parse_mode or "").strip().lower()
        if mode == "html":
            try:
                return parse_html(text)
            except EntityParseError as exc:
                raise _bad(f"can't parse entities: {exc}") from None
        if mode in ("markdown", "markdownv2"):
            return text, []
        if mode not in ("", "none"):
            raise _bad("unsupported parse_mode")
        if explicit is None:
            return text, []
        if not isinstance(explicit, list) or not all(isinstance(e, dict) for e in explicit):
            raise _bad(f"can't parse {entities_field} JSON object")
        return text, list(explicit)

    @staticmethod
    def _markup(p: _Params, *, inline_only: bool = False) -> JSONDict | None:
        markup = p.structured("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
            actions = {
                "url",
                "callback_data",
                "web_app",
                "login_url",
                "switch_inline_query",
                "switch_inline_query_current_chat",
                "switch_inline_query_chosen_chat",
                "copy_text",
                "callback_game",
                "pay",
            }
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not button.get("text"):
                        raise _bad("can't parse inline keyboard button: Text must be non-empty")
                    if not actions & button.keys():
                        raise _bad("text buttons are unallowed in the inline keyboard")
                    if "callback_data" in button:
                        size = len(str(button["callback_data"]).encode("utf-8"))
                        if not 1 <= size <= 64:
                            raise _bad("BUTTON_DATA_INVALID")
        elif inline_only:
            raise _bad("inline keyboard expected")
        return markup

    def _reply_to(self, chat_id: int, p: _Params) -> JSONDict | None:
        reply = p.structured("reply_parameters")
        if isinstance(reply, dict):
            message_id = _maybe_int(reply.get("message_id"))
            source_chat = _maybe_int(reply.get("chat_id")) or chat_id
            allow = bool(reply.get("allow_sending_without_reply"))
        else:
            message_id = p.integer("reply_to_message_id")
            source_chat = chat_id
            allow = p.flag("allow_sending_without_reply")
        if message_id is None:
            return None
        replied = self._messages.get((source_chat, message_id))
        if replied is None:
            if allow:
                return None
            raise _bad("message to be replied not found")
        return _without_reply(replied)

    def _check_flood(self, chat_id: int) -> None:
        limits = self.flood_limits
        if limits is None:
            return
        now = time.monotonic()
        windows: list[tuple[tuple[Any, ...], int, float]] = [
            (("chat", chat_id), limits.per_chat, limits.per_chat_window),
            (("all",), limits.overall, limits.overall_window),
        ]
        if self._chats.get(chat_id, {}).get("type") in ("group", "supergroup"):
            windows.append((("group", chat_id), limits.per_group, limits.per_group_window))
        for key, limit, window in windows:
            log = self._flood_log.setdefault(key, deque())
            while log and now - log[0] >= window:
                log.popleft()
            if len(log) >= limit:
                retry = max(1, math.ceil(window - (now - log[0])))
                raise ApiError(
                    429,
                    f"Too Many Requests: retry after {retry}",
                    {"retry_after": retry},
                )
        for key, _, _ in windows:
            self._flood_log[key].append(now)

    def _deliver(
        self,
        method: str,
        chat_id: int,
        content: JSONDict,
        p: _Params,
        *,
        text: str | None,
        caption: str | None,
        plain: str,
        entities: list[JSONDict],
        markup: JSONDict | None,
        reply: JSONDict | None,
    ) -> JSONDict:
        """Store a new bot message (after flood control) and return its Message JSON."""
        self._check_flood(chat_id)
        message: JSONDict = {
            "message_id": self._allocate_message_id(chat_id),
            "from": _message_sender(self._me),
            "chat": copy.deepcopy(self._chats[chat_id]),
            "date": _now(),
        }
        if reply is not None:
            message["reply_to_message"] = reply
        message.update(content)
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._messages[(chat_id, message["message_id"])] = message
        record = SentMessage(
            method=method,
            chat_id=chat_id,
            message_id=message["message_id"],
            text=text,
            caption=caption,
            parse_mode=p.text("parse_mode"),
            reply_markup=copy.deepcopy(markup),
            plain_text=plain,
            entities=copy.deepcopy(entities),
            document=copy.deepcopy(content.get("document")),
            photo=copy.deepcopy(content.get("photo")),
            monotonic=time.monotonic(),
            wall_time=time.time(),
            params=p.public(),
        )
        self._sent.append(record)
        self._sent_by_chat[chat_id].append(record)
        self._sent_index[(chat_id, record.message_id)] = record
        for listener in list(self._chat_listeners.get(chat_id, ())):
            listener()
        return message

    def _caption(self, p: _Params) -> tuple[str | None, str, list[JSONDict]]:
        caption = p.text("caption")
        if caption is None or caption == "":
            return None, "", []
        plain, entities = self._render(
            caption, p.text("parse_mode"), p.structured("caption_entities"), "caption_entities"
        )
        if utf16_len(plain) > MAX_CAPTION_LENGTH:
            raise _bad("message caption is too long")
        return caption, plain, entities

    def _register_file(
        self,
        kind: str,
        content: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> StoredFile:
        number = next(self._file_seq)
        digest = hashlib.sha256(content).hexdigest()
        width = height = None
        if kind == "photo":
            info = _image_info(content)
            extension, width, height = info if info else (".jpg", 1, 1)
            folder, prefix = "photos", "AgACAgIAAxkBAAI"
        else:
            folder, prefix = "documents", "BQACAgIAAxkBAAI"
            extension = os.path.splitext(file_name or "")[1]
            if not re.fullmatch(r"\.[A-Za-z0-9]{1,8}", extension):
                extension = mimetypes.guess_extension(mime_type or "") or ""
        stored = StoredFile(
            file_id=f"{prefix}{number:06d}{digest[:16]}",
            file_unique_id=f"AgAD{digest[:12]}",
            kind=kind,
            content=content,
            file_path=f"{folder}/file_{number}{extension}",
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _input_file(self, p: _Params, field_name: str, kind: str) -> StoredFile:
        """The file of ``sendDocument``/``sendPhoto``: an upload, attach:// or a file_id."""
        upload = p.files.get(field_name)
        reference = p.text(field_name)
        if upload is None and reference and reference.startswith("attach://"):
            upload = p.files.get(reference[len("attach://") :])
            if upload is None:
                raise _bad(f"wrong {field_name}: attached file not found")
        if upload is not None:
            if len(upload.content) > MAX_UPLOAD_BYTES:
                raise ApiError(413, "Request Entity Too Large")
            if kind == "photo":
                if _image_info(upload.content) is None:
                    raise _bad("IMAGE_PROCESS_FAILED")
                return self._register_file("photo", upload.content)
            mime = upload.mime_type or mimetypes.guess_type(upload.filename or "")[0]
            return self._register_file(
                "document",
                upload.content,
                file_name=upload.filename,
                mime_type=mime or "application/octet-stream",
            )
        if not reference:
            raise _bad(f"there is no {field_name} in the request")
        if reference.startswith(("http://", "https://")):
            raise _bad("failed to get HTTP URL content")
        stored = self._files.get(reference)
        if stored is None:
            raise _bad("wrong file identifier/HTTP URL specified")
        if stored.kind != kind:
            raise _bad("type of file mismatch")
        return stored

    def _editable(self, p: _Params, method: str) -> tuple[int, JSONDict, SentMessage]:
        if p.has("inline_message_id"):
            raise _bad("inline messages are not supported by the stand-in")
        chat_id = self._target_chat(p, method)
        message_id = p.integer("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise _bad("message to edit not found")
        record = self._sent_index.get((chat_id, message_id))
        if record is None:
            raise _bad("message can't be edited")
        return chat_id, message, record

    @staticmethod
    def _apply_edit(
        message: JSONDict,
        record: SentMessage,
        method: str,
        *,
        text_key: str,
        entities_key: str,
        new_plain: str,
        new_entities: list[JSONDict],
        new_markup: JSONDict | None,
    ) -> None:
        inline_markup = new_markup if new_markup and "inline_keyboard" in new_markup else None
        same_text = message.get(text_key, "") == new_plain
        same_entities = message.get(entities_key, []) == new_entities
        if same_text and same_entities and message.get("reply_markup") == inline_markup:
            raise ApiError(400, _NOT_MODIFIED)
        if new_plain:
            message[text_key] = new_plain
        else:
            message.pop(text_key, None)
        if new_entities:
            message[entities_key] = new_entities
        else:
            message.pop(entities_key, None)
        if inline_markup is not None:
            message["reply_markup"] = inline_markup
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = _now()
        record.reply_markup = copy.deepcopy(inline_markup)
        record.plain_text = new_plain
        record.entities = copy.deepcopy(new_entities)
        record.edits += 1
        record.edited_monotonic = time.monotonic()
        record.history.append(
            {
                "method": method,
                "text": record.text,
                "caption": record.caption,
                "reply_markup": record.reply_markup,
                "monotonic": record.edited_monotonic,
            }
        )

    # ---------------------------------------------------------------- Bot API methods

    def _m_true(self, p: _Params) -> bool:
        return True

    def _m_get_me(self, p: _Params) -> JSONDict:
        return dict(self._me)

    def _m_delete_webhook(self, p: _Params) -> bool:
        self._webhook = {"url": ""}
        if p.flag("drop_pending_updates"):
            self._pending.clear()
        return True

    def _m_set_webhook(self, p: _Params) -> bool:
        url = p.text("url") or ""
        if url and not url.startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        self._webhook = {"url": url}
        for key in ("max_connections", "ip_address", "secret_token"):
            if p.has(key):
                self._webhook[key] = p.raw[key]
        allowed = p.structured("allowed_updates")
        if allowed:
            self._webhook["allowed_updates"] = allowed
        if p.flag("drop_pending_updates"):
            self._pending.clear()
        return True

    def _m_get_webhook_info(self, p: _Params) -> JSONDict:
        info: JSONDict = {
            "url": self._webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if info["url"]:
            info["max_connections"] = int(self._webhook.get("max_connections", 40))
            if "ip_address" in self._webhook:
                info["ip_address"] = self._webhook["ip_address"]
            if "allowed_updates" in self._webhook:
                info["allowed_updates"] = self._webhook["allowed_updates"]
        return info

    def _m_set_my_commands(self, p: _Params) -> bool:
        commands = p.structured("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("BOT_COMMANDS_TOO_MUCH")
        cleaned: list[JSONDict] = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand JSON object")
            name = str(command.get("command", ""))
            description = str(command.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name, "description": description})
        key = self._command_key(p)
        if cleaned:
            self._commands[key] = cleaned
        else:
            self._commands.pop(key, None)
        return True

    def _m_get_my_commands(self, p: _Params) -> list[JSONDict]:
        return list(self._commands.get(self._command_key(p), []))

    def _m_delete_my_commands(self, p: _Params) -> bool:
        self._commands.pop(self._command_key(p), None)
        return True

    @staticmethod
    def _command_key(p: _Params) -> tuple[str, str]:
        scope = p.structured("scope")
        if scope is not None and (not isinstance(scope, dict) or scope.get("type") not in COMMAND_SCOPES):
            raise _bad("can't parse BotCommandScope JSON object")
        language = p.text("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise _bad("invalid language code specified")
        return _scope_key(scope, language)

    def _m_send_message(self, p: _Params) -> JSONDict:
        chat_id = self._target_chat(p, "sendMessage")
        text = p.text("text")
        if text is None or not text.strip():
            raise _bad("message text is empty")
        plain, entities = self._render(text, p.text("parse_mode"), p.structured("entities"), "entities")
        if not plain.strip():
            raise _bad("message text is empty")
        if utf16_len(plain) > MAX_TEXT_LENGTH:
            raise _bad("message is too long")
        markup = self._markup(p)
        reply = self._reply_to(chat_id, p)
        content: JSONDict = {"text": plain}
        if entities:
            content["entities"] = entities
        return self._deliver(
            "sendMessage",
            chat_id,
            content,
            p,
            text=text,
            caption=None,
            plain=plain,
            entities=entities,
            markup=markup,
            reply=reply,
        )

    def _m_send_document(self, p: _Params) -> JSONDict:
        return self._send_file(p, "sendDocument", "document")

    def _m_send_photo(self, p: _Params) -> JSONDict:
        return self._send_file(p, "sendPhoto", "photo")

    def _send_file(self, p: _Params, method: str, kind: str) -> JSONDict:
        chat_id = self._target_chat(p, method)
        caption, plain, entities = self._caption(p)
        markup = self._markup(p)
        reply = self._reply_to(chat_id, p)
        stored = self._input_file(p, kind, kind)
        content: JSONDict = {}
        if kind == "photo":
            content["photo"] = stored.photo_json()
        else:
            content["document"] = stored.document_json()
        if caption is not None:
            content["caption"] = plain
            if entities:
                content["caption_entities"] = entities
        return self._deliver(
            method,
            chat_id,
            content,
            p,
            text=None,
            caption=caption,
            plain=plain,
            entities=entities,
            markup=markup,
            reply=reply,
        )

    def _m_edit_message_text(self, p: _Params) -> JSONDict:
        _, message, record = self._editable(p, "editMessageText")
        if "text" not in message:
            raise _bad("there is no text in the message to edit")
        text = p.text("text")
        if text is None or not text.strip():
            raise _bad("message text is empty")
        plain, entities = self._render(text, p.text("parse_mode"), p.structured("entities"), "entities")
        if not plain.strip():
            raise _bad("message text is empty")
        if utf16_len(plain) > MAX_TEXT_LENGTH:
            raise _bad("message is too long")
        markup = self._markup(p, inline_only=True)
        self._apply_edit(
            message,
            record,
            "editMessageText",
            text_key="text",
            entities_key="entities",
            new_plain=plain,
            new_entities=entities,
            new_markup=markup,
        )
        record.text = text
        record.parse_mode = p.text("parse_mode")
        record.history[-1]["text"] = text
        return message

    def _m_edit_message_caption(self, p: _Params) -> JSONDict:
        _, message, record = self._editable(p, "editMessageCaption")
        if "text" in message:
            raise _bad("there is no caption in the message to edit")
        caption, plain, entities = self._caption(p)
        markup = self._markup(p, inline_only=True)
        self._apply_edit(
            message,
            record,
            "editMessageCaption",
            text_key="caption",
            entities_key="caption_entities",
            new_plain=plain,
            new_entities=entities,
            new_markup=markup,
        )
        record.caption = caption
        record.parse_mode = p.text("parse_mode")
        record.history[-1]["caption"] = caption
        return message

    def _m_edit_message_reply_markup(self, p: _Params) -> JSONDict:
        _, message, record = self._editable(p, "editMessageReplyMarkup")
        markup = self._markup(p, inline_only=True)
        text_key = "text" if "text" in message else "caption"
        entities_key = "entities" if text_key == "text" else "caption_entities"
        self._apply_edit(
            message,
            record,
            "editMessageReplyMarkup",
            text_key=text_key,
            entities_key=entities_key,
            new_plain=message.get(text_key, ""),
            new_entities=list(message.get(entities_key, [])),
            new_markup=markup,
        )
        return message

    def _m_delete_message(self, p: _Params) -> bool:
        chat_id = self._target_chat(p, "deleteMessage")
        message_id = p.integer("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        if self._messages.pop((chat_id, message_id), None) is None:
            raise _bad("message to delete not found")
        record = self._sent_index.get((chat_id, message_id))
        if record is not None:
            record.deleted = True
        return True

    def _m_answer_callback_query(self, p: _Params) -> bool:
        query_id = p.text("callback_query_id") or ""
        if self._callback_queries.get(query_id, True):
            raise ApiError(400, _BAD_QUERY)
        self._callback_queries[query_id] = True
        self._answered.append(
            AnsweredCallback(
                callback_query_id=query_id,
                text=p.text("text"),
                show_alert=p.flag("show_alert"),
                url=p.text("url"),
                cache_time=p.integer("cache_time"),
                monotonic=time.monotonic(),
            )
        )
        return True

    def _m_send_chat_action(self, p: _Params) -> bool:
        chat_id = self._target_chat(p, "sendChatAction")
        action = p.text("action") or ""
        if action not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self._chat_actions.append(ChatAction(chat_id, action, time.monotonic()))
        return True

    def _m_get_file(self, p: _Params) -> JSONDict:
        stored = self._files.get(p.text("file_id") or "")
        if stored is None:
            raise _bad("invalid file_id")
        if stored.file_size > MAX_DOWNLOAD_BYTES:
            raise _bad("file is too big")
        return stored.file_json()

    def _m_get_chat(self, p: _Params) -> JSONDict:
        chat_id = self._target_chat(p, "getChat", blockable=False)
        chat = copy.deepcopy(self._chats[chat_id])
        chat.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        )
        return chat


def _fault_error(fault: _Fault) -> ApiError:
    if fault.kind == "server_error":
        return ApiError(500, "Internal Server Error", injected=True)
    if fault.kind == "retry_after":
        return ApiError(
            429,
            f"Too Many Requests: retry after {fault.retry_after}",
            {"retry_after": fault.retry_after},
            injected=True,
        )
    if fault.kind == "forbidden":
        return ApiError(403, "Forbidden: bot was blocked by the user", injected=True)
    if fault.kind == "chat_not_found":
        return ApiError(400, "Bad Request: chat not found", injected=True)
    return ApiError(502, "Bad Gateway", injected=True)


def _maybe_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _at_least(items: list[T], count: int) -> list[T] | None:
    return items if len(items) >= count else None


def _scope_key(scope: JSONDict | None, language_code: str) -> tuple[str, str]:
    return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""


def _message_sender(user: JSONDict) -> JSONDict:
    return {key: user[key] for key in ("id", "is_bot", "first_name", "username") if key in user}


def _without_reply(message: JSONDict) -> JSONDict:
    return {k: copy.deepcopy(v) for k, v in message.items() if k != "reply_to_message"}


def _update_type(update: JSONDict) -> str:
    return next(key for key in update if key != "update_id")


# --------------------------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------------------------

_PARAM_RE = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def _header_params(value: str) -> dict[str, str]:
    """Parameters of a header like ``form-data; name="x"; filename="y.txt"``."""
    params: dict[str, str] = {}
    for key, raw in _PARAM_RE.findall(value):
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            # httpx and browsers percent-escape these in form-data names (WHATWG)
            raw = raw.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")
        key = key.lower()
        if key.endswith("*"):
            _, _, encoded = raw.partition("''")
            params[key[:-1]] = unquote(encoded or raw)
        else:
            params.setdefault(key, raw)
    return params


def parse_multipart(body: bytes, boundary: str) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    """Split a multipart/form-data body into text fields and file parts (with a filename)."""
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    for part in body.split(b"--" + boundary.encode("latin-1"))[1:]:
        if part.startswith(b"--"):
            break
        if part.startswith(b"\r\n"):
            part = part[2:]
        if part.endswith(b"\r\n"):
            part = part[:-2]
        head, separator, content = part.partition(b"\r\n\r\n")
        if not separator:
            continue
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = _header_params(headers.get("content-disposition", ""))
        name = disposition.get("name")
        if name is None:
            continue
        if "filename" in disposition:
            mime = headers.get("content-type", "").split(";")[0].strip() or None
            files[name] = UploadedFile(disposition["filename"], content, mime)
        else:
            fields[name] = content.decode("utf-8", "replace")
    return fields, files


class _StandinHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections so ``stop`` can end them all."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], api: FakeBotAPI) -> None:
        self.api = api
        self._conn_lock = threading.Lock()
        self._open: dict[socket.socket, threading.Thread] = {}
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="standin-http-conn",
            daemon=True,
        )
        with self._conn_lock:
            self._open[request] = thread
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            with self._conn_lock:
                self._open.pop(request, None)
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _LOG.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self) -> list[threading.Thread]:
        """Shut every open connection down; returns their threads."""
        with self._conn_lock:
            items = list(self._open.items())
        for sock, _ in items:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return [thread for _, thread in items]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tiendo-botapi-standin/1.0"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms stalls
    server: _StandinHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        _LOG.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
        except Exception:
            _LOG.exception("stand-in failed on %s", self.path)
            try:
                self._send_json(500, {"ok": False, "error_code": 500, "description": "Internal"})
            except OSError:
                self.close_connection = True

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self._send(status, body, "application/json")

    def _route(self) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        body = self._read_body()
        api = self.server.api
        if path.startswith("/_standin/"):
            status, payload = _control(api, path[len("/_standin/") :].strip("/"), split.query, body)
            self._send_json(status, payload)
            return
        if path.startswith("/file/bot"):
            token, _, file_path = path[len("/file/bot") :].partition("/")
            if not api.check_token(token):
                self._send_json(401, _unauthorized())
                return
            data = api.download(file_path)
            if data is None:
                self._send_json(404, _not_found())
            else:
                self._send(200, data, "application/octet-stream")
            return
        if path.startswith("/bot"):
            token, _, method = path[len("/bot") :].partition("/")
            if not method or "/" in method:
                self._send_json(404, _not_found())
                return
            if not api.check_token(token):
                self._send_json(*api.unauthorized(method))
                return
            try:
                params, files = self._params(split.query, body)
            except ValueError as exc:
                self._send_json(400, {"ok": False, "error_code": 400, "description": str(exc)})
                return
            try:
                answer = api.call(method, params, files)
            except LostResponse as lost:
                # Hold the connection, then drop it without an answer.
                time.sleep(lost.delay)
                self.close_connection = True
                return
            self._send_json(*answer)
            return
        self._send_json(404, _not_found())

    def _params(self, query: str, body: bytes) -> tuple[JSONDict, dict[str, UploadedFile]]:
        params: JSONDict = dict(parse_qsl(query, keep_blank_values=True))
        files: dict[str, UploadedFile] = {}
        if not body:
            return params, files
        content_type = self.headers.get_content_type()
        if content_type == "application/json":
            try:
                decoded = json.loads(body)
            except ValueError:
                raise ValueError("Bad Request: can't parse JSON") from None
            if not isinstance(decoded, dict):
                raise ValueError("Bad Request: JSON object expected")
            params.update(decoded)
        elif content_type == "multipart/form-data":
            boundary = self.headers.get_param("boundary")
            if not isinstance(boundary, str):
                raise ValueError("Bad Request: multipart boundary missing")
            fields, files = parse_multipart(body, boundary)
            params.update(fields)
        else:  # application/x-www-form-urlencoded and anything else
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return params, files


def _control(api: FakeBotAPI, name: str, query: str, body: bytes) -> tuple[int, JSONDict]:
    """The ``/_standin/<name>`` control surface: JSON in, ``{"ok": ..., "result": ...}`` out."""
    args: JSONDict = dict(parse_qsl(query))
    try:
        if body:
            decoded = json.loads(body)
            if not isinstance(decoded, dict):
                raise ValueError("a JSON object is expected")
            args.update(decoded)

        def chat_id_arg() -> int | None:
            value = args.get("chat_id")
            return None if value in (None, "") else int(value)

        result: Any
        if name == "user":
            result = api.user(
                int(args["user_id"]),
                args.get("first_name", "Người dùng"),
                args.get("username"),
                args.get("language_code", "vi"),
                last_name=args.get("last_name"),
            ).to_json()
        elif name == "send_text":
            result = api.send_text(
                int(args["user_id"]),
                str(args["text"]),
                args.get("chat_type", "private"),
                chat_id_arg(),
            )
        elif name == "press_button":
            result = api.press_button(
                int(args["user_id"]),
                int(args["message_id"]),
                str(args["data"]),
                chat_id=chat_id_arg(),
                check=bool(args.get("check", True)),
            )
        elif name == "send_document":
            result = api.send_document(
                int(args["user_id"]),
                str(args["filename"]),
                base64.b64decode(args["content"]),
                args.get("mime_type", "application/octet-stream"),
                caption=args.get("caption"),
                chat_type=args.get("chat_type", "private"),
                chat_id=chat_id_arg(),
            )
        elif name == "send_photo":
            result = api.send_photo(
                int(args["user_id"]),
                base64.b64decode(args["content"]),
                caption=args.get("caption"),
                chat_type=args.get("chat_type", "private"),
                chat_id=chat_id_arg(),
            )
        elif name == "sent":
            result = [m.to_dict() for m in api.sent(chat_id_arg())]
        elif name == "wait_sent":
            try:
                messages = api.wait_sent(
                    int(args["chat_id"]),
                    int(args.get("count", 1)),
                    float(args.get("timeout", 5.0)),
                )
            except TimeoutError as exc:
                return 408, {"ok": False, "error_code": 408, "description": str(exc)}
            result = [m.to_dict() for m in messages]
        elif name == "fail_next":
            api.fail_next(
                chat_id_arg(),
                str(args["kind"]),
                int(args.get("retry_after", 1)),
                method=args.get("method"),
                times=int(args.get("times", 1)),
                delay=float(args.get("delay", 0.0)),
            )
            result = True
        elif name == "fault_mode":
            rate = float(args.get("rate", 0.0))
            kinds = tuple(args.get("kinds") or FaultMode.kinds)
            api.set_fault_mode(FaultMode(rate, kinds, seed=int(args.get("seed", 0))) if rate else None)
            result = True
        elif name == "send_raw":
            result = api.send_raw(str(args["kind"]), args["body"])
        elif name in ("block", "unblock"):
            getattr(api, name)(int(args["chat_id"]))
            result = True
        elif name == "calls":
            result = api.call_counts()
        elif name == "rejected":
            result = [r.to_dict() for r in api.rejected]
        elif name == "commands":
            result = [
                {"scope": json.loads(scope), "language_code": lang, "commands": commands}
                for (scope, lang), commands in api.all_commands().items()
            ]
        elif name == "answered":
            result = [asdict(a) for a in api.answered_callbacks]
        else:
            return 404, _not_found()
    except (KeyError, ValueError, TypeError, LookupError) as exc:
        return 400, {"ok": False, "error_code": 400, "description": f"{type(exc).__name__}: {exc}"}
    return 200, _ok(result)


class BotAPIServer:
    """Serves a :class:`FakeBotAPI` over HTTP on 127.0.0.1 (port 0 picks a free port).

    Routes: ``/bot<token>/<method>`` (GET/POST; JSON, urlencoded or multipart bodies),
    ``/file/bot<token>/<file_path>`` (file bytes) and ``/_standin/<action>`` (test control).
    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, api: FakeBotAPI | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self.api = api if api is not None else FakeBotAPI()
        self._address = (host, port)
        self._httpd: _StandinHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._bound()[0]

    @property
    def port(self) -> int:
        return self._bound()[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._bound()
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)``: ``http://127.0.0.1:PORT/bot``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)``: ``http://127.0.0.1:PORT/file/bot``."""
        return f"{self.url}/file/bot"

    @property
    def control_url(self) -> str:
        """``http://127.0.0.1:PORT/_standin/``."""
        return f"{self.url}/_standin/"

    def _bound(self) -> tuple[str, int]:
        if self._httpd is None:
            raise RuntimeError("the stand-in server is not started")
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> BotAPIServer:
        """Bind and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            raise RuntimeError("the stand-in server is already started")
        self._httpd = _StandinHTTPServer(self._address, self.api)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="standin-http-serve",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving, end open connections and long polls, join every server thread."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self.api.interrupt_polls()
        httpd.shutdown()
        thread.join(timeout)
        workers = httpd.close_connections()
        self.api.interrupt_polls()
        httpd.server_close()
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self._httpd = self._thread = None

    def __enter__(self) -> BotAPIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------
# In-process PTB request
# --------------------------------------------------------------------------------------------

_API_PATH = re.compile(r"/bot(?P<token>[^/]*)/(?P<method>[^/]+)$")
_FILE_PATH = re.compile(r"/file/bot(?P<token>[^/]*)/(?P<path>.+)$")


def _uploaded(field_tuple: Any) -> UploadedFile:
    filename, content = field_tuple[0], field_tuple[1]
    mime = field_tuple[2] if len(field_tuple) > 2 else None
    if hasattr(content, "read"):
        content = content.read()
    if isinstance(content, str):
        content = content.encode("utf-8")
    return UploadedFile(filename, bytes(content), mime)


class StandinRequest(BaseRequest):
    """A PTB request class that answers every call from a :class:`FakeBotAPI` in process.

    ``ApplicationBuilder().token(api.token).request(StandinRequest(api))
    .get_updates_request(StandinRequest(api))`` — no HTTP, no sockets, no threads.  Long polls
    await on the event loop; ``latency`` (seconds) delays every call, e.g. for benchmarks.
    """

    __slots__ = ("_api", "_initialized", "_latency", "_read_timeout")

    def __init__(self, api: FakeBotAPI, *, read_timeout: float | None = 5.0, latency: float = 0.0) -> None:
        self._api = api
        self._read_timeout = read_timeout
        self._latency = latency
        self._initialized = False

    @property
    def api(self) -> FakeBotAPI:
        return self._api

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        self._initialized = True

    async def shutdown(self) -> None:
        self._initialized = False

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if not self._initialized:
            raise RuntimeError("This StandinRequest is not initialized!")
        if self._latency > 0:
            await asyncio.sleep(self._latency)
        path = unquote(urlsplit(url).path)

        if method.upper() == "GET":
            match = _FILE_PATH.search(path)
            if match and not self._api.check_token(match["token"]):
                return 401, json.dumps(_unauthorized()).encode()
            data = self._api.download(match["path"]) if match else None
            if data is None:
                stored = self._api._find_file_by_suffix(path)
                data = stored.content if stored else None
            if data is None:
                return 404, json.dumps(_not_found()).encode()
            return 200, data

        api_match = _API_PATH.search(path)
        if api_match is None:
            return 404, json.dumps(_not_found()).encode()
        api_method = api_match["method"]
        if not self._api.check_token(api_match["token"]):
            status, body = self._api.unauthorized(api_method)
            return status, json.dumps(body).encode()
        params: JSONDict = dict(request_data.json_parameters) if request_data else {}
        files: dict[str, UploadedFile] = {}
        if request_data is not None and request_data.contains_files:
            files = {k: _uploaded(v) for k, v in request_data.multipart_data.items()}
        effective = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        try:
            status, body = await self._api.call_async(api_method, params, files, max_wait=effective)
        except TimeoutError as exc:
            raise TimedOut from exc
        except LostResponse as lost:
            await asyncio.sleep(lost.delay)
            raise TimedOut(str(lost)) from None
        return status, json.dumps(body).encode()


# --------------------------------------------------------------------------------------------
# Standalone server
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the stand-in until SIGINT/SIGTERM; prints one "ready <base_url> ..." line."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.botapi",
        description="Serve a stand-in Telegram Bot API on 127.0.0.1.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089, help="0 picks a free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--flood", action="store_true", help="enable FloodLimits()")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if options.verbose else logging.WARNING)

    api = FakeBotAPI(options.token, flood_limits=FloodLimits() if options.flood else None)
    server = BotAPIServer(api, host=options.host, port=options.port).start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(
        f"ready {server.base_url} file={server.base_file_url} control={server.control_url}",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
