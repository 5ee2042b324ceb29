"""Peak memory of a piece of work as the operating system counts it, for the bounded-memory tests.

`tracemalloc` sees only Python's own allocations: Arrow's buffers, libpq's result sets and other C
memory are invisible to it. So a test runs the work in a fresh Python process and reads that
process's peak resident set size at its end, and compares a small input with a large one through
the same code path: what streams costs the same for both; what holds its input grows with it (the
method of `benchmarks/landing.py` and tests/test_landing_memory.py).

The peak is the kernel's high-water mark of the process's own memory since it started the
interpreter (`VmHWM` in /proc/self/status), not `getrusage(RUSAGE_SELF).ru_maxrss`: Linux carries
ru_maxrss over fork and exec, so a child of a large pytest process reports the parent's size (a
600 MB parent gives a `python -c` child 610 MB), and both sides of a comparison then read the same
number: a test that cannot fail.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PRELUDE = '''
import json as _json, sys, time


def _peak_rss_mb():
    with open("/proc/self/status") as status:  # VmHWM: this program's own peak, not inherited at exec
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def report(**values):
    """Print the measurement: `values` and this process's peak RSS in MiB, as one JSON line."""
    values["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    print(_json.dumps(values), flush=True)

'''


def measure(script: str, *args: str, timeout: float = 300) -> dict:
    """Run `script` (Python source; `sys.argv[1:]` are `args`) in a fresh interpreter that imports
    the platform from this checkout; the script ends by calling `report(**values)`. Returns the
    values, with `peak_rss_mb`, the process's peak resident set size in MiB."""
    path = os.pathsep.join(p for p in (str(ROOT / "plugins"), str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", _PRELUDE + textwrap.dedent(script), *args],
                          capture_output=True, text=True, env=env, timeout=timeout, check=False)
    assert done.returncode == 0, f"measured process failed ({done.returncode}):\n{done.stderr[-3000:]}"
    lines = done.stdout.strip().splitlines()
    assert lines, f"measured process reported nothing:\n{done.stderr[-3000:]}"
    return json.loads(lines[-1])
