"""PII redaction and prompt-injection screening (deterministic, cheap, CPU)."""

from __future__ import annotations

import re

_STREET = ("street|st|avenue|ave|road|rd|lane|ln|drive|dr|boulevard|blvd|way|court|ct|place|pl|terrace|close|"
           "crescent|gardens|square|sq")
_CAPITAL = "[A-ZÁÉÍÓÚÑ]"
_VIA = "calle|c/|avenida|avda|av|plaza|pza|paseo|camino|carrera|ronda|travesía|travesia"
_PII = [
    # bounded parts (RFC 5321: local part ≤ 64, labels ≤ 63) keep the scan linear in the text's length
    ("email", re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")),
    ("phone", re.compile(r"(?<!\w)(?:\+?\d[\d\s().-]{7,}\d)(?!\w)")),
    # street addresses: "42 Wallaby Way", "221B Baker Street"; "Calle de Alcalá 13", "Avda. Libertad, 7". Words are
    # separated by at least one blank (no way to split a run of capitals two ways) and every gap is bounded, so a
    # failed match costs a constant per starting position
    ("address", re.compile(rf"(?<!\w)\d{{1,5}}[A-Za-z]?[ \t]{{1,3}}(?:[A-Z][\w'-]{{0,30}}[ \t]{{1,3}}){{1,3}}"
                           rf"(?i:{_STREET})\b\.?")),
    ("address", re.compile(rf"(?<!\w)(?i:{_VIA})\.?[ \t]{{1,3}}(?:(?i:de|del|la|las|los|el)[ \t]{{1,3}})?"
                           rf"{_CAPITAL}[\w'-]{{0,30}}(?:[ \t]{{1,3}}{_CAPITAL}[\w'-]{{0,30}}){{0,2}},?[ \t]{{0,3}}"
                           r"(?:n[º°o]\.?[ \t]{0,2})?\d{1,5}")),
    # postcodes distinctive enough not to be an answer: UK ("SW1A 1AA"), Canada ("K1A 0B1")
    ("postcode", re.compile(r"(?<!\w)(?:[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}|[A-Z]\d[A-Z]\s?\d[A-Z]\d)(?!\w)")),
]
#: What redaction leaves in place of personal data (``[email]``, ``[name]``, …): the answer reader skips them.
PLACEHOLDER = re.compile(r"\[(?:name|email|phone|address|postcode)\]")
#: Name parts shorter than this are not redacted on their own (initials, "Al" would hit ordinary words).
MIN_NAME_PART = 3
#: Prompt-injection phrasings in the curriculum's languages and a few more (en, es, fr, de, pt), by intent:
#: override earlier instructions, reveal the system prompt, switch "mode", drop the rules, fake a system turn.
#: Measured on a labelled set of attacks and benign look-alikes (scripts/bench/injection_guard.py).
_INJECTION_PATTERNS = [
    # override: "ignore / disregard / forget / override / bypass ... instructions|rules|prompts"
    r"\b(?:ignore|disregard|forget|override|bypass|skip)\b[^.?!\n]{0,30}?\b(?:instructions?|prompts?|rules|"
    r"guidelines|restrictions|system prompt)\b",
    r"\bforget (?:everything|all) (?:you|that|above|before)",
    r"\b(?:ignora|olvida|omite|no sigas)\b[^.?!\n]{0,30}?\b(?:instrucciones|reglas|todo lo anterior)\b",
    r"\b(?:ignore|oublie)\b[^.?!\n]{0,30}?\b(?:instructions|règles|regles)\b|\boublie tout ce qu",
    r"\b(?:ignorier\w*|vergiss)\b[^.?!\n]{0,30}?(?:anweisungen|regeln)\b|\bvergiss alles\b",
    r"\b(?:ignore|esque[çc]a)\b[^.?!\n]{0,30}?\b(?:instru[çc][õo]es|regras)\b|\besque[çc]a tudo\b",
    # reveal: "show / print / repeat ... your system prompt | hidden/original instructions"
    r"\b(?:system ?prompt|hidden prompt|systemprompt|prompt (?:del|de|du) (?:sistema|système|systeme))\b",
    r"\b(?:your|the) (?:original|initial|hidden|secret|system) (?:instructions|prompt)\b",
    r"\b(?:reveal|print|show|output|repeat|tell)\b[^.?!\n]{0,20}?\byour (?:instructions|prompt|rules)\b",
    r"\b(?:repeat|print|output) the (?:text|words) above\b",
    r"\b(?:mu[ée]stra(?:me)?|revela|repite)\b[^.?!\n]{0,20}?\b(?:tu|tus) (?:prompt|instrucciones)\b",
    r"\b(?:montre|r[ée]v[èe]le|r[ée]p[èe]te)\b[^.?!\n]{0,20}?\b(?:ton|tes) (?:prompt|instructions)\b",
    r"\b(?:zeig|verrat|wiederhol)\w*\b[^.?!\n]{0,20}?\b(?:deinen?|deine) (?:\w+ )?(?:prompt|anweisungen)\b",
    r"\b(?:mostre|revele|repita)\b[^.?!\n]{0,20}?\b(?:seu|suas|sua) (?:\w+ )?(?:prompt|instru[çc][õo]es)\b",
    # mode switch and rule dropping
    r"\b(?:you are|you're) now (?:in )?(?:developer|dan|god|jailbreak) mode\b|\bjailbreak\b",
    r"\best[áa]s en modo (?:desarrollador|dios)\b|\ben mode d[ée]veloppeur\b|\bim entwicklermodus\b",
    r"\b(?:est[áa]|esta) no modo desenvolvedor\b",
    r"\b(?:pretend|act as if) (?:that )?you (?:have|had) no (?:rules|restrictions|guidelines)\b",
    r"\b(?:without|no) (?:any )?(?:rules|restrictions)\b(?! for)",
    r"\b(?:sin|no tienes) (?:reglas|restricciones)\b|\baucune r[èe]gle\b|\bkeine regeln\b",
    r"\b(?:sem|n[ãa]o tem) regras\b",
    # fake system turn, new rules
    r"^\s*(?:#+\s*)?system\s*:|\bnew instructions\s*:|\bfrom now on,? you\b|\byour new role is\b",
    r"\bstop being a tutor\b|\bdesde ahora eres\b",
]
_INJECTION = re.compile("|".join(f"(?:{p})" for p in _INJECTION_PATTERNS), re.IGNORECASE | re.MULTILINE)


def redact_pii(text: str) -> tuple[str, int]:
    """Replace e-mail addresses and phone numbers with placeholders; return the text and how many."""
    count = 0
    for label, pattern in _PII:
        text, n = pattern.subn(f"[{label}]", text)
        count += n
    return text, count


#: Name parts that are also words a learner uses in maths or everyday sentences ("Mark Root", "Max Power"): these
#: are redacted only where written capitalised, as a name is; other parts of a name in any case.
COMMON_WORDS = frozenset(
    "root max min power mark sum mean mode range product square cube base rate ratio factor prime angle area "
    "volume plus minus times half point line cost price total more less grade key rose ray may will long short "
    "young king hill wood stone black white green brown bell rich page number field hall street law art "
    "luz rosa paz sol mar flor león leon blanco rojo verde suma resta media".split())


def redact_known(text: str, terms: list[str]) -> tuple[str, int]:
    """Replace what is known to be the learner's own personal data (their registered names, e-mail addresses)
    with ``[name]``: whole words; the full term and each name part of ``MIN_NAME_PART`` letters or more, in any
    case — except parts that are common words (:data:`COMMON_WORDS`), redacted only capitalised. Alternations of
    escaped literals: linear in the text's length."""
    anycase: set[str] = set()
    capitalised: set[str] = set()
    for term in terms:
        anycase.add(term.strip())
        for part in re.split(r"[\s,-]+", term):
            if len(part) < MIN_NAME_PART:
                continue
            if part.lower() in COMMON_WORDS:
                capitalised.add(part[:1].upper() + part[1:].lower())
            else:
                anycase.add(part)
    anycase.discard("")
    count = 0
    for words, flags in ((anycase, re.IGNORECASE), (capitalised, 0)):
        if words:
            alternation = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
            text, n = re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", flags).subn("[name]", text)
            count += n
    return text, count


def looks_like_injection(text: str) -> bool:
    return _INJECTION.search(text) is not None
