"""The notebook: task cells match solution.py, and the study pipeline runs."""

import json
import subprocess
import sys

import nbformat
import pytest

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


def run_study(output, *arguments):
    completed = subprocess.run(
        [sys.executable, str(ROOT / "run_study.py"), "--output", str(output), "--budget", "small", *arguments],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    return completed, json.loads((output / "results.json").read_text())


@pytest.fixture(scope="module")
def notebook_study(tmp_path_factory):
    # One thread, so that the parallel runner's figures must equal these.
    output = tmp_path_factory.mktemp("notebook-study")
    return output, *run_study(output, "--runner", "notebook", "--threads", "1")


FIGURES = ("train_acc", "test_acc", "epoch_losses", "epoch_train_accuracies")


def test_notebook_runner_small_budget(notebook_study):
    output, completed, results = notebook_study
    for name in ("assignment.ipynb", "samples.png", "sweep_lr.png", "sweep_batchsize.png",
                 "results.json", "comparison.md"):
        assert (output / name).exists(), name
    assert (results["budget"], results["runner"], results["threads"]) == ("small", "notebook", 1)
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


def test_parallel_runner_equals_notebook_at_one_thread(notebook_study, tmp_path):
    _, _, expected = notebook_study
    completed, results = run_study(tmp_path, "--workers", "2")
    assert (results["runner"], results["workers"], results["threads"]) == ("parallel", 2, 1)
    for name in ("samples.png", "sweep_lr.png", "sweep_batchsize.png", "comparison.md"):
        assert (tmp_path / name).exists(), name
    assert not (tmp_path / "assignment.ipynb").exists()
    assert len(results["runs"]) == len(expected["runs"])
    for got, want in zip(results["runs"], expected["runs"]):
        label = (got["experiment"], got["lr"], got["batch_size"], got["momentum"])
        assert label == (want["experiment"], want["lr"], want["batch_size"], want["momentum"])
        for key in FIGURES:
            assert got[key] == want[key], f"{label} {key}: parallel {got[key]}, notebook {want[key]}"
    shared = [run for run in results["runs"] if "same_computation_as" in run]
    assert [run["batch_size"] for run in shared] == [32, 32]
    assert "finished sweep_lr, lr 0.01, momentum 0.9" in completed.stdout
