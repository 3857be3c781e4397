"""nbgrader 0.9 configuration of the course; this folder is the course directory.

nbgrader reads this file whenever one of its commands runs with this folder
as the working directory (`make release` and `make grade` do so).
"""

import sys
from pathlib import Path

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, GetGrades, IgnorePattern,
                                    LimitOutput, SaveAutoGrades)

COURSE_ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(COURSE_ROOT))

from grading import (ASSIGNMENT, GradingExecute, HideHiddenTests, RelabelStderr,  # noqa: E402
                     link_data_for_grading)

c = get_config()  # noqa: F821 (traitlets provides get_config in config files)

c.CourseDirectory.root = str(COURSE_ROOT)
c.CourseDirectory.course_id = "momentum-sgd"
# Kept out of the release and of what autograde copies from the source.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "MNIST"]

# Per-cell time budget in seconds, in place of nbgrader's default of 30 s.
# The two hidden checks that train on the full data (about 17 s each on an
# idle 2-core machine, and 311 s once beside another training job) get
# GradingExecute.cell_timeouts. A cell past its budget is interrupted
# (interrupt_on_timeout) and gets a CellTimeoutError output, so it scores 0;
# GradingExecute then skips the rest of its task and runs the next tasks,
# because nbgrader's Execute always sets allow_errors.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
c.Execute.raise_on_iopub_timeout = True
c.GradingExecute.cell_timeouts = {"train-hidden-plain": 600, "train-hidden-momentum": 600}

# Autograde: nbgrader's own steps, with GradingExecute in place of Execute,
# and RelabelStderr before the grades are saved, because nbgrader scores a
# test cell 0 whenever it wrote anything to stderr (a warning, a progress bar).
c.Autograde.autograde_preprocessors = [
    GradingExecute,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    RelabelStderr,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
# Test cells a student deleted come back from the gradebook and are graded.
c.OverwriteCells.add_missing_cells = True
c.Autograde.pre_convert_hook = link_data_for_grading

# Feedback: nbgrader 0.9.6 keeps hidden test code in the feedback HTML, so
# HideHiddenTests removes it and the check's frames from its tracebacks.
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
