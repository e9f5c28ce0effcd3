"""PTB persistence over the database, not a pickle file: the conversation states PTB restores at
start-up come from the drafts (DraftService.conversation_states).

PTB hands conversation states to a persistence class only every `update_interval` and on a
clean stop, so a kill -9 would lose them (ENGINEERING.md, known traps). Guided flows therefore
write their state themselves, in the same row and statement as the answers that moved them
(`DraftService.save` keeps the conversation key and the step beside the answers), before the
next question is shown, and remove it with the draft when the flow ends (`DraftService.close`).
This class is what PTB reads those states back from at start-up; its `update_conversation`
writes nothing: PTB calls it late (every update_interval), and a write of an older in-memory
state could overtake the handler's own newer one.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import BasePersistence, PersistenceInput

from bot.services.drafts import DraftService


class DatabasePersistence(BasePersistence[dict[Any, Any], dict[Any, Any], Any]):
    def __init__(self, drafts: DraftService) -> None:
        # Only conversations are kept: user/chat/bot data live in their own tables.
        super().__init__(
            store_data=PersistenceInput(
                bot_data=False, chat_data=False, user_data=False, callback_data=False
            ),
            update_interval=60,
        )
        self.drafts = drafts

    async def get_conversations(self, name: str) -> dict[tuple[int | str, ...], object]:
        return await self.drafts.conversation_states(name)

    async def update_conversation(
        self, name: str, key: tuple[int | str, ...], new_state: object | None
    ) -> None:
        return None

    async def get_user_data(self) -> dict[int, dict[Any, Any]]:
        return {}

    async def get_chat_data(self) -> dict[int, dict[Any, Any]]:
        return {}

    async def get_bot_data(self) -> Any:
        return None

    async def get_callback_data(self) -> None:
        return None

    async def update_user_data(self, user_id: int, data: dict[Any, Any]) -> None:
        return None

    async def update_chat_data(self, chat_id: int, data: dict[Any, Any]) -> None:
        return None

    async def update_bot_data(self, data: Any) -> None:
        return None

    async def update_callback_data(self, data: Any) -> None:
        return None

    async def drop_chat_data(self, chat_id: int) -> None:
        return None

    async def drop_user_data(self, user_id: int) -> None:
        return None

    async def refresh_user_data(self, user_id: int, user_data: dict[Any, Any]) -> None:
        return None

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[Any, Any]) -> None:
        return None

    async def refresh_bot_data(self, bot_data: Any) -> None:
        return None

    async def flush(self) -> None:
        return None
