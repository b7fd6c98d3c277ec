"""`make`'s venv step says what it does at every step, and lets pip show its progress only on a
terminal (so CI and piped output stay a few lines). The real Makefile, run with a stub Python
whose `-m venv` makes a stub pip that records how it was called: no network, no real install."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_STUB_PY = """#!/bin/sh
# stub interpreter: only `-m venv DIR` is expected
[ "$1" = "-m" ] && [ "$2" = "venv" ] || exit 3
mkdir -p "$3/bin"
cat > "$3/bin/pip" <<'PIP'
#!/bin/sh
echo "$*" >> "$(dirname "$0")/pip-calls"
[ "$2" = "-q" ] || echo "Collecting something (stub pip)"
PIP
chmod +x "$3/bin/pip"
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'stub'\n")
    stub = tmp_path / "stub-python"
    stub.write_text(_STUB_PY)
    stub.chmod(0o755)
    return tmp_path


def _make(checkout: Path, tty: bool) -> str:
    args = ["make", "--no-print-directory", f"PY={checkout / 'stub-python'}", ".venv/bin/trident"]
    if not tty:
        return subprocess.run(args, cwd=checkout, capture_output=True, text=True, timeout=30, check=True).stdout
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(args, cwd=checkout, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other end closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=30) == 0
        return b"".join(chunks).decode()
    finally:
        os.close(leader)


def _steps(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.startswith("==> ")]


@pytest.mark.parametrize("tty", [False, True], ids=["piped", "terminal"])
def test_every_step_is_announced_and_pip_is_quiet_only_off_a_terminal(checkout: Path, tty: bool) -> None:
    output = _make(checkout, tty)
    steps = _steps(output)
    assert len(steps) == 4 and steps[0].startswith("==> creating the virtualenv .venv")
    assert steps[1] == "==> upgrading pip" and steps[2].startswith("==> installing Trident")
    assert steps[3] == "==> ready: .venv/bin/trident"
    calls = (checkout / ".venv/bin/pip-calls").read_text().splitlines()
    assert calls == (["install --upgrade pip", "install -e .[test,demo]"] if tty
                     else ["install -q --upgrade pip", "install -q -e .[test,demo]"])
    assert ("Collecting something" in output) == tty  # pip's own lines: only on a terminal
    assert "stub-python -m venv" not in output  # the commands themselves are not echoed
    assert (checkout / ".venv/bin/trident").exists()
