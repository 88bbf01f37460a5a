import pytest

from keras_pass.reid import progress as progress_module
from keras_pass.reid.progress import fit_verbosity, progress


@pytest.mark.parametrize("terminal, verbose, expected", [
    (True, 1, 1), (True, "auto", "auto"), (False, 1, 2), (False, "auto", 2), (False, 0, 0), (False, 2, 2),
])
def test_keras_bars_only_on_a_terminal(terminal, verbose, expected, monkeypatch):
    monkeypatch.setattr(progress_module, "on_terminal", lambda: terminal)
    assert fit_verbosity(verbose) == expected


def test_plain_periodic_lines_off_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "on_terminal", lambda: False)
    assert list(progress(range(95), unit="blocks")) == list(range(95))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in lines] == [f"blocks: {n}/95" for n in (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)]
    assert not any("\r" in line or "\x1b" in line or "\b" in line for line in lines)


def test_a_bar_on_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "on_terminal", lambda: True)
    list(progress(range(3), unit="blocks"))
    assert "3/3" in capsys.readouterr().out


def test_silent_without_verbose(capsys):
    assert list(progress(range(3), verbose=False)) == [0, 1, 2]
    assert capsys.readouterr().out == ""
