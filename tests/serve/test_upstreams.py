"""The upstreams file: one table per model of the router, keys from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

import smoothie_jax as sj

ROOT = Path(__file__).resolve().parents[2]
GOOD = """
[models.alpha]
base_url = "http://127.0.0.1:8001/v1/"
model = "llama-3-8b"
api_key_env = "ALPHA_KEY"
cost = 0.2

[models.beta]
base_url = "https://api.example.com/v1"
model = "big-model"
cost = 3
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "upstreams.toml"
    path.write_text(text)
    return path


def test_a_good_file(tmp_path: Path) -> None:
    upstreams = sj.serve.read_upstreams(
        write(tmp_path, GOOD), ["alpha", "beta", "gamma"], environ={"ALPHA_KEY": "sk-123"}
    )
    assert list(upstreams) == ["alpha", "beta"]
    alpha = upstreams["alpha"]
    assert alpha.url == "http://127.0.0.1:8001/v1/chat/completions"
    assert (alpha.model, alpha.api_key, alpha.cost) == ("llama-3-8b", "sk-123", 0.2)
    assert upstreams["beta"].api_key is None
    assert "sk-123" not in repr(upstreams) and "sk-123" not in str(alpha)


def test_the_shipped_example_reads(tmp_path: Path) -> None:
    models = sj.data.read_routing(ROOT / "examples" / "data" / "quiz_train.jsonl").models
    env = {"OPENAI_API_KEY": "k", "TOGETHER_API_KEY": "k"}
    upstreams = sj.serve.read_upstreams(ROOT / "examples" / "upstreams.toml", models, environ=env)
    assert list(upstreams) == list(models)  # one table per model of the quiz router
    assert all(u.cost is not None for u in upstreams.values())
    fake = sj.serve.read_upstreams(ROOT / "examples" / "upstreams_fake.toml", models, environ={})
    assert list(fake) == list(models)  # every quiz model at the fake upstream, no key needed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[models.alpha\n", "not valid TOML"),
        ("", "no \\[models.NAME\\] tables"),
        ("[gateway]\nport = 1\n", "unknown top-level keys"),
        ('[models.delta]\nbase_url = "http://h/v1"\nmodel = "m"\n', "no model 'delta'"),
        ('[models.alpha]\nmodel = "m"\n', "missing \\['base_url'\\]"),
        ('[models.alpha]\nbase_url = "ftp://h"\nmodel = "m"\n', "http\\(s\\) URL"),
        ('[models.alpha]\nbase_url = "http://h/v1"\nmodel = ""\n', "non-empty string"),
        ('[models.alpha]\nbase_url = "http://h/v1"\nmodel = "m"\nkey = "x"\n', "unknown keys"),
        (
            '[models.alpha]\nbase_url = "http://h/v1"\nmodel = "m"\napi_key_env = "UNSET_VAR"\n',
            "UNSET_VAR .* is unset",
        ),
        ('[models.alpha]\nbase_url = "http://h/v1"\nmodel = "m"\ncost = -1\n', "cost must be"),
        (
            '[models.alpha]\nbase_url = "http://h/v1"\nmodel = "m"\ncost = 1\n'
            '[models.beta]\nbase_url = "http://h/v1"\nmodel = "n"\n',
            "cost is given for \\['alpha'\\] but not for \\['beta'\\]",
        ),
    ],
)
def test_malformed_files_say_where_and_why(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sj.serve.read_upstreams(write(tmp_path, text), ["alpha", "beta"], environ={})


def test_no_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        sj.serve.read_upstreams(tmp_path / "none.toml")
