"""Grade every submission with nbgrader: autograde, feedback, export, grades.csv.

Submissions are read from submitted/<student>/<assignment>/assignment.ipynb
and, with --from, from a folder or zip of notebooks as a learning management
system exports them: a notebook directly inside is named by its student
(alice.ipynb), and a notebook in a subfolder belongs to the student the
folder is named after (alice/assignment.ipynb). Each is copied into
submitted/ first; a notebook already there is never overwritten.

Each submission is autograded by its own nbgrader process with a deadline,
so a failure or a hang in one costs only that one. grades.csv gets a row per
submission, with a status column that gives the reason when one was not fully
graded.

Usage: python autograder/grade.py [--from PATH] [--deadline SECONDS] [--cell-timeout SECONDS]
"""

import argparse
import csv
import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import psutil

COURSE_ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(COURSE_ROOT))

from grading import ASSIGNMENT  # noqa: E402

NOTEBOOK = "assignment.ipynb"
SUBMITTED = COURSE_ROOT / "submitted"
AUTOGRADED = COURSE_ROOT / "autograded"
FEEDBACK = COURSE_ROOT / "feedback"
LOGS = COURSE_ROOT / "logs"
GRADES = COURSE_ROOT / "grades.csv"
EXPORT = COURSE_ROOT / "export.csv"
# nbgrader runs the `alembic` command of its environment, so that
# environment's bin folder goes first on PATH.
ENVIRONMENT = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
NBGRADER = [sys.executable, "-m", "nbgrader"]
# Error names that GradingExecute and nbgrader write into an autograded
# notebook when cells were stopped or not run, each with the submission's status.
INTERRUPTIONS = {"KernelDied": "kernel died", "CellTimeoutError": "cell timed out"}

log = logging.getLogger("grade")


def student_id(relative_path):
    """Return the student a notebook belongs to, from its path in an export."""
    parts = Path(relative_path).parts
    name = parts[0] if len(parts) > 1 else Path(parts[0]).stem
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip("._") or "unnamed"


def exported_notebooks(source):
    """Yield (student, notebook bytes) for each notebook in a folder or zip file."""
    source = Path(source)
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            # Members are read, never extracted, so no member path can
            # escape the course folder.
            for member in sorted(archive.namelist()):
                if member.endswith(".ipynb") and ".ipynb_checkpoints" not in member:
                    yield student_id(member), archive.read(member)
    elif source.is_dir():
        for path in sorted(source.rglob("*.ipynb")):
            if ".ipynb_checkpoints" not in path.parts:
                yield student_id(path.relative_to(source)), path.read_bytes()
    else:
        raise SystemExit(f"--from {source}: not found, or neither a folder nor a zip file")


def collect(source):
    """Copy an export's notebooks into submitted/; return {student: note}."""
    notes = {}
    for student, content in exported_notebooks(source):
        target = SUBMITTED / student / ASSIGNMENT / NOTEBOOK
        if student in notes:
            notes[student] += "; ignored a second notebook in the export"
            continue
        notes[student] = ""
        if target.exists():
            if target.read_bytes() != content:
                notes[student] = f"kept the notebook already in submitted/{student}; the export's differs"
                log.warning("%s: %s", student, notes[student])
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return notes


def submissions():
    """Return the students with a folder for the assignment in submitted/."""
    if not SUBMITTED.is_dir():
        return []
    return sorted(path.parent.name for path in SUBMITTED.glob(f"*/{ASSIGNMENT}") if path.is_dir())


def run_nbgrader(arguments, log_path, deadline=None):
    """Run one nbgrader command; return its exit status, or None past the deadline.

    Past the deadline the command and every process it started are killed,
    the kernel included: jupyter_client starts kernels in their own session,
    so killing a process group would miss them.
    """
    with open(log_path, "a") as log_file:
        process = subprocess.Popen(NBGRADER + arguments, cwd=COURSE_ROOT, env=ENVIRONMENT,
                                   stdout=log_file, stderr=subprocess.STDOUT)
        try:
            return process.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
            process.wait()
            return None


def interruptions(notebook_path):
    """Return (status, detail) from the error outputs of an autograded notebook."""
    notebook = nbformat.read(notebook_path, as_version=4)
    found = {}
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", cell.get("id", "?"))
        for output in cell.get("outputs", []):
            # Cells marked "not run" after a dead kernel only follow the one that died.
            stopped = output.output_type == "error" and not output.evalue.startswith("not run")
            if stopped and output.ename in INTERRUPTIONS:
                found.setdefault(INTERRUPTIONS[output.ename], []).append(grade_id)
    if "kernel died" in found:
        return "kernel died", f"the kernel died in {found['kernel died'][0]}; no cell after it ran"
    if "cell timed out" in found:
        cells = ", ".join(found["cell timed out"])
        return "cell timed out", f"timed out: {cells}; the rest of each such task was not run"
    return "graded", ""


def autograde(student, deadline, extra_arguments):
    """Autograde one submission; return (status, detail)."""
    if not (SUBMITTED / student / ASSIGNMENT / NOTEBOOK).exists():
        return "missing notebook", f"no {NOTEBOOK} in submitted/{student}/{ASSIGNMENT}"
    log_path = LOGS / f"{student}.log"
    log_path.unlink(missing_ok=True)
    status = run_nbgrader(["autograde", ASSIGNMENT, "--student", student, "--force", *extra_arguments],
                          log_path, deadline)
    graded = AUTOGRADED / student / ASSIGNMENT
    if status is None:
        shutil.rmtree(graded, ignore_errors=True)  # a partial result; the submission stays
        return "deadline exceeded", f"grading took over {deadline} s and was stopped; see logs/{student}.log"
    if status != 0 or not (graded / NOTEBOOK).exists():
        return "autograde failed", f"nbgrader exited with status {status}; see logs/{student}.log"
    return interruptions(graded / NOTEBOOK)


def generate_feedback():
    """Write feedback/<student>/<assignment>/assignment.html for every graded submission."""
    status = run_nbgrader(["generate_feedback", ASSIGNMENT, "--force"], LOGS / "generate_feedback.log")
    if status != 0:
        log.error("nbgrader generate_feedback exited with status %s; see logs/generate_feedback.log", status)


def export_scores():
    """Export the gradebook with nbgrader; return {student: row}."""
    EXPORT.unlink(missing_ok=True)
    status = run_nbgrader(["export", "--to", str(EXPORT)], LOGS / "export.log")
    if status != 0 or not EXPORT.exists():
        log.error("nbgrader export exited with status %s; see logs/export.log", status)
        return {}
    with open(EXPORT, newline="") as export:
        return {row["student_id"]: row for row in csv.DictReader(export) if row["assignment"] == ASSIGNMENT}


def write_grades(outcomes, scores):
    """Write grades.csv: nbgrader's export columns plus status and detail, one row per submission."""
    columns = ["student_id", "status", "detail", "score", "max_score", "raw_score",
               "late_submission_penalty", "timestamp", "assignment"]
    with open(GRADES, "w", newline="") as grades:
        writer = csv.DictWriter(grades, columns, extrasaction="ignore")
        writer.writeheader()
        for student, (status, detail) in sorted(outcomes.items()):
            row = scores.get(student, {"score": 0.0, "raw_score": 0.0, "assignment": ASSIGNMENT})
            writer.writerow({**row, "student_id": student, "status": status, "detail": detail})


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description="Grade every submission with nbgrader.")
    parser.add_argument("--from", dest="source",
                        help="a folder or zip of notebooks named by student, copied into submitted/ first")
    parser.add_argument("--deadline", type=int, default=1800,
                        help="seconds one submission may take to autograde before it is stopped "
                             "(default: %(default)s)")
    parser.add_argument("--cell-timeout", type=int,
                        help="seconds one cell may run, in place of Execute.timeout of nbgrader_config.py")
    return parser.parse_args(argv)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    arguments = parse_arguments(argv)
    if not (COURSE_ROOT / "gradebook.db").exists():
        raise SystemExit(f"no gradebook.db in {COURSE_ROOT}: run make release first, which records the test cells")
    LOGS.mkdir(exist_ok=True)
    notes = collect(arguments.source) if arguments.source else {}
    extra = [f"--Execute.timeout={arguments.cell_timeout}"] if arguments.cell_timeout else []
    outcomes = {}
    for student in submissions():
        log.info("autograding %s", student)
        status, detail = autograde(student, arguments.deadline, extra)
        detail = "; ".join(part for part in (detail, notes.get(student, "")) if part)
        outcomes[student] = (status, detail)
        log.info("  %s%s", status, f": {detail}" if detail else "")
    generate_feedback()
    write_grades(outcomes, export_scores())
    log.info("wrote %s and feedback/ for %d submissions", GRADES.relative_to(COURSE_ROOT.parent), len(outcomes))


if __name__ == "__main__":
    main()
