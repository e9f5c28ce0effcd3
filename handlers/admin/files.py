"""Plan files in chat: /import (preview, then Áp dụng / Hủy) and /export (XLSX + CSV)."""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

from telegram import InputFile, Update
from telegram.constants import ParseMode
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.context import Context
from bot.services.admin import AdminError
from bot.services.plans import PlanError
from bot.services.programme import ImportResult
from handlers import callbacks
from handlers.admin.common import Call, actor_of, begin, chunks, drop_buttons, keyboard
from handlers.common import acknowledge, clip, download

LIST_LIMIT = 30
KINDS = ("unit", "group", "task")


def _where(call: Call, error: PlanError) -> str:
    kind, number = error.where
    return call.t("where.file") if kind == "file" else call.t(f"where.{kind}", n=number)


def _short(call: Call, value: Any) -> str:
    if value is None or value == "" or value == ():
        return "—"
    if isinstance(value, date):
        return call.services.i18n.date(call.lang, value)
    if isinstance(value, tuple | list):
        value = ", ".join(str(v) for v in value)
    text = str(value)
    return escape(clip(text, 60))


def refused_whole(result: ImportResult) -> bool:
    """One file-level error (too big, a zip bomb, a YAML of aliases…): said in one line."""
    return len(result.errors) == 1 and result.errors[0].where[0] == "file"


def preview_lines(call: Call, filename: str, result: ImportResult) -> list[str]:
    """The preview of an import: counts, what is new, what changes (field by field), errors."""
    if refused_whole(result):
        error = result.errors[0]
        reason = call.t(error.key, **{k: escape(str(v)) for k, v in error.params.items()})
        return [call.t("admin.import.refused_file", file=escape(filename), reason=reason)]
    lines = [call.t("admin.import.preview_title", file=escape(filename))]
    if result.errors:
        lines.append(call.services.i18n.tn(call.lang, "admin.import.errors", len(result.errors)))
        for error in result.errors[:LIST_LIMIT]:
            params = {k: escape(str(v)) for k, v in error.params.items()}
            lines.append(f"• {_where(call, error)}: {call.t(error.key, **params)}")
        if len(result.errors) > LIST_LIMIT:
            lines.append(call.t("admin.import.more", count=len(result.errors) - LIST_LIMIT))
        return lines
    programme = next(c for c in result.changes if c.kind == "programme")
    action = call.t(f"programme.action_{programme.action}")
    lines.append(call.t("programme.import_line", code=escape(programme.code), action=action))
    for kind in KINDS:
        lines.append(
            call.t(
                "admin.import.counts",
                kind=call.t(f"admin.import.kind.{kind}"),
                new=result.count(kind, "new"),
                changed=result.count(kind, "changed"),
                unchanged=result.count(kind, "unchanged"),
            )
        )
    for kind in KINDS:
        new = [c.code for c in result.changes if c.kind == kind and c.action == "new"]
        if new:
            more = call.t("admin.import.more", count=len(new) - LIST_LIMIT) if len(new) > LIST_LIMIT else ""
            lines.append(
                call.t(
                    "admin.import.new",
                    kind=call.t(f"admin.import.kind.{kind}"),
                    items=escape(", ".join(new[:LIST_LIMIT])),
                )
                + more
            )
    changed = [c for c in result.changes if c.action == "changed"]
    if changed:
        lines.append(call.t("admin.import.changed"))
        for change in changed[:LIST_LIMIT]:
            fields = "; ".join(
                f"{escape(name)}: {_short(call, old)} → {_short(call, new)}"
                for name, old, new in change.fields
            )
            lines.append(f"• {call.t(f'admin.import.kind.{change.kind}')} {escape(change.code)} — {fields}")
        if len(changed) > LIST_LIMIT:
            lines.append(call.t("admin.import.more", count=len(changed) - LIST_LIMIT))
    if not result.touched:
        lines.append(call.t("admin.import.nothing"))
    return lines


def _caption_programme(caption: str) -> str | None:
    """`/import CODE` as a file's caption names its programme."""
    words = caption.split()
    return words[1][:48] if len(words) > 1 and words[0].startswith("/import") else None


async def import_start(update: Update, context: Context) -> None:
    """Wait for the admin's plan file (YAML, CSV or XLSX); `/import CODE` names its programme
    (a CSV file names none)."""
    call = await begin(update, context, "import")
    if call is None:
        return
    state = {"state": "awaiting", **({"programme": call.args[0][:48]} if call.args else {})}
    await call.services.admin.save_draft(call.actor, "import", state)
    await call.say("admin.import.send_file", kb=call.services.config.admin.import_max_kb)


async def import_file(update: Update, context: Context) -> None:
    """A document: a plan file if this admin is waiting to import one (or it says /import)."""
    message = update.effective_message
    assert message is not None and message.document is not None
    caption = (message.caption or "").strip()
    admin = context.services.admin
    pending = await admin.draft(actor_of(update), "import")
    # Waiting for a file, or showing a preview (a second file replaces the first).
    waiting = pending is not None and pending[0].get("state") in ("awaiting", "preview")
    if not waiting and not caption.startswith("/import"):
        return  # someone else's file (report evidence): not ours
    call = await begin(update, context, "import")
    if call is None:
        return
    document = message.document
    filename = document.file_name or "plan"
    limit = call.services.config.admin.import_max_kb
    try:
        if (document.file_size or 0) > limit * 1024:
            raise AdminError("file_too_big", kb=limit)
        data = await download(document)
        if data is None:
            raise AdminError("download_failed")
        programme = (pending[0].get("programme") if pending else None) or _caption_programme(caption)
        result, version = await admin.stage_import(call.actor, filename, data, programme)
    except AdminError as exc:
        return await call.error(exc)
    parts = chunks(preview_lines(call, filename, result))
    for part in parts[:-1]:
        await message.reply_text(part, parse_mode=ParseMode.HTML)
    if result.errors:
        last = parts[-1] if refused_whole(result) else parts[-1] + "\n\n" + call.t("admin.import.refused")
        await message.reply_text(last, parse_mode=ParseMode.HTML)
        return
    await message.reply_text(
        parts[-1],
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard(
            [
                [
                    (call.t("admin.button.apply"), callbacks.confirm(callbacks.IMPORT, True, version)),
                    (call.t("admin.button.cancel"), callbacks.confirm(callbacks.IMPORT, False, version)),
                ]
            ]
        ),
    )


async def import_decide(update: Update, context: Context) -> None:
    """Áp dụng: write the pending import (checked again); Hủy: forget it."""
    query = update.callback_query
    assert query is not None and query.data is not None
    call = await begin(update, context, "import")
    if call is None:
        return
    ok, version = callbacks.parse_confirm(query.data)
    await acknowledge(update)
    admin = call.services.admin
    if not ok:
        await admin.drop_draft(call.actor, "import")
        await drop_buttons(query)
        await call.message.reply_text(call.t("admin.import.cancelled"))
        return
    try:
        result = await admin.apply_import(call.actor, version)
    except AdminError as exc:
        await call.message.reply_text(call.error_text(exc))
        return
    await drop_buttons(query)
    if not result.applied:
        lines = [*preview_lines(call, "", result), call.t("admin.import.refused")]
        for part in chunks(lines):
            await call.message.reply_text(part, parse_mode=ParseMode.HTML)
        return
    await call.message.reply_text(
        call.t(
            "admin.import.applied",
            new=result.count("task", "new"),
            changed=result.count("task", "changed"),
            units=result.count("unit", "new"),
        )
    )


async def export(update: Update, context: Context) -> None:
    """Send every task with its latest progress (XLSX) and every report (CSV)."""
    call = await begin(update, context, "export")
    if call is None:
        return
    overview = call.services.overview
    day = overview.today().isoformat()
    workbook = await overview.export_xlsx()
    reports = await overview.export_reports_csv()
    await call.services.admin.record_export(call.actor)
    await call.message.reply_document(
        InputFile(workbook, filename=f"tiendo-tasks-{day}.xlsx"), caption=call.t("admin.export.tasks")
    )
    await call.message.reply_document(
        InputFile(reports, filename=f"tiendo-reports-{day}.csv"), caption=call.t("admin.export.reports")
    )


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("import", import_start, filters=private),
        CallbackQueryHandler(import_decide, pattern=callbacks.confirm_pattern(callbacks.IMPORT)),
        CommandHandler("export", export, filters=private),
    ]


def document_handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [MessageHandler(filters.Document.ALL & filters.ChatType.PRIVATE, import_file)]
