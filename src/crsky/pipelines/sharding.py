"""Scale-out: trajectories and realisations over devices, realisations over hosts.

Within a process, :func:`shard_trajectories` splits the trajectories of a back-tracking call
(and, for a batch of field realisations, the realisations) over a :class:`jax.sharding.Mesh`
of the local devices with :func:`jax.shard_map`. Trajectories are independent, so every
device runs the unchanged single-device program on its share and no communication is needed;
results equal those of one device.

Across hosts (``jax.distributed``), realisation ``i`` belongs to process ``i mod P``
(:func:`host_indices`); each process writes its own run file and :func:`merge_runfiles`
combines them into one, checking that none is lost or duplicated (``docs/scaling.md``).
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from crsky import _validate
from crsky.physics.tracing import Trajectories
from crsky.physics.turbulence import Modes

REALISATIONS, TRAJECTORIES = "realisations", "trajectories"


def device_mesh(realisations: int = 1, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 2-D mesh ``(realisations, trajectories)`` over ``devices`` (default: local devices).

    Args:
        realisations: devices along the realisation axis; it must divide the number of
            devices, which are split into that many groups, each sharing the trajectories of
            one realisation. 1 (default) puts all devices on the trajectory axis.
        devices: the devices to use (default ``jax.local_devices()``).
    """
    devices = list(jax.local_devices() if devices is None else devices)
    _validate.positive_int("realisations", realisations)
    if len(devices) % realisations:
        raise ValueError(
            f"realisations ({realisations}) must divide the number of devices ({len(devices)})"
        )
    grid = np.array(devices, dtype=object).reshape(realisations, -1)
    return Mesh(grid, (REALISATIONS, TRAJECTORIES))


def _pad(a: jax.Array, n: int) -> jax.Array:
    """Pad axis 0 of ``a`` to length ``n`` by repeating its first entry (discarded later)."""
    extra = n - a.shape[0]
    return a if extra == 0 else jnp.concatenate([a, jnp.repeat(a[:1], extra, axis=0)])


def shard_trajectories(
    trace_fn: Callable[[Modes, jax.Array], Trajectories],
    modes: Modes,
    directions: jax.Array,
    mesh: Mesh | None = None,
    *,
    stacked: bool = False,
) -> Trajectories:
    """``trace_fn(modes, directions)`` with trajectories (and realisations) split over ``mesh``.

    Args:
        trace_fn: a back-tracking call on one realisation, e.g.
            ``lambda m, d: backtrack(m, d, t_omega, r_larmor, dt=dt)``; it must treat the
            trajectories independently (every crsky solver does).
        modes: one realisation (arrays (N, 3), (N,)) or a batch of R realisations with a
            leading axis (arrays (R, N, 3), (R, N)), split over the mesh's realisation axis.
        directions: arrival directions, shape (M, 3), split over the trajectory axis.
        mesh: a :func:`device_mesh` (default: all local devices on the trajectory axis).
        stacked: ``trace_fn`` takes modes with a leading realisation axis and returns it on
            every output (:func:`crsky.physics.tracing.backtrack` does), so each device makes one
            call
            for all its realisations. ``False`` (default): ``trace_fn`` takes one realisation
            and is vmapped over them (any per-realisation function works; a vmapped while
            loop may mask its state every step, which one stacked loop never does).

    Returns:
        ``trace_fn``'s :class:`~crsky.physics.tracing.Trajectories` (r, p̂ of shape (n_times, M,
            3)), or
        for a batch of realisations one with a leading axis R on every field.

    M and R need not divide the mesh: the inputs are padded and the padding dropped. Jit-able;
    call it inside ``jax.jit`` so the sharded program is compiled once.
    """
    mesh = device_mesh() if mesh is None else mesh
    batched = modes.k.ndim == 3
    modes_b = modes if batched else jax.tree.map(lambda a: a[None], modes)
    n_real, n_traj = modes_b.k.shape[0], directions.shape[0]
    r_dev, t_dev = mesh.shape[REALISATIONS], mesh.shape[TRAJECTORIES]
    r_pad, t_pad = -(-n_real // r_dev) * r_dev, -(-n_traj // t_dev) * t_dev
    modes_b = jax.tree.map(lambda a: _pad(a, r_pad), modes_b)
    per_traj = P(REALISATIONS, None, TRAJECTORIES)
    out_specs = Trajectories(
        t_omega=P(REALISATIONS), r=per_traj, p=per_traj, n_steps=P(REALISATIONS, TRAJECTORIES)
    )

    def local(modes_l, directions_l):
        # the single-device program on this device's realisations and trajectories
        if stacked:
            return trace_fn(modes_l, directions_l)
        return jax.vmap(trace_fn, in_axes=(0, None))(modes_l, directions_l)

    # check_vma=False: diffrax's while loops start from unsharded carries (zeros, step
    # counters); every output does vary along both axes, as out_specs declare.
    sharded = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(P(REALISATIONS), P(TRAJECTORIES)),
        out_specs=out_specs,
        check_vma=False,
    )
    out = sharded(modes_b, _pad(jnp.asarray(directions), t_pad))
    out = Trajectories(
        t_omega=out.t_omega[:n_real],
        r=out.r[:n_real, :, :n_traj],
        p=out.p[:n_real, :, :n_traj],
        n_steps=out.n_steps[:n_real, :n_traj],
    )
    return out if batched else jax.tree.map(lambda a: a[0], out)


def host_indices(
    n_realisations: int, process_index: int | None = None, process_count: int | None = None
) -> list[int]:
    """The realisations of one process: ``i`` with ``i mod P == process_index``.

    Defaults to ``jax.process_index()`` / ``jax.process_count()`` (after
    ``jax.distributed.initialize``). Realisation ``i`` always uses the key
    ``fold_in(PRNGKey(seed), i)``, so the split does not change any realisation.
    """
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    _validate.positive_int("process_count", process_count)
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index must be in [0, {process_count}), got {process_index}")
    return list(range(process_index, n_realisations, process_count))


