"""Every initializer's output, hashed over a fixed grid, against hashes recorded in a file.

The grid covers each public initializer, shapes with one and several axes per role, batch
axes, dtypes, new-style and raw uint32 keys, concrete and traced sparsities (under ``jit`` and
``vmap``), ``mask`` and ``out_sharding``.

``tests/golden/outputs.json`` pins which output each case's key gives. A change that is not
meant to change outputs (a refactoring, a faster kernel) leaves every hash as it is. A change
that is meant to (a new sampler, say) rewrites the file in the same commit, by running
``python tests/test_golden.py --write`` once with ``JAX_ENABLE_X64=0`` and once with
``JAX_ENABLE_X64=1``, and says so in CHANGELOG.md.

Each case has two hashes: of the values, bit for bit, and of the support (where the output is
non-zero). JAX's normal and truncated normal samplers change in the last bit between some
releases (0.8 and 0.10 differ), so the values are compared only on the JAX releases the file
lists as checked (``values_checked_on_jax``); on any other release that test is skipped with a
reason that names both, which ``pytest -ra`` shows. The support, which depends only on random
bits, is compared on every release.
"""

import functools
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparseinit

GOLDEN = Path(__file__).parent / "golden" / "outputs.json"
MODE = "x64" if jax.config.read("jax_enable_x64") else "x32"


def _digest(array) -> str:
    a = np.asarray(array)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _key():
    return jax.random.key(42)


def _raw_key():
    return jax.random.PRNGKey(7)


def _one_device():
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("x",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, "x"))


def _traced(make: Callable[[object], object], sparsity: float, shape, dtype):
    return jax.jit(lambda s: make(s)(_key(), shape, dtype))(jnp.asarray(sparsity))


def _vmapped(make, sparsities, shape, dtype):
    return jax.jit(jax.vmap(lambda s: make(s)(_key(), shape, dtype)))(jnp.asarray(sparsities))


def _cases() -> dict[str, Callable[[], object]]:
    lecun = jax.nn.initializers.lecun_normal()
    f32, bf16, f16 = jnp.float32, jnp.bfloat16, jnp.float16
    cases: dict[str, Callable[[], object]] = {}
    # Each rate of the Bernoulli start, the all-zero start (few kept) and both ends.
    grid = [(s, (784, 64)) for s in (0.0, 0.5, 0.9, 1.0)]
    grid += [(0.1, (5, 7)), (0.99, (5, 7)), (0.5, (3, 3, 8, 16)), (0.9, (3, 3, 8, 16))]
    for sparsity, shape in grid:
        name = f"sparse-{sparsity}-{'x'.join(map(str, shape))}"
        cases[name] = lambda s=sparsity, sh=shape: sparseinit.sparse(s)(_key(), sh, f32)
    for distribution in ("normal", "truncated_normal"):
        cases[f"sparse-{distribution}"] = lambda d=distribution: sparseinit.sparse(
            0.7, distribution=d, scale=2.0
        )(_key(), (40, 30), f32)
    for rounding in ("round", "floor"):
        cases[f"sparse-{rounding}"] = lambda r=rounding: sparseinit.sparse(0.35, rounding=r)(
            _key(), (13, 9), f32
        )
    cases["sparse-rescale"] = lambda: sparseinit.sparse(0.8, rescale=True)(_key(), (50, 20), f32)
    cases["sparse-min-kept"] = lambda: sparseinit.sparse(0.9, min_kept=1)(_key(), (4, 64), f32)
    for dtype in (bf16, f16):
        cases[f"sparse-{jnp.dtype(dtype).name}"] = lambda d=dtype: sparseinit.sparse(0.6)(
            _key(), (30, 20), d
        )
    cases["sparse-raw-key"] = lambda: sparseinit.sparse(0.6)(_raw_key(), (30, 20), f32)
    cases["sparse-axes"] = lambda: sparseinit.sparse(0.5, in_axis=(0, 1), out_axis=(2, 3))(
        _key(), (4, 5, 3, 2), f32
    )
    cases["sparse-batch"] = lambda: sparseinit.sparse(0.5, batch_axis=0)(_key(), (3, 20, 10), f32)
    cases["sparse-in-axis-last"] = lambda: sparseinit.sparse(0.75, in_axis=-1, out_axis=-2)(
        _key(), (12, 40), f32
    )
    cases["sparse-mask"] = lambda: sparseinit.sparse(0.9).mask(_key(), (100, 30))
    cases["sparse-mask-mid"] = lambda: sparseinit.sparse(0.4).mask(_key(), (100, 30))
    cases["sparse-out-sharding"] = lambda: sparseinit.sparse(0.5)(
        _key(), (16, 8), f32, out_sharding=_one_device()
    )
    for sparsity in (0.0, 0.5, 0.9, 1.0):
        cases[f"sparse-traced-{sparsity}"] = lambda s=sparsity: _traced(
            sparseinit.sparse, s, (200, 24), f32
        )
    cases["sparse-traced-round-min-kept"] = lambda: _traced(
        lambda s: sparseinit.sparse(s, rounding="round", min_kept=2), 0.95, (20, 6), f32
    )
    cases["sparse-vmap"] = lambda: _vmapped(sparseinit.sparse, [0.0, 0.5, 0.9, 1.0], (64, 8), f32)
    cases["sparsify"] = lambda: sparseinit.sparsify(lecun, 0.8)(_key(), (3, 3, 4, 8), f32)
    cases["sparsify-bf16"] = lambda: sparseinit.sparsify(lecun, 0.5)(_key(), (16, 8), bf16)
    cases["sparsify-complex"] = lambda: sparseinit.sparsify(
        jax.nn.initializers.normal(dtype=jnp.complex64), 0.5
    )(_key(), (10, 6))
    cases["sparsify-rescale"] = lambda: sparseinit.sparsify(lecun, 0.5, rescale=True)(
        _key(), (10, 6), f32
    )
    cases["sparsify-traced"] = lambda: _traced(
        lambda s: sparseinit.sparsify(lecun, s), 0.6, (50, 10), f32
    )
    for nonzero in (0, 15, 100):
        cases[f"martens-{nonzero}"] = lambda n=nonzero: sparseinit.martens(n)(_key(), (60, 12), f32)
    cases["martens-std-mask"] = lambda: sparseinit.martens(3, std=0.5).mask(_key(), (9, 5))
    for sparsity in (0.0, 0.3, 0.9):
        cases[f"torch-sparse-{sparsity}"] = lambda s=sparsity: sparseinit.torch_sparse(s)(
            _key(), (64, 10), f32
        )
    cases["torch-sparse-traced"] = lambda: _traced(sparseinit.torch_sparse, 0.4, (20, 30), f32)
    cases["sparse-init"] = lambda: sparseinit.sparse_init(_key(), (32, 100), 0.9)
    cases["sparse-init-normal"] = lambda: sparseinit.sparse_init(_key(), (16, 40), 0.5, "normal")
    cases["sparse-init-raw-key"] = lambda: sparseinit.sparse_init(_raw_key(), (8, 20), 0.25)
    return cases


CASES = _cases()


def _digests(array) -> list[str]:
    return [_digest(array), _digest(np.asarray(array) != 0)]


@functools.cache
def _output_digests(name: str) -> tuple[str, str]:
    # One computation of each case serves both of its tests.
    values, support = _digests(CASES[name]())
    return values, support


def _recorded() -> dict[str, list[str]]:
    return json.loads(GOLDEN.read_text())[MODE]


def _values_checked_on() -> list[str]:
    return json.loads(GOLDEN.read_text())["values_checked_on_jax"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_support_is_unchanged(name):
    assert _output_digests(name)[1] == _recorded()[name][1]


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_are_unchanged(name):
    releases = _values_checked_on()
    if jax.__version__ not in releases:
        pytest.skip(
            f"values not compared on jax {jax.__version__}: their hashes were recorded on jax "
            f"{', '.join(releases)} (the support is compared on every release)"
        )
    assert _output_digests(name)[0] == _recorded()[name][0]


def test_every_recorded_case_is_run():
    assert set(_recorded()) == set(CASES)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python tests/test_golden.py --write")
    table = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    table[MODE] = {name: _digests(make()) for name, make in sorted(CASES.items())}
    releases = table.setdefault("values_checked_on_jax", [jax.__version__])
    GOLDEN.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(table[MODE])} {MODE} hashes to {GOLDEN}, from jax {jax.__version__}")
    if jax.__version__ not in releases:
        print(
            f"values_checked_on_jax is {releases}, and these value hashes are jax "
            f"{jax.__version__}'s: list the releases they hold on"
        )
