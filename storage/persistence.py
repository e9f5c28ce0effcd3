"""PTB persistence over the database (conversation_states), not a pickle file.

PTB hands conversation states to a persistence class only every `update_interval` and on a
clean stop, so a kill -9 would lose them (ENGINEERING.md, known traps). Guided flows therefore
write their state themselves, in the same row and statement as the answers that moved them
(`DraftService.save` keeps {"key": conversation key, "state": step} under CONVERSATION in the
draft's data), before the next question is shown, and remove it with the draft when the flow
ends (`DraftService.close`). This class is what PTB reads those states back from at start-up
(and from conversation_states, where versions before this one kept them); its
`update_conversation` writes nothing: PTB calls it late (every update_interval), and a write of
an older in-memory state could overtake the handler's own newer one.
"""

from __future__ import annotations

import json
from typing import Any

from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import ConversationDict, ConversationKey

from storage.db import Database
from storage.repositories.drafts import ConversationRepository, DraftRepository

# The key, in a draft's data, of the conversation it belongs to and the step reached.
CONVERSATION = "__conversation__"


def conversation_key(key: ConversationKey) -> str:
    return json.dumps(list(key), separators=(",", ":"))


class DatabasePersistence(BasePersistence[dict[Any, Any], dict[Any, Any], Any]):
    def __init__(self, db: Database) -> None:
        # Only conversations are kept: user/chat/bot data live in their own tables.
        super().__init__(
            store_data=PersistenceInput(
                bot_data=False, chat_data=False, user_data=False, callback_data=False
            ),
            update_interval=60,
        )
        self.db = db

    async def get_conversations(self, name: str) -> ConversationDict:
        async with self.db.reader() as session:
            rows = await ConversationRepository(session).all(name)
            drafts = await DraftRepository(session).data_of(name)
        # Kept by an older version: a state counts only while its draft (without a state of
        # its own) is still there; closing a flow now removes the draft alone.
        legacy = {
            tuple(json.loads(row.key)): (row.state or {}).get("state")
            for row in rows
            if (row.state or {}).get("state") is not None
        }
        states: ConversationDict = {}
        for telegram_id, data in drafts:
            conversation = (data or {}).get(CONVERSATION) or {}
            if conversation.get("key") and conversation.get("state") is not None:
                states[tuple(json.loads(conversation["key"]))] = conversation["state"]
            else:
                states.update({key: state for key, state in legacy.items() if key[-1] == telegram_id})
        return states

    async def update_conversation(self, name: str, key: ConversationKey, new_state: object | None) -> None:
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
