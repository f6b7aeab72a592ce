"""Runs a short demo sweep unsharded and sharded on 8 virtual CPU devices; run by test_demo.py.

The device count is fixed when JAX starts, so this runs in its own process with XLA_FLAGS set
before jax is imported. It prints one JSON object: for each device count, where the agents'
states live, and whether every output and the final parameters equal the one-device run's bit
for bit.

Sharding changes each device's batch of agents (9 on one device, 2 on each of 8 here), and
XLA's CPU fusion emitters vectorise elementwise math (CartPole's sin and cos, for one)
differently for different batch sizes, which moves the last bit of a few values within a few
steps. That is code generation, not sharding; with the fusion emitters off
(``--xla_cpu_use_fusion_emitters=false``) every agent's arithmetic is the same whatever its
batch, so the comparison isolates what sharding itself changes. That holds for CartPole's
network. The MinAtar network's layer norm over a whole 8x8x16 feature map is a reduction whose
summation order XLA's CPU code still chooses by batch size, so there the parameters agree to
float32 rounding rather than bit for bit (``max_relative_param_difference``). jaxlib 0.11 and
later have no such switch; there both networks agree to float32 rounding.

Usage: ``python tests/demo_sharding_worker.py ENV_ID [SEEDS] [STEPS]``.
"""

import importlib.metadata
import json
import os
import sys

# jaxlib 0.11 dropped the switch (XLA aborts on a flag it does not know); there the runs agree to
# float32 rounding, and the report says the emitters were left on.
_JAXLIB = tuple(int(p) for p in importlib.metadata.version("jaxlib").split(".")[:2])
FUSION_EMITTERS_OFF = _JAXLIB < (0, 11)
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=8"
    + (" --xla_cpu_use_fusion_emitters=false" if FUSION_EMITTERS_OFF else "")
).strip()

# XLA reads its flags when jax is imported.
import jax  # noqa: E402
import numpy as np  # noqa: E402

from examples.streaming_rl import sweep  # noqa: E402


def run(env_id, seeds, steps, num_devices):
    args = ["--env", env_id, "--quick", "--seeds", str(seeds), "--steps", str(steps)]
    args += ["--chunks", "2", "--devices", str(num_devices)]
    config = sweep.config_from_args(sweep.parse_args(args))
    s = sweep.Sweep(config)
    results = s.run(progress=False)
    leaves = jax.tree.leaves(s.states.params)
    devices = {d.id for leaf in leaves for d in leaf.sharding.device_set}
    arrays = {k: v for k, v in results.items() if isinstance(v, np.ndarray)}
    params = [np.asarray(leaf)[: config.num_agents] for leaf in leaves]
    return (
        arrays,
        params,
        {
            "devices": len(devices),
            "padded_agents": s.num_padded,
            "agents": config.num_agents,
            "spec": str(leaves[0].sharding.spec),
            "traces": s.traces,
            "episodes": float(results["episodes"].sum()),
        },
    )


def main():
    env_id = sys.argv[1]
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 400
    ref_arrays, ref_params, ref_info = run(env_id, seeds, steps, 1)
    report = {
        "jax_devices": jax.device_count(),
        "fusion_emitters_off": FUSION_EMITTERS_OFF,
        "runs": [ref_info],
    }
    for n in (8,):
        arrays, params, info = run(env_id, seeds, steps, n)
        info["identical_outputs"] = all(
            np.array_equal(arrays[k], ref_arrays[k], equal_nan=True) for k in ref_arrays
        )
        info["identical_params"] = all(
            np.array_equal(a, b) for a, b in zip(params, ref_params, strict=True)
        )
        info["max_relative_param_difference"] = max(
            float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))
            for a, b in zip(params, ref_params, strict=True)
        )
        report["runs"].append(info)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
