"""Run one command and report its wall time and peak memory: ``python -m bench._child OUT CMD...``.

A small launcher, because Linux copies a process's peak-RSS mark across ``fork``: a child
forked straight from the (large) benchmark process would report at least the parent's size.
Forked from this small process, the figure is the child's own. Writes JSON
``{"seconds", "peak_bytes", "returncode"}`` to OUT; the child's output passes through.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main() -> int:
    out, cmd = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux, bytes on macOS
    peak = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"seconds": seconds, "peak_bytes": peak, "returncode": code}, f)
    return code


if __name__ == "__main__":
    sys.exit(main())
