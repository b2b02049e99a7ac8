"""Prompt-template selection: the "models" are prompt templates for one LLM.

Smoothie needs only several outputs per input, so it can choose among m prompts as well
as among m models (the paper's second use). Here one LLM answered 600 inputs under 4
templates, simulated from the paper's Gaussian model with template-specific quality:
step-by-step helps on the maths inputs, few-shot on the factual ones. Global picks one
template for all; Local picks one per input from its 20 nearest inputs.
"""

import jax
import jax.numpy as jnp

import smoothie_jax as sj

TEMPLATES = ("plain", "step_by_step", "few_shot", "persona")
TASKS = ("maths", "facts")
# True quality theta (1 / (2 x error variance per axis)) of each template on each task.
task_theta = jnp.array([[1.0, 4.0, 1.5, 0.7], [1.5, 1.0, 3.0, 0.9]])
outputs, inputs, task = sj.simulate_tasks(
    jax.random.key(0), task_theta, n_samples=600, dim=16, input_dim=32
)
true_theta = task_theta[task]  # (600, 4)

smoothie_global = sj.fit_global(outputs)
smoothie_local = sj.fit_local(outputs, inputs, k=20)
print("weights    " + "".join(f"{name:>13s}" for name in TEMPLATES))
print("Global     " + "".join(f"{w:13.3f}" for w in smoothie_global.weights))
for t, name in enumerate(TASKS):
    weights = jnp.mean(smoothie_local.weights[task == t], axis=0)
    print(f"Local {name:<5s}" + "".join(f"{w:13.3f}" for w in weights))

best = jnp.argmax(true_theta, axis=-1)
picks = {
    "Global (one template)": jnp.broadcast_to(smoothie_global.route(), best.shape),
    "Local (per input)": smoothie_local.route(),
}
for name, pick in picks.items():
    hit = float(jnp.mean(pick == best))
    error = float(jnp.mean(1 / (2 * jnp.take_along_axis(true_theta, pick[:, None], axis=1))))
    print(f"{name:<22s} best template for {100 * hit:5.1f}% of inputs, error var {error:.3f}")
print(f"{'Oracle':<22s} error var {float(jnp.mean(1 / (2 * true_theta.max(-1)))):.3f}")
