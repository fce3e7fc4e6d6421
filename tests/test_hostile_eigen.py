"""Hostile input to ``crsky eigen`` and ``crsky bgk`` and their functions: values outside the
validated domains, sizes beyond memory, non-finite results, too many eigenpairs.

Reference: ``docs/promises.md``: every value outside the stated domain is refused naming the
parameter (exit code 2); no NaN is ever printed with exit code 0.
"""

import pytest
from hostile import assert_one_line, run_cli

from crsky.physics import beam, pitch_angle

EIGEN = [
    (["--eps", "1e-300"], "eps"),
    (["--eps", "0.99", "--profile", "flat"], "eps"),
    (["--eps", "0.5"], "eps"),
    (["--eps", "nan"], "eps"),
    (["--eps", "0"], "eps"),
    (["--eps", "2e-3", "--delta", "1e300"], "delta"),
    (["--eps", "2e-3", "--delta", "1"], "delta"),
    (["--eps", "2e-3", "--delta=-1e-4"], "delta"),
    (["--eps", "2e-3", "--delta", "0", "--profile", "gs"], "delta"),
    (["--eps", "2e-3", "--u", "1"], "u"),
    (["--eps", "2e-3", "--u", "inf"], "u"),
]


@pytest.mark.parametrize(("flags", "name"), EIGEN, ids=[" ".join(f) for f, _ in EIGEN])
def test_eigen_refuses_values_outside_the_domain(flags, name, capsys):
    code, out, err = run_cli(["eigen", *flags], capsys)
    assert code == 2
    assert out == ""
    assert_one_line("eigen", err, name)


@pytest.mark.parametrize("profile", ["matched", "gs"])
def test_domain_edges_give_finite_results(profile):
    """The edges of the stated eps domain are inside it: finite, positive, ascending
    eigenvalues (one compilation per profile; eps is traced). Below EPS_MIN the solver returned
    NaN or finite garbage (matched, eps = 1e-12: lambda1 = 1942 instead of 14.53)."""
    import numpy as np

    for eps in (pitch_angle.EPS_MIN, pitch_angle.EPS_MAX):
        lam = np.asarray(pitch_angle.solve(eps, 1e-4, 0.0, profile, n_eigen=3).lambdas)
        assert np.all(np.isfinite(lam)) and np.all(lam > 0) and np.all(np.diff(lam) > 0)


def test_n_eigen_beyond_the_grid_is_refused_not_padded():
    """Beyond the grid's size: refused before any compilation. Beyond a branch: refused after
    the solve instead of padded; with degree 3, layers 3 at u = 0.9 the grid holds 25 positive
    and about 11 negative eigenvalues (nodes with u + mu > 0 or < 0, less two)."""
    with pytest.raises(ValueError, match="^n_eigen must be <= 223, more than"):
        pitch_angle.solve(2e-3, 1e-4, 0.0, "flat", n_eigen=10_000)  # before any compilation
    with pytest.raises(ValueError, match="^n_eigen must be <= .* negative branch"):
        pitch_angle.solve(2e-3, 1e-4, 0.9, "flat", n_eigen=20, negative=True, degree=3, layers=3)


def test_observables_share_the_domain():
    with pytest.raises(ValueError, match="^delta"):
        beam.observables(2e-3, 2.0)
    with pytest.raises(ValueError, match="^eps"):
        beam.observables(1e-300, 1e-4)


BGK = [
    (["--p", "0"], "p"), (["--p", "1"], "p"), (["--p", "nan"], "p"),
    (["--p", "0.5", "--ell-max", "0"], "ell_max"),
    (["--p", "0.5", "--ell-max", "100000000000"], "ell_max=100000000000"),
]


@pytest.mark.parametrize(("flags", "name"), BGK, ids=[" ".join(f) for f, _ in BGK])
def test_bgk_refuses_bad_values_and_huge_lmax(flags, name, capsys):
    code, out, err = run_cli(["bgk", *flags], capsys)
    assert code == 2
    assert out == ""
    assert_one_line("bgk", err, name)
