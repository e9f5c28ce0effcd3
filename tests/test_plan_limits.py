"""Hostile plan files are refused before they cost memory or time, each with one clear line."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from openpyxl import Workbook

from bot.config import Config
from bot.services.plan_worker import parse_plan_isolated
from bot.services.plans import DEFAULT_LIMITS, PlanLimits, parse_plan
from tests.conftest import EXAMPLE_PLAN
from tests.support import hostile


def only_error(
    data: bytes, filename: str, limits: PlanLimits = DEFAULT_LIMITS
) -> tuple[str, dict[str, object]]:
    plan = parse_plan(data, filename, known_units={"VP"}, known_groups={"1"}, limits=limits)
    assert plan.tasks == [] and len(plan.errors) == 1, plan.errors
    (error,) = plan.errors
    assert error.where == ("file", 0)
    return error.key, error.params


def test_a_one_megabyte_xlsx_that_inflates_to_a_gigabyte_is_refused_from_its_zip_directory() -> None:
    data = hostile.xlsx_one_huge_cell(1024)
    assert len(data) < 1_200_000
    started = time.monotonic()
    key, params = only_error(data, "bomb.xlsx")
    assert key == "plan.xlsx_bomb" and params["limit"] == 200
    assert time.monotonic() - started < 1  # nothing was inflated


def test_an_xlsx_that_unpacks_past_the_limit_is_refused_before_it_is_opened() -> None:
    data = hostile.xlsx_rows(20_000)
    assert only_error(data, "big.xlsx", PlanLimits(max_unpacked_mb=1))[0] == "plan.xlsx_unpacked"


def test_rows_past_the_cap_are_refused_from_the_sheet_dimension() -> None:
    key, params = only_error(hostile.xlsx_rows(300), "rows.xlsx", PlanLimits(max_rows=100))
    assert (key, params) == ("plan.too_many_rows", {"rows": 300, "limit": 100})


def test_rows_past_the_cap_are_refused_while_streaming_when_the_sheet_has_no_dimension() -> None:
    key, params = only_error(hostile.xlsx_rows(300, dimension=False), "rows.xlsx", PlanLimits(max_rows=100))
    assert key == "plan.too_many_rows" and params["limit"] == 100


def test_rows_up_to_the_cap_are_read() -> None:
    plan = parse_plan(
        hostile.xlsx_rows(100),
        "rows.xlsx",
        known_units={"VP"},
        known_groups={"1"},
        limits=PlanLimits(max_rows=100),
    )
    assert plan.errors == [] and len(plan.tasks) == 100


def test_csv_and_yaml_have_the_same_row_cap() -> None:
    csv_rows = "group,code,title,lead_unit\n" + "".join(f"1,1.{i},T {i},VP\n" for i in range(101))
    assert only_error(csv_rows.encode(), "p.csv", PlanLimits(max_rows=100))[0] == "plan.too_many_rows"
    yaml_rows = "tasks:\n" + "".join(
        f"  - {{code: '1.{i}', group: '1', title: T, lead: VP}}\n" for i in range(101)
    )
    assert only_error(yaml_rows.encode(), "p.yaml", PlanLimits(max_rows=100))[0] == "plan.too_many_rows"


def test_a_csv_field_past_the_csv_module_limit_is_a_line_not_a_traceback() -> None:
    data = b'group,code,title,lead_unit\n1,1.1,"' + b"x" * 200_000 + b'",VP\n'
    plan = parse_plan(data, "p.csv", known_units={"VP"})
    assert [(e.where, e.key) for e in plan.errors] == [(("row", 2), "plan.bad_csv")]


def test_an_xlsx_with_an_external_entity_is_refused_without_a_traceback() -> None:
    assert only_error(hostile.xlsx_external_entity(), "entity.xlsx")[0] == "plan.xlsx_dtd"


def test_nested_yaml_anchors_are_refused_in_milliseconds() -> None:
    data = hostile.yaml_laughs()
    assert len(data) < 600
    started = time.monotonic()
    assert only_error(data, "laughs.yaml")[0] == "plan.yaml_aliases"
    assert time.monotonic() - started < 1


def test_many_aliases_are_refused_even_when_each_is_small() -> None:
    data = "u: &u VP\ntasks:\n" + "".join(
        f"  - {{code: '1.{i}', group: '1', title: T, lead: *u}}\n" for i in range(150)
    )
    plan = parse_plan(data.encode(), "p.yaml", known_units={"VP"}, known_groups={"1"})
    assert [(e.where, e.key) for e in plan.errors] == [(("line", 103), "plan.yaml_aliases")]


def test_a_few_aliases_are_still_fine() -> None:
    data = "u: &u VP\ntasks:\n" + "".join(
        f"  - {{code: '1.{i}', group: '1', title: T, lead: *u}}\n" for i in range(5)
    )
    plan = parse_plan(data.encode(), "p.yaml", known_units={"VP"}, known_groups={"1"})
    assert plan.errors == [] and [t.lead for t in plan.tasks] == ["VP"] * 5


def test_deeply_nested_yaml_is_a_line_not_a_recursion_error() -> None:
    data = b"tasks: " + b"[" * 50_000 + b"]" * 50_000
    assert only_error(data, "deep.yaml")[0] in ("plan.too_deep", "plan.bad_yaml")


def test_merged_cells_are_still_found_in_read_only_mode() -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["group", "code", "title", "lead_unit"])
    sheet.append(["1", "1.1", "T", "VP"])
    sheet.append(["1", "1.2", "T", "VP"])
    sheet.merge_cells("C2:C3")
    out = io.BytesIO()
    workbook.save(out)
    plan = parse_plan(out.getvalue(), "m.xlsx", known_units={"VP"}, known_groups={"1"})
    merged = [e for e in plan.errors if e.key == "plan.merged_cells"]
    assert [(e.where, e.key, e.params["cells"]) for e in merged] == [
        (("row", 2), "plan.merged_cells", "C2:C3")
    ]


async def test_the_worker_parses_the_example_like_the_caller_would() -> None:
    data = EXAMPLE_PLAN.read_bytes()
    isolated = await parse_plan_isolated(data, EXAMPLE_PLAN.name)
    assert isolated == parse_plan(data, EXAMPLE_PLAN.name)


async def test_the_worker_is_stopped_at_the_time_limit() -> None:
    started = time.monotonic()
    plan = await parse_plan_isolated(hostile.xlsx_rows(10_000), "slow.xlsx", limits=PlanLimits(seconds=0.3))  # type: ignore[arg-type]
    assert [e.key for e in plan.errors] == ["plan.too_slow"]
    assert time.monotonic() - started < 5


@pytest.mark.slow  # PyYAML takes 10-40 s to build 128 MB of nodes, depending on the machine's load
async def test_the_worker_memory_cap_turns_a_memory_hog_into_one_line() -> None:
    # 150,000 YAML items: far more than 128 MB of Python objects, within the row cap.
    data = ("tasks:\n" + "  - {code: x, title: y}\n" * 150_000).encode()
    plan = await parse_plan_isolated(
        data, "hog.yaml", limits=PlanLimits(memory_mb=128, max_rows=1_000_000, seconds=600)
    )
    assert [(e.where, e.key) for e in plan.errors] == [(("file", 0), "plan.too_complex")]


def test_import_limits_come_from_the_config(tmp_path: Path) -> None:
    from bot.config import load_config
    from bot.services.container import build_services
    from handlers.wording import TelegramWording

    path = tmp_path / "config.toml"
    path.write_text("[import]\nmax_rows = 50\nseconds = 5\n", encoding="utf-8")
    config: Config = load_config(path, env={})
    assert config.imports.max_rows == 50
    assert build_services(config, wording=TelegramWording).programme.limits == PlanLimits(
        max_rows=50, seconds=5
    )


@pytest.mark.parametrize("bad", ["max_rows = 0", "memory_mb = 16", "seconds = 0"])
def test_bad_import_limits_are_named(tmp_path: Path, bad: str) -> None:
    from bot.config import ConfigError, load_config

    path = tmp_path / "config.toml"
    path.write_text(f"[import]\n{bad}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^import\."):
        load_config(path, env={})
