"""Answer checks (mlteach.check), the exercise conventions, and the generated exercise table.

The chapter checks registered in mlteach/checks must pass on the chapters' own solutions (the
stored outputs of the check cells, kept current by nbval) and give the intended hint for typical
wrong answers. The framework is tested on checks registered here, under chapter 99.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

import mlteach
from mlteach import exercises
from mlteach.exercises import CheckResult, Expected, UnknownExerciseError, register

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import exercise_conventions as conv  # noqa: E402
import exercise_table  # noqa: E402

CHAPTERS = conv.chapter_notebooks(ROOT)


# ----------------------------------------------------------------------------------------------
# The framework, on checks registered for this test module
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_checks():
    hsb = mlteach.load("hsb82")
    mundlak = mlteach.mundlak(hsb, "ses", "school")
    fit = mlteach.ols("mAch ~ ses_within + ses_mean", mundlak)

    @register("99.1", asks="the within-school slope of ses")
    def within_slope():
        return Expected(fit.params["ses_within"],
                        mistakes={"the between-school slope": fit.params["ses_mean"]})

    @register("99.2", asks="the residual standard deviation")
    def residual_sd():
        return fit.sigma

    @register("99.3", asks="the residual variance")
    def residual_variance():
        return fit.sigma ** 2

    @register("99.4", rtol=1e-6, asks="ses centred on the school mean")
    def centred():
        return Expected(mlteach.center("ses", "school", hsb), groups=hsb["school"])

    @register("99.5")
    def yes():
        return True

    @register("99.6")
    def word():
        return "Within"

    yield {"fit": fit, "hsb": hsb}
    for ex in ("99.1", "99.2", "99.3", "99.4", "99.5", "99.6"):
        exercises._REGISTRY.pop(ex, None)


def test_right_answer_passes_and_is_truthy(demo_checks):
    result = mlteach.check("99.1", demo_checks["fit"].params["ses_within"])
    assert result and result.passed and result.status == "correct"
    assert str(result) == "✓ Exercise 99.1: correct."
    assert "correct" in result._repr_html_()


def test_rounded_answer_within_default_tolerance_passes(demo_checks):
    assert mlteach.check("99.1", float(f"{demo_checks['fit'].params['ses_within']:.4g}"))


def test_no_answer_is_friendly_and_falsy(demo_checks):
    result = mlteach.check("99.1", None)
    assert not result and result.status == "no answer yet"
    assert "Assign your result to `answer`" in str(result)
    assert mlteach.check("99.1").status == "no answer yet"


def hint(ex: str, answer) -> str:
    result = mlteach.check(ex, answer)
    assert not result, f"{answer!r} should not pass {ex}"
    return result.message


def test_wrong_sign(demo_checks):
    assert "sign is wrong" in hint("99.1", -demo_checks["fit"].params["ses_within"])


def test_between_instead_of_within(demo_checks):
    assert hint("99.1", demo_checks["fit"].params["ses_mean"]) == (
        "Your answer matches the between-school slope, but the exercise asks for the "
        "within-school slope of ses.")


def test_variance_where_sd_asked_and_back(demo_checks):
    sigma = demo_checks["fit"].sigma
    assert "variance where a standard deviation was asked" in hint("99.2", sigma ** 2)
    assert "standard deviation where a variance was asked" in hint("99.3", sigma)


def test_series_where_number_asked(demo_checks):
    params = demo_checks["fit"].params
    assert hint("99.1", params[["ses_within"]]).startswith("Right value, wrong type: it is a "
                                                            "pandas Series of 1 value")
    assert "one number; you gave a pandas Series of 3 values" in hint("99.1", params)
    assert "wrong type: it is text" in hint("99.1", str(params["ses_within"]))
    assert "you gave an OLSResult" in hint("99.1", demo_checks["fit"])


def test_order_of_magnitude_and_far_off(demo_checks):
    slope = demo_checks["fit"].params["ses_within"]
    assert "Right order of magnitude" in hint("99.1", slope * 1.05)
    assert "Not close" in hint("99.1", slope * 50)


def test_hints_never_contain_the_answer(demo_checks):
    slope = demo_checks["fit"].params["ses_within"]
    for wrong in (-slope, slope * 1.05, slope * 50, slope ** 2, "abc", [slope, 1.0]):
        message = mlteach.check("99.1", wrong).message
        for digits in (2, 3, 4):
            assert f"{slope:.{digits}f}" not in message


def test_vector_off_by_group_mean_or_constant(demo_checks):
    hsb = demo_checks["hsb"]
    assert mlteach.check("99.4", hsb["ses"] - hsb.groupby("school", observed=True)["ses"]
                         .transform("mean"))
    assert "same within each group" in hint("99.4", hsb["ses"])
    centred = mlteach.center("ses", "school", hsb)
    assert "same constant everywhere" in hint("99.4", centred + 1.5)
    assert "shape (160,)" in hint("99.4", hsb.groupby("school", observed=True)["ses"].mean())
    # an array by position, a one-column frame with a type remark, a shuffled Series by label
    assert mlteach.check("99.4", centred.to_numpy())
    assert "Right value, wrong type" in hint("99.4", centred.to_frame())
    assert mlteach.check("99.4", centred.sample(frac=1, random_state=1))


def test_bool_and_text_answers(demo_checks):
    assert mlteach.check("99.5", True)
    assert "True or False" in hint("99.5", 1)
    assert mlteach.check("99.6", "  within ")
    assert "not the answer" in hint("99.6", "between")


def test_unknown_exercise_lists_known_ids(demo_checks):
    with pytest.raises(UnknownExerciseError, match=r"no check for exercise '98.7'.*99\.1"):
        mlteach.check("98.7", 1.0)
    with pytest.raises(TypeError, match="ids are strings"):
        mlteach.check(99.1, 1.0)
    with pytest.raises(ValueError, match="not an exercise id"):
        mlteach.check("exercise 2", 1.0)
    assert mlteach.check("ex-99-1", None).exercise == "99.1"


def test_registering_twice(demo_checks):
    with pytest.raises(ValueError, match="already has a check"):
        @register("99.1")
        def another():
            return 0.0
    before = exercises.get("99.2")
    register("99.2")(before.compute)                  # re-running a notebook cell is fine
    assert exercises.registered().count("99.2") == 1


def test_result_repr():
    result = CheckResult("3.2", "not yet", "The sign is wrong: <b>")
    assert str(result) == "✗ Exercise 3.2: not yet. The sign is wrong: <b>"
    assert "&lt;b&gt;" in result._repr_html_()


# ----------------------------------------------------------------------------------------------
# The chapters' checks
# ----------------------------------------------------------------------------------------------


def chapter_registered() -> list[str]:
    return [ex for ex in exercises.registered() if not ex.startswith("99.")]


@pytest.mark.parametrize("ex", chapter_registered())
def test_chapter_check_accepts_its_own_answer(ex):
    check = exercises.get(ex)
    expected = check.expected()
    assert check(expected.value), f"check {ex} rejects its own expected value"
    for name, wrong in expected.mistakes.items():
        assert not check(wrong), f"check {ex}: the mistake {name!r} passes"


@pytest.mark.parametrize("ex", chapter_registered())
def test_chapter_check_names_typical_mistakes(ex):
    check = exercises.get(ex)
    value = check.expected().value
    if not isinstance(value, (float, int)) or isinstance(value, bool):
        pytest.skip("typical mistakes are tested on numeric answers")

    def distinct(wrong: float) -> bool:      # a "wrong" answer within tolerance is right
        return abs(wrong - value) > 10 * (check.atol + check.rtol * abs(value))

    if distinct(-value):
        result = check(-value)
        assert not result
        assert "sign is wrong" in result.message or "matches" in result.message
    if value > 0 and abs(value - 1) > 0.2 and distinct(value ** 2):
        result = check(value ** 2)
        assert not result and ("square" in result.message or "matches" in result.message)
    assert "Right value, wrong type" in check(pd.Series([value])).message


def check_cells() -> list[tuple[str, int, str, dict]]:
    cells = []
    for path in CHAPTERS:
        nb = nbformat.read(path, as_version=4)
        for n, cell in enumerate(nb.cells):
            if conv.is_check_code(cell):
                cells.append((path.name, n, cell.source, cell))
    return cells


@pytest.mark.parametrize("name,n,src,cell", check_cells(),
                         ids=[f"{c[0]}:{c[1]}" for c in check_cells()])
def test_chapter_solution_passes_its_check(name, n, src, cell):
    """The stored output of each check cell (kept current by nbval) says 'correct'."""
    text = "".join(o.get("data", {}).get("text/plain", "") + o.get("text", "")
                   for o in cell.get("outputs", []))
    assert "correct." in text and "not yet" not in text, f"{name} cell {n}: {text!r}"


def test_chapter_exercises_follow_the_conventions():
    """Every check cell calls a registered check; every registered check has a check cell."""
    in_cells = set()
    for path in CHAPTERS:
        for ex in conv.exercises(nbformat.read(path, as_version=4), path.name):
            in_cells.update(ex.checks)
    registered = set(chapter_registered())
    assert in_cells <= registered, f"check cells without a registered check: " \
                                   f"{sorted(in_cells - registered)}"
    assert registered <= in_cells, f"registered checks without a check cell in a chapter: " \
                                   f"{sorted(registered - in_cells)}"


def test_exercise_table_is_current():
    table = exercise_table.TABLE
    assert table.exists(), "run python tools/exercise_table.py"
    assert table.read_text(encoding="utf-8") == exercise_table.render(CHAPTERS), (
        "book/_generated/exercises.md is out of date: run python tools/exercise_table.py")


def test_exercise_table_reads_the_fixture():
    nb = nbformat.read(ROOT / "tests" / "fixtures" / "ex_demo.ipynb", as_version=4)
    found = {ex.id: ex for ex in conv.exercises(nb, "ex_demo.ipynb")}
    assert list(found) == ["0.1", "0.2", "0.3", "0.4"]
    assert found["0.1"].kind == "computational" and found["0.4"].kind == "conceptual"
    assert found["0.1"].minutes == "5" and found["0.1"].datasets(mlteach.list_datasets()) == \
        ["hsb82"]
    assert found["0.2"].topic == "Centring within schools"
    assert len(found["0.2"].solution_code) == 2 and found["0.2"].checks == ["0.2"]


# ----------------------------------------------------------------------------------------------
# Parsing the conventions
# ----------------------------------------------------------------------------------------------


def test_strip_solutions_backtick_colon_and_nested_fences():
    text = "\n".join([
        "Intro.", "", "```{exercise} T", ":label: ex-1-1", "", "Do it.", "```", "",
        "````{solution} ex-1-1", ":class: dropdown", "", "```python", "secret = 1", "```",
        "````", "", ":::{solution} ex-1-1", "secret two", ":::", "", "Outro."])
    out = conv.strip_solutions(text)
    assert "secret" not in out and "Do it." in out and "Outro." in out
    assert "{solution}" not in out


def test_gated_solutions_are_refused():
    with pytest.raises(conv.ConventionError, match="plain"):
        conv.strip_solutions("```{solution-start} ex-1-1\n```\nx\n```{solution-end}\n```")


def _nb(*cells):
    return nbformat.v4.new_notebook(cells=list(cells))


def _code(src, *tags):
    cell = nbformat.v4.new_code_cell(src)
    cell.metadata["tags"] = list(tags)
    return cell


EX = nbformat.v4.new_markdown_cell("```{exercise}\n:label: ex-2-3\n\nDo.\n```")


@pytest.mark.parametrize("nb,match", [
    (_nb(nbformat.v4.new_markdown_cell("```{exercise}\n:label: ex2\n```")), "needs ':label:"),
    (_nb(EX, nbformat.v4.new_markdown_cell("```{solution} ex-2-4\n```")), "does not name"),
    (_nb(_code("answer = 1", "solution"), EX), "before any exercise"),
    (_nb(EX, _code('mlteach.check("2.4", answer)', "check")), "checks '2.4'"),
    (_nb(EX, _code("answer = 1", "solution", "check")), "both"),
    (_nb(EX, _code("print(answer)", "check")), "must call"),
])
def test_convention_errors(nb, match):
    with pytest.raises(conv.ConventionError, match=match):
        conv.exercises(nb, "bad.ipynb")


@pytest.mark.parametrize("src,expected", [
    ("answer = 1", True), ("x = 1\nanswer: float = x", True), ("answer, b = 1, 2", True),
    ("for answer in range(2):\n    pass", True), ("print(answer)", False),
    ("%time answer = 1", True), ("answers = 1", False), ("answer == 1", False),
])
def test_assigns_answer(src, expected):
    assert conv.assigns_answer(src) is expected
