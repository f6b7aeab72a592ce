"""Placing the result on devices: ``out_sharding`` and the sharding of intermediate arrays.

Every array the initializer builds is constrained to the requested layout, so that under
``jit`` each device computes only its own shard: random bits are generated per shard (JAX's
partitionable threefry), and the mask's per-step gather and scatter are partitioned along the
sharded axes. No device holds the whole array.
"""

from typing import Any

import jax
from jax.sharding import NamedSharding, PartitionSpec, Sharding

from sparseinit._layout import Layout


def check_sharding(fn: str, out_sharding: Any) -> Any:
    """Accepts ``None``, a ``jax.sharding.Sharding`` or a ``PartitionSpec``."""
    if out_sharding is None or isinstance(out_sharding, Sharding | PartitionSpec):
        return out_sharding
    raise ValueError(
        f"{fn}: out_sharding must be a NamedSharding, a PartitionSpec or None, "
        f"got {out_sharding!r}"
    )


def constrain(x: jax.Array, sharding: Any) -> jax.Array:
    """``with_sharding_constraint`` that lets ``None`` through."""
    if sharding is None:
        return x
    return jax.lax.with_sharding_constraint(x, sharding)


def rows_sharding(sharding: Any, layout: Layout) -> Any:
    """The sharding of the ``(neurons, fan_in)`` rows view that matches ``sharding``.

    Only defined where the rows view is a plain transpose (a dense kernel); elsewhere XLA
    propagates the output's sharding by itself and ``None`` is returned.
    """
    if not layout.is_plain_transpose:
        return None
    if isinstance(sharding, NamedSharding):
        spec, mesh = sharding.spec, sharding.mesh
    elif isinstance(sharding, PartitionSpec):
        spec, mesh = sharding, None
    else:
        return None
    entries = tuple(spec) + (None,) * (len(layout.shape) - len(spec))
    rows_spec = PartitionSpec(entries[layout.neuron_axes[0]], entries[layout.fan_axes[0]])
    return rows_spec if mesh is None else NamedSharding(mesh, rows_spec)
