"""Shared set-up of the Python package's tests: where the fixture models, the reference data and
the mclip command are (as tests/support/fixtures.cpp finds them), and how to run the command.

Without the fixtures the tests skip with the reason, except under CI=true, where they fail. A
run in which every test skipped exits 77, which ctest reports as a skip (SKIP_RETURN_CODE)."""

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest


def running_under_ci() -> bool:
    return os.environ.get("CI", "") in ("true", "1")


def missing(reason: str):
    """Skips the test for a missing prerequisite; under CI, fails it."""
    if running_under_ci():
        pytest.fail(reason + " (required under CI=true)")
    pytest.skip(reason)


def _env_path(name: str, default_name: str):
    value = os.environ.get(name) or os.environ.get(default_name)
    return pathlib.Path(value) if value else None


@pytest.fixture(scope="session")
def fixtures_dir() -> pathlib.Path:
    path = _env_path("MCLIP_FIXTURES", "MCLIP_DEFAULT_FIXTURES")
    if path is None or not (path / "tokenizer").is_dir():
        missing(f"reference fixtures not found (set MCLIP_FIXTURES; looked in {path})")
    return path.resolve()


@pytest.fixture(scope="session")
def model_path(fixtures_dir) -> pathlib.Path:
    models = _env_path("MCLIP_TEST_MODELS", "MCLIP_DEFAULT_TEST_MODELS")
    path = None if models is None else models / "mobileclip_s0.gguf"
    if path is None or not path.is_file():
        missing(f"fixture model {path} not found (ctest's make_fixture_models makes it)")
    return path


@pytest.fixture(scope="session")
def mclip_executable() -> pathlib.Path:
    value = os.environ.get("MCLIP_EXECUTABLE")
    if not value or not os.access(value, os.X_OK):
        missing("the mclip command is not known (set MCLIP_EXECUTABLE; ctest does)")
    return pathlib.Path(value)


@pytest.fixture(scope="session")
def images(fixtures_dir) -> list:
    """The fixture photos: two PNGs and a JPEG."""
    return [fixtures_dir / "images" / name for name in ("chelsea.png", "coffee.png", "rocket.jpg")]


@pytest.fixture(scope="session")
def model(model_path):
    import mclip

    with mclip.load(model_path) as m:
        yield m


@pytest.fixture(scope="session")
def run_mclip(mclip_executable):
    """Runs the mclip command; returns its stdout, failing the test on a non-zero exit."""

    def run(*args) -> str:
        result = subprocess.run([str(mclip_executable), *map(str, args)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"mclip {' '.join(map(str, args))} failed ({result.returncode}): {result.stderr}")
        return result.stdout

    return run


@pytest.fixture
def cli_embed(run_mclip, tmp_path):
    """`mclip embed ARGS --out FILE`, read back as a numpy array."""

    def embed(*args) -> np.ndarray:
        out = tmp_path / f"embed-{len(list(tmp_path.iterdir()))}.npy"
        run_mclip("embed", *args, "--out", out)
        return np.load(out)

    return embed


@pytest.fixture
def cli_classify(run_mclip):
    def classify(*args) -> dict:
        return json.loads(run_mclip("classify", "--json", "--no-cache", *args))

    return classify


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or exitstatus != 0:
        return
    stats = reporter.stats
    ran = sum(len(stats.get(key, [])) for key in ("passed", "failed", "error", "xfailed", "xpassed"))
    if ran == 0 and stats.get("skipped"):
        session.exitstatus = 77
