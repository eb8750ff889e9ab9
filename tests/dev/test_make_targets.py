"""The Makefile's targets call modules that exist, and `make bench` runs benchmarks that accept its sizes."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest

from bench.run_all import BENCHES
from tests.support.paths import REPO_ROOT


def test_every_module_the_makefile_runs_exists() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    modules = re.findall(r"python -m ([\w.]+)", makefile)
    assert "bench.run_all" in modules
    missing = [m for m in modules if m != "pytest" and importlib.util.find_spec(m) is None]
    assert missing == []


@pytest.mark.parametrize("bench", BENCHES, ids=lambda b: b.module)
def test_each_bench_make_bench_runs_knows_the_sizes_it_is_given(bench) -> None:
    result = subprocess.run(
        [sys.executable, "-m", bench.module, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    flags = [arg for arg in bench.small_args if arg.startswith("--")]
    assert flags and all(flag in result.stdout for flag in flags)
