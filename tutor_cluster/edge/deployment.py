"""The EdgeTier Serve deployment: cheap CPU replicas running :func:`tutor_cluster.edge.analysis.analyse`.

Maths checks run in worker processes under a hard budget (``edge.check_isolation``); the analysis itself runs on a
thread pool, so a replica keeps answering other turns while a check is under way.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from ray import serve

from tutor_cluster import runtime
from tutor_cluster.config.edge import EdgeConfig, ExerciseSet
from tutor_cluster.edge.analysis import EdgeInputError, analyse
from tutor_cluster.edge.checker import Checker, InlineChecker, ProcessChecker
from tutor_cluster.edge.signals import EdgeRejection, EdgeResult

runtime.bind_replica_grpc_on_loopback()  # a local service's replicas: gRPC on 127.0.0.1 only


def make_checker(config: EdgeConfig) -> Checker:
    if config.check_isolation == "inline":
        return InlineChecker()
    checker = ProcessChecker(workers=config.check_workers, cpu_s=config.check_cpu_s, wall_s=config.check_wall_s,
                             memory_mb=config.check_memory_mb)
    checker.wait_ready()
    return checker


@serve.deployment(name="edge")
class EdgeTier:
    def __init__(self, config: EdgeConfig, exercises: ExerciseSet) -> None:
        runtime.bind_replica_grpc_on_loopback()
        self._config = config
        self._exercises = exercises
        self._checker = make_checker(config)
        self._threads = ThreadPoolExecutor(max_workers=config.check_workers + 4, thread_name_prefix="edge")
        self._analysed = 0

    def _analyse(self, message: str, exercise_id: str | None, history: list[str] | None,
                 language: str | None) -> EdgeResult | EdgeRejection:
        try:
            return analyse(message, exercise_id, self._exercises, self._config, history or (), language=language,
                           checker=self._checker)
        except EdgeInputError as exc:
            return EdgeRejection(field=exc.field, message=exc.message, busy=exc.busy)

    async def analyse(self, message: str, exercise_id: str | None, history: list[str] | None = None,
                      language: str | None = None) -> EdgeResult | EdgeRejection:
        self._analysed += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._analyse, message, exercise_id, history, language)

    def stats(self) -> dict[str, int]:
        return {"analysed": self._analysed}

    def ready(self) -> bool:
        return True

    def __del__(self) -> None:
        checker = getattr(self, "_checker", None)
        if checker is not None:
            checker.close()
