"""Seeded synthetic personal data in a registered learner's messages — their own name, e-mail addresses, a
phone number, a street address, a postcode — never reaches the model (the prompt captured at the engine
boundary), learner memory, the analytics events, the metrics, the audit log or any file the service wrote. The
real gateway app, edge, memory, vault and audit log in-process; the engine is a stand-in that records what it
was asked (a GPU-backed model cannot run here; the real engine path is covered in tests/e2e)."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from tests.unit.stand_ins import FixedAnswer, RecordingMetrics
from tests.unit.turns.test_rights import auth, disk_bytes, services_for, settings_for
from tutor_cluster.api.app import build_fastapi
from tutor_cluster.telemetry.events import read_events

LEARNER = {"display_name": "Philippa Quenby-Marchetti", "email": "pquenby.marchetti@example.net",
           "guardian_email": "g.quenby.parent@example.net", "age_band": "13_15"}
SEEDED = {
    "name": "Philippa", "family name": "Quenby-Marchetti", "family name part": "Marchetti",
    "own e-mail": "pquenby.marchetti@example.net", "guardian e-mail": "g.quenby.parent@example.net",
    "other e-mail": "someone.else@example.org", "phone": "+44 20 7946 0958", "street": "42 Wallaby Way",
    "calle": "Calle de Alcalá 13", "postcode": "SW1A 1AA",
}
MESSAGES = [  # questions, so they go to the model with the learner's history
    "Hi, I'm Philippa Quenby-Marchetti. Why do we need a common denominator to add 1/2 and 1/4?",
    "Can you email my mum at g.quenby.parent@example.net or me at pquenby.marchetti@example.net? Why is 3/4 right?",
    "I live at 42 Wallaby Way, postcode SW1A 1AA, call +44 20 7946 0958. How do I simplify 6/8?",
    "Mi abuela vive en Calle de Alcalá 13 y su correo es someone.else@example.org, ¿por qué 2/4 es 1/2?",
    "philippa here again (MARCHETTI) - what is a numerator?",
]


def test_seeded_personal_data_reaches_no_prompt_store_event_metric_or_file(tmp_path: Path) -> None:
    engine, metrics = FixedAnswer("Think about equal parts."), RecordingMetrics()
    services = services_for(settings_for(tmp_path), engine, metrics)
    with TestClient(build_fastapi(services)) as client:
        learner = client.post("/v1/learners", json=LEARNER, headers=auth("adm")).json()["learner_id"]
        # 13-15: of consent age, analytics by default, so events are written and can be scanned
        for i, message in enumerate(MESSAGES):
            body = {"learner_id": learner, "session_id": "pii", "message": message, "exercise_id": "frac-add-1",
                    "turn_id": f"p{i}"}
            r = client.post("/v1/tutor/turns", json=body, headers=auth())
            assert r.status_code == 200 and r.json()["tier"] != "edge", r.text
        memory = client.get(f"/v1/learners/{learner}", headers=auth()).json()
        audit = client.get(f"/v1/learners/{learner}/audit", headers=auth("adm")).text
    services.events.flush()
    assert engine.calls == len(MESSAGES)
    prompts = json.dumps([r.messages for r in engine.requests], ensure_ascii=False)
    places = {"prompts": prompts, "memory": json.dumps(memory, ensure_ascii=False), "audit": audit,
              "events": read_events(tmp_path / "events").to_json(force_ascii=False),
              "metrics": json.dumps(metrics.seen, ensure_ascii=False),
              "files": disk_bytes(tmp_path).decode("utf-8", errors="replace")}  # text (ASCII or UTF-8) as written
    found = [(what, where) for what, value in SEEDED.items() for where, text in places.items()
             if value.lower() in text.lower()]
    assert found == [], found
    assert "[name]" in prompts and "[email]" in prompts and "[address]" in prompts and "[postcode]" in prompts
    assert "common denominator" in prompts and "numerator" in prompts  # the questions themselves got through


def test_a_name_that_is_also_a_maths_word_is_redacted_only_as_a_name() -> None:
    from tutor_cluster.edge.screening import redact_known

    text, n = redact_known("Mark Root asks: what is the square root of 16? mark my answer, Root.", ["Mark Root"])
    assert text == "[name] asks: what is the square root of 16? mark my answer, [name]." and n == 2
    text, _ = redact_known("philippa here (MARCHETTI)", ["Philippa Quenby-Marchetti"])
    assert text == "[name] here ([name])"


def test_without_redaction_the_same_scan_finds_everything(tmp_path: Path) -> None:
    """The negative control: with ``edge.redact_pii: false`` the scan above finds the seeded data in the prompts,
    memory and files — so its empty result means something."""
    settings = settings_for(tmp_path)
    settings = settings.model_copy(update={"edge": settings.edge.model_copy(update={"redact_pii": False})})
    engine = FixedAnswer("Think about equal parts.")
    with TestClient(build_fastapi(services_for(settings, engine))) as client:
        learner = client.post("/v1/learners", json=LEARNER, headers=auth("adm")).json()["learner_id"]
        for i, message in enumerate(MESSAGES):
            body = {"learner_id": learner, "session_id": "pii", "message": message, "exercise_id": "frac-add-1",
                    "turn_id": f"p{i}"}
            assert client.post("/v1/tutor/turns", json=body, headers=auth()).status_code == 200
    prompts = json.dumps([r.messages for r in engine.requests], ensure_ascii=False).lower()
    assert all(value.lower() in prompts for value in SEEDED.values()), [v for v in SEEDED.values()
                                                                      if v.lower() not in prompts]
    assert SEEDED["street"].encode() in disk_bytes(tmp_path) and SEEDED["calle"].encode() in disk_bytes(tmp_path)
