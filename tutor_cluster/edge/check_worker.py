"""A symbolic-check worker process: ``python -m tutor_cluster.edge.check_worker`` (started by
:class:`tutor_cluster.edge.checker.ProcessChecker`, never by hand).

One JSON job per line on stdin, one JSON reply per line on stdout. Before each job the worker sets its own
``RLIMIT_CPU`` soft limit to the CPU time it has used so far plus the job's budget: past it the kernel sends
``SIGXCPU``, whose default action ends the process — a limit no Python code (nor a C loop inside sympy) can
outlast. ``RLIMIT_AS`` bounds its memory from the start; core dumps are off.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys

#: Environment variable carrying the worker's address-space limit in MiB.
MEMORY_ENV = "TUTOR_CHECK_MEMORY_MB"


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run(job: dict) -> dict:
    from tutor_cluster.edge import maths

    try:
        g = maths.grade(job["answer"], job["expected"], require_solved=job.get("require_solved", False),
                        tolerance=job.get("tolerance"), misconceptions=tuple(job.get("misconceptions", ())))
    except maths.MathLimitError as exc:
        return {"error": "limit", "message": str(exc)}
    except maths.MathInputError as exc:
        return {"error": "input", "message": str(exc)}
    except (MemoryError, RecursionError):
        return {"error": "limit", "message": "checking it needed more memory than an answer may use"}
    except Exception as exc:  # noqa: BLE001 - e.g. an integer too long to print: refused, never a crash
        return {"error": "limit", "message": f"it cannot be checked ({type(exc).__name__})"}
    v = g.verdict
    return {"ok": {"correct": v.correct, "normalised": v.normalised, "solved": v.solved,
                   "misconceptions": list(g.misconceptions)}}


def main() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    memory_mb = int(os.environ.get(MEMORY_ENV, "0"))
    if memory_mb:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    from tutor_cluster.edge import maths  # noqa: F401 - import sympy before saying ready

    out = sys.stdout
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        job = json.loads(line)
        soft = math.ceil(_cpu_used()) + int(job["cpu_s"])
        resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))
        out.write(json.dumps(_run(job)) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
