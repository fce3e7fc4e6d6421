"""Closure of the pseudo-C_ℓ model: mock observations at a known p, fitted back.

For each experiment (IceCube, HAWC) and each of ``--sets`` seeds, ``crsky mock --experiment``'s
code path (``crsky.inference.data.mock_pseudo_cl_table``: one Gaussian sky of the BGK closure,
``C_L = bgk.cl(p, L, q1)``, rel.-diffusion paper eq. 4.7, at HEALPix ``--nside``, observed with
the experiment's field of view, Poisson counts at its published event count and the
data-driven reference map) gives a pseudo-C_ℓ table for ``ℓ = 1 .. ell_max``. Each is fitted,
MAP + Laplace (the approximation of ``crsky.inference.fitting.fit_laplace``: a Gaussian in the
unconstrained parameters at the mode of the NumPyro potential), by ``spectrum_p_model`` with
the priors of ``inference/mock_icecube_hawc_pseudo_p.toml`` (p uniform on [0.01, 0.99], q1
log-uniform on [1e-12, 1e-2]) in three ways:

- ``pseudo``: the experiment's observation operator, covariance at the model spectrum
  (``error_model = "cosmic_variance"``, the shipped run file's choice);
- ``pseudo_table``: the same operator, the table's errors (the Gaussian standard deviations
  at the truth, diagonal; ``error_model = "table"``);
- ``ideal``: the ideal full-sky model on the same pseudo-C_ℓ divided by ``f_sky`` (the usual
  f_sky correction, noise ``N = Ñ / f_sky``), ``sqrt(2/((2ℓ+1) f_sky)) (C_ℓ + N)`` errors;
- ``pseudo_fiducial_truth``: as ``pseudo``, the covariance held at the true spectrum
  (``spectrum_p_model(fiducial=...)``; an oracle, the best case);
- ``pseudo_fiducial_map``: as ``pseudo``, the covariance held at the ``pseudo`` fit's MAP of the
  same data set (two steps, no knowledge of the truth);
- ``nuts_fiducial_iterated``: as ``pseudo_fiducial_iterated``, but the intervals from NUTS
  (2 chains × 1000 draws after 500 warm-up, the data set's index as seed), on the first
  ``--nuts-sets`` data sets: the posterior ``crsky infer`` samples;
- ``pseudo_fiducial_iterated``: the self-consistent fiducial
  (``crsky.inference.fitting.iterate_fiducial``: Broyden's method on the MAP as a function of
  the fiducial, to 1e-3 relative), the default of ``crsky infer`` for pseudo-C_ℓ.

Reported per experiment and way: 68 % / 95 % coverage of the true p by the central Laplace
intervals (binomial standard error), the mean and spread of ``median − p``, and the failures
(no convergence, Hessian not positive definite). The potential is compiled once per
experiment and way, with the data as an argument. ::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/closure_observatory.py [--sets 40] \\
        [--p 0.5] [--q1 1e-6] [--nside 64] [--joint] [--out closure_observatory.json]

``--joint`` fits IceCube and HAWC together: each mock data set is one sky seen by both, with the
joint covariance of their pseudo-C_ℓ (the shipped run file ``mock_icecube_hawc_pseudo_p``).
"""

import argparse
import dataclasses
import json
import time

import numpyro

numpyro.set_host_device_count(2)  # NUTS chains in parallel on the 2 cores

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optimistix as optx  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402
from numpyro.infer.initialization import init_to_median  # noqa: E402
from numpyro.infer.util import (  # noqa: E402
    initialize_model,
    potential_energy,
    unconstrain_fn,
)
from scipy import stats  # noqa: E402

from crsky.inference import data as cdata  # noqa: E402
from crsky.inference import fitting, models  # noqa: E402
from crsky.io.tables import load_experiments  # noqa: E402
from crsky.resources import resolve  # noqa: E402

PRIORS = {"p": models.Prior("uniform", 0.01, 0.99), "q1": models.Prior("loguniform", 1e-12, 1e-2)}
WAYS = ("pseudo", "pseudo_table", "ideal", "pseudo_fiducial_truth", "pseudo_fiducial_map",
        "pseudo_fiducial_iterated", "nuts_fiducial_iterated")


def ideal_table(table):
    """The full-sky reading of a pseudo-C_ℓ table: ``cl / f_sky``, noise ``Ñ / f_sky``."""
    f = table.f_sky
    return dataclasses.replace(
        table, cl=table.cl / f, error=table.error / f, noise=table.noise / f,
        meta={k: v for k, v in table.meta.items() if k not in ("spectrum", "nside", "lmax_sky")}
        | {"spectrum": "full_sky"},
    )


class Fitter:
    """MAP + Laplace of ``spectrum_p_model`` for tables that differ only in ``cl``: one
    compilation, the data an argument of the jitted potential."""

    def __init__(self, kwargs: dict, fiducial: bool = False):
        self.kwargs = kwargs
        start = {"p": 0.5, "q1": 1e-6} if fiducial else None
        init, _, postprocess, _ = initialize_model(
            jax.random.PRNGKey(0), models.spectrum_p_model,
            model_kwargs=kwargs | {"fiducial": start}, init_strategy=init_to_median())
        self.x0, self.unravel = ravel_pytree(init.z)
        self.postprocess = postprocess
        names = list(init.z)
        self.p_index = int(np.cumsum([0] + [np.size(init.z[n]) for n in names])[names.index("p")])

        def potential(x, args):
            cl, fid = args
            data = dataclasses.replace(self.kwargs["data"], cl=cl)
            extra = {"fiducial": {"p": fid[0], "q1": fid[1]}} if fiducial else {}
            return potential_energy(models.spectrum_p_model, (),
                                    self.kwargs | {"data": data} | extra, self.unravel(x))

        @jax.jit
        def fit(cl, fid):
            # start at the prior median, or at the fiducial where there is one
            x0 = self.x0 if not fiducial else ravel_pytree(unconstrain_fn(
                models.spectrum_p_model, (), self.kwargs, {"p": fid[0], "q1": fid[1]}))[0]
            sol = optx.minimise(potential, optx.BFGS(rtol=1e-9, atol=1e-9), x0,
                                args=(cl, fid), max_steps=2000, throw=False)
            h = jax.hessian(potential)(sol.value, (cl, fid))
            return sol.value, sol.result == optx.RESULTS.successful, 0.5 * (h + h.T)

        self.fit = fit

    def p_quantiles(self, cl, fiducial=(0.5, 1e-6), q=(0.025, 0.16, 0.5, 0.84, 0.975)):
        """Quantiles of p under the Laplace approximation (None if it does not exist), and
        the MAP ``(p, q1)``; ``fiducial``: ``(p, q1)`` of the covariance if the fitter has one."""
        x, ok, h = self.fit(jnp.asarray(cl), jnp.asarray(fiducial, dtype=float))
        if not bool(ok) or not bool(jnp.all(jnp.linalg.eigvalsh(h) > 0)):
            return None
        sd = float(jnp.sqrt(jnp.linalg.inv(h)[self.p_index, self.p_index]))
        out = []
        for z in stats.norm.ppf(q):  # 1-D marginal: the transform to p is monotone
            xq = x.at[self.p_index].add(z * sd)
            out.append(float(self.postprocess(self.unravel(xq))["p"]))
        mode = self.postprocess(self.unravel(x))
        return np.array(out), (float(mode["p"]), float(mode["q1"]))


def summary(truth: float, quantiles: list) -> dict:
    ok = [q for q in quantiles if q is not None]
    q = np.array(ok)
    n = len(ok)
    in68 = (q[:, 1] <= truth) & (truth <= q[:, 3])
    in95 = (q[:, 0] <= truth) & (truth <= q[:, 4])
    bias = q[:, 2] - truth
    return {"fits": n, "failed": len(quantiles) - n,
            "coverage68": float(in68.mean()), "coverage95": float(in95.mean()),
            "coverage68_se": float(np.sqrt(0.68 * 0.32 / n)),
            "coverage95_se": float(np.sqrt(0.95 * 0.05 / n)),
            "median_minus_truth_mean": float(bias.mean()),
            "median_minus_truth_se": float(bias.std(ddof=1) / np.sqrt(n)),
            "median_spread": float(bias.std(ddof=1)),
            "half_width68_mean": float(np.mean((q[:, 3] - q[:, 1]) / 2))}


def iterated_fits(kwargs: dict, sets: list) -> tuple[list, list[int]]:
    """Per data set of ``sets`` (``SpectrumData`` differing in ``cl`` only): the self-consistent
    fiducial (``fitting.iterate_fiducial``), then MAP + Laplace with the covariance held there
    (``Fitter.p_quantiles``; None where either fails); and the fits the iteration took."""
    fitter = Fitter(kwargs, fiducial=True)
    fits, steps = [], []
    for data in sets:
        try:
            found = fitting.iterate_fiducial(models.spectrum_p_model, kwargs | {"data": data})
        except ValueError:
            fits.append(None)
            continue
        steps.append(found.iterations)
        fits.append(fitter.p_quantiles(data.cl, (found.fiducial["p"], found.fiducial["q1"])))
    return fits, steps


def nuts_fitter(kwargs: dict):
    """``fit(data, seed)``: NUTS (2 chains × 1000 draws after 500 warm-up) with the covariance
    at the data set's self-consistent fiducial; the quantiles of p (None if the fiducial
    iteration fails), as ``Fitter.p_quantiles`` returns them. The sampler is compiled once,
    with the data and the fiducial as arguments (a compilation per data set exhausts the
    process's memory maps after some tens of data sets)."""
    base = kwargs["data"]

    def model(cl, p_fid, q1_fid):
        models.spectrum_p_model(**kwargs | {"data": dataclasses.replace(base, cl=cl),
                                            "fiducial": {"p": p_fid, "q1": q1_fid}})

    mcmc = MCMC(NUTS(model), num_warmup=500, num_samples=1000, num_chains=2,
                chain_method="parallel", progress_bar=False, jit_model_args=True)

    def fit(data, seed: int, q=(0.025, 0.16, 0.5, 0.84, 0.975)):
        try:
            found = fitting.iterate_fiducial(models.spectrum_p_model, kwargs | {"data": data})
        except ValueError:
            return None
        fid = (found.fiducial["p"], found.fiducial["q1"])
        mcmc.run(jax.random.PRNGKey(seed), jnp.asarray(data.cl), *map(jnp.asarray, fid))
        return np.quantile(np.asarray(mcmc.get_samples()["p"]), q), fid

    return fit


def report(label: str, r: dict) -> None:
    """One line of a :func:`summary` (with ``seconds``)."""
    print(f"{label} fits {r['fits']:3d} (failed {r['failed']}): coverage 68 % "
          f"{r['coverage68']:.2f} ± {r['coverage68_se']:.2f}, 95 % {r['coverage95']:.2f} ± "
          f"{r['coverage95_se']:.2f}; median − p {r['median_minus_truth_mean']:+.4f} ± "
          f"{r['median_minus_truth_se']:.4f} (spread {r['median_spread']:.4f}, mean 68 % "
          f"half-width {r['half_width68_mean']:.4f}); {r['seconds']:.0f} s", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", type=int, default=40)
    parser.add_argument("--p", type=float, default=0.5)
    parser.add_argument("--q1", type=float, default=1e-6)
    parser.add_argument("--nside", type=int, default=64)
    parser.add_argument("--seed0", type=int, default=1000)
    parser.add_argument("--ways", nargs="+", default=list(WAYS), choices=WAYS)
    parser.add_argument("--nuts-sets", type=int, default=20)
    parser.add_argument("--experiments", nargs="+", default=["IceCube", "HAWC"],
                        choices=["IceCube", "HAWC"])
    parser.add_argument("--joint", action="store_true",
                        help="fit the --experiments jointly: one sky seen by all of them")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.joint and "ideal" in args.ways:
        parser.error("--joint: the ideal way reads one experiment's table")
    experiments = load_experiments(resolve("data", "experiments.toml"))
    groups = ([[experiments[n] for n in args.experiments]] if args.joint
              else [[experiments[n]] for n in args.experiments])
    results = {}
    for group in groups:
        name = "+".join(e.name for e in group)
        ell_max = max(e.ell_max for e in group)
        start = time.perf_counter()
        tables = [cdata.mock_pseudo_cl_table(args.p, args.q1, group, args.seed0 + i,
                                             nside=args.nside)
                  for i in range(args.sets)]
        made = time.perf_counter() - start
        lmax_sky = int(tables[0].meta["lmax_sky"])
        forward = [cdata.pseudo_cl_forward(e, args.nside, ell_max, lmax_sky) for e in group]
        exp = group[0]  # the ideal way's experiment (one per group without --joint)
        results[name] = {"mock_seconds": made}
        maps = {}
        for way in args.ways:
            start = time.perf_counter()
            if way == "ideal":
                sets = [models.spectrum_data(ideal_table(t), 1, exp.ell_max) for t in tables]
                kwargs = {"data": sets[0], "priors": PRIORS, "error_model": "cosmic_variance"}
            else:
                sets = [models.spectrum_data(t, 1, ell_max) for t in tables]
                kwargs = {"data": sets[0], "priors": PRIORS, "experiment": forward,
                          "error_model": "table" if way == "pseudo_table" else "cosmic_variance"}
            if way == "pseudo_fiducial_truth":
                fitter = Fitter(kwargs, fiducial=True)
                fits = [fitter.p_quantiles(s.cl, (args.p, args.q1)) for s in sets]
            elif way == "pseudo_fiducial_iterated":  # what crsky infer does by default
                fits, steps = iterated_fits(kwargs, sets)
                print(f"  fits after the first per data set: mean {np.mean(steps):.1f}, "
                      f"max {max(steps)}")
            elif way == "nuts_fiducial_iterated":
                sets = sets[: args.nuts_sets]
                fit = nuts_fitter(kwargs)
                fits = [fit(data, seed) for seed, data in enumerate(sets)]
            elif way == "pseudo_fiducial_map":  # two steps: covariance at the first fit's MAP
                first = [Fitter(kwargs).p_quantiles(s.cl) for s in sets] if "pseudo" not in \
                    maps else None
                fitter = Fitter(kwargs, fiducial=True)
                fits = [None if m is None else fitter.p_quantiles(s.cl, m)
                        for s, m in zip(sets, maps.get("pseudo") or [
                            None if f is None else f[1] for f in first], strict=True)]
            else:
                fitter = Fitter(kwargs)
                fits = [fitter.p_quantiles(s.cl) for s in sets]
            if way == "pseudo":
                maps["pseudo"] = [None if f is None else f[1] for f in fits]
            quantiles = [None if f is None else f[0] for f in fits]
            results[name][way] = summary(args.p, quantiles) | {
                "seconds": time.perf_counter() - start,
                "medians": [None if q is None else q[2] for q in quantiles]}
            report(f"{name:8s} {way:13s}", results[name][way])
    if args.out:
        with open(args.out, "w") as f:
            json.dump(vars(args) | {"results": results}, f, indent=1)


if __name__ == "__main__":
    main()
