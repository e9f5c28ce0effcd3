"""The real `tiendo run` answers /healthz, /readyz and /metrics, polling (on `[health] port`)
and as a webhook (beside the webhook), and writes JSON log lines without a secret."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.botapi import DEFAULT_TOKEN, BotAPIServer
from tests.support.process import BotProcess, free_port, webhook_config

pytestmark = pytest.mark.slow

PERSON = 4242


@pytest.fixture
def server() -> Iterator[BotAPIServer]:
    with BotAPIServer() as server:
        yield server


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


def _ready(port: int, timeout: float = 15.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        status, body = _get(port, "/readyz")
        if status == 200 or time.monotonic() > deadline:
            assert status == 200, body
            return dict(json.loads(body))
        time.sleep(0.2)


def _sample(metrics: str, name: str) -> float:
    values = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(name + " ")]
    assert values, f"{name} not in /metrics"
    return values[0]


def test_polling_serves_health_and_metrics_and_logs_json(server: BotAPIServer, tmp_path: Path) -> None:
    port = free_port()
    bot = BotProcess(server, tmp_path, extra_config=f"[health]\nport = {port}\n")
    bot.config_path.write_text(
        bot.config_path.read_text(encoding="utf-8").replace(
            "[bot]\n", '[bot]\nlog_level = "DEBUG"\nlog_format = "json"\n'
        ),
        encoding="utf-8",
    )
    server.api.user(PERSON, "Lan")
    with bot:
        assert _get(port, "/healthz") == (200, "ok\n")
        ready = _ready(port)
        assert ready["leader"] is True
        server.api.send_text(PERSON, "/help")
        server.api.wait_sent(PERSON, 1, timeout=15)
        status, text = _get(port, "/metrics")
        deadline = time.monotonic() + 10
        while 'tiendo_updates_total{result="done"}' not in text and time.monotonic() < deadline:
            time.sleep(0.2)  # the update is marked handled just after its answer went out
            status, text = _get(port, "/metrics")
        assert status == 200
        assert _sample(text, 'tiendo_updates_total{result="done"}') >= 1
        assert _sample(text, 'tiendo_step_seconds_count{kind="message"}') >= 1
        assert _sample(text, "tiendo_outbox_due") == 0
        assert _sample(text, "tiendo_leader") == 1
        assert 0 <= _sample(text, "tiendo_last_intake_age_seconds") < 30
    lines = [line for line in bot.log if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(r["level"] == "DEBUG" and r["logger"].startswith("telegram") for r in records)
    assert any(r["message"].startswith("tiendo ready") for r in records)
    token_secret = DEFAULT_TOKEN.split(":", 1)[1]
    assert [line for line in lines if token_secret in line] == []


def test_webhook_serves_health_beside_the_webhook(server: BotAPIServer, tmp_path: Path) -> None:
    port = free_port()
    bot = BotProcess(
        server,
        tmp_path,
        extra_config=webhook_config(port),
    )
    with bot:
        assert _get(port, "/healthz") == (200, "ok\n")
        assert _ready(port)["checks"]["updates"]["detail"] == "webhook registered"  # type: ignore[index]
        status, text = _get(port, "/metrics")
        assert status == 200 and "# TYPE tiendo_updates_total counter" in text
