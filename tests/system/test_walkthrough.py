"""The README's by-hand walkthrough, run line by line as written (only its ports and /tmp paths
are swapped for private ones): ≥ 80 % of the 200 synthetic signals execute, `ctl why` finds a
signal, and `ctl pnl` adds up to the report stream."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_DUMP = '''
python - "$1" > "$2" <<'PY'
import json, sys, redis
client = redis.Redis.from_url(sys.argv[1])
rows = [{k.decode(): v.decode() for k, v in f.items()} for _, f in client.xrange("trident:reports")]
print(json.dumps(rows))
PY
'''


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def walkthrough() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- walkthrough -->", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_the_readme_walkthrough_works_as_written(workdir: Path) -> None:
    redis_port, sim_port = _free_port(), _free_port()
    lines = walkthrough()
    assert lines[-1].startswith("kill %3 %2 %1")
    script = "\n".join(lines[:-1]).replace("6379", str(redis_port)).replace("8765", str(sim_port))
    script = script.replace("/tmp/trident.sock", str(workdir / "t.sock")).replace("/tmp/trident-spool",
                                                                                 str(workdir / "spool"))
    url = f"redis://127.0.0.1:{redis_port}/0"
    script = ("set -e\ntrap 'kill %3 %2 %1 2>/dev/null; wait' EXIT\n" + script
              + f"\ntrident ctl pnl --since 1h --json --redis-url {url} > {workdir}/pnl.json\n"
              + _DUMP.replace('"$1"', url).replace('"$2"', str(workdir / "reports.json"))
              + lines[-1] + "\nwait\ntrap - EXIT\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIDENT_")}
    env["TRIDENT_METRICS_PORT"] = "0"  # the README's default port may be taken on a shared test machine
    proc = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "export TRIDENT_API_KEY=" in out and "fleet: 1 supervisor(s)" in out
    assert "walk-000007" in out  # ctl why answered about it
    reports = [r for r in json.loads((workdir / "reports.json").read_text()) if r["correlation_id"].startswith("walk-")]
    executed = [r for r in reports if r["status"] == "filled"]
    assert len(executed) >= 160, (len(executed), re.findall(r"refused:.*", out))
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for report in json.loads((workdir / "reports.json").read_text()):
        expected[report["primary_quote"]] += Decimal(report["profit"])
    table = json.loads((workdir / "pnl.json").read_text())["groups"]
    assert {quote: Decimal(row["profit"][quote]) for quote, row in table.items()} == dict(expected)
    assert "sent 200 signals" in proc.stderr
