"""What every /report step relies on: the one-query scope check, the person read in one query,
and the step kept in the draft's own row (restored by DatabasePersistence after a restart)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from bot.services.admin import Actor
from storage.db import Database
from storage.models import ConversationState, Draft, Task, TaskUnit, Unit, User
from storage.persistence import CONVERSATION, DatabasePersistence, conversation_key
from storage.repositories.users import focal_scopes
from tests.report_helpers import join, to_results
from tests.support.harness import Harness

FOCAL, LEADER, OTHER = 801, 802, 803


async def _task(db: Database, code: str) -> tuple[int, int, list[int]]:
    """(task id, lead unit id, coordinating unit ids)."""
    async with db.reader() as session:
        task = await session.scalar(select(Task).where(Task.code == code))
        assert task is not None
        units = list(await session.scalars(select(TaskUnit.unit_id).where(TaskUnit.task_id == task.id)))
        return task.id, task.lead_unit_id, units


async def _unit(db: Database, unit_id: int) -> str:
    async with db.reader() as session:
        unit = await session.get(Unit, unit_id)
        assert unit is not None
        return unit.code


async def _coordinated_task(db: Database) -> tuple[int, int, int]:
    """A task with a coordinating unit: (task id, lead unit id, a coordinating unit id)."""
    async with db.reader() as session:
        row = (
            await session.execute(
                select(TaskUnit.task_id, Task.lead_unit_id, TaskUnit.unit_id)
                .join(Task, Task.id == TaskUnit.task_id)
                .where(TaskUnit.unit_id != Task.lead_unit_id)
                .order_by(TaskUnit.id)
            )
        ).first()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])


async def scopes(db: Database, people: list[int], tasks: list[int]) -> set[tuple[int, int, int]]:
    return await db.read_statements(
        lambda runner: {
            scope for person in people for task in tasks for scope in focal_scopes(runner, person, task)
        }
    )


async def test_focal_scopes_lead_coordinating_role_active_and_closed(harness: Harness, db: Database) -> None:
    task_id, lead, coordinating = await _coordinated_task(db)
    await join(harness, FOCAL, await _unit(db, lead))
    await join(harness, OTHER, await _unit(db, coordinating))
    await join(harness, LEADER, await _unit(db, lead), role="leader")
    everyone = [FOCAL, OTHER, LEADER, 999]
    assert await scopes(db, everyone, [task_id]) == {(FOCAL, task_id, lead), (OTHER, task_id, coordinating)}
    # A task of neither unit is in no one's scope.
    async with db.reader() as session:
        foreign = await session.scalar(
            select(Task.id).where(
                Task.lead_unit_id.not_in([lead, coordinating]),
                Task.id.not_in(select(TaskUnit.task_id).where(TaskUnit.unit_id.in_([lead, coordinating]))),
            )
        )
    assert foreign is not None
    assert await scopes(db, everyone, [foreign]) == set()
    # Deactivated: out; a closed task: out for everyone.
    async with db.transaction() as session:
        await session.execute(update(User).where(User.telegram_id == OTHER).values(active=False))
    assert await scopes(db, everyone, [task_id]) == {(FOCAL, task_id, lead)}
    async with db.transaction() as session:
        await session.execute(
            update(Task).where(Task.id == task_id).values(closed_at=datetime(2024, 1, 1, tzinfo=UTC))
        )
    assert await scopes(db, everyone, [task_id]) == set()


async def test_person_reads_units_sorted_and_roles(harness: Harness, db: Database) -> None:
    await join(harness, FOCAL, "TTRA")
    await join(harness, FOCAL, "KHTC")
    await join(harness, FOCAL, "KHTC", role="leader")
    await harness.services.admin.set_role(Actor(1000), str(FOCAL), "manager", None)
    person = await harness.services.people.person(FOCAL, "ignored")
    assert [(u.unit_code, u.role) for u in person.units] == [
        ("KHTC", "focal"),
        ("KHTC", "leader"),
        ("TTRA", "focal"),
    ]
    assert person.roles == {"manager"}
    assert person.first_name != "ignored" and person.user_id is not None
    assert person.units[0].unit_name  # the unit's name comes along
    unknown = await harness.services.people.person(4242, "Ai")
    assert not unknown.known and unknown.first_name == "Ai" and unknown.user_id is None
    admin = await harness.services.people.person(1000, "Quản trị")  # a config admin
    assert admin.is_admin() and admin.units == ()


async def test_the_step_rides_in_the_draft_row_and_comes_back_after_a_restart(
    harness: Harness, db: Database
) -> None:
    await join(harness, FOCAL, "TTRA")
    await to_results(harness, FOCAL, "5.9")
    persistence = DatabasePersistence(db)
    # PTB's conversation only knows that a report is open; the step is the draft's.
    assert await persistence.get_conversations("report") == {(FOCAL, FOCAL): "report"}
    async with db.reader() as session:
        assert list(await session.scalars(select(ConversationState))) == []
    # The answers handed to handlers do not carry the conversation's state.
    draft = await harness.services.drafts.load(FOCAL, "report")
    assert draft is not None and CONVERSATION not in draft.data
    assert draft.data["step"] == "results"
    # Closed: the state goes with the draft.
    await harness.send(FOCAL, "/cancel")
    assert await persistence.get_conversations("report") == {}


async def test_a_state_kept_by_the_older_version_counts_while_its_draft_exists(
    harness: Harness, db: Database
) -> None:
    await join(harness, FOCAL, "TTRA")
    await join(harness, OTHER, "TTRA")
    await to_results(harness, FOCAL, "5.9")
    now = datetime(2024, 1, 31, 2, 0, tzinfo=UTC)
    async with db.transaction() as session:
        # As the previous version wrote them: the step in conversation_states, none in the
        # draft (for FOCAL); and a stale state of OTHER, whose draft was closed.
        await session.execute(update(ConversationState).values(state=None))
        user_id = await session.scalar(select(User.id).where(User.telegram_id == FOCAL))
        draft = await session.scalar(select(Draft).where(Draft.user_id == user_id))
        assert draft is not None
        draft.data = {k: v for k, v in draft.data.items() if k != CONVERSATION}
        for who, step in ((FOCAL, "results"), (OTHER, "status")):
            session.add(
                ConversationState(
                    name="report", key=conversation_key((who, who)), state={"state": step}, updated_at=now
                )
            )
    assert await DatabasePersistence(db).get_conversations("report") == {(FOCAL, FOCAL): "results"}
