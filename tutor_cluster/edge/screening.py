"""PII redaction and prompt-injection screening (deterministic, cheap, CPU)."""

from __future__ import annotations

import re

_PII = [
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("phone", re.compile(r"(?<!\w)(?:\+?\d[\d\s().-]{7,}\d)(?!\w)")),
]
_INJECTION = re.compile(
    r"ignore (?:all |any )?(?:the )?(?:previous|prior|above) (?:instructions|prompts?)"
    r"|disregard (?:your|the) (?:instructions|rules|system prompt)"
    r"|(?:reveal|print|show) (?:me )?(?:your|the) (?:system prompt|instructions)"
    r"|you are now (?:in )?(?:developer|dan) mode",
    re.IGNORECASE,
)


def redact_pii(text: str) -> tuple[str, int]:
    """Replace e-mail addresses and phone numbers with placeholders; return the text and how many."""
    count = 0
    for label, pattern in _PII:
        text, n = pattern.subn(f"[{label}]", text)
        count += n
    return text, count


def looks_like_injection(text: str) -> bool:
    return _INJECTION.search(text) is not None
