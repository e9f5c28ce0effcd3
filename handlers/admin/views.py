"""Manager views: /overdue (overdue tasks by lead unit, oldest first) and /stats."""

from __future__ import annotations

from html import escape

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.context import Context
from bot.services.overview import StatsRow
from bot.services.programme import ProgrammeError, ProgrammeInfo
from bot.services.status import STATUS_ORDER
from handlers.admin.common import Call, begin


def _rate(call: Call, row: StatsRow) -> str:
    rate = row.rate
    return call.t("admin.stats.no_rate") if rate is None else call.services.i18n.percent(call.lang, rate)


def _row(call: Call, label: str, row: StatsRow) -> str:
    return call.t(
        "admin.stats.row",
        label=label,
        total=row.total,
        counts=" / ".join(str(row.counts[s]) for s in STATUS_ORDER),
        rate=_rate(call, row),
    )


async def _programmes(call: Call) -> list[ProgrammeInfo | None] | None:
    """The programmes a view covers: the one named (/stats CODE), else every active one (None:
    a database without programmes); None after telling the caller the code is unknown."""
    directory = call.services.digest.programmes
    if call.args:
        try:
            return [await directory.choose(call.args[0][:48])]
        except ProgrammeError as exc:
            await call.say_lines([call.t(exc.key, **{k: escape(str(v)) for k, v in exc.params.items()})])
            return None
    active: list[ProgrammeInfo | None] = list(await directory.all(active_only=True))
    return active or [None]


def _heading(call: Call, programme: ProgrammeInfo | None, several: bool) -> list[str]:
    if programme is None or not several:
        return []
    return [call.t("programme.heading", short=escape(programme.short_code), title=escape(programme.title))]


async def stats(update: Update, context: Context) -> None:
    """Counts per group and per lead unit in the Government's status classes, per programme."""
    call = await begin(update, context, "stats", "manager")
    if call is None:
        return
    programmes = await _programmes(call)
    for programme in programmes or []:
        lines = _heading(call, programme, len(programmes or []) > 1 or bool(call.args))
        await _stats(call, lines, programme.id if programme else None)


async def _stats(call: Call, lines: list[str], programme_id: int | None) -> None:
    result = await call.services.overview.stats(programme_id=programme_id)
    total = result.total
    lines.append(
        call.t("admin.stats.title", date=call.services.i18n.date(call.lang, result.today), total=total.total)
    )
    lines += [
        call.t("admin.stats.class_line", label=call.t(f"admin.status.{s.value}"), count=total.counts[s])
        for s in STATUS_ORDER
    ]
    done = total.counts[STATUS_ORDER[0]] + total.counts[STATUS_ORDER[1]]
    due = done + total.counts[STATUS_ORDER[3]]
    lines.append(call.t("admin.stats.rate", rate=_rate(call, total), done=done, due=due))
    lines.append("")
    lines.append(call.t("admin.stats.legend"))
    lines.append(call.t("admin.stats.by_group"))
    lines += [_row(call, escape(g.key), g) for g in result.groups]
    lines.append(call.t("admin.stats.by_unit"))
    lines += [_row(call, escape(u.key), u) for u in result.units]
    await call.say_lines(lines)


async def overdue(update: Update, context: Context) -> None:
    """Overdue tasks grouped by lead unit, the oldest first, per programme."""
    call = await begin(update, context, "overdue", "manager")
    if call is None:
        return
    programmes = await _programmes(call)
    for programme in programmes or []:
        lines = _heading(call, programme, len(programmes or []) > 1 or bool(call.args))
        await _overdue(call, lines, programme.id if programme else None)


async def _overdue(call: Call, lines: list[str], programme_id: int | None) -> None:
    overview = call.services.overview
    units = await overview.overdue(programme_id=programme_id)
    today = overview.today()
    if not units:
        lines.append(call.t("admin.overdue.none", date=call.services.i18n.date(call.lang, today)))
        await call.say_lines(lines)
        return
    count = sum(len(u.tasks) for u in units)
    lines.append(call.t("admin.overdue.title", date=call.services.i18n.date(call.lang, today), count=count))
    for unit in units:
        lines.append(
            call.t(
                "admin.overdue.unit", code=escape(unit.code), name=escape(unit.name), count=len(unit.tasks)
            )
        )
        for task in unit.tasks:
            assert task.deadline is not None
            lines.append(
                call.t(
                    "admin.overdue.task",
                    code=escape(task.code),
                    title=escape(task.title[:120]),
                    deadline=call.services.i18n.date(call.lang, task.deadline),
                    days=(today - task.deadline).days,
                )
            )
    await call.say_lines(lines)


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("stats", stats, filters=private),
        CommandHandler("overdue", overdue, filters=private),
    ]
