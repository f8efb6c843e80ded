"""Heavy or provider-specific libraries stay unloaded until they are used (decision 0001)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["headshots.web.app", "headshots.cli"])
def test_importing_the_app_loads_no_provider_client_and_no_torch(module: str) -> None:
    # A fresh interpreter: this test process has long since imported everything.
    probe = (
        f"import sys, {module}; "
        "print(sorted({name.split('.')[0] for name in sys.modules} "
        "& {'replicate', 'stripe', 'torch', 'diffusers', 'boto3'}))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"
