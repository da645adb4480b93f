"""Idle CPU of the running service: `tutor-cluster up` on the embedded defaults, then no traffic at all; the CPU
time every process of the service spends over a window, grouped by process, in cores (1.0 = one core busy).

    .venv/bin/python scripts/bench/idle_cpu.py [--settle 30] [--window 60] [--config FILE]

Reads utime+stime from /proc/<pid>/stat at the start and the end of the window, for every process in the
service's session and below it. The reference is the machine itself: 2 cores = 2.0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

from tutor_cluster.app import sockets  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> tuple[str, float] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    name = stat[stat.index("(") + 1:stat.rindex(")")]
    if name.startswith("ray::") or name.startswith("VLLM"):
        label = cmd.split()[0] if cmd else name  # the full process title, e.g. ray::ServeReplica:tutor:Gateway
    elif name.startswith("python"):
        label = " ".join(Path(a).name for a in cmd.split()[1:3])[:60]
    else:
        label = name
    return label, (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def measure(session: int, window: float) -> tuple[dict[str, float], float]:
    start = {pid: _cpu(pid) for pid in sockets.service_pids(session)}
    time.sleep(window)
    per: dict[str, float] = defaultdict(float)
    for pid in sockets.service_pids(session):
        now = _cpu(pid)
        if now is None:
            continue
        before = start.get(pid)
        per[now[0]] += now[1] - (before[1] if before else 0.0)
    return {k: v / window for k, v in per.items()}, window


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settle", type=float, default=30, help="seconds to wait after ready before measuring")
    ap.add_argument("--window", type=float, default=60, help="seconds measured")
    ap.add_argument("--config", default=None, help="settings file (default: the embedded defaults)")
    ap.add_argument("--port", type=int, default=8391)
    args = ap.parse_args()

    state = tempfile.mkdtemp(prefix="idle-cpu-")
    env = {**os.environ, "TUTOR_STATE_DIR": state, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "tutor_cluster.cli.main", "up", "--port", str(args.port)]
    if args.config:
        cmd += ["--config", args.config]
    log = Path(state) / "up.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        t0 = time.monotonic()
        while "[up] ready" not in log.read_text(errors="replace"):
            if proc.poll() is not None:
                sys.exit(f"up exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        print(f"ready after {time.monotonic() - t0:.0f} s; settling {args.settle:.0f} s, then measuring "
              f"{args.window:.0f} s with no traffic", flush=True)
        time.sleep(args.settle)
        per, _ = measure(proc.pid, args.window)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    total = sum(per.values())
    print(f"\n# idle CPU, {dt.date.today()}, {machine()}")
    print(f"total: {total:.3f} cores of {os.cpu_count()} ({100 * total / (os.cpu_count() or 1):.1f} % of the machine)")
    for name, cores in sorted(per.items(), key=lambda kv: -kv[1])[:25]:
        if cores >= 0.001:
            print(f"  {cores:6.3f}  {name}")


if __name__ == "__main__":
    main()
