"""Manager views: /overdue (overdue tasks by lead unit, oldest first) and /stats."""

from __future__ import annotations

from html import escape

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.context import Context
from bot.services.overview import StatsRow
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


async def stats(update: Update, context: Context) -> None:
    """Counts per group and per lead unit in the Government's status classes."""
    call = await begin(update, context, "stats", "manager")
    if call is None:
        return
    result = await call.services.overview.stats()
    total = result.total
    lines = [
        call.t("admin.stats.title", date=call.services.i18n.date(call.lang, result.today), total=total.total)
    ]
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
    """Overdue tasks grouped by lead unit, the oldest first."""
    call = await begin(update, context, "overdue", "manager")
    if call is None:
        return
    overview = call.services.overview
    units = await overview.overdue()
    today = overview.today()
    if not units:
        await call.say("admin.overdue.none", date=call.services.i18n.date(call.lang, today))
        return
    count = sum(len(u.tasks) for u in units)
    lines = [call.t("admin.overdue.title", date=call.services.i18n.date(call.lang, today), count=count)]
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
