"""Datasets for the course: Fashion-MNIST and MNIST, offline first.

``load_fashion_mnist()`` and ``load_mnist()`` look for the four IDX files in this order and use the first
place that has all four:

1. the ``root=`` argument, when given (and nothing else: an explicit path that lacks the files is an error);
2. ``$DLCOURSE_DATA/<dataset>/`` or ``$DLCOURSE_DATA`` itself;
3. the system-wide copy installed by Debian's ``dataset-fashion-mnist`` package (Fashion-MNIST only);
4. the user cache, ``$DLCOURSE_CACHE`` or ``~/.cache/dlcourse/<dataset>/``;
5. a download from the official mirrors into the user cache.

Every file is verified before it is used: a download must match the published SHA-256 of the gzip file,
a local copy must match either that or the SHA-256 of its decompressed content (Debian recompresses the
files), and the IDX header must describe the expected array. A corrupt or truncated file raises
:class:`DatasetError`; it is never used silently. Downloads try each mirror in turn and are written
atomically, so an interrupted download never leaves a half-written file in the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

__all__ = [
    "DatasetError",
    "Dataset",
    "FASHION_MNIST_CLASSES",
    "load_fashion_mnist",
    "load_mnist",
    "train_val_split",
]

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


class DatasetError(RuntimeError):
    """A dataset could not be found, downloaded or verified."""


class Dataset(NamedTuple):
    """Train and test split of an image classification dataset.

    Unpacks as ``X_train, y_train, X_test, y_test = load_fashion_mnist()``.

    Shape:
        - X_train: ``(60000, 28, 28)``, uint8 pixel intensities 0..255
        - y_train: ``(60000,)``, int64 class labels 0..9
        - X_test: ``(10000, 28, 28)``, uint8
        - y_test: ``(10000,)``, int64
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class _File:
    name: str
    shape: tuple[int, ...]   # the array the IDX header must describe
    gz_sha256: str           # SHA-256 of the file as published on the mirrors
    raw_sha256: str | None   # SHA-256 of the decompressed IDX bytes, when known


@dataclass(frozen=True)
class _Spec:
    name: str
    title: str
    mirrors: tuple[str, ...]
    files: tuple[_File, ...]
    system_dir: Path | None


FASHION_MNIST = _Spec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    files=(
        _File("train-images-idx3-ubyte.gz", (60000, 28, 28),
              "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
              "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        _File("train-labels-idx1-ubyte.gz", (60000,),
              "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
              "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        _File("t10k-images-idx3-ubyte.gz", (10000, 28, 28),
              "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
              "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        _File("t10k-labels-idx1-ubyte.gz", (10000,),
              "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
              "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    ),
    system_dir=DEBIAN_FASHION_MNIST,
)

MNIST = _Spec(
    name="mnist",
    title="MNIST",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    files=(
        _File("train-images-idx3-ubyte.gz", (60000, 28, 28),
              "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", None),
        _File("train-labels-idx1-ubyte.gz", (60000,),
              "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", None),
        _File("t10k-images-idx3-ubyte.gz", (10000, 28, 28),
              "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", None),
        _File("t10k-labels-idx1-ubyte.gz", (10000,),
              "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", None),
    ),
    system_dir=None,
)


def load_fashion_mnist(root: str | os.PathLike | None = None, *,
                       mirrors: Sequence[str] | None = None) -> Dataset:
    """Load Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 70,000 greyscale 28x28 clothing images.

    Args:
        root: folder holding the four ``*-ubyte.gz`` files. When given, no other place is searched.
        mirrors: base URLs to download from instead of the official mirrors (used by the tests).

    Returns:
        A :class:`Dataset` ``(X_train, y_train, X_test, y_test)``; class names are in
        :data:`FASHION_MNIST_CLASSES`.

    Example:
        >>> X_train, y_train, X_test, y_test = load_fashion_mnist()
        >>> X_train.shape, X_train.dtype, y_train[:3]
        ((60000, 28, 28), dtype('uint8'), array([9, 0, 0]))
    """
    return _load(FASHION_MNIST, root, mirrors)


def load_mnist(root: str | os.PathLike | None = None, *,
               mirrors: Sequence[str] | None = None) -> Dataset:
    """Load MNIST handwritten digits: 70,000 greyscale 28x28 images, labels 0..9.

    Same arguments and return value as :func:`load_fashion_mnist`.
    """
    return _load(MNIST, root, mirrors)


def train_val_split(X: np.ndarray, y: np.ndarray, val_size: int | float = 0.1,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split a training set into a training part and a validation part at random.

    Args:
        X: inputs of shape (N, ...).
        y: labels of shape (N,).
        val_size: number of validation examples, or a fraction of N.
        seed: seed of the shuffle, so the split is the same on every run.

    Returns:
        ``X_train, y_train, X_val, y_val``.
    """
    n = len(X)
    n_val = int(round(val_size * n)) if isinstance(val_size, float) else int(val_size)
    if not 0 < n_val < n:
        raise ValueError(f"val_size={val_size!r} leaves no training or no validation data out of {n} examples")
    order = np.random.default_rng(seed).permutation(n)
    val, train = order[:n_val], order[n_val:]
    return X[train], y[train], X[val], y[val]


# ---------------------------------------------------------------------------------------------------------------
# Finding, verifying, downloading


def cache_dir(dataset: str) -> Path:
    """The per-user cache folder of one dataset: ``$DLCOURSE_CACHE/<dataset>`` or ``~/.cache/dlcourse/<dataset>``."""
    base = os.environ.get("DLCOURSE_CACHE")
    if base:
        return Path(base).expanduser() / dataset
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "dlcourse" / dataset


def _load(spec: _Spec, root, mirrors) -> Dataset:
    folder = _locate(spec, root, mirrors)
    arrays = [_read_idx(folder / f.name, f) for f in spec.files]
    X_train, y_train, X_test, y_test = arrays
    return Dataset(X_train, y_train.astype(np.int64), X_test, y_test.astype(np.int64))


def _candidates(spec: _Spec) -> list[Path]:
    places = []
    env = os.environ.get("DLCOURSE_DATA")
    if env:
        places += [Path(env).expanduser() / spec.name, Path(env).expanduser()]
    if spec.system_dir is not None:
        places.append(spec.system_dir)
    places.append(cache_dir(spec.name))
    return places


def _has_all(folder: Path, spec: _Spec) -> bool:
    return all((folder / f.name).is_file() for f in spec.files)


def _locate(spec: _Spec, root, mirrors) -> Path:
    if root is not None:
        folder = Path(root).expanduser()
        missing = [f.name for f in spec.files if not (folder / f.name).is_file()]
        if missing:
            raise DatasetError(
                f"{spec.title}: root={str(folder)!r} does not contain {', '.join(missing)}. "
                f"Pass the folder that holds the four *-ubyte.gz files, or leave root unset to search the "
                f"usual places.")
        return folder
    for folder in _candidates(spec):
        if _has_all(folder, spec):
            return folder
    return _download(spec, cache_dir(spec.name), mirrors or spec.mirrors)


def _download(spec: _Spec, target: Path, mirrors: Sequence[str]) -> Path:
    failures: list[str] = []
    for f in spec.files:
        if (target / f.name).is_file():
            continue
        for base in mirrors:
            url = base.rstrip("/") + "/" + f.name
            try:
                _fetch_verified(url, target / f.name, f.gz_sha256)
                break
            except (OSError, urllib.error.URLError, DatasetError) as error:
                failures.append(f"{url}: {error}")
        else:
            raise DatasetError(_not_found_message(spec, failures))
    return target


def _fetch_verified(url: str, destination: Path, sha256: str, timeout: float = 60.0) -> None:
    """Download ``url`` to ``destination`` only if its SHA-256 matches; the write is atomic."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=destination.name + ".", suffix=".part", dir=destination.parent)
    try:
        with os.fdopen(fd, "wb") as tmp, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                tmp.write(chunk)
        if digest.hexdigest() != sha256:
            raise DatasetError(f"checksum mismatch (got sha256 {digest.hexdigest()[:12]}..., "
                               f"expected {sha256[:12]}...): corrupt or truncated download, discarded")
        os.replace(tmp_name, destination)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _not_found_message(spec: _Spec, failures: list[str]) -> str:
    searched = "\n".join(f"  - {p}" for p in _candidates(spec))
    tried = "\n".join(f"  - {line}" for line in failures[-6:])
    debian = ("  * on Debian or Ubuntu: sudo apt-get install dataset-fashion-mnist\n"
              if spec.system_dir is not None else "")
    return (
        f"{spec.title} is not available: no local copy was found and the download failed.\n"
        f"Searched:\n{searched}\nDownload attempts:\n{tried}\n"
        f"To fix this, do one of:\n{debian}"
        f"  * copy the four files ({', '.join(f.name for f in spec.files)}) into a folder and set "
        f"DLCOURSE_DATA to it, or pass root=...\n"
        f"  * connect to the internet and run again: the files are downloaded once into {cache_dir(spec.name)}"
    )


def _read_idx(path: Path, spec: _File) -> np.ndarray:
    """Read and verify one gzipped IDX file; raise DatasetError on any mismatch."""
    packed = path.read_bytes()
    if hashlib.sha256(packed).hexdigest() != spec.gz_sha256:
        try:
            raw = gzip.decompress(packed)
        except (OSError, EOFError) as error:
            raise DatasetError(f"{path} is not a valid gzip file ({error}): corrupt or truncated. "
                               f"Delete it and load again.") from error
        if spec.raw_sha256 is None or hashlib.sha256(raw).hexdigest() != spec.raw_sha256:
            raise DatasetError(f"{path} does not match the published dataset (SHA-256 mismatch): corrupt, "
                               f"truncated or a different file. Delete it and load again.")
    else:
        raw = gzip.decompress(packed)
    return _parse_idx(raw, spec.shape, path)


def _parse_idx(raw: bytes, shape: tuple[int, ...], path: Path) -> np.ndarray:
    # IDX header: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions,
    # then one big-endian uint32 per dimension.
    ndim = len(shape)
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:3] != b"\x00\x00\x08" or raw[3] != ndim:
        raise DatasetError(f"{path}: not an unsigned-byte IDX file with {ndim} dimensions")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if dims != shape or len(raw) != header + int(np.prod(shape)):
        raise DatasetError(f"{path}: header says {dims} with {len(raw) - header} bytes of data, "
                           f"expected {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()

