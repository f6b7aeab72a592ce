"""Every way to lint, type-check, test, document and benchmark sparseinit.

Run ``nox -l`` for the list; CI runs the same sessions.
"""

import os

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "doctests"]
nox.options.reuse_existing_virtualenvs = True

DOCS_REQUIREMENTS = [
    "mkdocs==1.6.1",
    "mkdocs-material==9.6.14",
    "mkdocstrings[python]==0.29.1",
    "mkdocs-jupyter==0.25.1",
]
DEMO_REQUIREMENTS = ["flax>=0.10.4", "gymnax>=0.0.8", "six", "matplotlib>=3.8", "tqdm>=4.66"]
NOTEBOOK_REQUIREMENTS = ["nbmake>=1.5", "ipykernel>=6.29", "matplotlib>=3.8"]


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Pyright on the library sources."""
    session.install("-e", ".[optax,flax]", "pyright==1.1.414")
    session.run("pyright", "src")


@nox.session
def tests(session: nox.Session) -> None:
    """The full test suite (float32, then JAX_ENABLE_X64=1) and every docstring example."""
    session.install("-e", ".[test]", *DEMO_REQUIREMENTS)
    # Compilation dominates the suite and is single-threaded: one worker per core, and whole
    # modules per worker so that a module's tests share their compiled programs.
    args = session.posargs or ["-q", "-p", "no:cacheprovider", "-n", "auto", "--dist", "loadfile"]
    session.run("pytest", *args, env={"JAX_ENABLE_X64": "0"})
    session.run("pytest", *args, "-m", "not slow", env={"JAX_ENABLE_X64": "1"})
    _run_doctests(session)


def _run_doctests(session: nox.Session) -> None:
    # The examples print float32 dtypes: they run without x64.
    session.run(
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--doctest-modules",
        "src/sparseinit",
        env={"JAX_ENABLE_X64": "0"},
    )


@nox.session
def doctests(session: nox.Session) -> None:
    """The examples in every docstring."""
    session.install("-e", ".[test]")
    _run_doctests(session)


@nox.session
def demo(session: nox.Session) -> None:
    """The streaming-RL sweep (CartPole; `-- --env Breakout-MinAtar` for MinAtar) into results/."""
    session.install("-e", ".", *DEMO_REQUIREMENTS)
    session.run("python", "-m", "examples.streaming_rl.sweep", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against dense and naive baselines; writes benchmarks/RESULTS.md."""
    session.install("-e", ".", "flax>=0.10.4")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with --strict."""
    session.install("-e", ".[optax,flax]", *DOCS_REQUIREMENTS)
    session.run("mkdocs", "build", "--strict")


@nox.session
def notebooks(session: nox.Session) -> None:
    """Execute every notebook."""
    session.install("-e", ".[test]", *DEMO_REQUIREMENTS, *NOTEBOOK_REQUIREMENTS)
    session.run(
        "pytest", "-q", "-p", "no:cacheprovider", "--nbmake", "notebooks", env={"MPLBACKEND": "Agg"}
    )


@nox.session
def build(session: nox.Session) -> None:
    """Build the sdist and wheel."""
    session.install("build")
    session.run("python", "-m", "build", "--outdir", os.path.join(session.create_tmp(), "dist"))
