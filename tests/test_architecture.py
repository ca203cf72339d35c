"""The layering in pyproject's import-linter contracts holds: no VTK/Qt in the model, Qt only in the app."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    beside_python = Path(sys.executable).parent / "lint-imports"
    lint = str(beside_python) if beside_python.exists() else shutil.which("lint-imports")
    assert lint, "import-linter is part of the test extra: pip install '.[test]'"
    result = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
