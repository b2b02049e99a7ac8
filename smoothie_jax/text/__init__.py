"""Text: sentence embeddings of inputs and outputs (offline), and their on-disk cache.

The cache is one SQLite file, `$SMOOTHIE_JAX_CACHE/embeddings.sqlite3` (default
`~/.cache/smoothie_jax/embeddings.sqlite3`); `default_cache_dir()` says where.

>>> import smoothie_jax as sj
>>> sj.text.embed(["The cat sat."]).shape
(1, 384)
"""

from ._cache import default_cache_dir as default_cache_dir
from ._embed import EmbedStats as EmbedStats
from ._embed import embed as embed
from ._embed import embed_with_stats as embed_with_stats
from ._mpnet import prepare_mpnet as prepare_mpnet
from ._texts import clean_generation as clean_generation

__all__ = [
    "EmbedStats",
    "clean_generation",
    "default_cache_dir",
    "embed",
    "embed_with_stats",
    "prepare_mpnet",
]
