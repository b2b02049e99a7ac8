"""Writes the quiz example data: short questions with known answers and five fake models.

    python examples/data/make_quiz.py          # rewrites quiz*.jsonl beside this script

The models differ in how often they are right: careful ~95%, decent ~75%, sloppy ~50%,
confused ~25% (otherwise a plausible wrong answer) and offtopic (rambles, right ~10%).
Right answers agree in content while each wrong answer to a question is a different wrong
value: the agreement Smoothie exploits. Answers reuse the same sentence templates whether
right or wrong, so phrasing never gives the answer away. Deterministic: a fixed seed and
no set iteration.

Files (routing format; see `smoothie_jax._data`):
    quiz.jsonl          60 inputs with outputs, 0/1 scores and a reference_output.
    quiz_train.jsonl    150 more, same style, for train-time routing.
    quiz_queries.jsonl  30 instructions only.
Every question is unique across the three files.
"""

from __future__ import annotations

import random
from pathlib import Path

from smoothie_jax._data import write_jsonl

SEED = 20240607
N_TEST, N_TRAIN, N_QUERIES = 60, 150, 30
# P(right answer) per model; dict order is the column order in the files.
MODELS = {"careful": 0.95, "decent": 0.75, "sloppy": 0.5, "confused": 0.25, "offtopic": 0.1}
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
    smooth=rough
""")

SPELLINGS = """
    necessary separate definitely receive believe tomorrow calendar accommodate embarrass
    occurrence rhythm restaurant government environment business beginning knowledge weird
    guarantee humorous argument conscience disappear existence grammar immediately
    independent maintenance noticeable occasion privilege recommend surprise tongue vacuum
    committee address foreign
""".split()

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
PREFIXES = ["", "", "", "Sure. ", "OK. ", "Good question. "]


def _spelling_mistakes(word: str) -> list[str]:
    """Plausible misspellings: a doubled or undoubled letter, a swap, a vowel change."""
    out: list[str] = []
    for i in range(len(word)):
        out.append(word[:i] + word[i] + word[i:])  # double a letter
        if i + 1 < len(word) and word[i] == word[i + 1]:
            out.append(word[:i] + word[i + 1 :])  # undouble
        if i + 1 < len(word) and word[i] != word[i + 1]:
            out.append(word[:i] + word[i + 1] + word[i] + word[i + 2 :])  # swap
        if word[i] in "aeiou":
            for v in "aeiou":
                if v != word[i]:
                    out.append(word[:i] + v + word[i + 1 :])
    return sorted({w for w in out if w != word})  # sorted: a fixed order before sampling


def _questions(rng: random.Random) -> list[dict]:
    """Every question: instruction, task, right answer, wrong answers, sentence templates."""
    qs: list[dict] = []

    capitals = [c for _, c in CAPITALS]
    for country, capital in CAPITALS:
        wrong = [c for c in capitals if c != capital] + NOT_CAPITALS
        q = rng.choice(["What is the capital of {c}?", "Name the capital city of {c}."])
        qs.append(
            dict(
                task="capital",
                instruction=q.format(c=country),
                right=capital,
                wrong=wrong,
                forms=[
                    f"The capital of {country} is {{a}}.",
                    "{a}.",
                    f"{{a}} is the capital of {country}.",
                    "It's {a}.",
                    f"{country}'s capital city is {{a}}.",
                ],
            )
        )

    meanings = [d for _, d in DEFINITIONS]
    for word, meaning in DEFINITIONS:
        q = rng.choice(["What does '{w}' mean?", "Define the word '{w}'."])
        qs.append(
            dict(
                task="definition",
                instruction=q.format(w=word),
                right=meaning,
                wrong=[d for d in meanings if d != meaning],
                forms=[
                    f"'{word.capitalize()}' means {{a}}.",
                    "It means {a}.",
                    f"The word '{word}' means {{a}}.",
                ],
            )
        )

    antonyms = [b for _, b in OPPOSITES] + [a for a, _ in OPPOSITES]
    for word, opposite in OPPOSITES:
        q = rng.choice(["What is the opposite of '{w}'?", "Give an antonym of '{w}'."])
        qs.append(
            dict(
                task="opposite",
                instruction=q.format(w=word),
                right=opposite,
                wrong=sorted({a for a in antonyms if a not in (word, opposite)}),
                forms=[
                    f"The opposite of '{word}' is '{{a}}'.",
                    "'{a}'.",
                    f"'{{a}}' is the opposite of '{word}'.",
                    f"An antonym of '{word}' is '{{a}}'.",
                ],
            )
        )

    for word in SPELLINGS:
        mistakes = _spelling_mistakes(word)
        shown = rng.choice(mistakes)
        qs.append(
            dict(
                task="spelling",
                instruction=f"Correct the spelling of '{shown}'.",
                right=word,
                wrong=mistakes,
                forms=[
                    "The correct spelling is '{a}'.",
                    "It is spelled '{a}'.",
                    "'{a}'.",
                    "You spell it '{a}'.",
                ],
            )
        )

    seen: set[str] = set()
    while sum(q["task"] == "arithmetic" for q in qs) < 60:
        op = rng.choice(["plus", "minus", "times"])
        if op == "times":
            x, y = rng.randint(3, 15), rng.randint(3, 15)
            ans = x * y
        else:
            x, y = rng.randint(11, 99), rng.randint(11, 99)
            x, y = (x, y) if op == "plus" or x >= y else (y, x)
            ans = x + y if op == "plus" else x - y
        instruction = rng.choice(["What is {x} {op} {y}?", "Compute {x} {op} {y}."]).format(
            x=x, op=op, y=y
        )
        if instruction in seen:
            continue
        seen.add(instruction)
        wrong = [ans + d for d in range(-12, 13) if d and ans + d >= 0]
        qs.append(
            dict(
                task="arithmetic",
                instruction=instruction,
                right=str(ans),
                wrong=[str(w) for w in wrong],
                forms=[
                    f"{x} {op} {y} is {{a}}.",
                    "The answer is {a}.",
                    f"{x} {op} {y} equals {{a}}.",
                    "That comes to {a}.",
                    "{a}.",
                ],
            )
        )

    while sum(q["task"] == "conversion" for q in qs) < 50:
        src, dst, factor = rng.choice(CONVERSIONS)
        v = rng.randint(2, 12)
        instruction = f"How many {dst} are in {v} {src}?"
        if instruction in seen:
            continue
        seen.add(instruction)
        ans = v * factor
        # Typical slips: a factor of ten, a neighbouring factor, or an arithmetic slip.
        wrong = {ans * 10, ans // 10, v * (factor + 1), v * (factor - 1), ans + factor}
        wrong |= {ans + d for d in (-4, -2, 2, 4)}
        qs.append(
            dict(
                task="conversion",
                instruction=instruction,
                right=str(ans),
                wrong=[str(w) for w in sorted(wrong) if w > 0 and w != ans],
                forms=[
                    f"There are {{a}} {dst} in {v} {src}.",
                    f"{v} {src} is {{a}} {dst}.",
                    f"That is {{a}} {dst}.",
                    f"{{a}} {dst}.",
                ],
            )
        )
    return qs


def _answer(rng: random.Random, q: dict, value: str) -> str:
    text = rng.choice(q["forms"]).format(a=value)
    return rng.choice(PREFIXES) + text[0].upper() + text[1:]


def _row(rng: random.Random, idx: int, q: dict) -> dict:
    # Each wrong model draws a different wrong value: wrong answers scatter, right ones agree.
    wrong = q["wrong"][:]
    rng.shuffle(wrong)
    outputs, scores = {}, {}
    for model, p_right in MODELS.items():
        right = rng.random() < p_right
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
    qs = _questions(rng)
    assert len({q["instruction"] for q in qs}) == len(qs), "questions must be unique"
    rng.shuffle(qs)
    test, train = qs[:N_TEST], qs[N_TEST : N_TEST + N_TRAIN]
    queries = qs[N_TEST + N_TRAIN : N_TEST + N_TRAIN + N_QUERIES]
    assert len(queries) == N_QUERIES, f"only {len(qs)} questions"
    files: dict[str, list[dict]] = {
        "quiz.jsonl": [_row(rng, i, q) for i, q in enumerate(test)],
        "quiz_train.jsonl": [_row(rng, i, q) for i, q in enumerate(train)],
        "quiz_queries.jsonl": [
            {"idx": i, "instruction": q["instruction"], "task": q["task"]}
            for i, q in enumerate(queries)
        ],
    }
    for name, rows in files.items():
        write_jsonl(out_dir / name, rows)
        print(f"wrote {len(rows)} lines to {out_dir / name}")


if __name__ == "__main__":
    main()
