"""What a text becomes before the model reads it: a cleaned generation, or pieces that fit.

`clean_generation` is the paper's cleaning of an LLM's decoded output (opt-in in `embed`,
`clean=True`); `split_long` cuts a text longer than the model reads into word-aligned
pieces for `embed(..., whole_text=True)`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

# Imported lazily (heavy): the suite's runtime checks skip annotations that name it.
if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Special tokens that leak into decoded generations: the paper's <pad>, <s>, </s>, </eos>,
# plus the common chat-template and BERT-style ones. End-of-text tokens become line breaks:
# what follows one (a next chat turn, say) is not part of the answer, and the first line is
# kept; the paper deletes them, which would glue "Yes.</s>user" into "Yes.user".
_END_TOKENS = re.compile(
    r"</s>|</?eos>|<\|(?:endoftext|eot_id|eom_id|im_end|end)\|>|<end_of_turn>|\[SEP\]",
    re.IGNORECASE,
)
_SPECIAL_TOKENS = re.compile(
    r"<\|[^|<>\s]{1,40}\|>"  # <|endoftext|>, <|eot_id|>, <|im_end|>, <|start_header_id|>
    r"|</?(?:s|pad|unk|eos|bos|mask|sep|cls)>"
    r"|<(?:start|end)_of_turn>"
    r"|\[(?:PAD|CLS|SEP|UNK|MASK|/?INST)\]",
    re.IGNORECASE,
)


def clean_generation(text: str) -> str:
    """The paper's cleaning of an LLM generation before it is embedded.

    Removes special tokens (`<s>`, `<pad>`, `[PAD]`, ...), ends a line at end-of-text
    tokens (`</s>`, `<|endoftext|>`, `<|eot_id|>`, ...), turns a literal backslash-n into
    a newline as the reference code does, and keeps the first non-empty line, stripped of
    surrounding whitespace.

    Args:
        text: one decoded generation.

    Returns:
        The cleaned text; "" if nothing is left.

    >>> clean_generation("<s> Paris is the capital.</s>\\nQuestion: next")
    'Paris is the capital.'
    """
    text = _END_TOKENS.sub("\n", text)
    text = _SPECIAL_TOKENS.sub("", text).replace("\\n", "\n")
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def split_long(st: SentenceTransformer, texts: list[str]) -> tuple[list[str], list[int], list[int]]:
    """Splits texts longer than the model reads into word-aligned pieces that fit.

    Returns the pieces, the index of the text each came from, and its word-piece count.
    Cuts fall between words (never inside one unless a single word is longer than a
    piece), so each piece re-tokenises to the same word pieces as in the whole text.
    """
    tokenizer = st.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("whole_text=True needs a fast tokenizer (one giving offsets)")
    limit = int(st.max_seq_length) - tokenizer.num_special_tokens_to_add(pair=False)
    encoding = tokenizer(
        texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False
    )
    pieces: list[str] = []
    owner: list[int] = []
    weight: list[int] = []
    for i, text in enumerate(texts):
        n = len(encoding["input_ids"][i])
        if n <= limit:
            pieces.append(text)
            owner.append(i)
            weight.append(max(n, 1))
            continue
        words = encoding.word_ids(i)
        offsets = encoding["offset_mapping"][i]
        lo = 0
        while lo < n:
            hi = min(lo + limit, n)
            if hi < n:
                cut = hi
                while cut > lo and words[cut] == words[cut - 1]:
                    cut -= 1  # back off to the start of the word straddling the cut
                hi = cut if cut > lo else hi  # a single over-long word is cut anyway
            pieces.append(text[offsets[lo][0] : offsets[hi - 1][1]])
            owner.append(i)
            weight.append(hi - lo)
            lo = hi
    return pieces, owner, weight
