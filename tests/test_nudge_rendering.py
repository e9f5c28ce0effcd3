"""Nudges are planned without their text (one INSERT ... SELECT) and rendered when sent: each
message must be exactly what the catalog renders for that recipient (language, escalation,
offset, last percent), HTML escaping included, with its buttons, on each engine."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.services.nudges import NUDGE, NudgeService
from bot.services.outbox import Button
from bot.services.reporting import ReportInput
from storage.models import Membership, OutboxMessage, Task, TaskGroup, Unit, User
from tests.support.harness import Harness

HN = ZoneInfo("Asia/Ho_Chi_Minh")
# Every character html.escape changes, JSON escapes, and text outside ASCII.
AWKWARD = "A&B <i>x</i> \"q\" 'a' \\ back\nnew\tline — Tiến độ 🇻🇳 %s {x} 50%"

# What a person reads, written out here rather than taken from the code under test: the kind of
# nudge follows from the offset (b = working days before, d0 = the day, o = working days overdue),
# the language from the person (none or one tiendo does not speak: Vietnamese).
TEXTS = {
    "vi": {
        "before": "⏰ <b>Nhắc việc</b>: nhiệm vụ <b>{code}</b> — {title}\nĐơn vị chủ trì: {unit}\n"
        "Thời hạn: <b>{deadline}</b> (còn {days} ngày làm việc)\nTiến độ báo cáo gần nhất: {percent}",
        "on_the_day": "⏰ <b>Hôm nay là hạn</b> nhiệm vụ <b>{code}</b> — {title}\nĐơn vị chủ trì: {unit}\n"
        "Thời hạn: <b>{deadline}</b>\nTiến độ báo cáo gần nhất: {percent}",
        "overdue": "⚠️ <b>Quá hạn {days} ngày làm việc</b>: nhiệm vụ <b>{code}</b> — {title}\n"
        "Đơn vị chủ trì: {unit}\nThời hạn: <b>{deadline}</b>\nTiến độ báo cáo gần nhất: {percent}",
        "escalation": "⚠️ <b>Báo cáo lãnh đạo đơn vị</b>: nhiệm vụ <b>{code}</b> — {title} của {unit} "
        "đã quá hạn {days} ngày làm việc (thời hạn {deadline}).\nTiến độ báo cáo gần nhất: {percent}",
        "none": "chưa có báo cáo",
    },
    "en": {
        "before": "⏰ <b>Reminder</b>: task <b>{code}</b> — {title}\nLead unit: {unit}\n"
        "Deadline: <b>{deadline}</b> ({days} working days left)\nLast reported progress: {percent}",
        "on_the_day": "⏰ <b>Due today</b>: task <b>{code}</b> — {title}\nLead unit: {unit}\n"
        "Deadline: <b>{deadline}</b>\nLast reported progress: {percent}",
        "overdue": "⚠️ <b>Overdue by {days} working days</b>: task <b>{code}</b> — {title}\n"
        "Lead unit: {unit}\nDeadline: <b>{deadline}</b>\nLast reported progress: {percent}",
        "escalation": "⚠️ <b>For the unit's leaders</b>: task <b>{code}</b> — {title} of {unit} is overdue "
        "by {days} working days (deadline {deadline}).\nLast reported progress: {percent}",
        "none": "no report yet",
    },
}
KINDS = {
    "b7": ("before", 7),
    "b1": ("before", 1),
    "d0": ("on_the_day", 0),
    "o2": ("overdue", 2),
    "o6": ("overdue", 6),
}


def _expected(language: str | None, name: str, escalated: bool, fields: dict[str, str]) -> str:
    texts = TEXTS["en" if language == "en" else "vi"]
    kind, days = KINDS[name]
    percent = "40%" if name == "o2" else texts["none"]  # only o2 has a report (40 %)
    text = texts["escalation" if escalated else kind].format(days=days, percent=percent, **fields)
    return text


async def test_each_nudge_is_rendered_from_the_catalog_when_sent(harness: Harness) -> None:
    db = harness.services.db
    harness.services.pacer.private_interval = 0.0
    nudges: NudgeService = harness.services.nudges
    async with db.transaction() as session:
        unit = Unit(code="R&D", name="Phòng " + AWKWARD)
        other = Unit(code="OTH", name="Khác")
        session.add_all([unit, other])
        await session.flush()
        people = [
            (901, "focal", "vi", unit),
            (902, "focal", "en", unit),
            (903, "focal", None, unit),
            (904, "focal", "fr", unit),
            (905, "leader", "en", unit),
            (906, "leader", "vi", unit),
            (907, "focal", "vi", other),
        ]
        users: dict[int, User] = {}
        for telegram_id, role, language, where in people:
            user = users.get(telegram_id) or User(telegram_id=telegram_id, first_name="X", language=language)
            users[telegram_id] = user
            session.add(user)
            await session.flush()
            session.add(Membership(user_id=user.id, unit_id=where.id, role=role))
        # 906 is the unit's leader and one of its focal points: one (escalated) nudge only.
        session.add(Membership(user_id=users[906].id, unit_id=unit.id, role="focal"))
        group_id, programme_id = (
            await session.execute(select(TaskGroup.id, TaskGroup.programme_id).limit(1))
        ).one()
        deadlines = {
            "b7": date(2024, 3, 15),
            "b1": date(2024, 3, 7),
            "d0": date(2024, 3, 6),
            "o2": date(2024, 3, 4),
            "o6": date(2024, 2, 27),
        }
        tasks = {}
        for name, deadline in deadlines.items():
            task = Task(
                programme_id=programme_id,
                code=f"{name}&<{name}>",
                group_id=group_id,
                title=f"{name} {AWKWARD}",
                lead_unit_id=unit.id,
                deadline=deadline,
            )
            session.add(task)
            tasks[name] = task
        await session.flush()
        unit_id, task_ids = unit.id, {name: task.id for name, task in tasks.items()}
    for telegram_id in users:
        harness.api.user(telegram_id, "X")
    harness.clock.set(datetime(2024, 3, 1, 3, 0, tzinfo=UTC))
    await harness.services.reporting.submit(
        ReportInput(task_ids["o2"], unit_id, None, "in_progress", 40, "đang làm")
    )
    now = datetime(2024, 3, 6, 9, 0, tzinfo=HN).astimezone(UTC)
    harness.clock.set(now)

    result = await nudges.plan()
    await harness.dispatch()

    async with db.reader() as session:
        rows = list(
            await session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.kind == NUDGE, OutboxMessage.task_id.in_(task_ids.values())
                )
            )
        )
    names = {task_id: name for name, task_id in task_ids.items()}
    by_user = {user.id: (telegram_id, user.language) for telegram_id, user in users.items()}
    sent = {(m.chat_id, m.message_id): m for telegram_id in users for m in harness.api.sent(telegram_id)}
    seen = set()
    for row in rows:
        assert row.task_id is not None and row.user_id is not None
        name = names[row.task_id]
        telegram_id, language = by_user[row.user_id]
        offset = nudges.current_offset(deadlines[name], now)
        assert offset is not None and offset.name == name
        escalated = telegram_id == 905 or (telegram_id == 906 and name == "o6")
        day = deadlines[name]
        fields = {
            "code": f"{name}&amp;&lt;{name}&gt;",
            "title": f"{name} "
            + AWKWARD.replace("&", "&amp;")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
            .replace('"', "&quot;")
            .replace("'", "&#x27;"),
            "unit": "Phòng "
            + AWKWARD.replace("&", "&amp;")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
            .replace('"', "&quot;")
            .replace("'", "&#x27;"),
            # Vietnamese 15/03/2024, English Mar 15, 2024 (the catalogs' format.date).
            "deadline": f"{day:%b} {day.day}, {day.year}" if language == "en" else f"{day:%d/%m/%Y}",
        }
        assert row.state == "sent" and row.telegram_message_id is not None, (name, telegram_id)
        message = sent[(telegram_id, row.telegram_message_id)]
        assert message.text == _expected(language, name, escalated, fields), (name, telegram_id)
        [report, snooze], *more = nudges._buttons(language, row.task_id, unchanged=name == "o2")
        # "Không thay đổi" only where there is a report to copy (o2's 40 %).
        label = harness.services.i18n.t(language, "report.button.unchanged")
        same = [(label, f"rp:same:{row.task_id}")]
        assert more == ([[Button(label, "unchanged", row.task_id)]] if name == "o2" else [])
        assert [(b["text"], b["callback_data"]) for b in message.buttons] == [
            (report.label, f"rp:start:{row.task_id}"),
            (snooze.label, f"ng:snooze:{row.id}"),
            *(same if name == "o2" else []),
        ]
        assert row.chat_id == telegram_id and row.due_at == offset.slot
        assert row.dedup_key == f"nudge:{row.task_id}:v1:{name}:{row.user_id}"
        assert (row.nudge_offset, row.deadline_version) == (name, 1)
        assert row.created_at == now
        seen.add((name, telegram_id))
    focal = {901, 902, 903, 904, 906}
    expected_pairs = {(name, t) for name in deadlines for t in focal} | {("o6", 905)}
    assert seen == expected_pairs and len(rows) == len(expected_pairs)
    assert sum(len(harness.api.sent(t)) for t in users) == len(rows)
    async with db.reader() as session:
        everything = list(await session.scalars(select(OutboxMessage.id).where(OutboxMessage.kind == NUDGE)))
    assert result.planned == len(everything)
    assert (await nudges.plan()).planned == 0
