"""Analytic learning coefficients against the worked values of the notes (§6)."""

import pytest

from llc.targets.truth import dln_lambda, quadratic_lambda_finite

WORKED = [
    ([5, 3, 5], 0, 6.5),
    ([5, 4, 5], 0, 8.0),
    ([4, 3, 8], 0, 6.0),
    ([3, 8, 4], 0, 6.0),
    ([10, 5, 10], 5, 37.5),
    ([3, 3, 3], 3, 4.5),
    ([4, 3, 8], 2, 11.0),
    ([5, 5, 5, 5], 2, 11.0),
    ([8, 5, 2], 1, 6.5),
]


@pytest.mark.parametrize(("widths", "rank", "expected"), WORKED)
def test_aoyagi_worked_values(widths, rank, expected):
    assert dln_lambda(widths, rank) == pytest.approx(expected)


@pytest.mark.parametrize(("a", "b", "r"), [(7, 3, 0), (7, 3, 2), (4, 4, 4), (1, 9, 1)])
def test_single_layer_is_regular(a, b, r):
    assert dln_lambda([a, b], r) == pytest.approx(a * b / 2)


def test_rank_out_of_range_rejected():
    with pytest.raises(ValueError, match="rank"):
        dln_lambda([3, 2, 3], 3)


def test_quadratic_finite_value():
    # gamma -> 0 recovers d/2; gamma = n*beta*a halves each eigen-direction's contribution.
    assert quadratic_lambda_finite([1.0, 2.0, 3.0], nbeta=1e12, gamma=1.0) == pytest.approx(1.5)
    assert quadratic_lambda_finite([1.0, 1.0], nbeta=50.0, gamma=50.0) == pytest.approx(0.5)
