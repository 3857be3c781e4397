"""Generate the nbgrader source copy of the assignment from the repository.

assignment.ipynb (whose task cells tools/sync_notebook.py fills from
solution.py), utils.py and data/prepare.py are the only sources. This
script writes them to source/<assignment>/, which `nbgrader
generate_assignment` reads; never edit that copy by hand.

Usage: python autograder/build.py [--course DIR]
"""

import argparse
import shutil
import sys
from pathlib import Path

import nbformat

COURSE_ROOT = Path(__file__).resolve().parent
REPOSITORY = COURSE_ROOT.parent
sys.path.insert(0, str(REPOSITORY))

from autograder.grading import ASSIGNMENT  # noqa: E402
from tools import sync_notebook  # noqa: E402

NOTEBOOK = REPOSITORY / "assignment.ipynb"
SUPPORT_FILES = ["utils.py", "data/prepare.py"]


def check_in_sync():
    """Raise SystemExit when the task cells differ from solution.py."""
    stale = sync_notebook.out_of_sync(NOTEBOOK)
    if stale:
        raise SystemExit(f"task cells {stale} differ from solution.py; run python tools/sync_notebook.py")


def source_notebook():
    """Return assignment.ipynb with its outputs cleared."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(notebook)
    return notebook


def write_source(destination):
    """Write the notebook and the files students get into destination."""
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    nbformat.write(source_notebook(), destination / "assignment.ipynb")
    for name in SUPPORT_FILES:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPOSITORY / name, target)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write the nbgrader source copy of the assignment.")
    parser.add_argument("--course", type=Path, default=COURSE_ROOT,
                        help="nbgrader course directory to write source/ into (default: %(default)s)")
    course = parser.parse_args(argv).course
    check_in_sync()
    destination = course / "source" / ASSIGNMENT
    write_source(destination)
    print(f"wrote {destination}")


if __name__ == "__main__":
    main()
