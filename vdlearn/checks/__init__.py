"""Exercise checks: run a student's function on known inputs and explain what is wrong.

Each lesson has a module ``vdlearn.checks.lessonNN`` whose ``check_*`` functions take the
student's answer, compare it with the reference, and either print a line that starts with
``✅`` or raise :class:`ExerciseError` with an explanation a student can act on.

A check is written with the helpers below::

    @exercise("01.gaussian_kl")
    def check_gaussian_kl(gaussian_kl):
        mu, logvar = torch.zeros(3), torch.zeros(3)
        expect_close(gaussian_kl(mu, logvar), torch.tensor(0.0), what="KL(N(0,1) || N(0,1))",
                     hint="the KL of a distribution to itself is 0")

Every outcome is also recorded in :data:`RESULTS`, a summary a notebook can print. The grader
(``python -m vdlearn grade``) does not read it, since an answer cell could replace it: it runs the
course's own check cells and judges each by what that cell itself printed or raised.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import torch

__all__ = [
    "ExerciseError",
    "RESULTS",
    "exercise",
    "expect",
    "expect_close",
    "expect_shape",
    "yours_or_reference",
]

#: name -> {"passed": bool, "message": str}, filled as checks run (read by the grader).
RESULTS: dict[str, dict[str, Any]] = {}


class ExerciseError(AssertionError):
    """An exercise's answer is not right yet; the message says what and why."""


def expect(condition: bool, message: str) -> None:
    """Raise :class:`ExerciseError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ExerciseError(message)


def expect_shape(value: Any, shape: tuple[int, ...], what: str) -> None:
    """The answer must be a tensor of exactly ``shape``."""
    expect(isinstance(value, torch.Tensor),
           f"{what} should be a torch.Tensor, but got {type(value).__name__}.")
    expect(tuple(value.shape) == tuple(shape),
           f"{what} should have shape {tuple(shape)}, but has shape {tuple(value.shape)}.")


def expect_close(actual: Any, expected: Any, *, what: str, hint: str = "",
                 rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """The answer must be numerically close to the reference (shape first, then values)."""
    expected = torch.as_tensor(expected)
    if not isinstance(actual, torch.Tensor):
        try:
            actual = torch.as_tensor(actual, dtype=expected.dtype)
        except Exception:  # noqa: BLE001 - anything that is not a number
            raise ExerciseError(
                f"{what} should be a number or tensor, but got {type(actual).__name__}."
            ) from None
    expect_shape(actual, tuple(expected.shape), what)
    actual = actual.detach().to("cpu", expected.dtype if expected.is_floating_point() else torch.float64)
    expected = expected.to(actual.dtype)
    if not torch.isfinite(actual).all():
        raise ExerciseError(f"{what} contains NaN or inf values. {hint}".strip())
    if not torch.allclose(actual, expected, rtol=rtol, atol=atol):
        err = (actual - expected).abs().max().item()
        shown = "" if actual.numel() > 6 else f" Got {actual.tolist()}, expected {expected.tolist()}."
        raise ExerciseError(f"{what} is off by up to {err:.3g}.{shown} {hint}".strip())


def exercise(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorate a check: record its outcome under ``name`` and print a success line."""

    def decorate(check: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(check)
        def run(*args: Any, **kwargs: Any) -> None:
            try:
                check(*args, **kwargs)
            except NotImplementedError as err:
                RESULTS[name] = {"passed": False, "message": f"not attempted yet ({err})"}
                raise
            except ExerciseError as err:
                RESULTS[name] = {"passed": False, "message": str(err)}
                raise
            except Exception as err:  # the student's code crashed: say so, keep the cause
                RESULTS[name] = {"passed": False, "message": f"{type(err).__name__}: {err}"}
                raise ExerciseError(
                    f"Running your answer raised {type(err).__name__}: {err}"
                ) from err
            RESULTS[name] = {"passed": True, "message": "correct"}
            print(f"✅ {name}: correct")

        run.exercise_name = name  # type: ignore[attr-defined]
        return run

    return decorate


def yours_or_reference(yours: Callable[..., Any], reference: Callable[..., Any], *example: Any) -> Callable[..., Any]:
    """The student's function once it is written; the course's ``reference`` while it is still a stub.

    ``yours(*example)`` is tried once: if it raises ``NotImplementedError`` (the exercise is not written
    yet) the lesson goes on with ``reference`` and says so; any other error is the student's to see.
    Later cells of a lesson call the returned function, so an exercise's answer is what the lesson uses.
    """
    try:
        yours(*example)
    except NotImplementedError:
        name = getattr(yours, "__name__", "your answer")
        print(f"{name} is not written yet: the lesson uses vdlearn's reference")
        return reference
    return yours
