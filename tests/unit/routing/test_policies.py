import pytest

from tutor_cluster.config.routing import RoutingConfig
from tutor_cluster.config.settings import load_settings
from tutor_cluster.edge.signals import Check, EdgeSignals
from tutor_cluster.routing.policies import UnknownPolicyError, build_policy, registered_policies


@pytest.fixture(scope="module")
def catalogue():
    return load_settings().catalogue


def _signals(intent="question", complexity=0.1, check=None) -> EdgeSignals:
    return EdgeSignals(intent=intent, skill=None, complexity=complexity, check=check, text="t")


@pytest.mark.parametrize(
    ("signals", "tier", "reason_part"),
    [
        (_signals(complexity=0.1), "small", "< 0.50"),
        (_signals(complexity=0.49), "small", "< 0.50"),
        (_signals(complexity=0.5), "core", ">= 0.50"),
        (_signals(complexity=0.9), "core", ">= 0.50"),
        (_signals("hint_request", 0.05), "small", "hint_request"),
        (_signals("answer_attempt", 0.05, Check(exercise_id="e", kind="python", correct=None, detail="parses")),
         "core", "review"),
    ],
)
def test_rules_policy_table(catalogue, signals, tier, reason_part) -> None:
    decision = build_policy(RoutingConfig(), catalogue).decide(signals)
    assert decision.tier == tier
    assert reason_part in decision.reason
    assert decision.features.complexity == signals.complexity
    assert catalogue.get(decision.model).tier == tier


def test_threshold_comes_from_config(catalogue) -> None:
    cfg = RoutingConfig.model_validate({"rules": {"complexity_threshold": 0.05}})
    assert build_policy(cfg, catalogue).decide(_signals(complexity=0.1)).tier == "core"


def test_policies_are_chosen_by_name(catalogue) -> None:
    assert "rules" in registered_policies()
    with pytest.raises(UnknownPolicyError, match="registered: cascade, learned, rules"):
        build_policy(RoutingConfig(policy="nope"), catalogue)


def test_cost_uses_catalogue_prices(catalogue) -> None:
    small, core = catalogue.get("tutor-small"), catalogue.get("tutor-core")
    assert small.cost(1000, 1000) == pytest.approx(small.price_per_1k_input + small.price_per_1k_output)
    assert core.cost(100, 50) > small.cost(100, 50) > 0


def test_struggling_learners_get_the_core_model(catalogue) -> None:
    from tutor_cluster.routing.decisions import LearnerFeatures

    policy = build_policy(RoutingConfig(), catalogue)
    easy = _signals(complexity=0.05)
    assert policy.decide(easy, LearnerFeatures(mastery=0.5, attempts=1, misconceptions=0)).tier == "small"
    repeated = policy.decide(easy, LearnerFeatures(mastery=0.5, attempts=2, misconceptions=2))
    assert repeated.tier == "core" and "misconceptions" in repeated.reason and repeated.features.misconceptions == 2
    low = policy.decide(easy, LearnerFeatures(mastery=0.1, attempts=4, misconceptions=0))
    assert low.tier == "core" and "mastery" in low.reason
    assert policy.decide(easy, LearnerFeatures(mastery=0.1, attempts=2)).tier == "small"  # too early to tell


@pytest.mark.parametrize(("complexity", "model", "escalate_to", "reason_part"), [
    (0.1, "tutor-small", "tutor-core", "escalate to tutor-core if verification fails"),
    (0.84, "tutor-small", "tutor-core", "tutor-small first"),
    (0.85, "tutor-core", None, "answers directly"),
])
def test_cascade_policy_table(catalogue, complexity, model, escalate_to, reason_part) -> None:
    decision = build_policy(RoutingConfig(policy="cascade"), catalogue).decide(_signals(complexity=complexity))
    assert (decision.model, decision.escalate_to) == (model, escalate_to)
    assert reason_part in decision.reason and decision.features.direct_complexity == 0.85
