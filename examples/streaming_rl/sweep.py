"""Sparsity x seeds, Stream Q(lambda) on a gymnax environment, as one compiled sweep.

Every agent of the sweep (each sparsity paired with each seed) is built by one jitted, vmapped
function that takes the sparsity as a traced value, and runs by one jitted, vmapped
``lax.scan`` over a chunk of steps; both compile once. The population of agents is sharded
over every device JAX sees (one mesh axis, ``agents``): the same command runs on one CPU, on
8 GPUs or on a TPU slice. The host loop only advances the progress bar between chunks and
collects the returns of finished episodes.

Run from the repository root::

    python -m examples.streaming_rl.sweep                          # CartPole, results/cartpole/
    python -m examples.streaming_rl.sweep --env Breakout-MinAtar   # results/minatar/breakout/
    python -m examples.streaming_rl.sweep --quick                  # a smoke run (< 1 minute)

On several hosts, start the same command on every host with ``--distributed`` (it calls
``jax.distributed.initialize()``, which reads the cluster from the environment on Cloud TPU,
SLURM and Kubernetes, or from ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and
``JAX_PROCESS_ID``); process 0 writes the outputs.
"""

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from examples.streaming_rl import envs
from examples.streaming_rl.agent import AgentConfig, AgentState, StreamQ
from examples.streaming_rl.plot import plot_curves, write_table

#: The network and hyper-parameters of the published MinAtar script, but for ``explore_steps``,
#: which the sweep sets to 20% of the steps it runs.
MINATAR_AGENT = AgentConfig(hidden=(128,), conv=(16,), gamma=0.99, lamb=0.8, alpha=1.0, kappa=2.0)


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """What the sweep runs.

    Attributes:
        env_name: a gymnax environment id with discrete actions; MinAtar games get sticky
            actions (see :mod:`examples.streaming_rl.envs`).
        sparsities: the initial sparsities compared; 0.0 is the dense baseline.
        num_seeds: seeds per sparsity; seed ``i`` uses the same key at every sparsity.
        total_steps: environment steps per agent.
        num_chunks: the scan is cut into this many jitted chunks (one progress-bar tick and
            one point of the learning curve each); must divide ``total_steps``.
        final_fraction: the last fraction of chunks whose episodes make the final return.
        seed: the root seed.
        agent: the agent's hyper-parameters.
        num_devices: how many of ``jax.devices()`` share the population; ``None`` for all.
    """

    env_name: str = "CartPole-v1"
    sparsities: tuple[float, ...] = (0.0, 0.5, 0.9)
    num_seeds: int = 30
    total_steps: int = 100_000
    num_chunks: int = 100
    final_fraction: float = 0.1
    seed: int = 0
    agent: AgentConfig = dataclasses.field(default_factory=AgentConfig)
    num_devices: int | None = None

    def __post_init__(self) -> None:
        if self.total_steps <= 0 or self.num_chunks <= 0:
            raise ValueError(
                f"total_steps and num_chunks must be positive, got {self.total_steps} "
                f"and {self.num_chunks}"
            )
        if self.total_steps % self.num_chunks:
            raise ValueError(
                f"num_chunks must divide total_steps, got num_chunks={self.num_chunks} "
                f"and total_steps={self.total_steps}"
            )
        if self.num_seeds < 2:
            raise ValueError(f"num_seeds must be at least 2 for an interval, got {self.num_seeds}")
        if self.num_devices is not None and self.num_devices < 1:
            raise ValueError(f"num_devices must be at least 1, got {self.num_devices}")

    @property
    def chunk_steps(self) -> int:
        return self.total_steps // self.num_chunks

    @property
    def num_agents(self) -> int:
        return len(self.sparsities) * self.num_seeds


def devices(num_devices: int | None = None) -> list[Any]:
    """The devices a sweep uses: the first ``num_devices`` of ``jax.devices()``, or all."""
    every = jax.devices()
    if num_devices is None:
        return every
    if num_devices > len(every):
        raise ValueError(f"num_devices is {num_devices}, but JAX sees only {len(every)} devices")
    return every[:num_devices]


def to_host(x: jax.Array) -> np.ndarray:
    """The whole of a sharded array as numpy, on every process."""
    if jax.process_count() == 1:
        return np.asarray(x)
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


class Sweep:
    """The compiled pieces of a sweep: ``init`` builds every agent, ``chunk`` advances them all.

    The population (sparsity-major, then seeds) is padded to a multiple of the device count by
    repeating its last agent; the padding's results are dropped. ``traces`` counts how often
    each function was traced; a sweep of any length traces each exactly once.
    """

    def __init__(self, config: SweepConfig):
        self.config = config
        env, env_params = envs.make(config.env_name)
        self.agent = StreamQ(env, env_params, config.agent)
        self.graphdef = self.agent.graphdef
        self.mesh = Mesh(np.array(devices(config.num_devices)), ("agents",))
        self.sharding = NamedSharding(self.mesh, P("agents"))
        size = self.mesh.size
        self.num_padded = math.ceil(config.num_agents / size) * size
        self.traces = {"init": 0, "chunk": 0}
        self.init = jax.jit(self._init, out_shardings=self.sharding)
        self.chunk = jax.jit(
            self._chunk,
            in_shardings=self.sharding,
            out_shardings=self.sharding,
            donate_argnums=0,
        )
        self.states: AgentState | None = None

    def agents(self) -> tuple[jax.Array, jax.Array]:
        """The sweep's grid, padded: a key and a sparsity per agent, sparsity-major."""
        c = self.config
        seed_keys = jax.random.split(jax.random.key(c.seed), c.num_seeds)
        keys = jnp.tile(seed_keys, len(c.sparsities))
        sparsities = jnp.repeat(jnp.asarray(c.sparsities, jnp.float32), c.num_seeds)
        pad = self.num_padded - c.num_agents
        keys = jnp.concatenate([keys, jnp.repeat(keys[-1:], pad)])
        sparsities = jnp.concatenate([sparsities, jnp.repeat(sparsities[-1:], pad)])
        return keys, sparsities

    def _init(self) -> AgentState:
        self.traces["init"] += 1
        keys, sparsities = self.agents()
        # The grid is built inside the compiled function, so no process ever sends an array
        # to another: on several hosts each builds only its own agents.
        keys = jax.lax.with_sharding_constraint(keys, self.sharding)
        sparsities = jax.lax.with_sharding_constraint(sparsities, self.sharding)
        return jax.vmap(self.agent.init)(keys, sparsities)

    def _chunk(self, states: AgentState) -> tuple[AgentState, jax.Array, jax.Array]:
        """Runs ``chunk_steps`` transitions of every agent.

        Returns:
            The new states, and per agent the sum and the number of episodic returns of the
            episodes that ended in this chunk.
        """
        self.traces["chunk"] += 1

        def one_agent(state: AgentState) -> tuple[AgentState, jax.Array, jax.Array]:
            def body(s: AgentState, _: None) -> tuple[AgentState, Any]:
                return self.agent.step(self.graphdef, s)

            state, out = jax.lax.scan(body, state, None, length=self.config.chunk_steps)
            done = out.done.astype(jnp.float32)
            return state, jnp.sum(done * out.episode_return), jnp.sum(done)

        return jax.vmap(one_agent)(states)

    def run(self, progress: bool = True) -> dict[str, Any]:
        """Runs the whole sweep; the final states stay in ``self.states``.

        Returns:
            ``returns_sum`` and ``episodes``, each ``(num_sparsities, num_seeds, num_chunks)``;
            ``init_zero_fraction`` and ``dead_input_neurons`` ``(num_sparsities, num_seeds)``:
            the fraction of kernel weights that start at zero, and the fraction of the first
            layer's neurons that start with no non-zero weight; ``steps``, the step count at
            the end of each chunk; and ``timing``: seconds to build the agents and to compile
            the chunk, seconds of the chunks, and agent-steps per second over the chunks.
        """
        c = self.config
        n = c.num_agents
        start = time.perf_counter()
        states = self.init()
        kernels = {
            jax.tree_util.keystr(path): to_host(leaf)[:n]
            for path, leaf in jax.tree_util.tree_leaves_with_path(states.params)
            if "kernel" in jax.tree_util.keystr(path)
        }
        zeros = sum(np.sum(k == 0, axis=tuple(range(1, k.ndim))) for k in kernels.values())
        total = sum(math.prod(k.shape[1:]) for k in kernels.values())
        # The first layer is the first conv, or the first dense layer; neurons on the last axis.
        first_name = "['convs'][0]" if c.agent.conv else "['layers'][0]"
        first = next(k for name, k in kernels.items() if name.startswith(first_name))
        dead = np.all(first == 0, axis=tuple(range(1, first.ndim - 1))).mean(axis=-1)
        init_seconds = time.perf_counter() - start

        start = time.perf_counter()
        chunk = self.chunk.lower(states).compile()
        compile_seconds = time.perf_counter() - start

        sums, counts = [], []
        bar = tqdm(
            range(c.num_chunks),
            disable=not progress or jax.process_index() != 0,
            unit="chunk",
            file=sys.stderr,
            desc=c.env_name,
        )
        start = time.perf_counter()
        for _ in bar:
            states, chunk_sum, chunk_count = chunk(states)
            chunk_sum, chunk_count = to_host(chunk_sum)[:n], to_host(chunk_count)[:n]
            sums.append(chunk_sum)
            counts.append(chunk_count)
            recent = chunk_sum / np.maximum(chunk_count, 1)
            by_sparsity = recent.reshape(len(c.sparsities), c.num_seeds).mean(axis=1)
            bar.set_postfix(
                {f"s={s:g}": f"{r:.1f}" for s, r in zip(c.sparsities, by_sparsity, strict=True)}
            )
        run_seconds = time.perf_counter() - start
        self.states = states
        shape = (len(c.sparsities), c.num_seeds, c.num_chunks)
        return {
            "returns_sum": np.stack(sums, axis=-1).reshape(shape),
            "episodes": np.stack(counts, axis=-1).reshape(shape),
            "init_zero_fraction": (zeros / total).reshape(shape[:2]),
            "dead_input_neurons": dead.reshape(shape[:2]),
            "steps": c.chunk_steps * np.arange(1, c.num_chunks + 1),
            "timing": {
                "init_s": init_seconds,
                "compile_s": compile_seconds,
                "run_s": run_seconds,
                "agent_steps_per_s": n * c.total_steps / run_seconds,
                "devices": self.mesh.size,
                "platform": self.mesh.devices.flat[0].platform,
            },
        }


# The smoke runs: short enough for CI, long enough that every agent finishes episodes.
QUICK = {"num_seeds": 2, "total_steps": 4_000, "num_chunks": 4}
QUICK_MINATAR = {"num_seeds": 2, "total_steps": 2_000, "num_chunks": 4}

# The full MinAtar run: 1.6M agent-steps, sized for about 10 minutes on 2 CPU cores. Measured:
# 590 s (2,814 agent-steps/s) on 2 cores that other jobs shared; see docs/demo.md.
MINATAR = {"sparsities": (0.0, 0.9), "num_seeds": 8, "total_steps": 100_000, "num_chunks": 100}


def default_output(env_name: str) -> Path:
    if envs.is_minatar(env_name):
        return Path("results") / "minatar" / env_name.removesuffix("-MinAtar").lower()
    return Path("results") / env_name.split("-")[0].lower()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run for CI")
    parser.add_argument(
        "--env",
        default="CartPole-v1",
        help=f"gymnax environment id: CartPole-v1 (default) or one of {', '.join(envs.MINATAR)}",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default: results/<env>/)"
    )
    parser.add_argument("--steps", type=int, default=None, help="steps per agent")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per sparsity")
    parser.add_argument(
        "--sparsities", type=float, nargs="+", default=None, help="initial sparsities compared"
    )
    parser.add_argument("--chunks", type=int, default=None, help="jitted chunks (curve points)")
    parser.add_argument(
        "--devices", type=int, default=None, help="devices to shard the agents over (default all)"
    )
    parser.add_argument(
        "--distributed", action="store_true", help="call jax.distributed.initialize() first"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> SweepConfig:
    minatar = envs.is_minatar(args.env)
    overrides: dict[str, Any] = dict(MINATAR) if minatar else {}
    if args.quick:
        overrides.update(QUICK_MINATAR if minatar else QUICK)
    overrides["env_name"] = args.env
    for name, value in [
        ("total_steps", args.steps),
        ("num_seeds", args.seeds),
        ("num_chunks", args.chunks),
        ("num_devices", args.devices),
        ("sparsities", tuple(args.sparsities) if args.sparsities else None),
    ]:
        if value is not None:
            overrides[name] = value
    if minatar:
        # Epsilon decays over the first 20% of the steps run, as in the published script.
        explore = max(1, overrides["total_steps"] // 5)
        overrides["agent"] = dataclasses.replace(MINATAR_AGENT, explore_steps=explore)
    return SweepConfig(**overrides)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the sweep and writes the figure, the table and the raw returns.

    Returns:
        The paths of the ``figure`` and the ``table``, the ``traces`` count of each compiled
        function, and the sweep's ``results``.
    """
    args = parse_args(argv)
    if args.distributed:
        jax.distributed.initialize()
    if args.env != "CartPole-v1" and not envs.is_minatar(args.env):
        raise SystemExit(f"--env must be CartPole-v1 or one of {envs.MINATAR}, got {args.env}")
    config = config_from_args(args)
    out = args.out if args.out is not None else default_output(config.env_name)
    start = time.perf_counter()
    sweep = Sweep(config)
    results = sweep.run(progress=not args.no_progress)
    results["timing"]["wall_s"] = time.perf_counter() - start
    report: dict[str, Any] = {"traces": dict(sweep.traces), "results": results}
    if jax.process_index() != 0:
        return report
    out.mkdir(parents=True, exist_ok=True)
    figure = plot_curves(results, config, out / "learning_curves.png")
    table = write_table(results, config, out / "final_returns.md")
    np.savez_compressed(
        out / "returns.npz", **{k: v for k, v in results.items() if isinstance(v, np.ndarray)}
    )
    print(table.read_text())
    t = results["timing"]
    print(
        f"figure: {figure}\ntable: {table}\nwall time: {t['wall_s']:.0f} s "
        f"({t['agent_steps_per_s']:,.0f} agent-steps/s on {t['devices']} {t['platform']} "
        f"device(s))"
    )
    return {**report, "figure": figure, "table": table}


if __name__ == "__main__":
    main()
