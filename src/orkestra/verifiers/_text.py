"""Reading an answer's prose: cut off, refused, hedged; how alike two answers are. Pure."""

from __future__ import annotations

import re
from collections import Counter

__all__ = [
    "REFUSAL_FINISH",
    "TRUNCATED_FINISH",
    "hedges",
    "looks_cut_off",
    "refuses",
    "similarity",
]

TRUNCATED_FINISH = frozenset(
    {"length", "max_tokens", "MAX_TOKENS", "model_context_window_exceeded", "incomplete"}
)
"""Finish reasons meaning the answer hit a token limit (OpenAI, Anthropic, Gemini, Responses)."""

REFUSAL_FINISH = frozenset(
    {
        "content_filter",
        "refusal",
        "SAFETY",
        "RECITATION",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "IMAGE_SAFETY",
    }
)
"""Finish reasons meaning the provider withheld or stopped the answer."""

_REFUSAL = re.compile(
    r"(?i)^\W*(?:i['’]?m sorry,? but|i am sorry,? but|sorry,? (?:but )?i (?:can(?:no|['’])t|am "
    r"unable)|i (?:can(?:no|['’])t|am unable to|won['’]t|am not able to) (?:help|assist|"
    r"provide|answer|comply|do that|fulfil)|as an ai(?: language model)?,? i (?:can(?:no|['’])t"
    r"|don['’]t|am unable))"
)
_UNSURE = re.compile(
    r"(?i)\b(?:i['’]?m not (?:sure|certain)|i am not (?:sure|certain)|i don['’]?t know"
    r"|not enough information|(?:can(?:no|['’])t|can not) be determined|it['’]?s unclear"
    r"|(?:is|remains) unclear|i (?:can(?:no|['’])t|could not) verify|i may be wrong)\b"
)
_APPROXIMATE = re.compile(
    r"(?i)(?:\b(?:approximately|roughly|assum(?:e|es|ed|ing|ption)|i (?:think|believe|guess)"
    r"|probably|possibly|might be|may not be|round(?:ed|ing)? (?:up|down|to))\b|≈|~\s?\d)"
)
_DOUBTS = re.compile(
    r"(?i)\b(?:however|but since|can['’]?t|cannot|not possible|impossible|whole number"
    r"|round(?:ed|ing)?|mistake|wait)\b"
)


def refuses(text: str) -> bool:
    """The answer opens by declining ("I'm sorry, but I can't ...", "As an AI, I cannot")."""
    return bool(_REFUSAL.search(text[:300]))


def hedges(text: str, *, maths: bool = False) -> list[str]:
    """The phrases of uncertainty in ``text`` ("I'm not sure", "cannot be determined"...).
    With ``maths`` (an answer that should be one exact result), also approximations and second
    thoughts ("approximately", "assuming", "≈", "however", "round up", "whole number")."""
    found = [m.group(0) for m in _UNSURE.finditer(text)]
    if maths:
        found += [m.group(0) for m in _APPROXIMATE.finditer(text)]
        found += [m.group(0) for m in _DOUBTS.finditer(text)]
    return found


def looks_cut_off(text: str) -> bool:
    """The text stops mid-thought: a malformed number at the end ("100,00"), a dangling
    operator or connective, or no closing punctuation after a long last line."""
    tail = text.rstrip()
    if not tail:
        return False
    if re.search(r"\d,\d{1,2}$", tail) or re.search(r"[-+*/=(,:]$", tail):
        return True
    if re.search(r"(?i)\b(?:and|or|the|a|an|of|to|is|are|with|for|which|that)$", tail):
        return True
    last = tail.splitlines()[-1].strip()
    fenced = tail.endswith("```")
    return not fenced and len(last) > 60 and not re.search(r"[.!?)\]*\"'`$\d%»”’]$", last)


_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")


def similarity(a: str, b: str) -> float:
    """How alike two free-text answers are, 0..1: the F1 overlap of their words (counted)."""
    wa, wb = Counter(_WORD.findall(a.lower())), Counter(_WORD.findall(b.lower()))
    if not wa and not wb:
        return 1.0
    common = sum((wa & wb).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(wa.values()), common / sum(wb.values())
    return 2 * precision * recall / (precision + recall)
