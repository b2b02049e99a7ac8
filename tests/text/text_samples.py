"""Texts shared by the tests of `smoothie_jax.text` (not a test module)."""

MINILM_DIM = 384
TEXTS = ["The cat sat on the mat.", "A dog ran in the park.", "Paris is in France."]
# ~2,000 word pieces: well past minilm's 256, so whole_text has something to average.
LONG = " ".join(f"Sentence {i} talks about apples, rivers and mountains." for i in range(200))
