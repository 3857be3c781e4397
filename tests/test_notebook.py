"""The notebook: task cells match solution.py, and the study pipeline runs."""

import json
import subprocess
import sys

import nbformat

from tests.conftest import ROOT
from tools import sync_notebook


def test_task_cells_match_solution():
    assert sync_notebook.out_of_sync() == [], "run python tools/sync_notebook.py"


def test_task_cells_close_solution_regions():
    # nbgrader rejects a region without its END line, which follows the
    # function's last statement as a comment.
    for cell_id, source in sync_notebook.expected_cells().items():
        assert source.count("### BEGIN SOLUTION") == source.count("### END SOLUTION"), cell_id
        assert source.rstrip().endswith("### END SOLUTION"), cell_id


def test_sync_detects_drift(tmp_path):
    notebook = nbformat.read(ROOT / "assignment.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.get("id") == "train-task":
            cell.source = cell.source.replace("shuffle=True", "shuffle=False")
    drifted = tmp_path / "assignment.ipynb"
    nbformat.write(notebook, drifted)
    assert sync_notebook.out_of_sync(drifted) == ["train-task"]


def test_run_study_small_budget(tmp_path):
    output = tmp_path / "output"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "run_study.py"), "--output", str(output), "--budget", "small"],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    for name in ("assignment.ipynb", "samples.png", "sweep_lr.png", "sweep_batchsize.png",
                 "results.json", "comparison.md"):
        assert (output / name).exists(), name
    results = json.loads((output / "results.json").read_text())
    assert results["budget"] == "small"
    runs = results["runs"]
    assert len(runs) == 2 + 4 + 6
    assert all(run["epochs"] == 1 and len(run["epoch_losses"]) == 1 for run in runs)
    assert "Train Accuracy:" in completed.stdout
    assert "| run | train acc" in completed.stdout
    executed = nbformat.read(output / "assignment.ipynb", as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    source_cells = nbformat.read(ROOT / "assignment.ipynb", as_version=4).cells
    visible = [cell for cell in source_cells if "### BEGIN HIDDEN TESTS" not in cell.source]
    assert len(visible) < len(source_cells), "the notebook has no hidden checks to leave out"
    assert len(executed.cells) == len(visible)
