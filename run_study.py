"""Run the whole momentum study on real MNIST: both sanity runs and both sweeps.

Two runners give the same study:

- ``parallel`` (the default) trains the runs of solution.py in worker
  processes, one thread each, side by side (see parallel_study.py). Its
  figures equal those of the notebook runner with ``--threads 1``.
- ``notebook`` executes assignment.ipynb top to bottom with nbclient, less
  the grader's hidden checks, as a student's kernel would run it, and also
  saves the executed notebook.

Both echo a line per epoch and per finished run, and write into the output
folder:

- ``samples.png``, ``sweep_lr.png``, ``sweep_batchsize.png``: the figures;
- ``results.json``: every run's settings, final accuracies and per-epoch
  curves, beside the original exercise's figures where it printed them;
- ``comparison.md``: the table printed at the end;
- ``assignment.ipynb``: the executed notebook (notebook runner only).

Usage: python run_study.py [--output DIR] [--budget full|small] [--runner parallel|notebook]
                           [--workers N] [--threads N] [--notebook PATH] [--cell-timeout S]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent

# Figures the original exercise printed: (experiment, setting) -> momentum ->
# (train accuracy, test accuracy). The batch-size sweep at batch size 32 is
# the learning-rate sweep at 0.01 run again, so it shares those figures.
ORIGINAL = {
    ("train", "1 epoch"): {0.0: (0.8053, 0.8097), 0.9: (0.9667, 0.9683)},
    ("sweep_lr", 0.001): {0.0: (0.2090, 0.2106), 0.9: (0.9599, 0.9625)},
    ("sweep_lr", 0.01): {0.0: (0.9574, 0.9603), 0.9: (0.9855, 0.9830)},
    ("sweep_batchsize", 32): {0.0: (0.9574, 0.9603), 0.9: (0.9855, 0.9830)},
}

# Settings the notebook keeps fixed in each experiment.
SANITY = {"epochs": 1, "lr": 0.01, "batch_size": 32}
SWEEP_LR_BATCH_SIZE = 32
SWEEP_BATCHSIZE_LR = 0.01

# Appended to the notebook for the run only: it hands the kernel's results
# to export_results below, then is removed from the saved notebook.
EXPORT_CELL = "import run_study as _run_study\n_run_study.export_results(globals(), {output!r})"


def run_record(experiment, setting, momentum, result, **settings):
    """Return one run's settings, figures and original figures as a dict."""
    train_acc, test_acc, epoch_losses, epoch_train_accuracies = result
    original = ORIGINAL.get((experiment, setting), {}).get(momentum, (None, None))
    return {
        "experiment": experiment,
        **settings,
        "momentum": momentum,
        "epochs": len(epoch_losses),
        "train_acc": float(train_acc),
        "test_acc": float(test_acc),
        "epoch_losses": [float(x) for x in epoch_losses],
        "epoch_train_accuracies": [float(x) for x in epoch_train_accuracies],
        "original_train_acc": original[0],
        "original_test_acc": original[1],
    }


def collect_runs(namespace):
    """Build one record per run from the notebook's variables."""
    runs = [
        run_record("train", "1 epoch", 0.0, namespace["plain_run"], **SANITY),
        run_record("train", "1 epoch", 0.9, namespace["momentum_run"], **SANITY),
    ]
    for lr, by_momentum in namespace["lr_results"].items():
        for momentum, result in by_momentum.items():
            runs.append(run_record("sweep_lr", lr, momentum, result,
                                   lr=lr, batch_size=SWEEP_LR_BATCH_SIZE))
    for batch_size, by_momentum in namespace["bs_results"].items():
        for momentum, result in by_momentum.items():
            runs.append(run_record("sweep_batchsize", batch_size, momentum, result,
                                   lr=SWEEP_BATCHSIZE_LR, batch_size=batch_size))
    return runs


def export_results(namespace, output_dir, threads=None, run_details=None):
    """Save the figures and results.json from the notebook's variables.

    The notebook runner calls this inside the kernel, where threads is the
    kernel's own count. run_details, one dict per run, adds to each record.
    """
    import torch

    output_dir = Path(output_dir)
    for name, variable in (("samples", "samples_fig"), ("sweep_lr", "lr_fig"),
                           ("sweep_batchsize", "bs_fig")):
        namespace[variable].savefig(output_dir / f"{name}.png", dpi=120, bbox_inches="tight")
    runs = collect_runs(namespace)
    for record, details in zip(runs, run_details or []):
        record.update(details)
    results = {"torch": torch.__version__, "device": "cuda" if torch.cuda.is_available() else "cpu",
               "threads": threads or torch.get_num_threads(), "runs": runs}
    (output_dir / "results.json").write_text(json.dumps(results, indent=1))


def run_parallel(output_dir, budget, workers):
    """Train the study in worker processes and save what the notebook runner saves."""
    import matplotlib

    matplotlib.use("Agg")  # figures go to files only
    import parallel_study
    import solution
    from utils import show_samples

    # The parent needs the data only to replay the generator's draws and to
    # draw the samples, so it keeps it on the CPU.
    train_dataset, test_dataset = parallel_study.study_datasets(ROOT / "data", budget, device="cpu")
    try:
        runs, results, details = parallel_study.train_all(ROOT / "data", budget, train_dataset,
                                                          test_dataset, workers)
    except parallel_study.WorkerStopped as error:
        raise SystemExit(f"the study stopped: {error}") from error
    namespace = parallel_study.notebook_namespace(runs, results)
    namespace["lr_fig"] = solution.plot_losses(namespace["lr_results"], "learning rate")
    namespace["bs_fig"] = solution.plot_losses(namespace["bs_results"], "batch size")
    namespace["samples_fig"] = show_samples(train_dataset)  # the first 50 images, as the notebook shows
    export_results(namespace, output_dir, threads=1, run_details=details)


def run_label(run):
    if run["experiment"] == "train":
        return f"train, 1 epoch, momentum {run['momentum']}"
    setting = "lr" if run["experiment"] == "sweep_lr" else "batch_size"
    return f"{run['experiment']}, {setting} {run[setting]:g}, momentum {run['momentum']}"


def format_table(runs, with_originals=True):
    """Return a Markdown table of every run, beside the original figures when with_originals is set.

    The original figures come from the full study, so a small budget's
    table leaves them out.
    """
    def cell(value):
        return "-" if value is None else f"{value:.4f}"

    lines = ["| run | train acc | original | test acc | original | test diff |",
             "| --- | --- | --- | --- | --- | --- |"]
    for run in runs:
        if not with_originals:
            run = {**run, "original_train_acc": None, "original_test_acc": None}
        original = run["original_test_acc"]
        diff = "-" if original is None else f"{run['test_acc'] - original:+.4f}"
        lines.append(f"| {run_label(run)} | {cell(run['train_acc'])} | {cell(run['original_train_acc'])} "
                     f"| {cell(run['test_acc'])} | {cell(original)} | {diff} |")
    return "\n".join(lines)


def make_client(notebook, cell_timeout):
    """Return an nbclient client that also prints the cells' stdout here."""
    from nbclient import NotebookClient

    class EchoingClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            if msg.get("msg_type") == "stream" and content.get("name") == "stdout":
                sys.stdout.write(content["text"])
                sys.stdout.flush()
            return super().output(outs, msg, display_id, cell_index)

    return EchoingClient(notebook, timeout=cell_timeout, kernel_name="python3",
                         resources={"metadata": {"path": str(ROOT)}})


def execute(notebook_path, output_dir, cell_timeout):
    """Execute the notebook; save it executed, even when a cell fails or the kernel dies."""
    import nbformat
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    notebook = nbformat.read(notebook_path, as_version=4)
    drop_hidden_checks(notebook)
    notebook.cells.append(nbformat.v4.new_code_cell(EXPORT_CELL.format(output=str(output_dir))))
    try:
        make_client(notebook, cell_timeout).execute()
    except (CellExecutionError, DeadKernelError) as error:
        notebook.cells.pop()
        nbformat.write(notebook, output_dir / "assignment.ipynb")
        if isinstance(error, CellExecutionError):
            failure = f"a cell of {notebook_path} failed"
        else:
            failure = f"the kernel died while running {notebook_path}"
        raise SystemExit(f"{failure}; the partly executed notebook "
                         f"is in {output_dir / 'assignment.ipynb'}\n{error}")
    notebook.cells.pop()
    nbformat.write(notebook, output_dir / "assignment.ipynb")


def drop_hidden_checks(notebook):
    """Remove the grader's hidden check cells; return how many were removed.

    They retrain on the full data to grade a submission and add nothing to
    the study's figures, so the study leaves them to the grader.
    """
    visible = [cell for cell in notebook.cells if "### BEGIN HIDDEN TESTS" not in cell.source]
    removed = len(notebook.cells) - len(visible)
    notebook.cells = visible
    return removed


# Seconds. The longest cell, the batch-size sweep, took about 160 s on a 2-core
# Intel Xeon, and a 2-core AMD EPYC trained about three times slower.
DEFAULT_CELL_TIMEOUT = 3600
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def check_arguments(parser, args):
    """Reject values and combinations the runners cannot use, before any work starts."""
    for name in ("workers", "threads", "cell_timeout"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} {value}: give a whole number of at least 1")
    if args.runner == "parallel" and args.threads not in (None, 1):
        parser.error(f"--threads {args.threads}: the parallel runner trains with one thread per worker; "
                     "set --workers, or add --runner notebook")
    if args.runner == "parallel":
        for name, value in (("notebook", args.notebook), ("cell-timeout", args.cell_timeout)):
            if value is not None:
                parser.error(f"--{name} {value}: only the notebook runner takes it; add --runner notebook")
    if args.runner == "notebook" and args.workers is not None:
        parser.error(f"--workers {args.workers}: the notebook runner has one kernel; "
                     "use --runner parallel, or set --threads")
    if args.notebook and not Path(args.notebook).is_file():
        parser.error(f"--notebook {args.notebook}: no such file")
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        parser.error(f"--output {args.output}: this is a file, not a folder; give a folder for the results")
    missing = [name for name in MNIST_FILES if not (ROOT / "data" / "MNIST" / "raw" / name).is_file()]
    if missing:
        parser.error(f"MNIST is missing from {ROOT / 'data' / 'MNIST' / 'raw'} ({', '.join(missing)}); "
                     "run `make data` (or python data/prepare.py) first")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the momentum study and save its figures and numbers.")
    parser.add_argument("--output", default="output", help="folder for the results (default: %(default)s)")
    parser.add_argument("--runner", choices=["parallel", "notebook"], default="parallel",
                        help="parallel: the reference's runs in worker processes; notebook: execute "
                             "the notebook in one kernel (default: %(default)s)")
    parser.add_argument("--workers", type=int,
                        help="parallel runner: worker processes, one thread each "
                             "(default: one per core, or one on a GPU)")
    parser.add_argument("--threads", type=int,
                        help="notebook runner: torch's threads in the kernel (default: torch's own, "
                             "one per core)")
    parser.add_argument("--notebook",
                        help="notebook runner: notebook to execute (default: the assignment)")
    parser.add_argument("--budget", choices=["full", "small"], default="full",
                        help="full: the study as written; small: 2,000 training images, "
                             "one epoch per run, for a quick check of the pipeline (default: %(default)s)")
    parser.add_argument("--cell-timeout", type=int,
                        help="notebook runner: seconds one cell may run before the study is stopped "
                             f"(default: {DEFAULT_CELL_TIMEOUT})")
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    args.notebook = args.notebook or str(ROOT / "assignment.ipynb")
    args.cell_timeout = args.cell_timeout or DEFAULT_CELL_TIMEOUT

    output_dir = Path(args.output).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        if args.runner == "parallel":
            import parallel_study

            workers = args.workers or parallel_study.default_workers()
            run_parallel(output_dir, args.budget, workers)
        else:
            # The kernel inherits this process's environment: the notebook reads
            # the budget, and torch takes its thread count from OpenMP's variable.
            os.environ["STUDY_BUDGET"] = args.budget
            if args.threads:
                os.environ["OMP_NUM_THREADS"] = str(args.threads)
            execute(args.notebook, output_dir, args.cell_timeout)
    except KeyboardInterrupt:
        print(f"\nstopped by Ctrl-C after {time.perf_counter() - start:.0f} s; "
              f"results.json in {output_dir} was not written", file=sys.stderr)
        raise SystemExit(130)
    results = json.loads((output_dir / "results.json").read_text())
    results["budget"] = args.budget
    results["runner"] = args.runner
    if args.runner == "parallel":
        results["workers"] = workers
    results["seconds"] = round(time.perf_counter() - start, 1)
    (output_dir / "results.json").write_text(json.dumps(results, indent=1))

    table = format_table(results["runs"], with_originals=args.budget == "full")
    (output_dir / "comparison.md").write_text(table + "\n")
    print(f"\nStudy finished in {results['seconds']:.0f} s; results in {output_dir}\n")
    print(table)


if __name__ == "__main__":
    main()
