"""nbgrader extensions the course configuration uses while grading.

- GradingExecute: per-cell time budgets, and a task whose cell timed out or
  whose kernel died costs the rest of that task, not the whole submission.
- RelabelStderr: text on stderr does not fail a test cell.
- HideHiddenTests: feedback names each hidden check and shows its result and
  message, never its code.
- link_data_for_grading: gives each submission the course's copy of MNIST.
"""

import logging
import os
import re
from pathlib import Path

from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor
from traitlets import Dict, Integer, Unicode

ASSIGNMENT = "momentum"
COURSE_ROOT = Path(__file__).resolve().parent
# The repository's MNIST, or the folder GRADING_MNIST_DIR names.
MNIST_DIR = Path(os.environ.get("GRADING_MNIST_DIR", COURSE_ROOT.parent / "data" / "MNIST"))

# Tracebacks carry ANSI colour codes around the parts this module matches.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

log = logging.getLogger(__name__)


def error_output(ename, evalue):
    """Return a notebook error output; nbgrader scores its test cell 0."""
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])


def cell_label(cell, index):
    """Return the grade id of a cell, or its position when it has none."""
    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
    return grade_id or cell.get("id") or f"cell {index}"


def starts_task(cell):
    """Return whether cell is a student's code solution, the first cell of a task."""
    return cell.cell_type == "code" and utils.is_solution(cell)


class GradingExecute(Execute):
    """nbgrader's Execute with per-cell budgets and failures kept to one task.

    A task runs from a student's code answer to the next one: the answer,
    the demonstration cells and the checks after it. Once a cell of a task
    times out, the rest of that task is not run (it would most likely hang
    again) and scores 0; later tasks run as usual. Once the kernel dies,
    nbclient cannot go on, so every cell after is marked as not run and the
    cells before keep their grades.
    """

    cell_timeouts = Dict(
        key_trait=Unicode(), value_trait=Integer(),
        help="Seconds a test cell, named by its grade id, may run in place of Execute.timeout.",
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._timed_out_in_task = None
        self._kernel_died_in = None
        return super().preprocess(nb, resources, km)

    def _get_timeout(self, cell):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id") if cell is not None else None
        if grade_id in self.cell_timeouts:
            return self.cell_timeouts[grade_id]
        return super()._get_timeout(cell)

    def preprocess_cell(self, cell, resources, index):
        if starts_task(cell):
            self._timed_out_in_task = None
        if cell.cell_type != "code":
            return cell, self.resources
        label = cell_label(cell, index)
        if self._kernel_died_in is not None:
            cell.outputs = [error_output(
                "KernelDied", f"not run: the kernel died while running {self._kernel_died_in}")]
            return cell, self.resources
        if self._timed_out_in_task is not None:
            cell.outputs = [error_output(
                "CellSkipped", f"not run: {self._timed_out_in_task} of this task timed out")]
            return cell, self.resources
        try:
            super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self.log.error("The kernel died while running %s", label)
            self._kernel_died_in = label
            cell.outputs.append(error_output(
                "KernelDied", "the kernel died while running this cell (out of memory, or the process exited)"))
            return cell, self.resources
        if self._explain_timeout(cell):
            self.log.error("%s ran past its budget of %s s and was interrupted", label, self._get_timeout(cell))
            self._timed_out_in_task = label
        return cell, self.resources

    def _explain_timeout(self, cell):
        """Put the budget into a timed-out cell's error; return whether it timed out."""
        timed_out = False
        for output in cell.outputs:
            if output.output_type == "error" and output.ename == "CellTimeoutError":
                output.evalue = f"the cell ran past its budget of {self._get_timeout(cell)} s and was interrupted"
                output.traceback = [f"CellTimeoutError: {output.evalue}"]
                timed_out = True
        return timed_out


class RelabelStderr(NbGraderPreprocessor):
    """Move a test cell's stderr text to stdout so that only errors fail it.

    nbgrader 0.9's determine_grade scores a test cell 0 when any output is on
    stderr, so a warning or a progress bar would fail a passing check. The
    text stays in the notebook and the feedback.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and utils.is_grade(cell):
            for output in cell.outputs:
                if output.output_type == "stream" and output.name == "stderr":
                    output.name = "stdout"
        return cell, resources


class HideHiddenTests(NbGraderPreprocessor):
    """Remove hidden test code, and the tracebacks' copies of it, from feedback.

    The cell keeps its visible part, which names the check, and its outputs:
    what the check printed, and for a failure the error's type and message.
    Traceback frames in the check cell itself are dropped; frames in the
    student's own code stay.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or not ClearHiddenTests()._remove_hidden_test_region(cell):
            return cell, resources
        cell.source = cell.source.rstrip() + "\n# The code of this hidden check is not shown."
        own_frame = re.compile(rf"Cell In\[{cell.get('execution_count')}\], line \d+")
        for output in cell.outputs:
            if output.output_type == "error":
                other_frames = [entry for entry in output.traceback
                                if not own_frame.search(ANSI_ESCAPE.sub("", entry))]
                output.traceback = other_frames or [f"{output.ename}: {output.evalue}"]
        return cell, resources


def link_data_for_grading(assignment, student, notebooks):
    """Link the course's MNIST into each submission's grading folder.

    The notebook reads MNIST from data/MNIST/raw/ next to itself. A link
    saves a 55 MB copy per student; nbgrader's file copies and removals do
    not follow it. Runs as nbgrader's pre_convert_hook, before autograde
    creates the folder; assignment and student may be "*", so the folder is
    derived from the submitted notebooks' paths.
    """
    if not MNIST_DIR.is_dir():
        log.warning("%s is missing; run make data, or grading cannot load MNIST", MNIST_DIR)
        return
    for notebook in notebooks:
        submission = Path(notebook).resolve().parent
        graded = COURSE_ROOT / "autograded" / submission.parent.name / submission.name
        link = graded / "data" / "MNIST"
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(MNIST_DIR, target_is_directory=True)
