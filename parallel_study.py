"""Train the study's runs side by side in worker processes, with the sequential figures.

The notebook trains its runs one after another. Each sanity run starts from
``torch.manual_seed(1)`` and each sweep seeds once for all of its runs, so a
later run's initial weights and shuffles depend on what the runs before it
drew from the global generator. Those draws do not depend on training: a run
draws its Lenet5's initial weights, two numbers per epoch and three for its
final accuracies (solution.py lists them). ``start_states`` makes the same
draws without training, so the generator state at the start of every run is
known before any run trains, and the runs can train in separate processes.

Two runs with the same start state and settings are one computation: the
batch-size sweep at batch size 32 repeats the learning-rate sweep at 0.01.
Such a run trains once and both rows get its result.

Each worker trains with one thread. The convolutions split their sums across
threads, so the last bits of the weights, and through them the figures,
depend on the thread count. The figures here are those of the notebook run
with one thread (``run_study.py --runner notebook --threads 1``). They differ
slightly from those of a run with two.
"""

import contextlib
import math
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from multiprocessing import get_context

import torch
from torch.utils.data import DataLoader, Subset

import solution
from run_study import SANITY, SWEEP_BATCHSIZE_LR, SWEEP_LR_BATCH_SIZE, run_label
from utils import DEVICE, InMemoryMNIST, Lenet5

# The study as the notebook's cells run it, in their order. run_study.py
# defines the settings that stay fixed within each experiment.
SEED = 1  # each sanity run and each sweep starts from torch.manual_seed(SEED)
MOMENTA = (0.0, 0.9)  # every setting trains without momentum, then with 0.9
SWEEP_LRS = (1e-3, 1e-2)  # the learning rates of sweep_lr
SWEEP_BATCH_SIZES = (16, 32, 64)  # the batch sizes of sweep_batchsize
SWEEP_EPOCHS = {"full": 5, "small": 1}
# The small budget trains on the first images only, as the notebook does.
SMALL_SUBSETS = {"train": 2000, "test": 1000}

# A step's fixed cost (the Python loop, the optimizer, launching each layer)
# is about that of 57 images' arithmetic. The figure comes from epoch times
# at batch sizes 16 and 64 on a 2-core CPU, and only orders the runs.
STEP_OVERHEAD_IMAGES = 57


class WorkerStopped(RuntimeError):
    """A worker process ended before its run finished."""


@dataclass(frozen=True)
class Run:
    """One call of train: its experiment and settings."""

    experiment: str  # "train", "sweep_lr" or "sweep_batchsize"
    lr: float
    batch_size: int
    momentum: float
    epochs: int

    @property
    def label(self):
        return run_label(asdict(self))  # as the final table names the run

    def cost(self, train_size):
        steps = self.epochs * math.ceil(train_size / self.batch_size)
        return steps * (STEP_OVERHEAD_IMAGES + self.batch_size)


def study_plan(budget):
    """Return the study's runs in groups; each group starts from torch.manual_seed(SEED)."""
    epochs = SWEEP_EPOCHS[budget]
    return [
        [Run("train", momentum=momentum, **SANITY)] for momentum in MOMENTA
    ] + [
        [Run("sweep_lr", lr, SWEEP_LR_BATCH_SIZE, momentum, epochs)
         for lr in SWEEP_LRS for momentum in MOMENTA],
        [Run("sweep_batchsize", SWEEP_BATCHSIZE_LR, batch_size, momentum, epochs)
         for batch_size in SWEEP_BATCH_SIZES for momentum in MOMENTA],
    ]


def study_datasets(data_root, budget, device=DEVICE):
    """Return (train, test) datasets as the notebook's demonstrations use them."""
    train = InMemoryMNIST(data_root, train=True, device=device)
    test = InMemoryMNIST(data_root, train=False, device=device)
    if budget == "small":
        return Subset(train, range(SMALL_SUBSETS["train"])), Subset(test, range(SMALL_SUBSETS["test"]))
    return train, test


def replay_draws(run, train_dataset, test_dataset):
    """Draw from the global generator what solution.train draws for run, without training."""
    Lenet5()  # the initial weights
    train_loader = DataLoader(train_dataset, batch_size=run.batch_size, shuffle=True)
    test_loader = DataLoader(test_dataset, batch_size=run.batch_size, shuffle=False)
    # Starting a pass makes all of its draws: the base seed, and for a
    # shuffled loader the sampler's seed. One pass per epoch, one for the
    # final train accuracy, one for the test accuracy.
    for _ in range(run.epochs + 1):
        next(iter(train_loader))
    next(iter(test_loader))


def start_states(groups, train_dataset, test_dataset):
    """Return [(run, generator state at its start)] in the notebook's order.

    The caller's generator state is left as it was.
    """
    states = []
    with torch.random.fork_rng(devices=[]):
        for group in groups:
            torch.manual_seed(SEED)
            for run in group:
                states.append((run, torch.get_rng_state()))
                replay_draws(run, train_dataset, test_dataset)
    return states


def computation_key(run, state):
    """Runs with equal keys compute the same thing; the experiment's name does not matter."""
    return (run.lr, run.batch_size, run.momentum, run.epochs, state.numpy().tobytes())


class PrefixedLines:
    """A text stream that writes each line to target with a prefix."""

    def __init__(self, target, prefix):
        self.target, self.prefix, self.at_line_start = target, prefix, True

    def write(self, text):
        for piece in text.splitlines(keepends=True):
            if self.at_line_start:
                self.target.write(self.prefix)
            self.target.write(piece)
            self.at_line_start = piece.endswith("\n")
        return len(text)

    def flush(self):
        self.target.flush()


_worker_datasets = None


def _start_worker(data_root, budget, threads):
    global _worker_datasets
    # Ctrl-C in a terminal reaches every process of the group. The parent
    # alone handles it, by stopping the workers, so none starts another run.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    _worker_datasets = study_datasets(data_root, budget)


def _train(run, state):
    """Train run from state in a worker; return (train's tuple, seconds)."""
    torch.set_rng_state(state)
    start = time.perf_counter()
    with contextlib.redirect_stdout(PrefixedLines(sys.stdout, f"[{run.label}] ")):
        result = solution.train(Lenet5(), *_worker_datasets, epochs=run.epochs,
                                batch_size=run.batch_size, lr=run.lr, momentum=run.momentum)
    sys.stdout.flush()
    return result, time.perf_counter() - start


@contextlib.contextmanager
def no_progress_bars():
    """Disable tqdm's bars in the workers, which read TQDM_DISABLE when they import tqdm."""
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # several processes' bars would overwrite each other
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TQDM_DISABLE"]
        else:
            os.environ["TQDM_DISABLE"] = previous


def stop_workers(pool):
    """Terminate pool's worker processes now, dropping the runs they train."""
    # NOTE: Python 3.11's ProcessPoolExecutor has no public way to stop its
    # workers, so this reaches into its private _processes mapping.
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        process.terminate()


def default_workers():
    """Return one worker per core on the CPU, and one on a GPU, which the runs would share."""
    return 1 if DEVICE.type == "cuda" else (os.cpu_count() or 1)


def train_all(data_root, budget, train_dataset, test_dataset, workers, threads=1):
    """Train every run of the study; return (runs in the notebook's order, results, info).

    The datasets are study_datasets(data_root, budget), which each worker
    loads for itself. results[i] is train's tuple for runs[i]. info[i] has
    the run's seconds and, for a run that shared another's result, that
    run's label.
    """
    states = start_states(study_plan(budget), train_dataset, test_dataset)
    keys = [computation_key(run, state) for run, state in states]
    first = {}
    for index, key in enumerate(keys):
        first.setdefault(key, index)
    unique = sorted(set(first.values()), key=lambda i: -states[i][0].cost(len(train_dataset)))

    done = {}
    with no_progress_bars():
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                   initializer=_start_worker, initargs=(str(data_root), budget, threads))
        try:
            futures = {pool.submit(_train, *states[i]): i for i in unique}
            for future in as_completed(futures):
                index = futures[future]
                done[index] = future.result()
                train_acc, test_acc = done[index][0][:2]
                print(f"finished {states[index][0].label} in {done[index][1]:.0f} s: "
                      f"train acc {train_acc:.4f}, test acc {test_acc:.4f}", flush=True)
        except BrokenProcessPool as error:
            raise WorkerStopped(
                f"a worker process stopped with {len(unique) - len(done)} of {len(unique)} runs unfinished "
                f"({error}); if the machine ran out of memory, rerun with fewer --workers, or run the "
                "study in one process with --runner notebook") from error
        except BaseException:  # Ctrl-C, or a run that raised
            stop_workers(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    runs = [run for run, _ in states]
    for index, (run, key) in enumerate(zip(runs, keys)):
        if first[key] != index:
            print(f"{run.label}: the same computation as {runs[first[key]].label}, so it shares that result")
    results = [done[first[key]][0] for key in keys]
    info = []
    for index, key in enumerate(keys):
        if first[key] == index:
            info.append({"seconds": round(done[index][1], 1)})
        else:
            info.append({"seconds": 0.0, "same_computation_as": runs[first[key]].label})
    return runs, results, info


def notebook_namespace(runs, results):
    """Arrange the results under the names the notebook gives them."""
    namespace = {"lr_results": {}, "bs_results": {}}
    for run, result in zip(runs, results):
        if run.experiment == "train":
            namespace["plain_run" if run.momentum == 0.0 else "momentum_run"] = result
        elif run.experiment == "sweep_lr":
            namespace["lr_results"].setdefault(run.lr, {})[run.momentum] = result
        else:
            namespace["bs_results"].setdefault(run.batch_size, {})[run.momentum] = result
    return namespace
