"""Bad input gets a ``ValueError`` naming the argument and the value, never a wrong answer.

Every pattern below includes the argument's name and the offending value, so a message that
dropped either would fail. A traced sparsity cannot raise inside ``jit``: it is reported
through ``checkify`` and otherwise poisons the weights with NaN.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import sparseinit

KEY = jax.random.key(0)

# Each factory with its sparsity as the first (or, for sparsify, second) argument.
SPARSITY_FACTORIES = {
    "sparse": lambda s: sparseinit.sparse(s),
    "sparsify": lambda s: sparseinit.sparsify(jax.nn.initializers.lecun_normal(), s),
    "torch_sparse": lambda s: sparseinit.torch_sparse(s),
    "sparse_init": lambda s: sparseinit.sparse_init(KEY, (4, 5), s),
}

# Initializers whose call checks shape, dtype and key.
INITIALIZERS = {
    "sparse": sparseinit.sparse(0.5),
    "sparsify": sparseinit.sparsify(jax.nn.initializers.lecun_normal(), 0.5),
    "martens": sparseinit.martens(3),
    "torch_sparse": sparseinit.torch_sparse(0.5),
}


# ---- sparsity -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPARSITY_FACTORIES)
@pytest.mark.parametrize(
    ("sparsity", "pattern"),
    [
        (1.5, r"sparsity must be in \[0, 1\], got 1\.5"),
        (-0.1, r"sparsity must be in \[0, 1\], got -0\.1"),
        (float("nan"), r"sparsity must be in \[0, 1\], got nan"),
        (np.float32(np.nan), r"sparsity must be in \[0, 1\], got nan"),
        (jnp.float32(2.0), r"sparsity must be in \[0, 1\], got 2\.0"),
        (True, r"sparsity .*bool.*True"),
        (np.bool_(False), r"sparsity .*bool.*False"),
        (jnp.array(True), r"sparsity .*bool.*True"),
        (np.array([0.5, 0.5]), r"sparsity must be a scalar.*shape \(2,\)"),
        (jnp.full((1,), 0.5), r"sparsity must be a scalar.*shape \(1,\)"),
    ],
)
def test_bad_sparsity(name, sparsity, pattern):
    with pytest.raises(ValueError, match=rf"^{name}: {pattern}"):
        SPARSITY_FACTORIES[name](sparsity)


def test_bad_sparsity_through_vmap_of_a_non_scalar():
    # Under vmap each element is a scalar tracer, but a 2-D batch still leaves one axis.
    with pytest.raises(ValueError, match=r"sparsity must be a scalar.*shape \(2,\)"):
        jax.vmap(lambda s: sparseinit.sparse(s)(KEY, (4, 3)))(jnp.full((3, 2), 0.5))


# ---- choices --------------------------------------------------------------------------------


def test_unknown_distribution():
    with pytest.raises(ValueError, match=r"^sparse: distribution must be one of .*got 'laplace'"):
        sparseinit.sparse(0.5, distribution="laplace")


@pytest.mark.parametrize(
    "make",
    [
        lambda r: sparseinit.sparse(0.5, rounding=r),
        lambda r: sparseinit.sparsify(jax.nn.initializers.lecun_normal(), 0.5, rounding=r),
    ],
    ids=["sparse", "sparsify"],
)
@pytest.mark.parametrize("rounding", ["nearest", "CEIL", ""])
def test_unknown_rounding(make, rounding):
    with pytest.raises(ValueError, match=rf"rounding must be one of .*got {rounding!r}"):
        make(rounding)


@pytest.mark.parametrize("init_type", ["truncated_normal", "Uniform", ""])
def test_unknown_init_type(init_type):
    with pytest.raises(ValueError, match=rf"^sparse_init: init_type must be .*got {init_type!r}"):
        sparseinit.sparse_init(KEY, (4, 5), 0.5, init_type)


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: sparseinit.sparse(0.5, scale=0.0), r"^sparse: scale must be .*positive.*0\.0"),
        (lambda: sparseinit.sparse(0.5, scale=-1.0), r"^sparse: scale must be .*positive.*-1\.0"),
        (lambda: sparseinit.sparse(0.5, scale=np.nan), r"^sparse: scale must be .*positive.*nan"),
        (lambda: sparseinit.martens(3, std=float("inf")), r"^martens: std must be .*inf"),
        (lambda: sparseinit.torch_sparse(0.5, std=0.0), r"^torch_sparse: std must be .*0\.0"),
    ],
)
def test_bad_scale_and_std(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_integer_scale_and_std_are_accepted():
    assert sparseinit.sparse(0.5, scale=2).scale == 2.0
    assert sparseinit.torch_sparse(0.5, std=1).std == 1.0


# ---- nonzero --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nonzero", "shown"),
    [
        (-1, "-1"),
        (-15, "-15"),
        (True, "True"),
        (False, "False"),
        (1.5, "1.5"),
        (15.0, "15.0"),
    ],
)
def test_bad_nonzero(nonzero, shown):
    with pytest.raises(
        ValueError, match=rf"^martens: nonzero must be a non-negative integer, got {shown}$"
    ):
        sparseinit.martens(nonzero)


def test_nonzero_accepts_numpy_integers():
    assert sparseinit.martens(np.int64(4)).nonzero == 4


# ---- shapes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", INITIALIZERS)
@pytest.mark.parametrize(
    ("shape", "pattern"),
    [
        ((5,), r"shape must have at least 2 dimensions, got \(5,\)"),
        ((), r"shape must have at least 2 dimensions, got \(\)"),
        ((3, -1), r"shape must hold non-negative integers, got -1 in \(3, -1\)"),
        ((3, 2.5), r"shape must hold integers, got 2\.5 in \(3, 2\.5\)"),
        ((3, True), r"shape must hold integers, got True in \(3, True\)"),
    ],
)
def test_bad_shape(name, shape, pattern):
    with pytest.raises(ValueError, match=rf"^{name}: {pattern}"):
        INITIALIZERS[name](KEY, shape)
    with pytest.raises(ValueError, match=rf"^{name}: {pattern}"):
        INITIALIZERS[name].mask(KEY, shape)


def test_torch_sparse_is_2d_only():
    with pytest.raises(
        ValueError, match=r"^torch_sparse: shape must be 2-dimensional.*\(3, 4, 5\)"
    ):
        sparseinit.torch_sparse(0.5)(KEY, (3, 4, 5))


def test_sparse_init_is_2d_only():
    with pytest.raises(ValueError, match=r"^sparse_init: shape must be \(fan_out, fan_in\).*"):
        sparseinit.sparse_init(KEY, (3, 4, 5), 0.5)


# ---- axes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "shape", "pattern"),
    [
        (
            {"in_axis": 0, "out_axis": 0},
            (3, 4),
            r"in_axis and out_axis must differ, got in_axis=0, out_axis=0",
        ),
        (
            {"in_axis": -1, "out_axis": 1},
            (3, 4),
            r"in_axis and out_axis must differ, got in_axis=-1, out_axis=1",
        ),
        (
            {"in_axis": (0, 1), "out_axis": 1},
            (3, 4, 5),
            r"in_axis and out_axis must differ, got in_axis=\(0, 1\), out_axis=1",
        ),
        ({"in_axis": 5}, (3, 4), r"in_axis=5 is out of range for a 2-dimensional shape"),
        ({"out_axis": -3}, (3, 4), r"out_axis=-3 is out of range for a 2-dimensional shape"),
        ({"batch_axis": 2}, (3, 4), r"batch_axis=2 is out of range for a 2-dimensional shape"),
        ({"in_axis": (0, 4)}, (3, 4, 5, 6), r"in_axis=\(0, 4\) is out of range"),
        ({"batch_axis": -1}, (3, 4, 5), r"batch_axis and out_axis must differ, got batch_axis=-1"),
        ({"in_axis": (0, 0)}, (3, 4, 5), r"in_axis=\(0, 0\) names the same axis twice"),
        ({"out_axis": ()}, (3, 4), r"out_axis must name at least one axis, got \(\)"),
    ],
)
def test_bad_axes(kwargs, shape, pattern):
    with pytest.raises(ValueError, match=rf"^sparse: {pattern}"):
        sparseinit.sparse(0.5, **kwargs)(KEY, shape)
    with pytest.raises(ValueError, match=rf"^martens: {pattern}"):
        sparseinit.martens(3, **kwargs)(KEY, shape)


@pytest.mark.parametrize("axis", [True, (0, False)])
def test_bool_axis(axis):
    pattern = rf"^sparse: in_axis must be an int .*got {re.escape(repr(axis))}"
    with pytest.raises(ValueError, match=pattern):
        sparseinit.sparse(0.5, in_axis=axis)


# ---- dtypes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", INITIALIZERS)
@pytest.mark.parametrize(
    ("dtype", "shown"), [(jnp.int32, "int32"), (jnp.uint8, "uint8"), (bool, "bool")]
)
def test_integer_and_bool_dtypes(name, dtype, shown):
    with pytest.raises(ValueError, match=rf"^{name}: dtype must be a floating dtype, got {shown}"):
        INITIALIZERS[name](KEY, (4, 3), dtype)


@pytest.mark.parametrize(
    "make",
    [
        lambda d: sparseinit.sparse(0.5, dtype=d),
        lambda d: sparseinit.martens(3, dtype=d),
        lambda d: sparseinit.torch_sparse(0.5, dtype=d),
    ],
    ids=["sparse", "martens", "torch_sparse"],
)
def test_bad_dtype_at_the_factory(make):
    with pytest.raises(ValueError, match=r"dtype must be a floating dtype, got int8"):
        make(jnp.int8)
    with pytest.raises(ValueError, match=r"dtype must be a real floating dtype, got complex64"):
        make(jnp.complex64)


@pytest.mark.parametrize("name", ["sparse", "martens", "torch_sparse"])
@pytest.mark.parametrize("dtype", [jnp.complex64, "complex64"])
def test_complex_dtype_is_a_clear_error(name, dtype):
    with pytest.raises(
        ValueError,
        match=rf"^{name}: dtype must be a real floating dtype, got complex64; .*sparsify\(\)",
    ):
        INITIALIZERS[name](KEY, (4, 3), dtype)


def test_complex_dtype_through_sparsify():
    def complex_normal(key, shape, dtype=jnp.complex64):
        return jax.random.normal(key, shape, dtype)

    init = sparseinit.sparsify(complex_normal, 0.5)
    w = init(KEY, (6, 5), jnp.complex64)
    assert w.dtype == jnp.complex64
    np.testing.assert_array_equal((np.asarray(w) == 0).sum(axis=0), np.full(5, 3))
    # Both parts are drawn, so these are complex weights, not real ones cast.
    assert np.any(np.imag(np.asarray(w)) != 0)


# ---- keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", INITIALIZERS)
def test_batched_typed_key(name):
    keys = jax.random.split(KEY, 2)
    with pytest.raises(ValueError, match=rf"^{name}: key must be a single key.*shape \(2,\).*vmap"):
        INITIALIZERS[name](keys, (4, 3))
    with pytest.raises(ValueError, match=rf"^{name}: key must be a single key.*shape \(2,\)"):
        INITIALIZERS[name].mask(keys, (4, 3))


@pytest.mark.parametrize("name", INITIALIZERS)
def test_batched_raw_key(name):
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    with pytest.raises(ValueError, match=rf"^{name}: key must be a single key.*shape \(3, 2\)"):
        INITIALIZERS[name](keys, (4, 3))


def test_batched_key_in_sparse_init():
    # The message names the key and its shape (its prefix is that of sparse, which does the work).
    with pytest.raises(ValueError, match=r"key must be a single key.*shape \(2,\)"):
        sparseinit.sparse_init(jax.random.split(KEY, 2), (4, 5), 0.5)


# ---- a traced sparsity out of range ---------------------------------------------------------


@pytest.fixture(scope="module")
def traced_weights_and_mask():
    init_weights = jax.jit(lambda s: sparseinit.sparse(s)(KEY, (6, 4)))
    init_mask = jax.jit(lambda s: sparseinit.sparse(s).mask(KEY, (6, 4)))
    return init_weights, init_mask


@pytest.mark.parametrize("sparsity", [float("nan"), 1.5, -0.5])
def test_traced_bad_sparsity_gives_nan_weights(traced_weights_and_mask, sparsity):
    init_weights, init_mask = traced_weights_and_mask
    w = np.asarray(init_weights(jnp.float32(sparsity)))
    mask = np.asarray(init_mask(jnp.float32(sparsity)))
    assert np.all(np.isnan(w))
    assert np.all(mask)
    np.testing.assert_array_equal(mask, w != 0)
    # The same compiled function gives real weights for a good value: NaN is not the default.
    good = np.asarray(init_weights(jnp.float32(0.5)))
    assert not np.any(np.isnan(good))
    np.testing.assert_array_equal((good == 0).sum(axis=0), np.full(4, 3))


def test_traced_bad_sparsity_through_sparsify_gives_nan_weights():
    init = jax.jit(lambda s: sparseinit.sparsify(jax.nn.initializers.he_normal(), s)(KEY, (6, 4)))
    assert np.all(np.isnan(np.asarray(init(jnp.float32(np.nan)))))


@pytest.mark.parametrize("order", ["checkify_of_jit", "jit_of_checkify"])
def test_traced_bad_sparsity_is_reported_by_checkify(order):
    def f(s):
        return sparseinit.sparse(s)(KEY, (6, 4))

    checked = (
        checkify.checkify(jax.jit(f))
        if order == "checkify_of_jit"
        else jax.jit(checkify.checkify(f))
    )
    err, _ = checked(jnp.float32(1.5))
    assert err.get() is not None
    assert "sparse: sparsity must be in [0, 1], got 1.5" in err.get()
    with pytest.raises(checkify.JaxRuntimeError, match=r"sparsity must be in \[0, 1\], got 1\.5"):
        err.throw()
    err, _ = checked(jnp.float32(np.nan))
    assert "sparse: sparsity must be in [0, 1], got nan" in err.get()
    err, w = checked(jnp.float32(0.5))
    assert err.get() is None
    assert not np.any(np.isnan(np.asarray(w)))


# ---- min_kept -------------------------------------------------------------------------------

MIN_KEPT_FACTORIES = {
    "sparse": lambda m: sparseinit.sparse(0.9, min_kept=m),
    "sparsify": lambda m: sparseinit.sparsify(jax.nn.initializers.lecun_normal(), 0.9, min_kept=m),
    "num_zeros": lambda m: sparseinit.num_zeros(0.9, 4, "ceil", min_kept=m),
}


@pytest.mark.parametrize("name", MIN_KEPT_FACTORIES)
@pytest.mark.parametrize(
    ("min_kept", "pattern"),
    [
        (-1, r"min_kept must be a non-negative integer, got -1$"),
        (True, r"min_kept must be a non-negative integer, got True$"),
        (np.bool_(False), r"min_kept must be a non-negative integer, got np\.False_$"),
        (1.0, r"min_kept must be a non-negative integer, got 1\.0$"),
        (0.5, r"min_kept must be a non-negative integer, got 0\.5$"),
        (
            np.array([1]),
            r"min_kept must be a non-negative integer, not an array, got array\(\[1\]\)",
        ),
        (np.array(1), r"min_kept must be a non-negative integer, not an array, got array\(1\)"),
        (jnp.array(1), r"min_kept must be a non-negative integer, not an array, got Array\(1"),
    ],
)
def test_bad_min_kept(name, min_kept, pattern):
    with pytest.raises(ValueError, match=rf"^{name}: {pattern}"):
        MIN_KEPT_FACTORIES[name](min_kept)


def test_traced_min_kept_is_refused():
    with pytest.raises(ValueError, match=r"^sparse: min_kept must be a non-negative integer"):
        jax.jit(lambda m: sparseinit.sparse(0.9, min_kept=m))(3)


def test_min_kept_accepts_numpy_integers():
    assert sparseinit.sparse(0.9, min_kept=np.int64(2)).min_kept == 2
    assert type(sparseinit.sparse(0.9, min_kept=np.int32(2)).min_kept) is int


# ---- the base initializer of sparsify -------------------------------------------------------


def test_uncalled_jax_factory_is_refused_at_the_factory():
    with pytest.raises(
        ValueError,
        match=r"^sparsify: base_init must be an initializer, got the initializer factory "
        r"jax\.nn\.initializers\.lecun_uniform itself; did you mean lecun_uniform\(\)\?$",
    ):
        sparseinit.sparsify(jax.nn.initializers.lecun_uniform, 0.9)


def my_factory(scale=1.0, mode="fan_in", distribution="normal"):
    return jax.nn.initializers.variance_scaling(scale, mode, distribution)


def test_uncalled_user_factory_is_found_by_eval_shape():
    init = sparseinit.sparsify(my_factory, 0.9)
    with pytest.raises(
        ValueError,
        match=r"^sparsify: base_init=(tests\.)?test_checks\.my_factory returned a function, "
        r"not an array, when called as base_init\(key, shape\): it is an initializer factory, "
        r"not an initializer; did you mean my_factory\(\)\?$",
    ):
        init(KEY, (4, 3))
    with pytest.raises(ValueError, match=r"base_init\(key, shape, dtype\).*my_factory\(\)\?$"):
        init(KEY, (4, 3), jnp.float32)


def test_base_init_that_cannot_be_called():
    def no_arguments():
        return jax.nn.initializers.zeros

    with pytest.raises(
        ValueError,
        match=r"^sparsify: base_init=.*no_arguments cannot be called as "
        r"base_init\(key, shape, dtype\): .*if it is a factory of initializers, call it first",
    ):
        sparseinit.sparsify(no_arguments, 0.5)(KEY, (4, 3))


@pytest.mark.parametrize(
    ("base", "dtype", "pattern"),
    [
        (
            lambda key, shape, dtype=None: jnp.zeros((2, 2)),
            None,
            r"returned shape \(2, 2\) for the requested shape \(4, 3\); an initializer must "
            r"return an array of the shape it is given",
        ),
        (
            lambda key, shape, dtype=None: 0.5,
            None,
            r"must return an array, got float 0\.5 from base_init\(key, shape\)$",
        ),
        (
            lambda key, shape, dtype=None: jnp.zeros(shape, jnp.float32),
            jnp.bfloat16,
            r"returned float32 when called with dtype bfloat16; an initializer must return the "
            r"dtype it is given",
        ),
        (
            lambda key, shape, dtype=None: jnp.zeros(shape, jnp.int32),
            None,
            r"returned int32 values; sparsify needs a floating or complex initializer",
        ),
    ],
    ids=["shape", "not_an_array", "dtype_ignored", "integer"],
)
def test_base_init_that_returns_the_wrong_thing(base, dtype, pattern):
    init = sparseinit.sparsify(base, 0.5)
    with pytest.raises(ValueError, match=rf"^sparsify: base_init=.*<lambda> {pattern}"):
        init(KEY, (4, 3), dtype)


# ---- sparse_init is not an initializer ------------------------------------------------------


SPARSE_INIT_HINT = (
    r"^sparse_init: sparsity must be a number in \[0, 1\], got the dtype float32: sparse_init "
    r"is a function of \(key, shape, sparsity\), not an initializer, and Flax calls "
    r"kernel_init\(key, shape, dtype\); for a layer use "
    r"kernel_init=sparseinit\.sparse\(0\.9, rounding='round'\)"
)


@pytest.mark.parametrize("dtype", [jnp.float32, np.dtype("float32"), "float32"])
def test_sparse_init_given_a_dtype_as_sparsity(dtype):
    with pytest.raises(ValueError, match=SPARSE_INIT_HINT):
        sparseinit.sparse_init(KEY, (4, 5), dtype)


def test_sparse_init_as_a_flax_kernel_init():
    from flax import nnx

    with pytest.raises(ValueError, match=SPARSE_INIT_HINT):
        nnx.Linear(4, 3, kernel_init=sparseinit.sparse_init, rngs=nnx.Rngs(0))
