"""The EdgeTier Serve deployment: cheap CPU replicas running :func:`tutor_cluster.edge.analysis.analyse`."""

from __future__ import annotations

from ray import serve

from tutor_cluster import runtime
from tutor_cluster.config.edge import EdgeConfig, ExerciseSet
from tutor_cluster.edge.analysis import EdgeInputError, analyse
from tutor_cluster.edge.signals import EdgeRejection, EdgeResult

runtime.bind_replica_grpc_on_loopback()  # a local service's replicas: gRPC on 127.0.0.1 only


@serve.deployment(name="edge")
class EdgeTier:
    def __init__(self, config: EdgeConfig, exercises: ExerciseSet) -> None:
        runtime.bind_replica_grpc_on_loopback()
        self._config = config
        self._exercises = exercises
        self._analysed = 0

    def analyse(self, message: str, exercise_id: str | None,
                history: list[str] | None = None) -> EdgeResult | EdgeRejection:
        self._analysed += 1
        try:
            return analyse(message, exercise_id, self._exercises, self._config, history or ())
        except EdgeInputError as exc:
            return EdgeRejection(field=exc.field, message=exc.message)

    def stats(self) -> dict[str, int]:
        return {"analysed": self._analysed}

    def ready(self) -> bool:
        return True
