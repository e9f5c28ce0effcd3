"""The /report state machine without Telegram: every rule and branch of ReportFlow.apply."""

from __future__ import annotations

import copy

import pytest

from bot.services.report_flow import (
    EvidenceDraft,
    File,
    Invalid,
    Limits,
    Next,
    Press,
    ReportDraft,
    ReportFlow,
    Skip,
    Step,
    TaskChoice,
    Text,
    parse_number,
)

FLOW = ReportFlow(Limits(max_text_length=50, evidence_max_mb=1, evidence_extensions=("pdf", "jpg")))
PLAIN = TaskChoice(1, "5.9", "Nhiệm vụ", 7)
TARGET = TaskChoice(2, "5.14", "Chỉ tiêu", 7, 85.0, "%", "Tỷ lệ")


def at(step: Step, task: TaskChoice = PLAIN, **answers: object) -> ReportDraft:
    draft = FLOW.begin(task, "vi")
    for name, value in answers.items():
        setattr(draft, name, value)
    draft.step = step.value
    return draft


def take(draft: ReportDraft, *answers: object) -> list[Step]:
    """Apply answers one after the other from the draft's step; returns the steps reached."""
    reached = []
    for answer in answers:
        outcome = FLOW.apply(draft, Step(draft.step), answer)  # type: ignore[arg-type]
        assert isinstance(outcome, Next), outcome
        reached.append(outcome.step)
    return reached


def refused(draft: ReportDraft, answer: object) -> Invalid:
    """The answer is refused and the draft is left exactly as it was."""
    before = copy.deepcopy(draft)
    outcome = FLOW.apply(draft, Step(draft.step), answer)  # type: ignore[arg-type]
    assert isinstance(outcome, Invalid), outcome
    assert draft == before
    return outcome


def pdf(size: int = 10, name: str = "bien-ban.pdf") -> File:
    return File(EvidenceDraft("f1", "u1", name, "application/pdf", size, "ab" * 32, "/tmp/x"))


# --------------------------------------------------------------------------- the common path


def test_the_common_path_is_status_percent_results_then_the_summary() -> None:
    draft = FLOW.begin(PLAIN, "vi")
    assert draft.step == Step.STATUS
    assert take(draft, Press("s", "in_progress"), Press("p", "50"), Text("Đã xong dự thảo")) == [
        Step.PERCENT,
        Step.RESULTS,
        Step.CONFIRM,
    ]
    assert take(draft, Press("c", "send")) == [Step.SEND]
    report = FLOW.to_input(draft, reporter_user_id=3)
    assert (report.status, report.percent, report.results) == ("in_progress", 50, "Đã xong dự thảo")
    assert (report.difficulties, report.proposals, report.indicator_value, report.files) == ("", "", None, ())


def test_done_skips_the_percent_and_means_100() -> None:
    draft = FLOW.begin(PLAIN, "vi")
    assert take(draft, Press("s", "done"), Text("Xong")) == [Step.RESULTS, Step.CONFIRM]
    assert draft.percent == 100 and FLOW.to_input(draft, None).percent == 100
    assert Step.PERCENT not in FLOW.editable(draft)
    # Leaving "done" asks the percent again (it was only implied).
    draft.editing = True
    draft.step = Step.STATUS.value
    assert take(draft, Press("s", "in_progress"), Press("p", "75")) == [Step.PERCENT, Step.CONFIRM]


def test_a_done_report_keeps_100_even_with_another_percent_stored() -> None:
    draft = at(Step.CONFIRM, status="done", percent=40, results="x")
    assert FLOW.to_input(draft, None).percent == 100


def test_stuck_requires_difficulties_before_the_summary() -> None:
    draft = FLOW.begin(PLAIN, "vi")
    assert take(draft, Press("s", "stuck"), Press("p", "25"), Text("Một phần")) == [
        Step.PERCENT,
        Step.RESULTS,
        Step.DIFFICULTIES,
    ]
    assert refused(draft, Skip()).key == "report.error.difficulties_required"
    assert refused(draft, Text("  ")).key == "report.error.empty"
    assert take(draft, Text("Thiếu kinh phí")) == [Step.CONFIRM]
    assert Step.DIFFICULTIES not in FLOW.additions(draft)


def test_a_numeric_target_is_required_before_the_summary() -> None:
    draft = FLOW.begin(TARGET, "vi")
    assert take(draft, Press("s", "in_progress"), Press("p", "50"), Text("KQ")) == [
        Step.PERCENT,
        Step.RESULTS,
        Step.TARGET,
    ]
    assert refused(draft, Skip()).key == "report.error.no_skip"
    for bad in ("nhiều", "1e5", "12,3,4", "", "1.", "１２"):
        assert refused(draft, Text(bad)).key == "report.error.number"
    assert take(draft, Text("87,5")) == [Step.CONFIRM]
    assert FLOW.to_input(draft, None).indicator_value == 87.5


@pytest.mark.parametrize(
    ("typed", "value"), [("87", 87.0), ("87,5", 87.5), ("-3.25", -3.25), ("91%", 91.0), ("x", None)]
)
def test_numbers(typed: str, value: float | None) -> None:
    assert parse_number(typed) == value


# --------------------------------------------------------------------------- the summary


def test_optional_answers_are_one_tap_away_and_lead_back_to_the_summary() -> None:
    draft = at(Step.CONFIRM, status="in_progress", percent=50, results="KQ")
    assert FLOW.additions(draft) == [Step.DIFFICULTIES, Step.PROPOSALS, Step.EVIDENCE]
    assert take(draft, Press("c", "add_difficulties"), Skip()) == [Step.DIFFICULTIES, Step.CONFIRM]
    assert take(draft, Press("c", "add_difficulties"), Text("Chậm")) == [Step.DIFFICULTIES, Step.CONFIRM]
    assert take(draft, Press("c", "add_proposals"), Skip()) == [Step.PROPOSALS, Step.CONFIRM]
    assert draft.proposals == ""
    assert take(draft, Press("c", "add_proposals"), Text("Thêm người")) == [Step.PROPOSALS, Step.CONFIRM]
    assert FLOW.additions(draft) == [Step.EVIDENCE]
    # An addition already given is not offered again (a forged one is refused).
    assert refused(draft, Press("c", "add_difficulties")).how == "refuse"
    assert take(draft, Press("c", "add_evidence"), pdf(), pdf(name="anh.jpg"), Press("ev", "done")) == [
        Step.EVIDENCE,
        Step.EVIDENCE,
        Step.EVIDENCE,
        Step.CONFIRM,
    ]
    assert FLOW.additions(draft) == [] and not draft.editing
    report = FLOW.to_input(draft, 9)
    assert (report.difficulties, report.proposals) == ("Chậm", "Thêm người")
    assert report.evidence_ref == "bien-ban.pdf, anh.jpg" and len(report.files) == 2


def test_skip_on_the_evidence_goes_to_the_summary() -> None:
    draft = at(Step.EVIDENCE, status="in_progress", percent=10, results="KQ")
    assert take(draft, Skip()) == [Step.CONFIRM]


def test_the_summary_sends_cancels_or_edits() -> None:
    draft = at(Step.CONFIRM, status="in_progress", percent=50, results="KQ")
    assert FLOW.apply(copy.deepcopy(draft), Step.CONFIRM, Press("c", "send")) == Next(Step.SEND)
    assert FLOW.apply(copy.deepcopy(draft), Step.CONFIRM, Press("c", "cancel")) == Next(Step.CANCEL)
    assert refused(draft, Press("c", "burn")).how == "refuse"
    assert refused(draft, Text("gửi đi")).key == "report.error.use_buttons"
    assert refused(draft, Skip()).key == "report.error.no_skip"
    assert take(draft, Press("c", "edit")) == [Step.EDIT]
    assert FLOW.editable(draft) == [
        Step.STATUS,
        Step.PERCENT,
        Step.RESULTS,
        Step.DIFFICULTIES,
        Step.PROPOSALS,
        Step.EVIDENCE,
    ]
    assert refused(draft, Press("e", "target")).how == "refuse"  # no target on this task
    assert take(draft, Press("e", "back")) == [Step.CONFIRM]


def test_editing_one_answer_returns_to_the_summary() -> None:
    draft = at(Step.EDIT, status="in_progress", percent=50, results="cũ", files=[pdf().evidence])
    assert take(draft, Press("e", "results"), Text("mới")) == [Step.RESULTS, Step.CONFIRM]
    assert draft.results == "mới" and not draft.editing
    # Editing the evidence starts it afresh.
    draft.step = Step.EDIT.value
    assert take(draft, Press("e", "evidence")) == [Step.EVIDENCE] and draft.files == []
    # A change of status to stuck asks the difficulties it now needs.
    draft.step = Step.EDIT.value
    assert take(draft, Press("e", "status"), Press("s", "stuck"), Text("Vướng")) == [
        Step.STATUS,
        Step.DIFFICULTIES,
        Step.CONFIRM,
    ]


# --------------------------------------------------------------------------- bad answers


@pytest.mark.parametrize("typed", ["abc", "101", "-5", "5.5", "", "１０"])
def test_a_bad_percent_changes_nothing(typed: str) -> None:
    draft = at(Step.PERCENT, status="in_progress")
    assert refused(draft, Text(typed)).key == "report.error.percent"
    assert take(draft, Text("40%")) == [Step.RESULTS] and draft.percent == 40


def test_results_are_required_and_limited() -> None:
    draft = at(Step.RESULTS, status="in_progress", percent=5)
    assert refused(draft, Text(" ")).key == "report.error.empty"
    too_long = refused(draft, Text("x" * 51))
    assert too_long.key == "report.error.too_long" and too_long.params == {"limit": 50, "length": 51}
    assert refused(draft, Skip()).key == "report.error.no_skip"
    assert take(draft, Text("x" * 50)) == [Step.CONFIRM]


def test_text_is_normalised_to_nfc() -> None:
    draft = at(Step.RESULTS, status="in_progress", percent=5)
    take(draft, Text("  Hoa\u0300n tha\u0300nh  "))
    assert draft.results == "Hoàn thành"


@pytest.mark.parametrize(
    ("step", "press"),
    [
        (Step.STATUS, Press("s", "finished")),
        (Step.PERCENT, Press("p", "150")),
        (Step.PERCENT, Press("p", "x")),
        (Step.EVIDENCE, Press("ev", "later")),
        (Step.EDIT, Press("e", "nothing")),
    ],
)
def test_a_forged_button_value_is_refused(step: Step, press: Press) -> None:
    assert refused(at(step, status="in_progress", percent=5, results="x"), press).how == "refuse"


@pytest.mark.parametrize(
    ("step", "press"),
    [(Step.STATUS, Press("p", "50")), (Step.PERCENT, Press("s", "done")), (Step.RESULTS, Press("c", "send"))],
)
def test_a_button_of_another_step_is_out_of_date(step: Step, press: Press) -> None:
    assert refused(at(step, status="in_progress"), press).how == "stale"


def test_typing_where_a_button_is_expected_asks_again() -> None:
    draft = at(Step.STATUS)
    assert refused(draft, Text("đang làm")).key == "report.error.use_buttons"
    assert refused(draft, Skip()).key == "report.error.no_skip"
    assert refused(draft, pdf()).key == "report.error.use_buttons"


def test_evidence_limits() -> None:
    draft = at(Step.EVIDENCE, status="in_progress", percent=5, results="x")
    big = refused(draft, pdf(size=1024 * 1024 + 1))
    assert big.key == "report.error.file_too_big" and big.params["mb"] == 1
    assert refused(draft, pdf(name="virus.exe")).key == "report.error.file_bad_type"
    assert refused(draft, Text("đây")).key == "report.error.use_buttons"
    assert FLOW.file_refusal("a.PDF", 1024 * 1024) is None


# --------------------------------------------------------------------------- repeated answers


def test_the_answer_just_saved_sent_again_is_recognised_not_stored() -> None:
    draft = FLOW.begin(PLAIN, "vi")
    take(draft, Press("s", "stuck"), Press("p", "25"), Text("Đã làm một phần"))
    assert draft.step == Step.DIFFICULTIES
    # A person re-sending the results (their question seemed lost) does not fill difficulties.
    outcome = refused(draft, Text("Đã làm một phần "))
    assert (outcome.key, outcome.how) == ("report.error.repeated", "repeated")
    assert take(draft, Text("Thiếu kinh phí")) == [Step.CONFIRM]
    # The typed percent sent again as the results.
    draft = at(Step.PERCENT, status="in_progress")
    take(draft, Text("60"))
    assert refused(draft, Text("60")).how == "repeated"
    # A button in between forgets the last answer.
    draft = at(Step.CONFIRM, status="in_progress", percent=5, results="Xong")
    draft.last_answer, draft.last_answer_step = "Xong", "results"
    assert take(draft, Press("c", "add_proposals"), Text("Xong")) == [Step.PROPOSALS, Step.CONFIRM]


# --------------------------------------------------------------------------- the draft


def test_the_draft_round_trips_through_its_stored_json() -> None:
    draft = at(Step.CONFIRM, TARGET, status="in_progress", percent=5, results="x", target=3.5)
    draft.files = [pdf().evidence]
    data = draft.to_data()
    assert data["has_target"] is True and data["step"] == "confirm"
    assert ReportDraft.from_data(data | {"unknown": 1}) == draft
    assert draft.scope == (2, 7) and ReportDraft().scope is None


def test_a_draft_without_task_or_status_cannot_be_submitted() -> None:
    with pytest.raises(ValueError):
        FLOW.to_input(ReportDraft(), None)
