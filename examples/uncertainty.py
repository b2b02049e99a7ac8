"""Routing under uncertainty on the quiz: how sure is Smoothie, and what does a call cost?

A Local posterior (k = 20 nearest questions) gives, per question, each model's
probability of being the best. Below a threshold the router abstains and falls back to
the default model, Smoothie-Global's choice. Cost-aware routing trades expected quality
(the posterior mean of each model's normalised weight) against a made-up price per call.
Scores (1 right, 0 wrong) are read only to check the routing.
"""

from pathlib import Path

import jax
import numpy as np

import smoothie_jax as sj

# Made-up price per call: the two specialists are dear, the weak models cheap.
COSTS = {"careful": 5.0, "calculator": 3.0, "decent": 2.0, "sloppy": 0.5, "offtopic": 0.1}

data = sj.data.read_routing(Path(__file__).parent / "data" / "quiz.jsonl")
models, scores = data.models, data.scores
n, m = len(data), len(models)
outputs = sj.text.embed([text for row in data.outputs for text in row]).reshape(n, m, -1)
inputs = sj.text.embed(data.instructions)
posterior = sj.posterior.fit_posterior(outputs, inputs=inputs, k=20, key=jax.random.key(0))
prob_best = np.asarray(posterior.prob_best)
default = int(sj.fit_global(outputs).route())
print(f"Default model (Smoothie-Global): {models[default]}\n")

choice, abstained = map(np.asarray, sj.posterior.abstain(posterior, threshold=0.6, default=default))
for i in range(0, n, 6):
    j = int(np.argmax(prob_best[i]))
    action = f"abstains -> {models[default]}" if abstained[i] else "routes"
    print(f"{data.instructions[i]:<42s} {models[j]:<10s} P(best) {prob_best[i, j]:.3f} {action}")

rows = np.arange(n)
print(
    f"\n{'threshold':>9s} {'abstained':>9s} {'accuracy on routed':>18s} {'all, with fallback':>18s}"
)
for threshold in (0.0, 0.5, 0.7, 0.9):
    choice, abstained = map(
        np.asarray, sj.posterior.abstain(posterior, threshold=threshold, default=default)
    )
    routed = ~abstained
    on_routed = scores[rows[routed], choice[routed]].mean() if routed.any() else float("nan")
    print(
        f"{threshold:9.1f} {100 * abstained.mean():8.0f}% {on_routed:18.3f} "
        f"{scores[rows, choice].mean():18.3f}"
    )

cost = np.array([COSTS[name] for name in models])
print(f"\n{'tradeoff':>8s} {'mean cost':>9s} {'accuracy':>8s}  calls per model")
for tradeoff in (0.0, 0.02, 0.04, 0.06, 1.0):
    choice = np.asarray(sj.posterior.cost_aware(posterior, cost, tradeoff=tradeoff))
    calls = ", ".join(f"{models[j]} {c}" for j, c in zip(*np.unique(choice, return_counts=True)))
    print(f"{tradeoff:8.2f} {cost[choice].mean():9.2f} {scores[rows, choice].mean():8.3f}  {calls}")
