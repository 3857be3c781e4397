"""Copy the reference functions of solution.py into assignment.ipynb's task cells.

solution.py is the one source of the reference code. Each task cell of the
notebook, found by its cell id, contains the listed functions verbatim, so the
``### BEGIN SOLUTION`` regions nbgrader strips are the same lines.

Usage:
    python tools/sync_notebook.py           rewrite the task cells
    python tools/sync_notebook.py --check   exit 1 if any task cell differs
"""

import argparse
import ast
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solution.py"
NOTEBOOK = ROOT / "assignment.ipynb"

# Cell id -> the functions of solution.py that the cell contains, in order.
TASK_CELLS = {
    "train-task": ["train"],
    "sweep-lr-task": ["plot_losses", "sweep_lr"],
    "sweep-batchsize-task": ["sweep_batchsize"],
}


def function_sources(path=SOLUTION):
    """Return {name: source text} for each top-level function in path."""
    text = Path(path).read_text()
    lines = text.splitlines()
    sources = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            last = node.end_lineno
            # The closing marker is a comment after the last statement, which
            # the syntax tree leaves out; nbgrader needs it.
            if last < len(lines) and lines[last].strip() == "### END SOLUTION":
                last += 1
            sources[node.name] = "\n".join(lines[first - 1:last])
    return sources


def expected_cells(path=SOLUTION):
    """Return {cell id: the source the task cell must hold}."""
    sources = function_sources(path)
    return {cell_id: "\n\n\n".join(sources[name] for name in names)
            for cell_id, names in TASK_CELLS.items()}


def task_cells(notebook):
    """Return {cell id: cell} for the task cells; raise if one is missing."""
    cells = {cell.get("id"): cell for cell in notebook.cells}
    missing = [cell_id for cell_id in TASK_CELLS if cell_id not in cells]
    if missing:
        raise ValueError(f"assignment.ipynb has no cell with id {missing}; "
                         "restore the task cells or update TASK_CELLS")
    return {cell_id: cells[cell_id] for cell_id in TASK_CELLS}


def out_of_sync(notebook_path=NOTEBOOK, solution_path=SOLUTION):
    """Return the ids of the task cells whose code differs from solution.py."""
    notebook = nbformat.read(notebook_path, as_version=4)
    expected = expected_cells(solution_path)
    return [cell_id for cell_id, cell in task_cells(notebook).items()
            if cell.source != expected[cell_id]]


def sync(notebook_path=NOTEBOOK, solution_path=SOLUTION):
    """Rewrite the task cells from solution.py; return the ids changed."""
    notebook = nbformat.read(notebook_path, as_version=4)
    expected = expected_cells(solution_path)
    changed = []
    for cell_id, cell in task_cells(notebook).items():
        if cell.source != expected[cell_id]:
            cell.source = expected[cell_id]
            changed.append(cell_id)
    if changed:
        nbformat.write(notebook, notebook_path)
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description="Copy solution.py into the notebook's task cells.")
    parser.add_argument("--check", action="store_true",
                        help="only report task cells that differ; exit 1 if any")
    args = parser.parse_args(argv)
    if args.check:
        stale = out_of_sync()
        if stale:
            print(f"task cells differ from solution.py: {stale}; "
                  "run python tools/sync_notebook.py", file=sys.stderr)
            return 1
        print("task cells match solution.py")
        return 0
    changed = sync()
    print(f"updated task cells: {changed}" if changed else "task cells already match solution.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
