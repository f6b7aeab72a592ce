"""Sharded initialisation: the requested placement, bit-identical values, no whole array.

The multi-device cases run in a subprocess (``sharding_worker.py``) so that the flag giving 8
virtual CPU devices is set before JAX starts; this module only reads its measurements.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import sparseinit

WORKER = Path(__file__).with_name("sharding_worker.py")


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    done = subprocess.run(
        [sys.executable, str(WORKER)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["devices"] == 8
    return {case["name"]: case for case in result["cases"]}


NAMES = [
    "out axis, explicit mesh of 8",
    "in axis, explicit mesh of 8",
    "in axis, auto mesh of 8",
    "both axes, auto mesh 2x4",
    "jit out_shardings",
    "PartitionSpec under jax.set_mesh",
    "sparsify, out axis",
    "mask, in axis",
]
MEASURED = [name for name in NAMES if name != "PartitionSpec under jax.set_mesh"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_requested_sharding_and_bit_identical(report, name):
    case = report[name]
    assert case["sharding_ok"]
    assert case["identical"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["out axis, explicit mesh of 8", "in axis, explicit mesh of 8"])
def test_explicit_mesh_sharding_is_in_the_type(report, name):
    assert report[name]["typed_spec"] == report[name]["spec"]


@pytest.mark.slow
@pytest.mark.parametrize("name", MEASURED)
def test_no_device_holds_the_whole_array(report, name):
    case = report[name]
    assert case["num_shards"] == 8
    assert case["shard_elements"] * 8 == case["full_elements"]
    # No array in the per-device program is larger than one shard: nothing whole-sized is
    # built, gathered or kept.
    assert case["largest_array_elements"] <= case["shard_elements"]
    # Per-device scratch memory: a whole float32 array is 4 MiB; half of it would already
    # hold four shards. (Measured: 0.3 to 1.7 MiB.)
    assert case["temp_bytes"] < case["full_elements"] * 4 // 2
    kinds = {c["kind"] for c in case["collectives"]}
    assert not kinds & {"all-gather", "all-to-all", "reduce-scatter"}
    # The only communication is the fan-in-sharded correction's: each round all-reduces the
    # cells its proposals hit (one per proposal and neuron, read from whichever device holds
    # the row), and a round holds at most half a shard's rows of proposals.
    assert all(c["elements"] <= case["shard_elements"] // 2 for c in case["collectives"])


@pytest.mark.slow
def test_output_axis_sharding_needs_no_communication(report):
    for name in ("out axis, explicit mesh of 8", "jit out_shardings", "sparsify, out axis"):
        assert report[name]["collectives"] == [], name


def test_one_device_mesh_in_process():
    # The in-process counterpart on however many devices this process has: the placement
    # and the values are those of the unsharded call.
    mesh = jax.make_mesh((1,), ("x",))
    init = sparseinit.sparse(0.7)
    key = jax.random.key(3)
    sharding = NamedSharding(mesh, P(None, "x"))
    out = init(key, (64, 32), out_sharding=sharding)
    assert out.sharding.is_equivalent_to(sharding, 2)
    np.testing.assert_array_equal(out, init(key, (64, 32)))
    mask = init.mask(key, (64, 32), out_sharding=sharding)
    np.testing.assert_array_equal(mask, out != 0)
