"""The `tiendo` command line: init, import, invite, run, audit, report, demo.

Operators read its output in the bot's configured language. Exit codes: 0 done, 1 refused
(bad input file, unknown unit), 2 cannot start (configuration, token, schema).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Config, ConfigError, load_config, parse_duration
from bot.i18n import I18n
from bot.logs import setup_logging

if TYPE_CHECKING:
    from bot.services.plans import PlanError

log = logging.getLogger("tiendo")


class CliExit(Exception):
    """Stop with a message and an exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _where(i18n: I18n, where: tuple[str, int]) -> str:
    kind, number = where
    return i18n.t(None, f"where.{kind}", n=number)


def _print_refusal(i18n: I18n, path: Path, errors: Sequence[PlanError]) -> None:
    """One line for a file refused whole (too big, a zip bomb…); else a line per error."""
    if len(errors) == 1 and errors[0].where[0] == "file":
        reason = i18n.t(None, errors[0].key, **errors[0].params)
        print(i18n.t(None, "cli.import_refused_file", path=path, reason=reason), file=sys.stderr)
        return
    print(i18n.t(None, "cli.import_refused", path=path, count=len(errors)), file=sys.stderr)
    for error in errors:
        message = i18n.t(None, error.key, **error.params)
        print(f"  {_where(i18n, error.where)}: {message}", file=sys.stderr)


class _ProgressBar:
    """A one-line progress bar on stderr for long imports."""

    def __init__(self, width: int = 30) -> None:
        self.width = width

    def __call__(self, done: int, total: int) -> None:
        filled = int(self.width * done / total) if total else self.width
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _database_errors() -> tuple[type[BaseException], ...]:
    """What reaching or using the database raises: sockets, SQLAlchemy, the drivers."""
    from sqlalchemy.exc import SQLAlchemyError

    errors: tuple[type[BaseException], ...] = (OSError, SQLAlchemyError)  # TimeoutError is an OSError
    try:
        import asyncpg
    except ImportError:
        return errors
    return (*errors, asyncpg.PostgresError, asyncpg.InterfaceError)


@contextlib.contextmanager
def _reaching(config: Config, i18n: I18n) -> Iterator[None]:
    """A database that cannot be reached or refuses us is one sentence and exit code 2, not a
    driver's traceback (kept at DEBUG)."""
    try:
        yield
    except _database_errors() as exc:
        from sqlalchemy.engine import make_url

        url = make_url(config.database_url).render_as_string(hide_password=True)
        log.debug("database %s: cannot start", url, exc_info=True)
        cause = getattr(exc, "orig", None) or exc
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise CliExit(i18n.t(None, "cli.database", url=url, error=reason), 2) from None


# --- commands ---------------------------------------------------------------------------------


async def cmd_init(config: Config, i18n: I18n, args: argparse.Namespace) -> int:
    from storage.db import Database
    from storage.migrate import upgrade

    with _reaching(config, i18n):
        db = Database(config.database_url)
    try:
        with _reaching(config, i18n):
            before, head = await upgrade(db)
    finally:
        await db.dispose()
    url = db.safe_url()
    if before is None:
        print(i18n.t(None, "cli.init_created", url=url, head=head))
    elif before != head:
        print(i18n.t(None, "cli.init_migrated", url=url, before=before, head=head))
    else:
        print(i18n.t(None, "cli.init_current", url=url, head=head))
    return 0


async def cmd_import(config: Config, i18n: I18n, args: argparse.Namespace) -> int:
    from bot.services.container import build_services
    from bot.services.programme import move_to_year
    from handlers.wording import TelegramWording
    from storage.migrate import upgrade
    from storage.repositories.tasks import TaskRepository

    path = Path(args.file)
    if not path.is_file():
        raise CliExit(i18n.t(None, "cli.file_missing", path=path))
    with _reaching(config, i18n):
        services = build_services(config, wording=TelegramWording, i18n=i18n)
    try:
        with _reaching(config, i18n):
            await upgrade(services.db)
        if args.if_empty:
            async with services.db.reader() as session:
                _, tasks = await TaskRepository(session).counts()
            if tasks:
                return 0
        plan = await services.programme.read_plan(path.read_bytes(), path.name, args.programme)
        if args.move_to_year and plan.ok:
            plan = move_to_year(plan, args.move_to_year)
        if not plan.ok:
            _print_refusal(i18n, path, plan.errors)
            return 1
        if args.dry_run:
            result = await services.programme.preview(plan)
        else:
            progress = _ProgressBar() if len(plan.tasks) >= 200 else None
            result = await services.programme.apply(plan, progress=progress)
        print(
            i18n.t(
                None,
                "cli.import_preview" if args.dry_run else "cli.import_done",
                path=path,
                units_new=result.count("unit", "new"),
                units_changed=result.count("unit", "changed"),
                groups_new=result.count("group", "new"),
                groups_changed=result.count("group", "changed"),
                tasks_new=result.count("task", "new"),
                tasks_changed=result.count("task", "changed"),
                tasks_unchanged=result.count("task", "unchanged"),
            )
        )
        programme = result.changes[0]
        action = i18n.t(None, f"programme.action_{programme.action}")
        print(i18n.t(None, "programme.import_line", code=programme.code, action=action))
        if args.verbose or args.dry_run:
            for change in result.changes:
                if change.action == "changed":
                    for name, old, new in change.fields:
                        print(f"  {change.kind} {change.code}: {name}: {old!r} -> {new!r}")
        async with services.db.reader() as session:
            groups, tasks = await TaskRepository(session).counts()
        print(i18n.t(None, "cli.import_totals", groups=groups, tasks=tasks))
        return 0
    finally:
        await services.db.dispose()


async def _bot_username(config: Config) -> str | None:
    if config.telegram.username:
        return config.telegram.username.lstrip("@")
    if not config.token:
        return None
    from telegram import Bot

    async with Bot(
        config.token, base_url=config.telegram.api_base_url, base_file_url=config.telegram.api_base_file_url
    ) as bot:
        return bot.username


async def cmd_invite(config: Config, i18n: I18n, args: argparse.Namespace) -> int:
    from bot.services.container import build_services
    from bot.services.invites import UnknownUnit, deep_link
    from handlers.wording import TelegramWording
    from storage.migrate import upgrade
    from storage.repositories.units import UnitRepository

    try:
        expires = parse_duration(args.expires or config.invites.default_expiry)
    except ValueError:
        raise CliExit(i18n.t(None, "cli.bad_expiry", value=args.expires)) from None
    with _reaching(config, i18n):
        services = build_services(config, wording=TelegramWording, i18n=i18n)
    try:
        with _reaching(config, i18n):
            await upgrade(services.db)
        try:
            invite = await services.invites.create(args.unit, args.role, expires)
        except UnknownUnit:
            async with services.db.reader() as session:
                codes = ", ".join(u.code for u in await UnitRepository(session).all())
            raise CliExit(i18n.t(None, "cli.unknown_unit", code=args.unit, codes=codes)) from None
    finally:
        await services.db.dispose()
    expires_local = i18n.datetime(None, invite.expires_at, config.tz)
    role = i18n.t(None, f"role.{invite.role}")
    print(i18n.t(None, "cli.invite_created", role=role, unit=invite.unit_code, expires=expires_local))
    print(invite.code)
    username = await _bot_username(config)
    if username:
        print(i18n.t(None, "cli.invite_link", link=deep_link(username, invite.code)))
    else:
        print(i18n.t(None, "cli.invite_no_username"), file=sys.stderr)
    return 0


async def _check_schema(config: Config, i18n: I18n) -> None:
    from storage.db import Database
    from storage.migrate import current_revision, head_revision, upgrade

    with _reaching(config, i18n):
        db = Database(config.database_url)
    try:
        with _reaching(config, i18n):
            current, head = await current_revision(db), head_revision()
            if current != head:
                if config.database.on_outdated_schema == "refuse":
                    raise CliExit(i18n.t(None, "cli.schema_refused", current=current or "-", head=head), 2)
                before, after = await upgrade(db)
                log.info("database migrated from %s to %s", before or "empty", after)
    finally:
        await db.dispose()


def _public_holidays(config: Config) -> dict[int, list[str]]:
    from bot.services.calendar import compute_public_holidays, years_around

    today = datetime.now(config.tz).date()
    found = compute_public_holidays(config.work.country, years_around(today))
    return {year: [day.isoformat() for day in days] for year, days in found.items()}


@dataclasses.dataclass
class _StartUpChild:
    """The forked child doing `tiendo run`'s one-off work (see _start_up_apart)."""

    pid: int
    holidays: int  # the read end of the pipe the child writes the public holidays to

    def wait(self) -> dict[int, list[date]]:
        """Wait for the child; raise CliExit if the schema check refused; its holidays."""
        with os.fdopen(self.holidays, "rb") as pipe:
            sent = pipe.read()  # until the child exits: read first, so a full pipe cannot block it
        _, status = os.waitpid(self.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code:
            raise CliExit("", code)  # the child said why
        years = json.loads(sent) if sent else {}  # none: computed on first use instead
        return {int(year): [date.fromisoformat(day) for day in days] for year, days in years.items()}


def _start_up_apart(config: Config, i18n: I18n) -> _StartUpChild | None:
    """Start the schema check (and migration) and the public holidays' computation in a forked
    child; returns it (None: the schema was checked here, the holidays will be computed on use).

    Alembic brings Mako and Pygments (~13 MiB, 0.3 s) and the `holidays` package every country's
    calendar (~12 MiB) that the running bot never needs again: in a child they are gone when it
    exits, and the bot builds its application meanwhile.
    """
    if not hasattr(os, "fork"):
        asyncio.run(_check_schema(config, i18n))
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        return _StartUpChild(pid, read_end)
    os.close(read_end)
    code = 1
    try:
        asyncio.run(_check_schema(config, i18n))
        code = 0
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(json.dumps(_public_holidays(config)).encode())
    except CliExit as exc:
        print(exc, file=sys.stderr)
        code = exc.code
    except BaseException:
        log.exception("start-up child failed")
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def cmd_run(config: Config, i18n: I18n, args: argparse.Namespace) -> int:
    if not config.token:
        raise CliExit(i18n.t(None, "cli.no_token"), 2)
    # Start-up makes some 150,000 objects that live as long as the process (below): the cyclic
    # garbage collector's passes over them while they are made find nothing to collect (measured
    # from launch to the built application: 1.45 s with them, 1.28 s without, median of 5). It
    # runs again once they are built.
    gc.disable()
    from storage.cluster import AlreadyRunning, solo_lock_for

    # SQLite: one `tiendo run` per database file (several processes need PostgreSQL). The lock
    # lives as long as this process; the kernel frees it even after a kill -9.
    solo = solo_lock_for(config.database_url)
    if solo is not None:
        try:
            solo.acquire()
        except AlreadyRunning:
            raise CliExit(i18n.t(None, "cli.already_running", path=solo.path), 2) from None
    starting = _start_up_apart(config, i18n)
    from telegram import Update
    from telegram.error import InvalidToken, NetworkError

    from bot.app import build_application

    application = build_application(config, clustered=True, i18n=i18n)
    services = application.bot_data.services
    assert services is not None
    if starting is not None:
        services.calendar.holidays.learn(starting.wait())
    # What is built by now (modules, SQLAlchemy's metadata, PTB, the catalogs: ~150,000
    # objects) lives as long as the process: leave it out of the garbage collector's full
    # passes, which would otherwise scan it all and stall every conversation (measured under
    # bench/report_flow.py: 3 full passes in 15 s, up to 79 ms each; after: 4 ms).
    gc.enable()
    gc.collect()
    gc.freeze()
    try:
        if config.telegram.mode == "webhook":
            application.run_webhook(
                listen=config.telegram.webhook_listen,
                port=config.telegram.webhook_port,
                url_path=f"telegram/{_webhook_path(config)}",
                webhook_url=config.telegram.webhook_url.rstrip("/") + f"/telegram/{_webhook_path(config)}",
                secret_token=_webhook_path(config),
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            application.run_polling(
                allowed_updates=Update.ALL_TYPES,
                timeout=config.telegram.poll_timeout,
                poll_interval=0.0,
            )
    except InvalidToken:
        raise CliExit(i18n.t(None, "cli.bad_token"), 2) from None
    except NetworkError as exc:
        raise CliExit(
            i18n.t(None, "cli.network", url=config.telegram.api_base_url, error=exc.message), 2
        ) from None
    return 0


def _secrets(config: Config) -> list[str]:
    """What no log line may show: the token and the webhook secret derived from it."""
    return [config.token, _webhook_path(config)] if config.token else []


def _webhook_path(config: Config) -> str:
    """A secret path and header value derived from the token, so no second secret is needed."""
    import hashlib

    return hashlib.sha256(("tiendo-webhook:" + config.token).encode()).hexdigest()[:32]


async def cmd_audit(config: Config, i18n: I18n, args: argparse.Namespace) -> int:
    from storage.db import Database
    from storage.migrate import upgrade
    from storage.repositories.audit import AuditRepository

    with _reaching(config, i18n):
        db = Database(config.database_url)
    try:
        with _reaching(config, i18n):
            await upgrade(db)
        async with db.reader() as session:
            entries = await AuditRepository(session).latest(args.n)
    finally:
        await db.dispose()
    if not entries:
        print(i18n.t(None, "cli.audit_empty"))
    for entry in reversed(entries):
        when = entry.at.astimezone(config.tz).strftime("%Y-%m-%d %H:%M:%S")
        who = entry.actor or (f"tg:{entry.actor_telegram_id}" if entry.actor_telegram_id else "-")
        target = f"{entry.entity}:{entry.entity_id}" if entry.entity else ""
        line = f"{when}  {who:<14} {entry.action:<22} {target}"
        if entry.detail:
            line += f"  {entry.detail}"
        print(line)
        if args.verbose and (entry.before or entry.after):
            print(f"    before: {entry.before}\n    after:  {entry.after}")
    return 0


async def cmd_report(config: Config, i18n: I18n, args: argparse.Namespace) -> int:
    from bot.services.container import build_services
    from bot.services.programme import ProgrammeError
    from bot.services.report_data import UnknownScope
    from bot.services.report_render import SUFFIX, file_stem
    from handlers.wording import TelegramWording
    from storage.migrate import upgrade

    with _reaching(config, i18n):
        services = build_services(config, wording=TelegramWording, i18n=i18n)
    try:
        with _reaching(config, i18n):
            await upgrade(services.db)
        try:
            programme = await services.digest.programme(args.programme)
        except ProgrammeError as exc:
            raise CliExit(i18n.t(None, exc.key, **exc.params)) from None
        try:
            period = services.digest.period(args.period, programme)
        except ValueError:
            example = services.digest.period(None, programme).key
            raise CliExit(i18n.t(None, "cli.report_bad_period", value=args.period, example=example)) from None
        try:
            data = await services.digest.build(period, args.unit, programme)
        except UnknownScope:
            raise CliExit(i18n.t(None, "cli.report_unknown_unit", code=args.unit)) from None
    finally:
        await services.db.dispose()
    content = services.digest.renderer().render(data, args.format)
    if args.output == "-" or (args.output is None and args.format in ("telegram", "html", "json")):
        sys.stdout.write(content.decode("utf-8") + "\n")
        return 0
    path = Path(args.output or f"{file_stem(data)}.{SUFFIX[args.format]}")
    path.write_bytes(content)
    print(i18n.t(None, "cli.report_written", path=path))
    return 0


async def cmd_programme(config: Config, i18n: I18n, args: argparse.Namespace) -> int:
    """tiendo programme list | close CODE | rename OLD NEW."""
    import re

    from bot.services.container import build_services
    from bot.services.programme import ProgrammeError
    from handlers.wording import TelegramWording
    from storage.migrate import upgrade

    def plain(text: str) -> str:
        return re.sub(r"</?b>", "", text)

    services = build_services(config, wording=TelegramWording, i18n=i18n)
    directory = services.digest.programmes
    try:
        await upgrade(services.db)
        if args.action == "list":
            found = await directory.all()
            if args.codes:
                print("\n".join(p.code for p in found))
                return 0
            for p in found:
                state = i18n.t(None, f"programme.state_{p.state}")
                issued = p.decision_date.strftime("%d/%m/%Y") if p.decision_date else "—"
                decision = p.decision or i18n.t(None, "programme.decision_none")
                values = {"code": p.code, "short": p.short_code, "state": state, "title": p.title or "—"}
                values.update(decision=decision, issued=issued, tasks=str(p.tasks), open=str(p.open_tasks))
                text = i18n.t(None, "programme.line", **values)
                print(plain(text) + "\n")
            if not found:
                print(i18n.t(None, "cli.programme.listed_none"))
        elif args.action == "close":
            reason = i18n.t(None, "programme.close_reason", code=args.code)
            closed = await directory.close(args.code, reason)
            figures = closed.closing or {}
            print(plain(_closing_line(i18n, closed.code, figures)))
        else:
            await directory.rename(args.code, args.new_code)
            print(i18n.t(None, "programme.renamed", old=args.code, new=args.new_code))
    except ProgrammeError as exc:
        raise CliExit(plain(i18n.t(None, exc.key, **exc.params))) from None
    finally:
        await services.db.dispose()
    return 0


def _closing_line(i18n: I18n, code: str, figures: dict[str, object]) -> str:
    def n(key: str) -> int:
        value = figures.get(key, 0)
        return value if isinstance(value, int) else 0

    rate = figures.get("rate")
    return i18n.t(
        None,
        "programme.closed",
        code=code,
        total=n("total"),
        completed=n("done_on_time") + n("done_late"),
        on_time=n("done_on_time"),
        late=n("done_late"),
        open=n("open_within") + n("open_overdue"),
        overdue=n("open_overdue"),
        rate=i18n.t(None, "programme.closing_rate_none")
        if not isinstance(rate, float)
        else i18n.percent(None, rate),
    )


async def cmd_demo(config: Config, i18n: I18n, args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    output = Path(args.output)
    result = await run_demo(config, output)
    for path in result.paths:
        print(i18n.t(None, "demo.wrote", path=path))
    print(i18n.t(None, "demo.done", period=result.period.key, folder=output))
    return 0


# --- argument parsing ---------------------------------------------------------------------------


def _import_parser(sub: Any) -> None:
    p = sub.add_parser(
        "import",
        help="load units, task groups and tasks from a YAML, CSV or XLSX plan file",
        description="Load units, task groups and tasks from a plan file (YAML, CSV or "
        "XLSX; see README 'Plan file format') into the programme it names. Re-importing "
        "updates by code inside that programme. A file "
        "with any error is refused whole, naming each row.",
    )
    p.add_argument("file", help="the plan file")
    p.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    p.add_argument(
        "--programme",
        metavar="CODE",
        help="the programme the file belongs to (needed for CSV; must match a YAML/XLSX file's own)",
    )
    p.add_argument("--if-empty", action="store_true", help="do nothing if the database already holds tasks")
    p.add_argument(
        "--move-to-year",
        type=int,
        metavar="YEAR",
        help="move every date of the file by whole years so that its programme starts in YEAR "
        "(to try an old example without years-old overdue tasks)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="list every changed field")


def _programme_parser(sub: Any) -> None:
    p = sub.add_parser(
        "programme",
        help="list, close or rename programmes (add one with 'tiendo import')",
        description="List the programmes; close one (its tasks stop nudging, its reports stay "
        "readable, and its completion figures at closing are kept); or rename one's code.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every programme, active and closed")
    listing.add_argument("--codes", action="store_true", help="only their codes, one a line")
    close = actions.add_parser("close", help="close a programme")
    close.add_argument("code", metavar="CODE", help="the programme's code or short code")
    rename = actions.add_parser("rename", help="give a programme another code")
    rename.add_argument(
        "code", metavar="CODE", help="the programme's code, e.g. PROGRAMME-1 after the upgrade"
    )
    rename.add_argument("new_code", metavar="NEW_CODE")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tiendo",
        description="tiendo: follow an action programme through to done, in Telegram.",
    )
    parser.add_argument("--config", help="config file (default: $TIENDO_CONFIG or ./config.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser(
        "init",
        help="create or migrate the database to the latest schema (safe to repeat)",
        description="Create the database, or migrate it to the latest schema. Safe to repeat.",
    )

    _import_parser(sub)

    p = sub.add_parser(
        "invite",
        help="print a single-use invite code and its deep link",
        description="Create a single-use invite that binds whoever opens it to UNIT_CODE "
        "with the given role, and print the code and its t.me deep link.",
    )
    p.add_argument("unit", metavar="UNIT_CODE", help="the unit's code, e.g. VP")
    p.add_argument(
        "--role",
        choices=("focal", "leader", "manager"),
        default="focal",
        help="focal point (reports), unit leader, or manager (default: focal)",
    )
    p.add_argument("--expires", help="validity, e.g. 12h, 7d, 2w (default: [invites] default_expiry)")

    sub.add_parser(
        "run",
        help="run the bot (long polling, or webhook if configured)",
        description="Run the bot. Needs TELEGRAM_BOT_TOKEN. Migrates an outdated database "
        'first unless [database] on_outdated_schema = "refuse".',
    )

    p = sub.add_parser("audit", help="print the audit log", description="Print the latest audit entries.")
    p.add_argument("-n", type=int, default=50, help="how many entries (default 50)")
    p.add_argument("-v", "--verbose", action="store_true", help="show values before and after")
    _report_parsers(sub)
    return parser


def _report_parsers(sub: Any) -> None:
    """The commands that build reports: report and demo."""
    p = sub.add_parser(
        "report",
        help="build the consolidated report for a period in one format",
        description="Build the consolidated report (the same content as the weekly "
        "digest) for a period: the current one so far, or e.g. 2024-W05. Text "
        "formats go to standard output unless -o is given; binary formats to "
        "tiendo-<period>.<ext> unless -o is given.",
    )
    p.add_argument(
        "--period",
        help="period key, e.g. 2024-W05, 2024-01 or 2024-Q1 (default: the current period, as of now)",
    )
    p.add_argument(
        "--format",
        required=True,
        choices=("telegram", "html", "docx", "xlsx", "png", "json"),
        help="telegram (the chat digest, HTML), html (printable page), docx "
        "(Decree 30 report), xlsx, png (chart), json (the computed data)",
    )
    p.add_argument("--unit", help="only this unit's tasks (the version its leaders receive)")
    p.add_argument(
        "--programme",
        metavar="CODE",
        help="the programme (its code or short code); may be left out while one programme is active",
    )
    p.add_argument("-o", "--output", help="output file ('-' for standard output)")

    _programme_parser(sub)

    p = sub.add_parser(
        "demo",
        help="simulate four weeks of reports and write every report format",
        description="No Telegram needed: build a fresh SQLite database in a "
        "temporary folder, load the example programme, simulate four weeks of "
        "reports by its units, and write the last week's report in every format.",
    )
    p.add_argument("--output", default="demo-output", help="folder to write to (default demo-output)")


COMMANDS = {
    "init": cmd_init,
    "import": cmd_import,
    "invite": cmd_invite,
    "audit": cmd_audit,
    "report": cmd_report,
    "demo": cmd_demo,
    "programme": cmd_programme,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(I18n().t(None, "cli.config_error", error=exc), file=sys.stderr)
        return 2
    setup_logging(config.bot.log_level, _secrets(config), config.bot.log_format)
    i18n = I18n(config.bot.language)
    try:
        if args.command == "run":
            return cmd_run(config, i18n, args)
        return asyncio.run(COMMANDS[args.command](config, i18n, args))
    except CliExit as exc:
        message = str(exc).replace(config.token, "[token]") if config.token else str(exc)
        if message:
            print(message, file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
