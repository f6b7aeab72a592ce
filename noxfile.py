"""Every way to lint, type-check, test, document and benchmark sparseinit.

Run ``nox -l`` for the list; CI runs the same sessions.
"""

import os
import pathlib
import sys
import tomllib

import nox
from packaging.requirements import Requirement

# `tests` runs the doctests itself.
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

# The full suite runs on the Python running nox; the fast part also runs, with 64-bit types, on the
# oldest and the newest Python the package admits (in CI, the first is the one running nox).
RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"
PYTHONS = sorted({"3.11", "3.13", RUNNING}, key=lambda v: tuple(map(int, v.split("."))))


def _let_nox_find_pyenv_pythons() -> None:
    # A pyenv shim runs only the versions pyenv has selected, and nox cannot use a shim that
    # fails: add the newest installed X.Y.Z of each of PYTHONS that is not selected yet.
    root = pathlib.Path(os.environ.get("PYENV_ROOT", pathlib.Path.home() / ".pyenv"))
    if not (root / "versions").is_dir():
        return
    # A shim running nox itself has set PYENV_VERSION to the versions it selected.
    version_file = root / "version"
    if os.environ.get("PYENV_VERSION"):
        selected = os.environ["PYENV_VERSION"].split(":")
    elif version_file.is_file():
        selected = version_file.read_text().split()
    else:
        selected = ["system"]
    added = []
    for python in PYTHONS:
        if any(v == python or v.startswith(f"{python}.") for v in selected):
            continue
        patches = [p.name for p in (root / "versions").glob(f"{python}.*")]
        patches = [v for v in patches if v.rsplit(".", 1)[1].isdigit()]
        if patches:
            added.append(max(patches, key=lambda v: int(v.rsplit(".", 1)[1])))
    if added:
        os.environ["PYENV_VERSION"] = ":".join([*selected, *added])


_let_nox_find_pyenv_pythons()

DOCS_REQUIREMENTS = [
    "mkdocs==1.6.1",
    "mkdocs-material==9.6.14",
    "mkdocstrings[python]==0.29.1",
    "mkdocstrings-python==1.16.12",
    "mkdocs-jupyter==0.25.1",
    # Formats the signatures of the API reference.
    "ruff==0.17.6",
    # Renders the maths as MathML at build time.
    "latex2mathml==3.81.1",
]
DEMO_REQUIREMENTS = ["flax>=0.10.4", "gymnax>=0.0.8", "six", "matplotlib>=3.8", "tqdm>=4.66"]
NOTEBOOK_REQUIREMENTS = ["nbmake>=1.5", "ipykernel>=6.29", "matplotlib>=3.8"]
# What the notebooks import; the docs build runs them too.
NOTEBOOK_KERNEL = [".[test]", *DEMO_REQUIREMENTS, "ipykernel>=6.29"]


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


# Compilation dominates the suite and is single-threaded: one worker per core, and whole modules
# per worker so that a module's tests share their compiled programs. The checks of the built
# site run in the docs session, after the build.
PYTEST_ARGS = ["-q", "-p", "no:cacheprovider", "-n", "auto", "--dist", "loadfile"]
PYTEST_ARGS += ["--ignore=tests/test_site.py"]
# The runs beside the full one check the library under another dtype mode, Python or set of
# versions. They leave out what runs once, on the Python running nox: the pages' code blocks,
# the benchmark script and the demo (its own package, float32 by design). They also leave out
# the statistical tests of the masks, whose outcome is fixed by the random bits: the golden
# test, which every run keeps, pins those bits (the support of every initializer's output over
# a grid of shapes, keys and sparsities) to the ones the full run tests. Property tests draw
# fewer examples there (the `side` profile of tests/conftest.py).
NARROW = [
    "--ignore=tests/test_docs.py",
    "--ignore=tests/test_benchmarks.py",
    "--ignore=tests/test_demo.py",
    "--ignore=tests/test_mask.py",
    "-m",
    "not slow",
]
SIDE_ENV = {"HYPOTHESIS_PROFILE": "side"}
# Sharded builds in 8-device subprocesses: run on the lowest versions (the floors of jax were
# set by its sharding API) and in the full run, not again on every side run.
SHARDING = "--ignore=tests/test_sharding.py"
# A renamed test module would silently stop being left out: every file named must exist.
_IGNORED = [a.removeprefix("--ignore=") for a in [*PYTEST_ARGS, *NARROW, SHARDING] if "=" in a]
_MISSING = [p for p in _IGNORED if not (pathlib.Path(__file__).parent / p).is_file()]
if _MISSING:
    raise FileNotFoundError(f"noxfile.py: --ignore names no test file: {', '.join(_MISSING)}")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The full suite on the Python running nox, the fast part with x64 on 3.11 and 3.13.

    On the running Python: the whole suite in float32 and every docstring example. On the
    others: the fast library tests with JAX_ENABLE_X64=1, which also runs the float64 cases
    that float32 mode skips. The dtype mode and the Python version are independent, so one
    side run checks both (the lowest versions run in float32). ``nox -s tests -- ARGS`` runs
    ``pytest ARGS`` once instead.
    """
    session.install("-e", ".[test]", *DEMO_REQUIREMENTS)
    if session.posargs:
        session.run("pytest", *session.posargs)
        return
    if session.python != RUNNING:
        side = [*PYTEST_ARGS, *NARROW, SHARDING]
        session.run("pytest", *side, env={"JAX_ENABLE_X64": "1", **SIDE_ENV})
        return
    session.run("pytest", *PYTEST_ARGS, env={"JAX_ENABLE_X64": "0"})
    _run_doctests(session)


def _floors(*extras: str) -> list[str]:
    """``name==version`` for the lower bound of each dependency the package and ``extras``
    declare in pyproject.toml."""
    project = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"]]
    for extra in extras:
        declared += project["optional-dependencies"][extra]
    pins = {}
    for line in declared:
        requirement = Requirement(line)
        floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if len(floors) != 1:
            raise ValueError(f"pyproject.toml: {line!r} needs exactly one '>=' lower bound")
        pins[requirement.name] = f"{requirement.name}=={floors[0]}"
    return sorted(pins.values())


# The lowest Python the package admits, with the lowest of everything else.
@nox.session(python="3.11")
def lowest(session: nox.Session) -> None:
    """The fast float32 tests on the lowest version of every declared dependency.

    Every dependency of the package and of its extras is pinned to its lower bound in
    pyproject.toml; the demo, whose dependencies are not the package's, is left out.
    """
    session.install(*_floors("optax", "flax", "test"))
    session.install("--no-deps", "-e", ".")
    session.run("pip", "list", silent=False)
    if session.posargs:
        session.run("pytest", *session.posargs)
        return
    session.run("pytest", *PYTEST_ARGS, *NARROW, env={"JAX_ENABLE_X64": "0", **SIDE_ENV})


# The newest Python the package admits, with the newest release of everything it admits: the
# jax a plain `pip install sparseinit` gets, which the demo's pins keep out of `tests`.
@nox.session(python="3.13")
def newest(session: nox.Session) -> None:
    """The fast float32 tests on the newest jax, jaxlib and other dependencies the package admits.

    What ``pip install sparseinit[test]`` gives today: only the package and its test extra are
    installed, so the demo's dependencies, which hold jax back, pin nothing here. ``--upgrade``
    with the eager strategy moves a reused environment on to the newest releases too.
    """
    session.install("--upgrade", "--upgrade-strategy", "eager", "-e", ".[test]")
    listing = session.run("python", "-m", "pip", "list", silent=True) or ""
    for line in listing.splitlines():
        if line.startswith("jax"):
            session.log(line)
    if session.posargs:
        session.run("pytest", *session.posargs)
        return
    session.run("pytest", *PYTEST_ARGS, *NARROW, env={"JAX_ENABLE_X64": "0", **SIDE_ENV})


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
    """Benchmarks against dense and naive baselines; writes benchmarks/RESULTS.md.

    ``nox -s bench -- --torch`` also installs PyTorch's CPU build and times it as an anchor.
    """
    session.install("-e", ".", "flax>=0.10.4")
    args = list(session.posargs)
    if "--torch" in args:
        args.remove("--torch")
        session.install("torch", "--index-url", "https://download.pytorch.org/whl/cpu")
    session.run("python", "benchmarks/run.py", *args)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with --strict, running the notebooks; check the pages."""
    session.install("-e", *NOTEBOOK_KERNEL, *DOCS_REQUIREMENTS)
    session.run("mkdocs", "build", "--strict")
    # The checks of the built pages only; the project's pytest options are the test suite's.
    session.run("pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "tests/test_site.py")


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
