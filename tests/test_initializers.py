"""The initializer objects: repr, equality, hashing, immutability and the JAX protocol.

Also the integration the contract promises: ``sparsify`` over JAX's, Flax's and a user's
initializers. Flax layers taking these objects as ``kernel_init`` are tested in test_flax.py.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen, nnx

import sparseinit
from tests.conftest import X64, zeros_per_neuron

# ---- repr -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("init", "text"),
    [
        (sparseinit.sparse(0.9), "sparse(sparsity=0.9, distribution='uniform', rounding='ceil')"),
        (sparseinit.sparse(), "sparse(sparsity=0.9, distribution='uniform', rounding='ceil')"),
        (
            sparseinit.sparse(0.5, distribution="normal", rounding="round"),
            "sparse(sparsity=0.5, distribution='normal', rounding='round')",
        ),
        (
            sparseinit.sparse(
                0.5,
                distribution="truncated_normal",
                scale=2.0,
                rounding="floor",
                rescale=True,
                in_axis=0,
                out_axis=1,
                batch_axis=(2,),
                dtype=jnp.bfloat16,
            ),
            "sparse(sparsity=0.5, distribution='truncated_normal', scale=2.0, rounding='floor', "
            "rescale=True, in_axis=0, out_axis=1, batch_axis=(2,), dtype='bfloat16')",
        ),
        # A concrete array sparsity is stored as a Python float: readable and hashable.
        (
            sparseinit.sparse(jnp.float32(0.25)),
            "sparse(sparsity=0.25, distribution='uniform', rounding='ceil')",
        ),
        (
            sparseinit.sparse(0.99, min_kept=1),
            "sparse(sparsity=0.99, distribution='uniform', rounding='ceil', min_kept=1)",
        ),
        (
            sparseinit.sparse(0.99, rescale=True, min_kept=2, out_axis=0),
            "sparse(sparsity=0.99, distribution='uniform', rounding='ceil', rescale=True, "
            "min_kept=2, out_axis=0)",
        ),
        (sparseinit.martens(), "martens(nonzero=15, std=1.0)"),
        (
            sparseinit.martens(3, std=0.5, out_axis=0, dtype="float16"),
            "martens(nonzero=3, std=0.5, out_axis=0, dtype='float16')",
        ),
        (sparseinit.torch_sparse(0.3), "torch_sparse(sparsity=0.3, std=0.01)"),
        (
            sparseinit.torch_sparse(0.3, std=0.5, dtype=jnp.float32),
            "torch_sparse(sparsity=0.3, std=0.5, dtype='float32')",
        ),
    ],
)
def test_repr(init, text):
    assert repr(init) == text


def _ones(key, shape, dtype=jnp.float32):
    del key
    return jnp.ones(shape, dtype)


def test_sparsify_repr_names_the_base_initializer():
    init = sparseinit.sparsify(_ones, 0.5, rounding="round", batch_axis=0)
    assert repr(init) == (
        f"sparsify(base_init={__name__}._ones, sparsity=0.5, rounding='round', batch_axis=0)"
    )


inits = jax.nn.initializers


@pytest.mark.parametrize(
    ("base", "name"),
    [
        (inits.he_normal(), "variance_scaling(2.0, 'fan_in', 'truncated_normal')"),
        (inits.lecun_uniform(), "variance_scaling(1.0, 'fan_in', 'uniform')"),
        (
            inits.glorot_normal(in_axis=0, out_axis=1),
            "variance_scaling(1.0, 'fan_avg', 'truncated_normal', in_axis=0, out_axis=1)",
        ),
        (
            inits.variance_scaling(0.5, "fan_out", "normal", batch_axis=0),
            "variance_scaling(0.5, 'fan_out', 'normal', batch_axis=0)",
        ),
        (
            inits.lecun_normal(dtype=jnp.bfloat16),
            "variance_scaling(1.0, 'fan_in', 'truncated_normal', dtype='bfloat16')",
        ),
        (inits.constant(-7.0), "constant(-7.0)"),
        (inits.uniform(0.5), "uniform(0.5)"),
        (inits.normal(0.1, dtype=jnp.complex64), "normal(0.1, dtype='complex64')"),
        (inits.truncated_normal(0.2), "truncated_normal(0.2)"),
        (inits.truncated_normal(0.2, lower=-1.0), "truncated_normal(0.2, lower=-1.0)"),
        (inits.orthogonal(), "orthogonal(1.0)"),
        (inits.orthogonal(2.0, column_axis=0), "orthogonal(2.0, column_axis=0)"),
        (inits.delta_orthogonal(), "delta_orthogonal(1.0)"),
        (linen.initializers.he_uniform(), "variance_scaling(2.0, 'fan_in', 'uniform')"),
        (nnx.initializers.normal(0.02), "normal(0.02)"),
        (inits.zeros, "jax.nn.initializers.zeros"),
    ],
)
def test_sparsify_repr_reads_jax_and_flax_initializers(base, name):
    # A sweep's logged config says what ran, not `variance_scaling.<locals>.init`.
    assert repr(sparseinit.sparsify(base, 0.8)) == (
        f"sparsify(base_init={name}, sparsity=0.8, rounding='ceil')"
    )


# ---- equality, hashing, immutability --------------------------------------------------------


def test_equal_parameters_give_equal_initializers():
    pairs = [
        (sparseinit.sparse(0.9), sparseinit.sparse(sparsity=0.9)),
        (sparseinit.sparse(0.5, dtype=jnp.float16), sparseinit.sparse(0.5, dtype="float16")),
        (sparseinit.sparse(0.5, batch_axis=[0]), sparseinit.sparse(0.5, batch_axis=(0,))),
        (sparseinit.martens(15), sparseinit.martens()),
        (sparseinit.torch_sparse(0.3), sparseinit.torch_sparse(0.3, 0.01)),
        (sparseinit.sparsify(_ones, 0.5), sparseinit.sparsify(_ones, 0.5)),
        (sparseinit.sparse(0.9, min_kept=1), sparseinit.sparse(0.9, min_kept=np.int64(1))),
        (sparseinit.sparse(0.9), sparseinit.sparse(0.9, min_kept=0)),
    ]
    for a, b in pairs:
        assert a == b
        assert hash(a) == hash(b)
        assert a is not b


def test_different_parameters_give_unequal_initializers():
    inits = [
        sparseinit.sparse(0.9),
        sparseinit.sparse(0.8),
        sparseinit.sparse(0.9, distribution="normal"),
        sparseinit.sparse(0.9, scale=2.0),
        sparseinit.sparse(0.9, rounding="floor"),
        sparseinit.sparse(0.9, rescale=True),
        sparseinit.sparse(0.9, min_kept=1),
        sparseinit.sparse(0.9, min_kept=2),
        sparseinit.sparse(0.9, in_axis=0, out_axis=1),
        sparseinit.sparse(0.9, batch_axis=0),
        sparseinit.sparse(0.9, dtype=jnp.bfloat16),
        sparseinit.sparsify(_ones, 0.9),
        sparseinit.sparsify(jax.nn.initializers.zeros, 0.9),
        sparseinit.sparsify(jax.nn.initializers.zeros, 0.9, min_kept=1),
        sparseinit.martens(15),
        sparseinit.martens(16),
        sparseinit.torch_sparse(0.9),
        sparseinit.torch_sparse(0.9, std=0.1),
    ]
    for i, a in enumerate(inits):
        for b in inits[i + 1 :]:
            assert a != b, (a, b)
    # All of them can be dictionary keys (a sweep's config), and none collide.
    assert len(dict.fromkeys(inits)) == len(inits)


@pytest.mark.parametrize(
    ("init", "attribute", "value"),
    [
        (sparseinit.sparse(0.9), "sparsity", 0.1),
        (sparseinit.sparse(0.9), "rounding", "floor"),
        (sparseinit.martens(15), "nonzero", 3),
        (sparseinit.torch_sparse(0.3), "std", 1.0),
        (sparseinit.sparsify(_ones, 0.5), "base_init", jax.nn.initializers.zeros),
    ],
)
def test_immutable(init, attribute, value):
    before = repr(init)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(init, attribute, value)
    with pytest.raises(dataclasses.FrozenInstanceError):
        init.new_attribute = 1
    assert repr(init) == before


def test_static_argument_of_jit_does_not_retrace_for_an_equal_initializer(key):
    traces = []

    @functools.partial(jax.jit, static_argnums=0)
    def draw(init, key):
        traces.append(init)
        return init(key, (8, 4))

    first = draw(sparseinit.sparse(0.5), key)
    second = draw(sparseinit.sparse(0.5), key)  # a new, equal object
    assert len(traces) == 1
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    draw(sparseinit.sparse(0.75), key)  # different parameters: a new trace
    assert len(traces) == 2


def test_isinstance_of_the_base_class():
    for init in (
        sparseinit.sparse(),
        sparseinit.sparsify(_ones),
        sparseinit.martens(),
        sparseinit.torch_sparse(0.5),
    ):
        assert isinstance(init, sparseinit.SparseInitializer)
    assert isinstance(sparseinit.sparse(), sparseinit.SparseInit)
    assert isinstance(sparseinit.sparsify(_ones), sparseinit.Sparsified)
    assert isinstance(sparseinit.martens(), sparseinit.Martens)
    assert isinstance(sparseinit.torch_sparse(0.5), sparseinit.TorchSparse)


# ---- the JAX initializer protocol -----------------------------------------------------------


def test_jax_initializer_protocol_isinstance():
    protocol = jax.nn.initializers.Initializer
    if not getattr(protocol, "_is_runtime_protocol", False):
        pytest.skip("jax.nn.initializers.Initializer is not runtime-checkable in this jax")
    for init in (
        sparseinit.sparse(),
        sparseinit.sparsify(_ones),
        sparseinit.martens(),
        sparseinit.torch_sparse(0.5),
    ):
        assert isinstance(init, protocol)


def test_positional_call_as_flax_makes_it(key):
    init = sparseinit.sparse(0.5)
    w = init(key, (6, 4), jnp.bfloat16)  # Flax: kernel_init(key, shape, param_dtype)
    assert w.shape == (6, 4)
    assert w.dtype == jnp.bfloat16
    np.testing.assert_array_equal(zeros_per_neuron(w), np.full(4, 3))


def test_keyword_call_and_out_sharding(key):
    init = sparseinit.sparse(0.5)
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("x",))
    named = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, "x"))
    w = init(key=key, shape=(6, 4), dtype=jnp.float32, out_sharding=named)
    assert w.sharding.is_equivalent_to(named, 2)
    assert w.sharding.is_equivalent_to(sharding, 2)
    np.testing.assert_array_equal(np.asarray(w), np.asarray(init(key, (6, 4), jnp.float32)))


def test_dtype_defaults(key):
    shape = (6, 4)
    # No dtype anywhere: JAX's default float (float64 only with x64), as jax.nn.initializers.
    assert sparseinit.sparse(0.5)(key, shape).dtype == jnp.result_type(float)
    # The factory's dtype is the default...
    assert sparseinit.sparse(0.5, dtype=jnp.bfloat16)(key, shape).dtype == jnp.bfloat16
    assert sparseinit.martens(2, dtype=jnp.float16)(key, shape).dtype == jnp.float16
    assert sparseinit.torch_sparse(0.5, dtype=jnp.bfloat16)(key, shape).dtype == jnp.bfloat16
    # ...and the call's dtype overrides it.
    w = sparseinit.sparse(0.5, dtype=jnp.bfloat16)(key, shape, jnp.float16)
    assert w.dtype == jnp.float16


def test_raw_key_is_accepted(key):
    init = sparseinit.sparse(0.5)
    w = init(jax.random.PRNGKey(0), (6, 4))
    np.testing.assert_array_equal(zeros_per_neuron(w), np.full(4, 3))


# ---- sparsify over other initializers -------------------------------------------------------


@pytest.mark.parametrize(
    "base",
    [
        jax.nn.initializers.he_normal(),
        linen.initializers.lecun_normal(),
        jax.nn.initializers.orthogonal(),
    ],
    ids=["jax_he_normal", "flax_lecun_normal", "jax_orthogonal"],
)
def test_sparsify_jax_and_flax_initializers(key, base):
    init = sparseinit.sparsify(base, 0.75)
    w = np.asarray(init(key, (16, 8)))
    assert w.dtype == jnp.result_type(float)
    np.testing.assert_array_equal(zeros_per_neuron(w), np.full(8, 12))
    np.testing.assert_array_equal(np.asarray(init.mask(key, (16, 8))), w != 0)


def test_sparsify_keeps_a_user_function_values(key):
    def threes(key, shape, dtype=jnp.float32):
        del key
        return jnp.full(shape, 3.0, dtype)

    init = sparseinit.sparsify(threes, 0.25)
    w = np.asarray(init(key, (3, 3, 4, 5), jnp.float32))  # Conv kernel: fan-in 36
    assert set(np.unique(w).tolist()) == {0.0, 3.0}
    np.testing.assert_array_equal(zeros_per_neuron(w), np.full(5, 9))


def test_sparsify_never_keeps_an_exact_zero(key):
    # A base initializer's zero at a kept position would break mask == (w != 0).
    init = sparseinit.sparsify(jax.nn.initializers.zeros, 0.5)
    w = np.asarray(init(key, (6, 4), jnp.float32))
    mask = np.asarray(init.mask(key, (6, 4)))
    np.testing.assert_array_equal(mask, w != 0)
    np.testing.assert_array_equal(zeros_per_neuron(w), np.full(4, 3))
    assert np.all(np.abs(w[mask]) == np.finfo(np.float32).tiny)


# ---- jax's generic initializer tests, over every sparseinit initializer ---------------------
# Modelled on jax's tests/nn_test.py (NNInitializersTest: testInitializer,
# testInitializerProvider, testAccidentalUpcasting): an initializer returns the requested shape
# and dtype whether the dtype comes with the call or from the factory, and never upcasts.

PROVIDERS = {
    "sparse": lambda dtype: sparseinit.sparse(0.5, dtype=dtype),
    "sparse_min_kept": lambda dtype: sparseinit.sparse(0.99, min_kept=1, dtype=dtype),
    "martens": lambda dtype: sparseinit.martens(2, dtype=dtype),
    "torch_sparse": lambda dtype: sparseinit.torch_sparse(0.5, dtype=dtype),
    "sparsify_lecun_normal": lambda dtype: sparseinit.sparsify(
        inits.lecun_normal(dtype=dtype), 0.5
    ),
    "sparsify_normal": lambda dtype: sparseinit.sparsify(inits.normal(dtype=dtype), 0.5),
    "sparsify_orthogonal": lambda dtype: sparseinit.sparsify(inits.orthogonal(dtype=dtype), 0.5),
    "sparsify_uniform": lambda dtype: sparseinit.sparsify(inits.uniform(dtype=dtype), 0.5),
}
REAL_DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16, *([jnp.float64] if X64 else [])]
COMPLEX_PROVIDERS = ("sparsify_normal", "sparsify_orthogonal")
# jax's orthogonal has no half-precision QR: it raises for bfloat16 and float16 itself.
FULL_PRECISION_ONLY = ("sparsify_orthogonal",)


def _canonical(dtype):
    return jax.dtypes.canonicalize_dtype(dtype)


def _cases():
    # One compilation a case: a 2-D shape for every initializer, a 3-D one for two of them.
    for name in PROVIDERS:
        dtypes = REAL_DTYPES + ([jnp.complex64] if name in COMPLEX_PROVIDERS else [])
        if name in FULL_PRECISION_ONLY:
            dtypes = [d for d in dtypes if jnp.dtype(d).itemsize >= 4]
        shapes = [(4, 3), (2, 3, 5)] if name in ("sparse", "sparsify_normal") else [(4, 3)]
        for dtype in dtypes:
            for shape in shapes:
                yield pytest.param(name, shape, dtype, id=f"{name}-{shape}-{jnp.dtype(dtype)}")


@pytest.mark.parametrize(("name", "shape", "dtype"), list(_cases()))
def test_initializer_provider(key, name, shape, dtype):
    # jax: initializer_provider(dtype=dtype)(rng, shape) has the provider's dtype.
    val = PROVIDERS[name](dtype)(key, shape)
    assert val.shape == shape
    assert val.dtype == _canonical(dtype)


@pytest.mark.parametrize(("name", "shape", "dtype"), list(_cases()))
def test_initializer_call_dtype(key, name, shape, dtype):
    # jax: initializer(rng, shape, dtype) has the call's dtype, whatever the factory's default.
    val = PROVIDERS[name](None)(key, shape, dtype)
    assert val.shape == shape
    assert val.dtype == _canonical(dtype)


def test_sparsify_keeps_complex_values_of_a_complex_default(key):
    # The example: no dtype anywhere but the base initializer's factory.
    w = sparseinit.sparsify(inits.normal(dtype=jnp.complex64), 0.5)(key, (4, 3))
    assert w.dtype == jnp.complex64
    assert np.any(np.imag(np.asarray(w)) != 0)
    np.testing.assert_array_equal(zeros_per_neuron(w), np.full(3, 2))


def test_accidental_upcasting(key):
    # jax: a float32 hyper-parameter does not upcast a bfloat16 initializer.
    scalar_param = jnp.array(1.0, dtype=jnp.float32)
    initializers = (
        sparseinit.sparsify(inits.uniform(scalar_param, jnp.bfloat16), 0.5),
        sparseinit.sparsify(inits.normal(scalar_param, jnp.bfloat16), 0.5),
        sparseinit.sparsify(inits.truncated_normal(scalar_param, jnp.bfloat16), 0.5),
        sparseinit.sparse(0.5, scale=scalar_param, dtype=jnp.bfloat16),
        sparseinit.martens(2, std=scalar_param, dtype=jnp.bfloat16),
        sparseinit.torch_sparse(0.5, std=scalar_param, dtype=jnp.bfloat16),
    )
    for i, init in enumerate(initializers):
        val = init(jax.random.fold_in(key, i), (4, 4))
        assert val.dtype == jnp.bfloat16, init
        # Abstractly too, as under jit.
        assert jax.eval_shape(lambda k, f=init: f(k, (4, 4)), key).dtype == jnp.bfloat16


def test_sparsify_without_dtype_calls_the_base_without_one(key):
    calls = []

    def base(key, shape, dtype=jnp.float16):
        calls.append(dtype)
        return jax.random.normal(key, shape, dtype)

    w = sparseinit.sparsify(base, 0.5)(key, (4, 3))
    assert w.dtype == jnp.float16
    assert calls
    assert all(d == jnp.float16 for d in calls)
    assert sparseinit.sparsify(base, 0.5)(key, (4, 3), jnp.float32).dtype == jnp.float32


def test_sparsify_base_that_needs_a_dtype_gets_the_default_float(key):
    def base(key, shape, dtype):
        return jax.random.normal(key, shape, dtype)

    assert sparseinit.sparsify(base, 0.5)(key, (4, 3)).dtype == jnp.result_type(float)
