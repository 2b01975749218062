"""vdlearn.checks helpers shared by every lesson."""
import pytest

from vdlearn.checks import yours_or_reference


def test_a_written_answer_is_the_one_the_lesson_uses(capsys):
    def square(x):
        return x * x

    assert yours_or_reference(square, lambda x: -1, 3) is square
    assert capsys.readouterr().out == ""


def test_a_stub_falls_back_to_the_reference_and_says_so(capsys):
    def square(x):
        raise NotImplementedError("Exercise: square")

    def reference(x):
        return x * x

    assert yours_or_reference(square, reference, 3) is reference
    assert "square is not written yet" in capsys.readouterr().out


def test_a_broken_answer_is_not_hidden_by_the_reference():
    def square(x):
        return x * undefined_name  # noqa: F821

    with pytest.raises(NameError):
        yours_or_reference(square, lambda x: x * x, 3)
