"""Time the project's data path against torchvision's, the whole study, and grading.

In one run on one machine:

1. one training epoch of a fresh Lenet5 (lr 0.01, momentum 0.9) through
   torchvision's ``MNIST`` + ``ToTensor()`` DataLoader and through
   ``InMemoryMNIST``, side by side, at batch sizes 16, 32 and 64. The two
   epochs must give the same loss and accuracy to the last bit;
2. the whole study (both sanity runs and both sweeps) three ways. The
   project's way (``run_study.py``) trains in worker processes with one
   thread each. The notebook in one kernel with one thread must give the
   same figures to the last bit. The notebook in one kernel with torch's
   default threads is what a student runs;
3. grading the reference submission, when a grading command is given.

Prints seconds and ratios with the CPU model and thread count, and writes
them to bench/results.json.

Usage: python bench/benchmark.py [--skip-study] [--parallel-only] [--grade-command CMD]
                                 [--batch-sizes 16 32 64]
"""

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision.datasets import MNIST
from torchvision.transforms import ToTensor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils import InMemoryMNIST, Lenet5, train_one_epoch  # noqa: E402

DATA_ROOT = str(ROOT / "data")
RESULTS = ROOT / "bench" / "results.json"


def cpu_model():
    """Return the CPU's model name as the kernel reports it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed_epoch(dataset, batch_size):
    """Train a fresh Lenet5 for one epoch from seed 1; return (seconds, loss, accuracy)."""
    torch.manual_seed(1)
    model = Lenet5()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    start = time.perf_counter()
    loss, acc = train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer)
    return time.perf_counter() - start, loss, acc


def bench_epochs(batch_sizes):
    torchvision_train = MNIST(DATA_ROOT, train=True, download=True, transform=ToTensor())
    memory_train = InMemoryMNIST(DATA_ROOT, train=True, device="cpu")
    rows = []
    for batch_size in batch_sizes:
        tv_seconds, tv_loss, tv_acc = timed_epoch(torchvision_train, batch_size)
        mem_seconds, mem_loss, mem_acc = timed_epoch(memory_train, batch_size)
        identical = (tv_loss, tv_acc) == (mem_loss, mem_acc)
        rows.append({"batch_size": batch_size, "torchvision_s": round(tv_seconds, 2),
                     "in_memory_s": round(mem_seconds, 2), "speedup": round(tv_seconds / mem_seconds, 2),
                     "identical": identical, "loss": mem_loss, "train_acc": mem_acc})
        print(f"epoch at batch size {batch_size:>2}: torchvision {tv_seconds:6.1f} s, "
              f"in memory {mem_seconds:6.1f} s, {tv_seconds / mem_seconds:4.2f}x faster, "
              f"figures {'identical' if identical else 'DIFFERENT'}", flush=True)
    return rows


FIGURES = ("train_acc", "test_acc", "epoch_losses", "epoch_train_accuracies")


def timed_study(output_dir, *arguments):
    """Run the study with run_study.py's arguments; return (seconds, results.json)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "run_study.py"), "--output", str(output_dir), *arguments],
                   cwd=ROOT, check=True)
    seconds = time.perf_counter() - start
    return seconds, json.loads((output_dir / "results.json").read_text())


def final_figures(results):
    return [{key: run.get(key) for key in ("experiment", "lr", "batch_size", "momentum",
                                           "train_acc", "test_acc")} for run in results["runs"]]


def same_figures(first, second):
    """Return whether every run's accuracies and curves are equal to the last bit."""
    return len(first["runs"]) == len(second["runs"]) and all(
        a[key] == b[key] for a, b in zip(first["runs"], second["runs"]) for key in FIGURES)


def largest_test_gap(first, second):
    return max(abs(a["test_acc"] - b["test_acc"]) for a, b in zip(first["runs"], second["runs"]))


def bench_study(output_dir, parallel_only):
    """Time the study the project's way and, unless parallel_only, in one kernel."""
    seconds, parallel = timed_study(output_dir / "parallel")
    runs = parallel["runs"]
    print(f"whole study, parallel: {seconds:.1f} s for {len(runs)} runs, "
          f"{sum(run['epochs'] for run in runs)} epochs, {parallel['workers']} workers "
          f"with {parallel['threads']} thread each", flush=True)
    study = {"seconds": round(seconds, 1), "workers": parallel["workers"], "threads": parallel["threads"],
             "runs": final_figures(parallel)}
    if parallel_only:
        return study
    for name, threads in (("notebook_one_thread", ["--threads", "1"]), ("notebook_default_threads", [])):
        notebook_seconds, notebook = timed_study(output_dir / name, "--runner", "notebook", *threads)
        study[name] = {"seconds": round(notebook_seconds, 1), "threads": notebook["threads"],
                       "ratio_to_parallel": round(notebook_seconds / seconds, 2),
                       "identical_to_parallel": same_figures(parallel, notebook),
                       "largest_test_acc_gap": largest_test_gap(parallel, notebook),
                       "runs": final_figures(notebook)}
        print(f"whole study, notebook with {notebook['threads']} thread(s): {notebook_seconds:.1f} s, "
              f"{notebook_seconds / seconds:.2f}x the parallel run; figures "
              f"{'identical to' if same_figures(parallel, notebook) else 'not identical to'} the "
              f"parallel run's (largest test accuracy gap {largest_test_gap(parallel, notebook):.4f})",
              flush=True)
    return study


def bench_grading(command):
    start = time.perf_counter()
    subprocess.run(shlex.split(command), cwd=ROOT, check=True)
    seconds = time.perf_counter() - start
    print(f"grading the reference submission: {seconds:.1f} s", flush=True)
    return {"command": command, "seconds": round(seconds, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Time the data path, the study and grading.")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64],
                        help="batch sizes of the epoch comparison (default: %(default)s)")
    parser.add_argument("--skip-study", action="store_true", help="do not time the whole study")
    parser.add_argument("--parallel-only", action="store_true",
                        help="time the study only the project's way, not in one kernel as well")
    parser.add_argument("--grade-command", help="command that grades the reference submission")
    parser.add_argument("--output", default=str(RESULTS), help="results file (default: %(default)s)")
    args = parser.parse_args(argv)

    machine = {"cpu": cpu_model(), "cores": os.cpu_count(),
               "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    print(f"{machine['cpu']}, {machine['cores']} cores, torch {machine['torch']} "
          f"with {machine['torch_threads']} threads", flush=True)
    results = {"machine": machine, "epochs": bench_epochs(args.batch_sizes)}
    # Another busy process on a 2-core machine slows every figure here, so
    # the load is recorded beside them.
    results["load_average_before_study"] = os.getloadavg()
    if not args.skip_study:
        results["study"] = bench_study(ROOT / "bench" / "study-output", args.parallel_only)
    if args.grade_command:
        results["grading"] = bench_grading(args.grade_command)
    results["load_average_at_end"] = os.getloadavg()
    Path(args.output).write_text(json.dumps(results, indent=1) + "\n")
    print(f"results written to {args.output}")


if __name__ == "__main__":
    main()
