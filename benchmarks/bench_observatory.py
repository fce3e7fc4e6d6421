"""Observatory forward model: cost of the coupling kernels / mixing matrix (nside 64, lmax 40,
one core) and of the pseudo-C_l log-likelihood + gradient after jit (the shipped mock
IceCube + HAWC run file), with the covariance at the model and held at the fiducial.
Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_observatory.py``."""

import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from numpyro.infer.util import initialize_model  # noqa: E402

from crsky.inference import data  # noqa: E402
from crsky.io.tables import load_experiments  # noqa: E402
from crsky.pipelines.inference import build, model_kwargs  # noqa: E402
from crsky.resources import resolve  # noqa: E402


def main():
    experiments = load_experiments(resolve("data", "experiments.toml"))
    for name in ("IceCube", "HAWC"):
        start = time.perf_counter()
        forward = data.pseudo_cl_forward(experiments[name], 64, 40, 191)
        first = time.perf_counter() - start
        start = time.perf_counter()
        data.pseudo_cl_forward(experiments[name], 64, 40, 191)
        cached = time.perf_counter() - start
        print(f"{name}: kernels + mixing nside 64, lmax 40, lmax_sky 191: {first:.2f} s "
              f"(cached: {cached * 1e6:.0f} us), f_sky {forward.f_sky:.4f}")
    setup = build(resolve("run_file", "mock_icecube_hawc_pseudo_p"))
    held = model_kwargs(setup)  # the run file's default: covariance at the iterated fiducial
    rows = setup["kwargs"]["data"].ell.size
    for label, kwargs in (("covariance at the model", setup["kwargs"]),
                          ("covariance held at the fiducial (default)", held)):
        info = initialize_model(jax.random.PRNGKey(0), setup["model"], model_kwargs=kwargs)
        potential = jax.jit(jax.value_and_grad(info.potential_fn))
        params = info.param_info.z
        jax.block_until_ready(potential(params))
        n = 200
        start = time.perf_counter()
        for _ in range(n):
            jax.block_until_ready(potential(params))
        print(f"pseudo-C_l log-likelihood + gradient ({rows} rows, joint covariance), {label}: "
              f"{(time.perf_counter() - start) / n * 1e3:.3f} ms per call after jit")
    print(np.__version__, jax.__version__)


if __name__ == "__main__":
    main()
