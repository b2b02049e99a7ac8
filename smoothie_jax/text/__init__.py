"""Text: sentence embeddings of inputs and outputs (offline), and their on-disk cache.

The cache is one SQLite file, `$SMOOTHIE_JAX_CACHE/embeddings.sqlite3` (default
`~/.cache/smoothie_jax/embeddings.sqlite3`); `cache_file()` says where. A router records
the model that embedded its past inputs (`describe_embedder`), and embeds new queries
with that model only (`text_encoder`).

Models: "minilm" (the default, all-MiniLM-L6-v2), "mpnet" (the paper's, after
`prepare_mpnet`), a local sentence-transformers folder, or a faster variant of MiniLM
prepared locally on first use: "minilm-onnx" (the same vectors through ONNX Runtime),
"minilm-int8" (int8 matrix products) and "minilm-static" (a distilled token table).
Each is a model of its own in the cache and in a router's record.

>>> import smoothie_jax as sj
>>> sj.text.embed(["The cat sat."]).shape
(1, 384)
"""

from ._cache import cache_file as cache_file
from ._cache import default_cache_dir as default_cache_dir
from ._embed import EmbedStats as EmbedStats
from ._embed import embed as embed
from ._embed import embed_with_stats as embed_with_stats
from ._encoder import TextEncoder as TextEncoder
from ._encoder import describe_embedder as describe_embedder
from ._encoder import text_encoder as text_encoder
from ._models import resolve_model as resolve_model
from ._mpnet import prepare_mpnet as prepare_mpnet
from ._texts import clean_generation as clean_generation

__all__ = [
    "EmbedStats",
    "TextEncoder",
    "cache_file",
    "clean_generation",
    "default_cache_dir",
    "describe_embedder",
    "embed",
    "embed_with_stats",
    "prepare_mpnet",
    "resolve_model",
    "text_encoder",
]
