"""Writes the quiz example data: short questions with known answers and five fake models.

    python examples/data/make_quiz.py          # rewrites quiz*.jsonl beside this script

The models have different strengths, so the best model depends on the input:

    P(right)     capital country definition opposite | arithmetic conversion
    careful        0.95    0.95     0.90      0.90   |    0.25       0.25
    calculator     0.25    0.25     0.30      0.30   |    0.95       0.95
    decent         0.75 everywhere
    sloppy         0.40 everywhere
    offtopic       0.10 everywhere; otherwise it rambles about something else

Half the questions are about words and places, half about numbers, so "decent" is the
best single model overall while the per-task best (careful on words, calculator on
numbers) is right far more often: the gap that per-input (Smoothie-Local) routing can
close and one global choice cannot. Each task asks its questions in its own phrasings,
so questions of one task are neighbours in sentence-embedding space. The rates are exact,
not drawn: of a file's n questions of a task, a model answers round(n * P) right.

Right answers agree in content (their phrasing varies a little) while each wrong answer
to a question is a different wrong value: the agreement Smoothie exploits. Answers reuse
the same sentence templates whether right or wrong, so phrasing never gives the answer
away. Deterministic: a fixed seed and no set iteration.

Why not spelling: MiniLM embeds different misspellings of a word close to each other
and far from the right spelling, so wrong answers would agree more than right ones
(Smoothie assumes independent errors). Numbers are embedded weakly, so number answers
keep their sentences short ("The answer is 53.") for the value to weigh.

Files (routing format; see `smoothie_jax.data._schema`), split per task in the same proportions:
    quiz.jsonl          60 inputs with outputs, 0/1 scores, a reference_output and a task.
    quiz_train.jsonl    150 more, same style, for train-time routing.
    quiz_queries.jsonl  30 instructions only, with their task and right answer.
Every question is unique across the three files.
"""

from __future__ import annotations

import random
from pathlib import Path

from smoothie_jax.data import write_jsonl

SEED = 20240607
# Questions per task (multiples of 8), split 2 : 5 : 1 into test, train and queries.
TASKS = {
    "capital": 40,
    "country": 40,
    "definition": 16,
    "opposite": 24,
    "arithmetic": 64,
    "conversion": 56,
}
SPLITS = {"quiz.jsonl": 2, "quiz_train.jsonl": 5, "quiz_queries.jsonl": 1}
# P(right answer) per model, in the task order of TASKS; dict order is the column order.
SKILL: dict[str, dict[str, float]] = {
    name: dict(zip(TASKS, p))
    for name, p in {
        "careful": (0.95, 0.95, 0.90, 0.90, 0.25, 0.25),
        "calculator": (0.25, 0.25, 0.30, 0.30, 0.95, 0.95),
        "decent": (0.75,) * 6,
        "sloppy": (0.40,) * 6,
        "offtopic": (0.10,) * 6,
    }.items()
}
RAMBLER = "offtopic"


def _pairs(table: str) -> list[tuple[str, str]]:
    """Parses "a=b; c=d" tables: compact to read, and stable under the formatter."""
    items = [item.split("=") for item in table.replace("\n", " ").split(";") if item.strip()]
    return [(a.strip(), b.strip()) for a, b in items]


CAPITALS = _pairs("""
    France=Paris; Germany=Berlin; Italy=Rome; Spain=Madrid; Portugal=Lisbon; Japan=Tokyo;
    Canada=Ottawa; Australia=Canberra; Brazil=Brasilia; Egypt=Cairo; Kenya=Nairobi;
    India=New Delhi; China=Beijing; Russia=Moscow; Mexico=Mexico City;
    Argentina=Buenos Aires; Peru=Lima; Chile=Santiago; Norway=Oslo; Sweden=Stockholm;
    Finland=Helsinki; Denmark=Copenhagen; Poland=Warsaw; Austria=Vienna; Greece=Athens;
    Turkey=Ankara; Ireland=Dublin; Switzerland=Bern; Netherlands=Amsterdam;
    Belgium=Brussels; Hungary=Budapest; Thailand=Bangkok; Vietnam=Hanoi;
    South Korea=Seoul; Indonesia=Jakarta; Nigeria=Abuja; Morocco=Rabat;
    New Zealand=Wellington; Cuba=Havana; Colombia=Bogota; Iran=Tehran; Czechia=Prague
""")
# Big cities that people mistake for capitals: the most plausible wrong answers.
NOT_CAPITALS = (
    "Sydney Toronto Istanbul Zurich Lagos Casablanca Auckland Mumbai Shanghai Barcelona "
    "Milan Munich Osaka Geneva"
).split()

DEFINITIONS = _pairs("""
    enormous=very large; tiny=very small; ancient=very old; rapid=very fast;
    fragile=easily broken; timid=shy and easily scared; furious=extremely angry;
    generous=willing to give freely; humble=modest about oneself; vivid=bright and intense;
    arid=very dry; frigid=very cold; weary=very tired; candid=honest and direct;
    obsolete=no longer in use; abundant=existing in large amounts; scarce=in short supply;
    brittle=hard but easily cracked; loyal=faithful to someone; gloomy=dark or sad;
    eager=keen to do something; vacant=empty or unoccupied;
    hostile=unfriendly and aggressive; fluent=able to speak smoothly and easily;
    nocturnal=active at night; edible=safe to eat; audible=loud enough to be heard;
    lenient=not strict; frugal=careful with money; serene=calm and peaceful
""")

OPPOSITES = _pairs("""
    hot=cold; tall=short; happy=sad; early=late; heavy=light; open=closed; rich=poor;
    young=old; empty=full; wet=dry; loud=quiet; hard=soft; thick=thin; clean=dirty;
    brave=cowardly; shallow=deep; ancient=modern; polite=rude; cheap=expensive;
    smooth=rough; near=far; fast=slow; strong=weak; win=lose; give=take; push=pull
""")

# Cities that are not capitals, and their country.
CITIES = _pairs("""
    Sydney=Australia; Melbourne=Australia; Toronto=Canada; Vancouver=Canada;
    Istanbul=Turkey; Zurich=Switzerland; Geneva=Switzerland; Lagos=Nigeria;
    Casablanca=Morocco; Auckland=New Zealand; Mumbai=India; Kolkata=India; Shanghai=China;
    Barcelona=Spain; Seville=Spain; Milan=Italy; Naples=Italy; Munich=Germany;
    Hamburg=Germany; Osaka=Japan; Kyoto=Japan; Marseille=France; Lyon=France;
    Porto=Portugal; Rio de Janeiro=Brazil; Chicago=United States; Krakow=Poland;
    Gothenburg=Sweden; Bergen=Norway; Rotterdam=Netherlands; Antwerp=Belgium;
    Salzburg=Austria; Thessaloniki=Greece; Alexandria=Egypt; Mombasa=Kenya;
    Cape Town=South Africa; Busan=South Korea; Chiang Mai=Thailand; Guadalajara=Mexico;
    Medellin=Colombia; Valparaiso=Chile; Cusco=Peru; Saint Petersburg=Russia;
    Manchester=United Kingdom
""")

# "from=to" unit pairs and the factor between them.
CONVERSIONS = [
    (src, dst, int(factor))
    for units, factor in _pairs("""
        metres centimetres=100; kilometres metres=1000; kilograms grams=1000;
        hours minutes=60; minutes seconds=60; days hours=24; feet inches=12; yards feet=3;
        weeks days=7; litres millilitres=1000; years months=12; centimetres millimetres=10
    """)
    for src, dst in [units.split()]
]
OPERATORS = {"plus": "+", "minus": "-", "times": "x"}

RAMBLES = [
    "Honestly, I have been thinking a lot about gardening lately.",
    "Did you know that octopuses have three hearts? Fascinating creatures.",
    "That reminds me of a trip I took to the seaside once. The weather was lovely.",
    "I prefer not to answer that, but have you tried the new bakery downtown?",
    "Let me tell you about my favourite board game instead.",
    "Questions like this make me think about the history of the printing press.",
    "Cats sleep for around sixteen hours a day, which sounds wonderful.",
    "Before we get to that, it is important to stay hydrated.",
    "I was just reading about volcanoes. Some of them are underwater!",
    "Interesting question. By the way, jazz music originated in New Orleans.",
    "Let's talk about something more fun, like the best pizza toppings.",
    "My cousin once asked me the same thing, and we ended up discussing chess.",
    "It's a beautiful day for a walk in the park, isn't it?",
    "I think the real question is why socks always go missing in the wash.",
    "Hmm. Bananas are technically berries, you know.",
]


def _question(task: str, instruction: str, right: str, wrong: list[str], forms: list[str]) -> dict:
    return dict(task=task, instruction=instruction, right=right, wrong=wrong, forms=forms)


def _capitals(rng: random.Random) -> list[dict]:
    capitals = [c for _, c in CAPITALS]
    ask = ["What is the capital city of {c}?", "Which city is the capital of {c}?"]
    return [
        _question(
            "capital",
            rng.choice(ask).format(c=country),
            capital,
            [c for c in capitals if c != capital] + NOT_CAPITALS,
            [
                f"The capital of {country} is {{a}}.",
                f"{{a}} is the capital of {country}.",
                f"{country}'s capital city is {{a}}.",
            ],
        )
        for country, capital in CAPITALS
    ]


def _countries(rng: random.Random) -> list[dict]:
    countries = sorted({c for _, c in CITIES} | {c for c, _ in CAPITALS})
    ask = ["In which country is the city of {c}?", "Which country is {c} in?"]
    return [
        _question(
            "country",
            rng.choice(ask).format(c=city),
            country,
            [c for c in countries if c != country],
            [f"{city} is in {{a}}.", f"{city} is a city in {{a}}.", "It is in {a}."],
        )
        for city, country in CITIES
    ]


def _definitions(rng: random.Random) -> list[dict]:
    meanings = [d for _, d in DEFINITIONS]
    ask = ["What does the word '{w}' mean?", "Define the word '{w}'."]
    return [
        _question(
            "definition",
            rng.choice(ask).format(w=word),
            meaning,
            [d for d in meanings if d != meaning],
            [f"'{word.capitalize()}' means {{a}}.", f"The word '{word}' means {{a}}."],
        )
        for word, meaning in DEFINITIONS
    ]


def _opposites(rng: random.Random) -> list[dict]:
    antonyms = [b for _, b in OPPOSITES] + [a for a, _ in OPPOSITES]
    ask = ["What is the opposite of '{w}'?", "Give an antonym of the word '{w}'."]
    return [
        _question(
            "opposite",
            rng.choice(ask).format(w=word),
            opposite,
            sorted({a for a in antonyms if a not in (word, opposite)}),
            [f"The opposite of '{word}' is '{{a}}'.", f"An antonym of '{word}' is '{{a}}'."],
        )
        for word, opposite in OPPOSITES
    ]


def _arithmetic(rng: random.Random, n: int) -> list[dict]:
    qs: list[dict] = []
    seen: set[str] = set()
    while len(qs) < n:
        op = rng.choice(list(OPERATORS))
        if op == "times":
            x, y = rng.randint(3, 15), rng.randint(3, 15)
            ans = x * y
        else:
            x, y = rng.randint(11, 99), rng.randint(11, 99)
            x, y = (x, y) if op == "plus" or x >= y else (y, x)
            ans = x + y if op == "plus" else x - y
        sym = OPERATORS[op]
        ask = ["Calculate {x} {sym} {y}.", "Compute {x} {op} {y}."]
        instruction = rng.choice(ask).format(x=x, y=y, op=op, sym=sym)
        if instruction in seen:
            continue
        seen.add(instruction)
        qs.append(
            _question(
                "arithmetic",
                instruction,
                str(ans),
                [str(ans + d) for d in range(-15, 16) if d and ans + d >= 0],
                ["The answer is {a}.", "Answer: {a}.", "It is {a}."],
            )
        )
    return qs


def _conversions(rng: random.Random, n: int) -> list[dict]:
    qs: list[dict] = []
    seen: set[str] = set()
    while len(qs) < n:
        src, dst, factor = rng.choice(CONVERSIONS)
        v = rng.randint(2, 12)
        ask = ["Convert {v} {src} to {dst}.", "How many {dst} are in {v} {src}?"]
        instruction = rng.choice(ask).format(v=v, src=src, dst=dst)
        if (v, src, dst) in seen:
            continue
        seen.add((v, src, dst))
        ans = v * factor
        # Typical slips: a factor of ten, a neighbouring factor, or an arithmetic slip.
        wrong = {ans * 10, ans // 10, v * (factor + 1), v * (factor - 1), ans + factor}
        wrong |= {ans - factor, ans * 2, ans // 2} | {ans + d for d in (-4, -2, 2, 4)}
        qs.append(
            _question(
                "conversion",
                instruction,
                str(ans),
                [str(w) for w in sorted(wrong) if w > 0 and w != ans],
                [f"The answer is {{a}} {dst}.", f"That is {{a}} {dst}.", f"It is {{a}} {dst}."],
            )
        )
    return qs


def _questions(rng: random.Random) -> dict[str, list[dict]]:
    """TASKS[task] questions of each task, in a random order."""
    pools = {
        "capital": _capitals(rng),
        "country": _countries(rng),
        "definition": _definitions(rng),
        "opposite": _opposites(rng),
        "arithmetic": _arithmetic(rng, TASKS["arithmetic"]),
        "conversion": _conversions(rng, TASKS["conversion"]),
    }
    out = {}
    for task, n in TASKS.items():
        assert len(pools[task]) >= n, f"only {len(pools[task])} {task} questions"
        rng.shuffle(pools[task])
        out[task] = pools[task][:n]
    return out


def _answer(rng: random.Random, q: dict, value: str) -> str:
    text = rng.choice(q["forms"]).format(a=value)
    return text[0].upper() + text[1:]


def _who_is_right(rng: random.Random, qs: list[dict]) -> list[dict[str, bool]]:
    """For each question, which models answer it right.

    Exact rates, random positions: of a file's n questions of a task, each model gets
    round(n * SKILL) right, so every file shows the skill table, not a noisy draw of it.
    """
    right: list[dict[str, bool]] = [{} for _ in qs]
    for task in TASKS:
        rows = [i for i, q in enumerate(qs) if q["task"] == task]
        for model, skill in SKILL.items():
            chosen = set(rng.sample(rows, round(len(rows) * skill[task])))
            for i in rows:
                right[i][model] = i in chosen
    return right


def _row(rng: random.Random, idx: int, q: dict, who_is_right: dict[str, bool]) -> dict:
    # Each wrong model draws a different wrong value: wrong answers scatter, right ones agree.
    wrong = q["wrong"][:]
    rng.shuffle(wrong)
    outputs, scores = {}, {}
    for model in SKILL:
        right = who_is_right[model]
        if right:
            outputs[model] = _answer(rng, q, q["right"])
        elif model == RAMBLER:
            outputs[model] = rng.choice(RAMBLES)
        else:
            outputs[model] = _answer(rng, q, wrong.pop())
        scores[model] = 1.0 if right else 0.0
    reference = q["forms"][0].format(a=q["right"])
    return {
        "idx": idx,
        "instruction": q["instruction"],
        "task": q["task"],
        "outputs": outputs,
        "scores": scores,
        "reference_output": reference[0].upper() + reference[1:],
    }


def main(out_dir: Path = Path(__file__).parent) -> None:
    rng = random.Random(SEED)
    by_task = _questions(rng)
    # Stratified split: every file holds each task in the proportions of TASKS.
    total = sum(SPLITS.values())
    split: dict[str, list[dict]] = {name: [] for name in SPLITS}
    for qs in by_task.values():
        start = 0
        for name, share in SPLITS.items():
            size = len(qs) * share // total
            split[name] += qs[start : start + size]
            start += size
    for qs in split.values():
        rng.shuffle(qs)
    everything = [q["instruction"] for qs in split.values() for q in qs]
    assert len(set(everything)) == len(everything), "questions must be unique"
    files: dict[str, list[dict]] = {}
    for name in ("quiz.jsonl", "quiz_train.jsonl"):
        qs = split[name]
        right = _who_is_right(rng, qs)
        files[name] = [_row(rng, i, q, r) for i, (q, r) in enumerate(zip(qs, right))]
    files["quiz_queries.jsonl"] = [
        {"idx": i, "instruction": q["instruction"], "task": q["task"], "answer": q["right"]}
        for i, q in enumerate(split["quiz_queries.jsonl"])
    ]
    for name, rows in files.items():
        write_jsonl(out_dir / name, rows)
        print(f"wrote {len(rows)} lines to {out_dir / name}")


if __name__ == "__main__":
    main()
