"""Held-out data: the inputs and labels an open-ended assignment is scored on, available only to grading.

An assignment listed in :data:`HELDOUT` (today ``10-capstone``) is scored on a set that the student copy of the
course does not contain. The instructor provides it as one file in the grading folder, outside git::

    <grading folder>/heldout/<assignment>.npz     e.g. .grading/heldout/10-capstone.npz

an ``.npz`` of two arrays (read with ``allow_pickle=False``): ``images`` and ``labels``, of the shapes and types
the assignment's entry below states. ``grade`` stops with an error that says where to put it when it is missing
or malformed.

During grading the file is read by the trusted test runner only (:mod:`autograder.verdict`): its path reaches the
runner's environment as ``DLCOURSE_HELDOUT``, never the sandboxed kernel (whose environment is scrubbed and whose
file system holds neither the grading folder nor the runner). The hidden test passes the images to the student's
``predict`` through a proxy and compares the predictions with the labels on the trusted side, so the labels never
enter the student's process. That is why these assignments are graded only with the trusted runner and in the
sandbox; ``publish`` refuses a copy of the course that holds any held-out file or array
(:func:`find_heldout_copies`).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autograder.nbgrader_api import AutograderError, grading_dir

ENV = "DLCOURSE_HELDOUT"   # the variable that hands the file's path to the trusted runner (dlcourse.heldout)


@dataclass(frozen=True)
class HeldoutSpec:
    image_shape: tuple[int, ...]   # the shape of one input
    classes: int                   # labels are integers in 0 .. classes - 1
    min_examples: int              # fewer cannot measure an accuracy to a point


HELDOUT = {"10-capstone": HeldoutSpec(image_shape=(28, 28), classes=10, min_examples=500)}


def needs_heldout(assignment: str) -> bool:
    return assignment in HELDOUT


def heldout_path(assignment: str) -> Path:
    """Where the instructor puts the held-out set of ``assignment``."""
    return grading_dir() / "heldout" / f"{assignment}.npz"


def validate(path: Path, spec: HeldoutSpec) -> tuple[np.ndarray, np.ndarray]:
    """Read and check a held-out file; return ``(images, labels)`` or raise :class:`AutograderError` saying what
    is wrong."""
    fix = "see \"Held-out data\" in the README's instructor section"
    if not path.is_file():
        raise AutograderError(f"the held-out set is missing: put it at {path} ({fix})")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"images", "labels"} - set(data.files)
            if missing:
                raise AutograderError(f"{path} lacks the array(s) {', '.join(sorted(missing))} ({fix})")
            images, labels = data["images"], data["labels"]
    except AutograderError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise AutograderError(f"{path} is not a readable .npz of arrays ({type(error).__name__}: {error}); "
                            f"{fix}") from None
    n = len(labels) if labels.ndim == 1 else -1
    if images.dtype != np.uint8 or images.shape[1:] != spec.image_shape or len(images) != n:
        raise AutograderError(f"{path}: expected uint8 images of shape (N, {', '.join(map(str, spec.image_shape))}) "
                            f"and integer labels of shape (N,), found {images.dtype} {images.shape} and "
                            f"{labels.dtype} {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= spec.classes:
        raise AutograderError(f"{path}: labels must be integers in 0..{spec.classes - 1}")
    if n < spec.min_examples:
        raise AutograderError(f"{path}: {n} examples; at least {spec.min_examples} are needed to grade accuracy")
    return images, labels


def require(assignment: str, verdict: str, sandboxed: bool) -> Path | None:
    """The checked held-out file of ``assignment`` (None when it needs none); raise :class:`AutograderError` when it
    cannot be graded safely: the file is missing or malformed, the tests would run in the student's kernel, or
    there is no sandbox (the kernel could read the grading folder)."""
    spec = HELDOUT.get(assignment)
    if spec is None:
        return None
    path = heldout_path(assignment)
    validate(path, spec)
    if verdict == "kernel":
        raise AutograderError(f"{assignment} is scored on held-out data: its tests run in the trusted runner only "
                            f"(--verdict kernel would hand the held-out labels to the student's kernel)")
    if not sandboxed:
        raise AutograderError(f"{assignment} is scored on held-out data and needs the sandbox (bubblewrap): without "
                            f"it the student's code could read {heldout_path(assignment)}")
    path = heldout_path(assignment)
    validate(path, spec)
    return path


# -- publish: no held-out file or array in the student copy -------------------------------------------------------
def _digests(path: Path) -> set[str]:
    """SHA-256 of the file and, for an .npz or .npy, of each array in it (so a re-saved copy is found too)."""
    found = {hashlib.sha256(path.read_bytes()).hexdigest()}
    if path.suffix not in (".npz", ".npy"):
        return found
    try:
        if path.suffix == ".npy":
            arrays = [np.load(path, allow_pickle=False)]
        else:
            with np.load(path, allow_pickle=False) as loaded:
                arrays = [loaded[name] for name in loaded.files]
    except Exception:   # noqa: BLE001 - not an array file after all
        return found
    return found | {hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() for a in arrays}


# Code and pages may speak of held-out data (dlcourse/heldout.py): only a data file named like one is suspect.
TEXT_SUFFIXES = {".py", ".ipynb", ".md", ".html", ".css", ".js", ".yml", ".yaml", ".toml", ".cfg"}


def find_heldout_copies(dest: Path, folder: Path | None = None) -> list[str]:
    """Data files under ``dest`` named like a held-out file, and files holding one of the files of ``folder``
    (default: the grading folder's ``heldout/``) or one of their arrays; as ``"<file>: <why>"``."""
    folder = folder if folder is not None else grading_dir() / "heldout"
    secrets: dict[str, str] = {}
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        if path.is_file():
            secrets.update(dict.fromkeys(_digests(path), path.name))
    found = []
    for path in sorted(p for p in dest.rglob("*") if p.is_file() and ".git" not in p.relative_to(dest).parts):
        relative = path.relative_to(dest).as_posix()
        if path.suffix not in TEXT_SUFFIXES and "heldout" in path.name.lower().replace("-", "").replace("_", ""):
            found.append(f"{relative}: named like a held-out file")
        elif secrets and not path.is_symlink():
            same = _digests(path) & secrets.keys()
            if same:
                found.append(f"{relative}: holds {secrets[same.pop()]} (or one of its arrays)")
    return found


STAND_IN_SIZE = 2000


def stand_in_arrays(seed: int = 0, size: int = STAND_IN_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in for the capstone's held-out set, for the tests and ``bench/gpu_check.py``: ``size`` images (and
    labels) of Fashion-MNIST's test set, which the capstone's notebook never loads. Enough to grade, not secret (the
    test set is public): a course must score on images its students never had."""
    from dlcourse.data import load_fashion_mnist

    _, _, images, labels = load_fashion_mnist()
    keep = np.random.default_rng(seed).permutation(len(images))[:size]
    return images[keep], labels[keep]


def npz_bytes(images: np.ndarray, labels: np.ndarray, **extra: np.ndarray) -> bytes:
    """An .npz file's bytes in the format :func:`validate` reads (used by tests and by instructors' scripts)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images, labels=labels, **extra)
    return buffer.getvalue()
