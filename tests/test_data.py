"""dlcourse.data: where datasets are found, how downloads are verified, and what errors say."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import shutil
import socket
import threading

import numpy as np
import pytest

from dlcourse import data
from dlcourse.data import DatasetError, _File, _Spec, load_fashion_mnist, train_val_split

SYSTEM_COPY = data.DEBIAN_FASHION_MNIST
needs_system_copy = pytest.mark.skipif(not SYSTEM_COPY.is_dir(),
                                       reason="Debian package dataset-fashion-mnist is not installed")


def idx_bytes(array: np.ndarray) -> bytes:
    header = b"\x00\x00\x08" + bytes([array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def tiny_dataset(tmp_path, monkeypatch):
    """A four-file dataset in IDX format with its own checksums, and an empty user cache."""
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 28, 28)),
              "train-labels-idx1-ubyte.gz": rng.integers(0, 10, (6,)),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (2, 28, 28)),
              "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, (2,))}
    files, blobs = [], {}
    for name, array in arrays.items():
        raw = idx_bytes(array)
        blobs[name] = gzip.compress(raw, mtime=0)
        files.append(_File(name, array.shape, hashlib.sha256(blobs[name]).hexdigest(),
                           hashlib.sha256(raw).hexdigest()))
    spec = _Spec("tiny", "Tiny", mirrors=(), files=tuple(files), system_dir=None)
    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DLCOURSE_DATA", raising=False)
    return spec, blobs, arrays


class Mirror:
    """A loopback HTTP server that serves given bytes by file name, and counts requests."""

    def __init__(self, blobs: dict[str, bytes]):
        self.blobs, self.requests = blobs, []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                mirror.requests.append(name)
                body = mirror.blobs.get(name)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/data/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirrors():
    started = []
    yield lambda blobs: started.append(Mirror(blobs)) or started[-1]
    for mirror in started:
        mirror.close()


def dead_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_verifies_and_caches(tiny_dataset, mirrors):
    """Is a good download verified, written to the cache, and then used without the network?"""
    spec, blobs, arrays = tiny_dataset
    mirror = mirrors(blobs)
    ds = data._load(spec, None, [mirror.url])
    assert np.array_equal(ds.X_train, arrays["train-images-idx3-ubyte.gz"])
    assert ds.y_test.dtype == np.int64 and ds.X_train.dtype == np.uint8
    cached = data.cache_dir("tiny")
    assert sorted(p.name for p in cached.iterdir()) == sorted(blobs)   # no leftover .part files
    mirror.requests.clear()
    data._load(spec, None, [dead_url()])
    assert mirror.requests == []


def test_dead_mirror_falls_back_to_the_next(tiny_dataset, mirrors):
    """When the first mirror refuses connections, is the second one used?"""
    spec, blobs, _ = tiny_dataset
    good = mirrors(blobs)
    ds = data._load(spec, None, [dead_url(), good.url])
    assert ds.X_test.shape == (2, 28, 28)
    assert len(good.requests) == 4


def test_corrupt_download_is_rejected_and_not_cached(tiny_dataset, mirrors):
    """Is a download with the wrong checksum discarded, trying the next mirror, and reported if all fail?"""
    spec, blobs, _ = tiny_dataset
    corrupt = {name: blob[:-10] for name, blob in blobs.items()}   # truncated files
    bad = mirrors(corrupt)
    with pytest.raises(DatasetError, match="checksum mismatch"):
        data._load(spec, None, [bad.url])
    assert not any(data.cache_dir("tiny").glob("*")), "a corrupt download must not stay in the cache"
    good = mirrors(blobs)
    assert data._load(spec, None, [bad.url, good.url]).X_train.shape == (6, 28, 28)


def test_offline_without_a_copy_says_what_to_do(tiny_dataset):
    """With no local copy and no network, is there one clear error that says what to install or set?"""
    spec, _, _ = tiny_dataset
    with pytest.raises(DatasetError) as error:
        data._load(spec, None, [dead_url()])
    message = str(error.value)
    assert "DLCOURSE_DATA" in message and "root=" in message and "Download attempts" in message


def test_offline_fashion_mnist_error_names_the_debian_package(monkeypatch, tmp_path):
    """Does the Fashion-MNIST error name the Debian package when no copy is found offline?"""
    monkeypatch.setattr(data, "FASHION_MNIST", data.FASHION_MNIST.__class__(
        **{**data.FASHION_MNIST.__dict__, "system_dir": tmp_path / "absent"}))
    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DLCOURSE_DATA", raising=False)
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(mirrors=[dead_url()])


def test_truncated_local_file_is_detected(tiny_dataset, tmp_path):
    """Is a truncated file in a local folder refused with a message, never silently used?"""
    spec, blobs, _ = tiny_dataset
    folder = tmp_path / "local"
    folder.mkdir()
    for name, blob in blobs.items():
        (folder / name).write_bytes(blob)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(blobs["train-images-idx3-ubyte.gz"][:500])
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        data._load(spec, folder, None)


def test_recompressed_local_copy_is_accepted(tiny_dataset, tmp_path):
    """Is a copy with other gzip bytes but the same content (as Debian ships) accepted?"""
    spec, blobs, arrays = tiny_dataset
    folder = tmp_path / "recompressed"
    folder.mkdir()
    for name, blob in blobs.items():
        (folder / name).write_bytes(gzip.compress(gzip.decompress(blob), compresslevel=1, mtime=12345))
    assert np.array_equal(data._load(spec, folder, None).y_train, arrays["train-labels-idx1-ubyte.gz"])


def test_explicit_root_without_files_is_an_error(tmp_path):
    """Does root= pointing at an empty folder fail, naming the missing files, instead of searching elsewhere?"""
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz"):
        load_fashion_mnist(root=tmp_path)


@needs_system_copy
def test_fashion_mnist_from_the_system_copy():
    """Does the Debian copy load with the documented shapes, dtypes and labels?"""
    X_train, y_train, X_test, y_test = load_fashion_mnist()
    assert X_train.shape == (60000, 28, 28) and X_test.shape == (10000, 28, 28)
    assert X_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert set(np.unique(y_train)) == set(range(10)) and y_train[:3].tolist() == [9, 0, 0]


@needs_system_copy
def test_dlcourse_data_variable_takes_precedence(tmp_path, monkeypatch):
    """Is $DLCOURSE_DATA/<dataset>/ searched before the system copy?"""
    folder = tmp_path / "fashion-mnist"
    shutil.copytree(SYSTEM_COPY, folder)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not a dataset")
    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path))
    with pytest.raises(DatasetError, match=str(folder)):
        load_fashion_mnist()


def test_train_val_split_is_a_seeded_partition():
    """Is the split a partition of the examples, the same for the same seed?"""
    X, y = np.arange(20).reshape(10, 2), np.arange(10)
    X_tr, y_tr, X_val, y_val = train_val_split(X, y, val_size=0.3, seed=1)
    assert len(y_val) == 3 and sorted(np.concatenate([y_tr, y_val]).tolist()) == list(range(10))
    assert np.array_equal(train_val_split(X, y, 0.3, seed=1)[3], y_val)
    with pytest.raises(ValueError):
        train_val_split(X, y, val_size=10)
