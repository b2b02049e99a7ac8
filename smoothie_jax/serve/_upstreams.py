"""The gateway's upstreams: where each of the router's models is served, read from TOML.

One table per model, named as the router names it:

    [models.gpt-4o-mini]
    base_url = "https://api.openai.com/v1"
    model = "gpt-4o-mini"
    api_key_env = "OPENAI_API_KEY"   # optional: the variable holding the key
    cost = 0.15                      # optional: for the quality-cost trade-off

Keys are read from the environment once, when the file is read, and kept out of every
`repr`, message and log line.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from .._validate import is_number

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_KEYS = {"base_url", "model", "api_key_env", "cost"}


@dataclasses.dataclass(frozen=True)
class Upstream:
    """Where one of the router's models is served: an OpenAI-compatible API.

    Attributes:
        name: the model's name in the router.
        base_url: the API's base URL, e.g. "http://127.0.0.1:8000/v1" (no trailing /);
            requests go to `{base_url}/chat/completions`.
        model: the model's name at the upstream (sent as the request's "model").
        api_key_env: the environment variable the key was read from, or None.
        cost: the model's cost (any unit, the same for every model), or None.
        api_key: the key itself (never shown in a repr).

    >>> Upstream("small", "http://127.0.0.1:8000/v1", "llama", api_key="secret")
    Upstream(name='small', base_url='http://127.0.0.1:8000/v1', model='llama', api_key_env=None, cost=None)
    """  # noqa: E501

    name: str
    base_url: str
    model: str
    api_key_env: str | None = None
    cost: float | None = None
    api_key: str | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        url = urlsplit(self.base_url) if isinstance(self.base_url, str) else None
        if url is None or url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(
                f"model {self.name!r}: base_url must be an http(s) URL such as "
                f"'http://127.0.0.1:8000/v1', got {self.base_url!r}"
            )
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model {self.name!r}: 'model' must be a non-empty string")
        if self.cost is not None and not (
            is_number(self.cost) and math.isfinite(self.cost) and self.cost >= 0
        ):
            raise ValueError(f"model {self.name!r}: cost must be a number >= 0, got {self.cost!r}")

    @property
    def url(self) -> str:
        """The chat completions endpoint."""
        return f"{self.base_url}/chat/completions"


def read_upstreams(
    path: str | os.PathLike,
    models: Sequence[str] = (),
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Upstream]:
    """Reads and checks an upstreams file (TOML), reading each key from the environment.

    Args:
        path: the TOML file, one `[models.NAME]` table per model.
        models: the router's model names; every table must name one of them (a model
            without a table is never chosen by the gateway). Empty: not checked.
        environ: where keys are read (default `os.environ`).

    Returns:
        {name: Upstream}, in the file's order.

    Raises:
        ValueError: a malformed file (the message names the file and the table), a
            model the router does not know, an unset key variable, or costs given for
            some models only.
        FileNotFoundError: no file at `path`.
    """
    environ = os.environ if environ is None else environ
    path = Path(path)
    try:
        with open(path, "rb") as f:
            config = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason})") from None
    unknown = set(config) - {"models"}
    if unknown:
        raise ValueError(
            f"{path}: unknown top-level keys {sorted(unknown)}; expected [models.NAME] tables"
        )
    tables = config.get("models")
    if not isinstance(tables, dict) or not tables:
        raise ValueError(f"{path}: no [models.NAME] tables; give one per model of the router")
    upstreams: dict[str, Upstream] = {}
    for name, table in tables.items():
        where = f"{path}: [models.{name}]"
        if models and name not in models:
            raise ValueError(
                f"{where}: the router has no model {name!r}; its models: {list(models)}"
            )
        if not isinstance(table, dict):
            raise ValueError(f"{where} must be a table with base_url and model")
        extra = set(table) - _KEYS
        if extra:
            raise ValueError(f"{where}: unknown keys {sorted(extra)}; expected {sorted(_KEYS)}")
        missing = {"base_url", "model"} - set(table)
        if missing:
            raise ValueError(f"{where}: missing {sorted(missing)}")
        env = table.get("api_key_env")
        key = None
        if env is not None:
            if not isinstance(env, str) or not env:
                raise ValueError(f"{where}: api_key_env must name an environment variable")
            key = environ.get(env)
            if not key:
                raise ValueError(f"{where}: the environment variable {env} (api_key_env) is unset")
        try:
            upstreams[name] = Upstream(
                name, table["base_url"], table["model"], env, table.get("cost"), api_key=key
            )
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    priced = [name for name, u in upstreams.items() if u.cost is not None]
    if priced and len(priced) != len(upstreams):
        unpriced = [name for name in upstreams if name not in priced]
        raise ValueError(f"{path}: cost is given for {priced} but not for {unpriced}; give all")
    return upstreams
