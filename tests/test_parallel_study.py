"""The parallel runner: start states set in advance, shared runs, the command line."""

import io
import os
import signal
import subprocess
import sys

import pytest
import torch
from torch.utils.data import Subset

import parallel_study
from parallel_study import PrefixedLines, Run, computation_key, replay_draws, start_states, study_plan
from solution import train
from tests.conftest import ROOT
from utils import Lenet5


@pytest.fixture(scope="module")
def tiny(train_dataset, test_dataset):
    return Subset(train_dataset, range(300)), Subset(test_dataset, range(100))


@pytest.mark.parametrize("epochs,batch_size", [(1, 32), (2, 64)])
def test_replay_draws_like_train(tiny, epochs, batch_size):
    # The whole parallel runner rests on this: replaying a run leaves the
    # generator where training it would.
    run = Run("sweep_lr", 0.05, batch_size, 0.9, epochs)
    torch.manual_seed(7)
    replay_draws(run, *tiny)
    replayed = torch.get_rng_state()
    torch.manual_seed(7)
    train(Lenet5(), *tiny, epochs=epochs, batch_size=batch_size, lr=0.05, momentum=0.9)
    assert torch.equal(torch.get_rng_state(), replayed)


def test_start_states_follow_the_notebook_order(tiny):
    groups = study_plan("small")
    states = start_states(groups, *tiny)
    assert [run for run, _ in states] == [run for group in groups for run in group]
    torch.manual_seed(parallel_study.SEED)
    seeded = torch.get_rng_state()
    firsts = [0, 1, 2, 6]  # the first run of each group starts from the seed
    for index, (_, state) in enumerate(states):
        assert torch.equal(state, seeded) == (index in firsts), states[index][0].label


def test_start_states_leave_the_caller_generator(tiny):
    torch.manual_seed(11)
    before = torch.get_rng_state()
    start_states(study_plan("small"), *tiny)
    assert torch.equal(torch.get_rng_state(), before)


def test_batch_size_32_shares_the_lr_sweep_runs(tiny):
    states = start_states(study_plan("full"), *tiny)
    keys = [computation_key(run, state) for run, state in states]
    labels = {}
    shared = []
    for (run, _), key in zip(states, keys):
        if key in labels:
            shared.append((run.label, labels[key]))
        labels.setdefault(key, run.label)
    assert shared == [
        ("sweep_batchsize, batch_size 32, momentum 0.0", "sweep_lr, lr 0.01, momentum 0.0"),
        ("sweep_batchsize, batch_size 32, momentum 0.9", "sweep_lr, lr 0.01, momentum 0.9"),
    ]


def test_prefixed_lines():
    target = io.StringIO()
    stream = PrefixedLines(target, "[a] ")
    stream.write("one\ntw")
    stream.write("o\n\nthree\n")
    assert target.getvalue() == "[a] one\n[a] two\n[a] \n[a] three\n"


@pytest.mark.parametrize("arguments,message", [
    (["--workers", "0"], "--workers 0: give a whole number of at least 1"),
    (["--threads", "2"], "--threads 2: the parallel runner trains with one thread per worker"),
    (["--runner", "notebook", "--workers", "2"], "--workers 2: the notebook runner has one kernel"),
    (["--cell-timeout", "60"], "--cell-timeout 60: only the notebook runner takes it"),
    (["--runner", "notebook", "--cell-timeout", "0"], "--cell-timeout 0: give a whole number of at least 1"),
    (["--runner", "notebook", "--notebook", "missing.ipynb"], "--notebook missing.ipynb: no such file"),
])
def test_run_study_rejects_bad_counts(tmp_path, arguments, message):
    completed = subprocess.run([sys.executable, str(ROOT / "run_study.py"), "--output", str(tmp_path),
                                *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert message in completed.stderr
    assert list(tmp_path.iterdir()) == []


def spawned_workers(parent_pid):
    """Return the pids of the multiprocessing workers that parent_pid started."""
    children = subprocess.run(["pgrep", "-P", str(parent_pid)], capture_output=True, text=True).stdout.split()
    workers = []
    for pid in children:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"spawn_main" in cmdline.read():
                    workers.append(int(pid))
        except FileNotFoundError:
            pass  # the child ended meanwhile
    return workers


def test_killed_worker_stops_study_with_message(tmp_path):
    # A worker killed mid-run (as the kernel's out-of-memory killer would)
    # ends the study with a message, not a hang or a bare traceback.
    study = subprocess.Popen([sys.executable, str(ROOT / "run_study.py"), "--output", str(tmp_path),
                              "--workers", "2"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        for line in study.stdout:
            if "epoch  1/" in line:  # both workers are training by now
                break
        workers = spawned_workers(study.pid)
        assert workers, "no worker process found"
        os.kill(workers[0], signal.SIGKILL)
        _, stderr = study.communicate(timeout=300)
    finally:
        study.kill()
    assert study.returncode == 1
    assert "the study stopped: a worker process stopped with" in stderr
    assert "--runner notebook" in stderr
    assert not (tmp_path / "results.json").exists()


def test_run_study_rejects_file_as_output(tmp_path):
    results = tmp_path / "results.txt"
    results.write_text("kept")
    completed = subprocess.run([sys.executable, str(ROOT / "run_study.py"), "--output", str(results)],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert "this is a file, not a folder" in completed.stderr
    assert results.read_text() == "kept"


def test_ctrl_c_stops_workers_at_once(tmp_path):
    study = subprocess.Popen([sys.executable, str(ROOT / "run_study.py"), "--output", str(tmp_path),
                              "--workers", "2"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in study.stdout:
            if "epoch  1/" in line:
                break
        workers = spawned_workers(study.pid)
        assert workers, "no worker process found"
        os.killpg(study.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        _, stderr = study.communicate(timeout=60)
    finally:
        study.kill()
    assert study.returncode == 130
    assert "stopped by Ctrl-C" in stderr
    for pid in workers:
        assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2], pid
    assert not (tmp_path / "results.json").exists()
