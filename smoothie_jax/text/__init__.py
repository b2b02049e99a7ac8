"""Text: sentence embeddings of inputs and outputs (offline), and their on-disk cache.

The cache is one SQLite file, `$SMOOTHIE_JAX_CACHE/embeddings.sqlite3` (default
`~/.cache/smoothie_jax/embeddings.sqlite3`); `cache_file()` says where. A router records
the model that embedded its past inputs (`describe_embedder`), and embeds new queries
with that model only (`text_encoder`).

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
