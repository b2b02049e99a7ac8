"""Data files: routing files (jsonl, gzipped or not), the reference code's layout, and the
alpaca_eval converter. Every error names the file, the line and the problem.

>>> import smoothie_jax as sj
>>> sj.data.read_routing("examples/data/quiz.jsonl").models[:2]
('careful', 'calculator')
"""

from ._routing import DataError as DataError
from ._routing import RoutingData as RoutingData
from ._routing import convert_alpaca_eval as convert_alpaca_eval
from ._routing import read_jsonl as read_jsonl
from ._routing import read_reference_layout as read_reference_layout
from ._routing import read_routing as read_routing
from ._routing import write_jsonl as write_jsonl
from ._routing import write_routing as write_routing

__all__ = [
    "DataError",
    "RoutingData",
    "convert_alpaca_eval",
    "read_jsonl",
    "read_reference_layout",
    "read_routing",
    "write_jsonl",
    "write_routing",
]
