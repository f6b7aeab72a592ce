"""Measures sharded initialisation on 8 virtual CPU devices; run by test_sharding.py.

The device count is fixed when JAX starts, so this runs in its own process with XLA_FLAGS set
before jax is imported. It prints one JSON object: per case, the result's sharding, whether it
equals the unsharded result bit for bit, and what the compiled per-device program holds.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()

import json
import math
import re

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import sparseinit

SHAPE = (1024, 1024)  # (in, out): a Dense kernel of 4 MiB in float32
COLLECTIVE = re.compile(
    r"= (\S+) (all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter)"
)
ARRAY = re.compile(r"\b[a-z]+[0-9]*\[([0-9,]+)\]")


def program(fn, key):
    """What the compiled per-device program of ``fn(key)`` holds."""
    compiled = jax.jit(fn).lower(key).compile()
    text = compiled.as_text()
    largest = max(math.prod(int(d) for d in m.group(1).split(",")) for m in ARRAY.finditer(text))
    collectives = [
        {"kind": kind, "elements": math.prod(int(d) for d in ARRAY.search(typ).group(1).split(","))}
        for typ, kind in COLLECTIVE.findall(text)
        if ARRAY.search(typ)
    ]
    return {
        "temp_bytes": compiled.memory_analysis().temp_size_in_bytes,
        "largest_array_elements": largest,
        "collectives": collectives,
    }


def case(name, init, sharding, make, reference, key, *, measure=True):
    out = make(key)
    result = {
        "name": name,
        "spec": str(sharding.spec),
        "sharding_ok": out.sharding.is_equivalent_to(sharding, out.ndim),
        "typed_spec": str(jax.typeof(out).sharding.spec),
        "identical": bool(np.array_equal(np.asarray(out), reference)),
        "shard_elements": math.prod(out.addressable_shards[0].data.shape),
        "full_elements": math.prod(out.shape),
        "itemsize": out.dtype.itemsize,
        "num_shards": len(out.addressable_shards),
    }
    if measure:
        result.update(program(make, key))
    return result


def main():
    key = jax.random.key(0)
    explicit8 = jax.make_mesh((8,), ("x",))  # Explicit axes: jax.make_mesh's default
    auto8 = jax.make_mesh((8,), ("x",), axis_types=(AxisType.Auto,))
    auto24 = jax.make_mesh((2, 4), ("a", "b"), axis_types=(AxisType.Auto,) * 2)
    init = sparseinit.sparse(0.9)
    reference = np.asarray(init(key, SHAPE))
    cases = []
    for label, mesh, spec in [
        ("out axis, explicit mesh of 8", explicit8, P(None, "x")),
        ("in axis, explicit mesh of 8", explicit8, P("x", None)),
        ("in axis, auto mesh of 8", auto8, P("x", None)),
        ("both axes, auto mesh 2x4", auto24, P("a", "b")),
    ]:
        s = NamedSharding(mesh, spec)
        cases.append(
            case(label, init, s, lambda k, s=s: init(k, SHAPE, out_sharding=s), reference, key)
        )
    # jit's out_shardings alone, the initializer not told: XLA propagates the placement.
    s = NamedSharding(auto8, P(None, "x"))
    cases.append(
        case(
            "jit out_shardings",
            init,
            s,
            jax.jit(lambda k: init(k, SHAPE), out_shardings=s),
            reference,
            key,
        )
    )
    # The same inside a mesh context, with a bare PartitionSpec.
    with jax.set_mesh(explicit8):
        out = init(key, SHAPE, out_sharding=P(None, "x"))
        cases.append(
            {
                "name": "PartitionSpec under jax.set_mesh",
                "sharding_ok": out.sharding.is_equivalent_to(
                    NamedSharding(explicit8, P(None, "x")), 2
                ),
                "identical": bool(np.array_equal(np.asarray(out), reference)),
            }
        )
    # sparsify draws dense values with another initializer and masks them; its mask too.
    dense = sparseinit.sparsify(jax.nn.initializers.lecun_normal(), 0.5)
    s = NamedSharding(auto8, P(None, "x"))
    cases.append(
        case(
            "sparsify, out axis",
            dense,
            s,
            lambda k: dense(k, SHAPE, out_sharding=s),
            np.asarray(dense(key, SHAPE)),
            key,
        )
    )
    cases.append(
        case(
            "mask, in axis",
            dense,
            NamedSharding(auto8, P("x", None)),
            lambda k: dense.mask(k, SHAPE, out_sharding=NamedSharding(auto8, P("x", None))),
            np.asarray(dense.mask(key, SHAPE)),
            key,
        )
    )
    print(json.dumps({"devices": jax.device_count(), "jax": jax.__version__, "cases": cases}))


if __name__ == "__main__":
    main()
