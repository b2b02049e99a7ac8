"""The one progress bar (`_progress.Progress`): tqdm on stderr when asked, one line
without tqdm, nothing when not asked."""

from __future__ import annotations

import builtins

import pytest

from smoothie_jax._progress import Progress


def test_a_bar_on_stderr_when_asked(capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("tqdm")
    with Progress(4, "routing", enabled=True) as bar:
        bar.update(3)
        bar.update()
    err = capsys.readouterr().err
    assert "routing" in err and "4/4" in err and "row" in err
    assert bar.bar is None  # closed on exit; closing again is harmless
    bar.close()


def test_track_wraps_an_iterable(capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("tqdm")
    with Progress(3, "ensembles", enabled=True, unit="ensemble") as bar:
        assert list(bar.track(enumerate("abc"))) == [(0, "a"), (1, "b"), (2, "c")]
    assert "3/3" in capsys.readouterr().err


def test_nothing_when_not_asked(capsys: pytest.CaptureFixture) -> None:
    with Progress(3, "routing", enabled=False) as bar:
        assert list(bar.track([1, 2, 3])) == [1, 2, 3]
    assert capsys.readouterr() == ("", "")


def test_one_line_without_tqdm(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    real_import = builtins.__import__

    def no_tqdm(name: str, *args: object, **kwargs: object) -> object:
        if name == "tqdm":
            raise ImportError("no tqdm")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    with Progress(5, "embedding", enabled=True, unit="text") as bar:
        bar.update(5)
    assert capsys.readouterr().err == "embedding: 5 texts (install tqdm for a progress bar)\n"
