"""Train-time routing: learn from past outputs which model to call for a new instruction.

Fits `sj.fit_router` on quiz_train.jsonl (five models' answers to 150 past questions, no
labels used), saves and reloads it, then routes the 30 instructions of quiz_queries.jsonl
before any model has answered them. Labels serve only to check: the training scores give
the model that is best at each task, and each query line carries its task and answer.
"""

import tempfile
from pathlib import Path

import numpy as np

import smoothie_jax as sj

embed = sj.text.embed
DATA = Path(__file__).parent / "data"

train = sj.data.read_routing(DATA / "quiz_train.jsonl")
queries = sj.data.read_routing(DATA / "quiz_queries.jsonl", require_outputs=False)
n, m = len(train), len(train.models)
outputs = embed([text for row in train.outputs for text in row]).reshape(n, m, -1)
router = sj.fit_router(outputs, embed(train.instructions), k=20, models=train.models)

with tempfile.TemporaryDirectory() as tmp:  # a router is a small file: save it, load it
    sj.save_router(Path(tmp) / "quiz.router", router)
    router = sj.load_router(Path(tmp) / "quiz.router")
choice = np.asarray(router.route(embed(queries.instructions)))

tasks = np.array([e["task"] for e in train.extra])
best = {t: train.models[train.scores[tasks == t].mean(0).argmax()] for t in np.unique(tasks)}
hits = 0
for instruction, extra, j in zip(queries.instructions, queries.extra, choice):
    model, task = router.models[j], extra["task"]
    hits += model == best[task]
    mark = "best at task" if model == best[task] else f"(best: {best[task]})"
    print(f"{instruction:<48s} {task:<10s} answer {extra['answer']:<10s} -> {model} {mark}")
print(f"\nRouted to the model best at the query's task for {hits} of {len(choice)} queries.")
