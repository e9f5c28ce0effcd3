"""The real `tiendo run` process, pointed at a Bot API stand-in, for end-to-end tests.

BotProcess writes a config file into a folder, starts `python -m bot.cli run` with it,
waits for the "tiendo ready" log line, and can kill (SIGKILL or SIGTERM) and restart the
process on the same database.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.botapi import DEFAULT_TOKEN, BotAPIServer

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a webhook or health listener)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def webhook_config(port: int) -> str:
    """The [telegram] lines of webhook mode listening on 127.0.0.1:`port` (BotProcess's
    extra_config)."""
    return (
        'mode = "webhook"\nwebhook_url = "https://bot.example.gov.vn"\n'
        f'webhook_listen = "127.0.0.1"\nwebhook_port = {port}\n'
    )


class BotProcess:
    # The database a process uses when the test names none: SQLite in its folder, unless the
    # end-to-end conftest runs the test on PostgreSQL too (then a fresh database of the run's own).
    default_database_url: str | None = None

    def __init__(
        self,
        server: BotAPIServer,
        folder: Path,
        *,
        extra_config: str = "",
        database_url: str | None = None,
        env: dict[str, str] | None = None,
        wrapper: Sequence[str] = (),
        command: Sequence[str] = (sys.executable, "-m", "bot.cli", "run"),
        lean: bool = True,
    ) -> None:
        """`wrapper`: a command the process runs under (e.g. valgrind and its options);
        `command`: what starts the bot (it must end in `tiendo run`'s process, e.g. `dev.sh run`);
        `lean`: run it with PYTHONOPTIMIZE=2, as `./dev.sh run` and the systemd unit do."""
        self.server = server
        self.wrapper = list(wrapper)
        self.command = list(command)
        self.lean = lean
        self.folder = folder
        self.config_path = folder / "config.toml"
        self.config_path.write_text(
            "[bot]\n"
            f'data_dir = "{folder / "data"}"\n'
            "[telegram]\n"
            f'api_base_url = "{server.base_url}"\n'
            f'api_base_file_url = "{server.base_file_url}"\n'
            "poll_timeout = 1\n" + extra_config,
            encoding="utf-8",
        )
        self.env = {
            **os.environ,
            "TIENDO_CONFIG": str(self.config_path),
            "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        database_url = database_url or BotProcess.default_database_url
        if database_url:
            self.env["TIENDO_DATABASE_URL"] = database_url
        else:
            self.env.pop("TIENDO_DATABASE_URL", None)
        # The URL a test can open to look at what the process stored.
        self.database_url = database_url or f"sqlite+aiosqlite:///{folder / 'data' / 'tiendo.db'}"
        self.process: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self._ready = threading.Event()

    def rows(self, *queries: str) -> list[list[tuple[object, ...]]]:
        """The rows each query finds in the database the process uses (SQLite or PostgreSQL)."""
        import asyncio

        from sqlalchemy import text

        from storage.db import Database

        async def read() -> list[list[tuple[object, ...]]]:
            database = Database(self.database_url)
            try:
                async with database.engine.connect() as conn:
                    return [[tuple(row) for row in await conn.execute(text(query))] for query in queries]
            finally:
                await database.dispose()

        return asyncio.run(read())

    def execute(self, statement: str) -> None:
        """Change the database the process uses (set-up a test cannot do through the CLI)."""
        import asyncio

        from sqlalchemy import text

        from storage.db import Database

        async def write() -> None:
            database = Database(self.database_url)
            try:
                async with database.engine.begin() as conn:
                    await conn.execute(text(statement))
            finally:
                await database.dispose()

        asyncio.run(write())

    def scalar(self, query: str) -> object:
        """The first value a query finds in the database the process uses."""
        (found,) = self.rows(query)
        return found[0][0] if found else None

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run another tiendo command with the same config (e.g. import, invite)."""
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self, timeout: float = 30.0) -> BotProcess:
        self._ready.clear()
        env = {**self.env, "PYTHONOPTIMIZE": "2"} if self.lean else self.env
        self.process = subprocess.Popen(
            [*self.wrapper, *self.command],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        if not self._ready.wait(timeout):
            self.stop(signal.SIGKILL)
            raise TimeoutError("tiendo did not get ready:\n" + "".join(self.log[-40:]))
        return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.log.append(line)
            if "tiendo ready" in line:
                self._ready.set()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as when the machine loses power."""
        self.stop(signal.SIGKILL)

    def restart(self) -> BotProcess:
        self.kill()
        # A new long poll supersedes the dead one; give the stand-in a moment to notice.
        time.sleep(0.1)
        return self.start()

    def __enter__(self) -> BotProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
