"""The data layer's old single module, now split by idea; only these aliases remain.

`smoothie_jax.cli` still imports `convert_alpaca_eval` from here (lazily); once it imports
from `smoothie_jax.data` this file can go. Import the public names from `smoothie_jax.data`.
"""

from ._alpaca_eval import convert_alpaca_eval as convert_alpaca_eval
from ._read import read_jsonl as read_jsonl
from ._read import read_routing as read_routing
from ._reference import read_reference_layout as read_reference_layout
from ._schema import DataError as DataError
from ._schema import RoutingData as RoutingData
from ._write import write_jsonl as write_jsonl
from ._write import write_routing as write_routing
