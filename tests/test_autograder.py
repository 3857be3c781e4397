"""The nbgrader autograder, run with the real nbgrader commands on fixture submissions.

A throwaway course directory gets the generated source, the release, and a
zip of submissions made from the reference notebook by small source edits.
One `autograder/grade.py --from` run grades them all; the tests then read
each test cell's score from nbgrader's gradebook.

Each submission that trains correctly spends about a minute on the two
full-data hidden checks of train, on an idle 2-core machine.
"""

import csv
import os
import shutil
import subprocess
import sys
import zipfile

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.grading import ASSIGNMENT
from tests.conftest import DATA_ROOT, ROOT

COURSE_FILES = ["nbgrader_config.py", "grading.py", "grade.py"]
# Per-cell budget while testing, so the infinite-loop submission costs one
# minute; the full-data checks keep their own budgets from nbgrader_config.py.
CELL_TIMEOUT = 45
# One OpenMP thread per kernel: on a busy 2-core machine, two threads spinning
# against other jobs made a training run several times slower than one.
ENVIRONMENT = {**os.environ, "GRADING_MNIST_DIR": str(DATA_ROOT / "MNIST"), "OMP_NUM_THREADS": "1",
               "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"}

TRAIN_CELLS = {"train-check-plain": 1, "train-check-momentum": 1, "train-public-checks": 2,
               "train-hidden-returns": 3, "train-hidden-loss-falls": 3,
               "train-hidden-plain": 5, "train-hidden-momentum": 5}


def sweep_cells(prefix):
    return {f"{prefix}-public-checks": 2, f"{prefix}-hidden-runs": 4, f"{prefix}-hidden-plot": 4}


TEST_CELLS = {**TRAIN_CELLS, **sweep_cells("sweep-lr"), **sweep_cells("sweep-batchsize")}
ANSWER_CELLS = {"sweep-lr-answer": 5, "sweep-batchsize-answer": 5}


def scores_except(*failing):
    """Return {test cell: expected score}: full points, 0 for the cells named."""
    return {cell: 0 if cell in failing else points for cell, points in TEST_CELLS.items()}


def edit_cell(notebook, cell_id, old, new):
    """Replace old by new in one cell's source; fail when old is not there."""
    cell = next(cell for cell in notebook.cells if cell.get("id") == cell_id)
    assert old in cell.source, f"{old!r} is not in cell {cell_id}; update the fixture"
    cell.source = cell.source.replace(old, new, 1)


def ignores_momentum_plots_accuracy(notebook):
    edit_cell(notebook, "train-task", "lr=lr, momentum=momentum)", "lr=lr)")
    edit_cell(notebook, "sweep-lr-task", "(_, _, epoch_losses, _)", "(_, _, _, epoch_losses)")
    # An edited test cell, which grading must restore: as edited, it would pass.
    tampered = next(cell for cell in notebook.cells if cell.get("id") == "train-hidden-momentum")
    tampered.source = "print('hidden check passed')"


def raises_loops_deletes_check_writes_stderr(notebook):
    edit_cell(notebook, "train-task", "    ### BEGIN SOLUTION\n",
              "    ### BEGIN SOLUTION\n    import sys, warnings\n"
              "    warnings.warn('a warning from train')\n    print('progress on stderr', file=sys.stderr)\n")
    edit_cell(notebook, "sweep-lr-task", "    torch.manual_seed(1)\n",
              "    raise RuntimeError('sweep_lr is not finished')\n")
    edit_cell(notebook, "sweep-batchsize-task", "    torch.manual_seed(1)\n",
              "    while True:\n        pass\n")
    notebook.cells = [cell for cell in notebook.cells if cell.get("id") != "train-hidden-momentum"]


# Student -> (edit of the reference notebook, the scores expected). Each
# submission whose train is right spends about a minute on its full-data
# checks, so one submission combines the failures that leave train alone.
EDITED = {
    "reference": (None, scores_except()),
    "ignores_momentum": (ignores_momentum_plots_accuracy,
                         scores_except("train-hidden-momentum", "sweep-lr-hidden-plot",
                                       "sweep-batchsize-hidden-plot")),
    "raises_and_loops": (raises_loops_deletes_check_writes_stderr,
                         scores_except(*sweep_cells("sweep-lr"), *sweep_cells("sweep-batchsize"))),
}


def run(arguments, cwd):
    completed = subprocess.run(arguments, cwd=cwd, env=ENVIRONMENT, capture_output=True, text=True,
                               timeout=1800)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed


def nbgrader(arguments, course):
    return run([sys.executable, "-m", "nbgrader", *arguments], course)


def write_export(course, reference):
    """Zip the edited notebooks as an LMS exports them; return the zip's path."""
    export = course.parent / "export.zip"
    with zipfile.ZipFile(export, "w") as archive:
        for student, (edit, _) in EDITED.items():
            notebook = nbformat.read(reference, as_version=4)
            if edit:
                edit(notebook)
            # One notebook named by its student, the others in a folder each.
            member = f"{student}.ipynb" if student == "reference" else f"{student}/{ASSIGNMENT}.ipynb"
            archive.writestr(member, nbformat.writes(notebook))
        # A second copy of the release's student, which must not replace it.
        archive.writestr("untouched.ipynb", nbformat.writes(nbformat.read(reference, as_version=4)))
    return export


@pytest.fixture(scope="module")
def course(tmp_path_factory, mnist_root):
    """Build, release and grade the fixture submissions in a throwaway course."""
    course = tmp_path_factory.mktemp("autograder") / "course"
    course.mkdir()
    for name in COURSE_FILES:
        shutil.copy(ROOT / "autograder" / name, course / name)
    run([sys.executable, str(ROOT / "autograder" / "build.py"), "--course", str(course)], ROOT)
    nbgrader(["generate_assignment", ASSIGNMENT], course)

    untouched = course / "submitted" / "untouched" / ASSIGNMENT / "assignment.ipynb"
    untouched.parent.mkdir(parents=True)
    shutil.copy(course / "release" / ASSIGNMENT / "assignment.ipynb", untouched)
    export = write_export(course, course / "source" / ASSIGNMENT / "assignment.ipynb")
    originals = {path: path.read_bytes() for path in course.glob("submitted/*/*/*.ipynb")}

    graded = run([sys.executable, str(course / "grade.py"), "--from", str(export),
                  "--cell-timeout", str(CELL_TIMEOUT)], course)
    return {"root": course, "originals": originals, "output": graded.stdout + graded.stderr}


def test_timed_out_task_skipped(course):
    graded = course["root"] / "autograded" / "raises_and_loops" / ASSIGNMENT / "assignment.ipynb"
    errors = {cell.metadata.get("nbgrader", {}).get("grade_id", cell.get("id")): output.ename
              for cell in nbformat.read(graded, as_version=4).cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"}
    assert errors["sweep-lr-public-checks"] == "RuntimeError"
    assert errors["sweep-batchsize-run"] == "CellTimeoutError"
    assert errors["sweep-batchsize-hidden-plot"] == "CellSkipped"


def cell_scores(course, student):
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {grade.name: grade.score for grade in
                gradebook.find_submission_notebook("assignment", ASSIGNMENT, student).grades}


def grade_rows(course):
    with open(course["root"] / "grades.csv", newline="") as grades:
        return {row["student_id"]: row for row in csv.DictReader(grades)}


def test_release_has_no_solutions(course):
    release = course["root"] / "release" / ASSIGNMENT
    files = sorted(str(path.relative_to(release)) for path in release.rglob("*") if path.is_file())
    assert files == ["assignment.ipynb", "data/prepare.py", "utils.py"]
    text = (release / "assignment.ipynb").read_text()
    assert "BEGIN SOLUTION" not in text
    assert "BEGIN HIDDEN TESTS" not in text
    assert "_spy_train" not in text
    assert "optimizer = torch.optim.SGD" not in text
    assert "raise NotImplementedError()" in text


@pytest.mark.parametrize("student", EDITED)
def test_cell_scores(course, student):
    expected = EDITED[student][1]
    scores = cell_scores(course["root"], student)
    assert {cell: scores[cell] for cell in expected} == expected


def test_untouched_release_scores_zero(course):
    scores = cell_scores(course["root"], "untouched")
    assert {cell: scores[cell] for cell in TEST_CELLS} == {cell: 0 for cell in TEST_CELLS}
    assert {cell: scores[cell] for cell in ANSWER_CELLS} == {cell: 0 for cell in ANSWER_CELLS}


def test_untouched_release_fails_only_unimplemented(course):
    graded = course["root"] / "autograded" / "untouched" / ASSIGNMENT / "assignment.ipynb"
    notebook = nbformat.read(graded, as_version=4)
    errors = {output.ename for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"}
    assert errors == {"NotImplementedError"}


def test_written_answers_need_manual_grading(course):
    with Gradebook(f"sqlite:///{course['root'] / 'gradebook.db'}") as gradebook:
        grades = {grade.name: grade for grade in
                  gradebook.find_submission_notebook("assignment", ASSIGNMENT, "reference").grades}
        for cell in ANSWER_CELLS:
            assert grades[cell].needs_manual_grade, cell
            assert grades[cell].auto_score is None, cell


def test_deleted_check_restored(course):
    graded = course["root"] / "autograded" / "raises_and_loops" / ASSIGNMENT / "assignment.ipynb"
    notebook = nbformat.read(graded, as_version=4)
    restored = [cell for cell in notebook.cells
                if cell.metadata.get("nbgrader", {}).get("grade_id") == "train-hidden-momentum"]
    assert len(restored) == 1
    assert "hidden check passed" in "".join(output.get("text", "") for output in restored[0].outputs)


def test_stderr_does_not_fail_check(course):
    graded = course["root"] / "autograded" / "raises_and_loops" / ASSIGNMENT / "assignment.ipynb"
    notebook = nbformat.read(graded, as_version=4)
    cell = next(cell for cell in notebook.cells if cell.get("id") == "train-check-plain")
    assert "progress on stderr" in "".join(output.get("text", "") for output in cell.outputs)
    assert cell_scores(course["root"], "raises_and_loops")["train-check-plain"] == 1


def test_grades_csv_row_per_submission(course):
    rows = grade_rows(course)
    assert sorted(rows) == sorted([*EDITED, "untouched"])
    statuses = {student: row["status"] for student, row in rows.items()}
    assert statuses == {"reference": "graded", "ignores_momentum": "graded",
                        "raises_and_loops": "cell timed out", "untouched": "graded"}
    assert float(rows["reference"]["score"]) == sum(TEST_CELLS.values())
    assert "sweep-batchsize-run" in rows["raises_and_loops"]["detail"]
    assert "kept the notebook already in submitted/untouched" in rows["untouched"]["detail"]


def test_submissions_never_overwritten(course):
    for path, content in course["originals"].items():
        assert path.read_bytes() == content, path


def test_feedback_hides_hidden_code(course):
    feedback = sorted((course["root"] / "feedback").glob(f"*/{ASSIGNMENT}/assignment.html"))
    assert len(feedback) == len(EDITED) + 1
    for path in feedback:
        html = path.read_text()
        assert "HIDDEN TESTS" not in html, path
        assert "_spy_train" not in html, path
        assert "The code of this hidden check is not shown" in html, path


def test_feedback_shows_failure_messages(course):
    html = (course["root"] / "feedback" / "ignores_momentum" / ASSIGNMENT / "assignment.html").read_text()
    assert "test accuracy after one epoch with momentum 0.9: saw" in html
    assert "expected the per-epoch losses train returned" in html
    assert "tolerance 1e-9" in html
