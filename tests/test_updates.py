"""One chat's updates run in order; other chats' updates run alongside."""

from __future__ import annotations

import asyncio

from telegram import Chat, Message, Update

from bot.updates import PerChatUpdateProcessor


def _update(update_id: int, chat_id: int) -> Update:
    chat = Chat(chat_id, "private")
    return Update(update_id, message=Message(update_id, None, chat, text="x"))  # type: ignore[arg-type]


async def test_one_chat_in_order_other_chats_alongside() -> None:
    processor = PerChatUpdateProcessor(8)
    log: list[str] = []

    async def handle(name: str, delay: float) -> None:
        log.append(f"start {name}")
        await asyncio.sleep(delay)
        log.append(f"end {name}")

    await asyncio.gather(
        processor.process_update(_update(1, 10), handle("a1", 0.05)),
        processor.process_update(_update(2, 10), handle("a2", 0)),
        processor.process_update(_update(3, 20), handle("b1", 0)),
    )
    assert log.index("end a1") < log.index("start a2")  # same chat: strictly one after the other
    assert log.index("end b1") < log.index("end a1")  # another chat did not wait
