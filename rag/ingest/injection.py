"""Sentences that address the model (or the reader's assistant) instead of stating
facts: a hostile document's way to steer answers. They are never evidence
(``rag.answer.selection``).

The text is first brought to plain ASCII, so that one set of patterns sees
through the usual disguises: NFKC (full-width letters), invisible format
characters removed (zero-width spaces and joiners), combining marks dropped,
letters of another script inside a Latin word read as the Latin letters they
imitate (``confusable_homoglyphs``, Unicode's confusables: a Cyrillic "р" in
"рrevious"), every script transliterated (``anyascii``: Russian, Chinese or
Japanese become romanised words), and words spelled out letter by letter joined
again. The patterns then
look for what an instruction to a model says, not for any topic: an order to
ignore instructions (in the languages below, transliterated), a reply dictated
("answer only with", "reply with", "your answer must be"), a message addressed
to an AI, chat-template markers. ``tests/hostile.py`` holds the phrasings they
are tested on, and sentences about instructions and answers that must still be
evidence."""

from __future__ import annotations

import functools
import re
import unicodedata

from anyascii import anyascii

# "ignore / disregard / forget" in English, Spanish, French, German, Italian,
# Portuguese, Dutch, Polish, Russian (transliterated) and Chinese/Japanese (pinyin of 忽略, 无视/無視);
# "lgnore" too: Unicode's confusables read a capital I, or a Greek Ι, as an l
_IGNORE = (r"(?:[il]gnor\w*|disregard\w*|forget\w*|override\w*|supersede\w*|negeer\w*|zignoruj\w*|olvid\w*|"
           r"oubli\w*|vergiss\w*|dimentic\w*|esquec\w*|hulue|wushi)")
# "instructions / rules / prompt" in the same languages (指令 zhiling, 指示 zhishi)
_ORDERS = (r"(?:instruc\w*|instruk\w*|instruz\w*|istruz\w*|anweisung\w*|instructie\w*|polecen\w*|regel\w*|"
           r"regl\w*|rules?|prompts?|zhiling|zhishi|earlier ones|everything (?:above|before))")
# "answer / reply / respond" and "only" in the same languages (只回答 zhihuida, だけ答え dakedae)
_REPLY = (r"(?:answer\w*|repl\w*|respond\w*|say|output|print|write|state|responde\w*|r[eé]pond\w*|antwort\w*|"
          r"antwoord\w*|rispond\w*|otvecha\w*|odpowiad\w*)")
_ONLY = r"(?:only|solo|solamente|uniquement|seulement|nur|soltanto|apenas|tol'?ko|alleen|tylko)"

_PATTERNS = [
    rf"\b{_IGNORE}\b.{{0,60}}{_ORDERS}",
    rf"{_ORDERS}.{{0,40}}{_IGNORE}",  # Japanese order: 指示を…無視して
    rf"\b{_REPLY}\b\W{{0,3}}(?:\w+\W+){{0,3}}?{_ONLY}\b",
    rf"\b{_ONLY}\W+{_REPLY}\b",
    r"zhihuida|dakeda?e",
    r"\b(?:system|assistant|developer)\s*(?:prompt|update|message|notice|override)?\s*:",
    r"\bsystem (?:update|override|notice)\b",
    r"<\|?(?:im_start|system|assistant)|\[/?inst\]",
    r"\byou (?:are now|must now|will now|should now|must always)\b|\bfrom now on\b",
    r"\b(?:always|only)\s+(?:answer|reply|respond|say|output)\b",
    # an order that opens the text or follows a colon or a dash ("Regarding X: answer with Y")
    r"(?:^|[:;\u2014-]\s*)(?:answer|reply|respond|say|output|print|write|state)\b.{0,30}\b(?:with|only|instead|that)\b",
    r"\b(?:must|should) be (?:reported|answered|given) as\b|\bnew instructions?\b",
    r"\byour (?:answer|reply|response|output) (?:must|should|will) be\b",
    r"\bdo not (?:cite|mention|follow)\b|\bjailbreak\b|\bpretend (?:to be|you are)\b",
    # a message to an AI: "note to AI assistants", "attention language model", "as an AI model, you must"
    r"\b(?:note|attention|message|notice|reminder)\b\W+(?:\w+\W+){0,2}?(?:ai|llms?|chatbots?|language models?|"
    r"assistants?)\b",
    r"\b(?:ai|language) (?:models?|assistants?)\b.{0,50}\b(?:you must|you should|say|answer|reply|respond|state)\b",
    r"\b(?:as an? )?(?:ai|llm)\b.{0,20}\byou (?:must|should|will)\b",
]
_INJECTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.I)
_SPELLED = re.compile(r"\b(?:[A-Za-z] ){3,}[A-Za-z]\b")  # "I g n o r e" (words apart by two spaces or more)


# a word that mixes Latin letters with letters of another script ("рrevious" with a
# Cyrillic "р"): its other letters are read as the Latin letters they look like
_MIXED = re.compile(r"\b(?=\w*[A-Za-z])(?=\w*[^\W\d_A-Za-z])\w+\b")


@functools.lru_cache(maxsize=4096)
def _latin_lookalike(char: str) -> str:
    """The Latin letter ``char`` looks like (Unicode's confusables), else ``char``."""
    if char.isascii():
        return char
    from confusable_homoglyphs import confusables  # its tables load in 40 ms: only for mixed-script words

    found = confusables.is_confusable(char, preferred_aliases=["latin"], greedy=True) or []
    letters = [str(g["c"]) for entry in found for g in entry["homoglyphs"] if g["c"].isascii() and g["c"].isalpha()]
    same_case = [c for c in letters if c.isupper() == char.isupper()]  # Greek "Ι" is "I", not "l"
    return (same_case or letters or [char])[0]


def plain(text: str) -> str:
    """``text`` as the patterns read it: plain ASCII, disguises removed (see the module)."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in unicodedata.normalize("NFKD", text)
                   if unicodedata.category(c) not in ("Cf", "Mn", "Me"))
    text = _MIXED.sub(lambda m: "".join(_latin_lookalike(c) for c in m.group()), text)
    text = anyascii(text)
    return _SPELLED.sub(lambda m: m.group().replace(" ", ""), text)


def looks_like_injection(text: str) -> bool:
    """Whether ``text`` addresses the model instead of stating facts (never evidence)."""
    return bool(_INJECTION.search(plain(text)))

