"""Data files: routing files (jsonl, gzipped or not), query files read as a stream, the
reference code's layout, and the alpaca_eval and ZeroEval converters. Every error names
the file, the line and the problem.

>>> import smoothie_jax as sj
>>> sj.data.read_routing("examples/data/quiz.jsonl").models[:2]
('careful', 'calculator')
"""

from ._alpaca_eval import convert_alpaca_eval as convert_alpaca_eval
from ._answers import EXPLICIT as EXPLICIT
from ._answers import NO_ANSWER as NO_ANSWER
from ._answers import AnswerDetection as AnswerDetection
from ._answers import AnswerForm as AnswerForm
from ._answers import answer_codes as answer_codes
from ._answers import detect_answers as detect_answers
from ._answers import extract_answer as extract_answer
from ._answers import extract_answers as extract_answers
from ._answers import normalise_answer as normalise_answer
from ._labels import label_records as label_records
from ._labels import read_labels as read_labels
from ._queries import check_queries as check_queries
from ._queries import iter_query_chunks as iter_query_chunks
from ._read import read_jsonl as read_jsonl
from ._read import read_routing as read_routing
from ._reference import read_reference_layout as read_reference_layout
from ._schema import DataError as DataError
from ._schema import RoutingData as RoutingData
from ._write import write_jsonl as write_jsonl
from ._write import write_routing as write_routing
from ._zeroeval import convert_zeroeval as convert_zeroeval

__all__ = [
    "EXPLICIT",
    "NO_ANSWER",
    "AnswerDetection",
    "AnswerForm",
    "DataError",
    "RoutingData",
    "answer_codes",
    "check_queries",
    "convert_alpaca_eval",
    "convert_zeroeval",
    "detect_answers",
    "extract_answer",
    "extract_answers",
    "iter_query_chunks",
    "label_records",
    "normalise_answer",
    "read_jsonl",
    "read_labels",
    "read_reference_layout",
    "read_routing",
    "write_jsonl",
    "write_routing",
]
