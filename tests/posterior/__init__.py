"""Tests of `smoothie_jax.posterior`: the `Posterior` draws, `fit_posterior` (the additive
posterior and the Wishart model), the SPD algebra, the policies and `certainty`, one file
per module (a package: its basenames may repeat those of other test folders)."""
