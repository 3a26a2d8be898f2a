"""Evidence selection and abstention: a pure function of the question, the
retrieved material and a fitted policy.

Every evidence unit (sentence, code block, table row run; see ``rag.ingest.chunking``) of
the retrieved chunks is described by the signals in ``FEATURES``; the learned
ranker (``rag.answer.ranker``, a cross-encoder) reads the units those signals rank best
and adds its score as one more signal. A logistic model
(``SelectionPolicy.weights``, fitted by ``eval/fit_policy.py`` on the training
suite's labels, ``eval/train/``: does this unit hold a gold fact?) turns them into
the probability that the unit answers the question. The policy's thresholds then decide:

* abstain when no unit reaches ``answer_threshold``;
* otherwise cite the best unit, and further units (up to ``max_units``, and no
  more than the question's parts plus ``extra_units``) that reach
  ``more_threshold`` and at least ``more_ratio`` of the best probability.

Nothing here knows a corpus, a kind of text or the dev questions' wording: the
signals are similarities, coverage of the question's words, ranks, and generic
answer-form checks (a date for "when", a number for "how many", ...).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.ingest.injection import looks_like_injection
from rag.index.lexical import LexicalIndex
from rag.answer.question import CHOICE, DATE, NAME, NUMBER, OTHER, REASON, Question
from rag.answer.retrieval import SearchResult
from rag.index.store import Record
from rag.text import normalize, tokens

POLICY_FILE = Path(__file__).with_name("policy.json")  # fitted with the learned ranker's score
SIGNALS_POLICY_FILE = Path(__file__).with_name("policy_signals.json")  # fitted on the signals alone
RANKER = "ranker"  # the learned ranker's score (rag.answer.ranker), a signal of the policies that use it
JUDGE = "judge"  # the accurate mode's larger model's judgement (rag.answer.llm_judge)
JUDGED_POLICY_FILE = Path(__file__).with_name("policy_judged.json")  # fitted with the ranker and the judge

FEATURES: tuple[str, ...] = (
    "dense",  # cosine similarity of question and unit
    "dense_rank",  # 1 / (1 + rank of the unit by dense similarity among the candidates)
    "dense_gap",  # dense similarity minus the best among the candidates
    "statement_dense",  # cosine similarity of the question put as a statement and the unit
    "window_dense",  # cosine similarity of the question and the mean of the unit's and its neighbours' vectors
    "chunk_dense",  # cosine similarity of question and the unit's chunk (0 when not in the dense list)
    "chunk_rank",  # 1 / (1 + rank of the unit's chunk in the fused retrieval list)
    "coverage",  # IDF-weighted share of the question's content words found in the unit
    "window_coverage",  # the same in the unit and its neighbours
    "section_coverage",  # the same in the unit's heading path
    "coverage_rank",  # 1 / (1 + rank of the unit by coverage among the candidates)
    "coverage_gap",  # coverage minus the best among the candidates
    "phrase",  # share of the question's adjacent content-word pairs found adjacent in the unit
    "prefix_coverage",  # coverage counting words that share their first PREFIX letters as found
    "rare_match",  # the highest IDF among matched question words / the highest IDF among all of them
    "novelty",  # share of the unit's content words that the question does not contain
    "terms_missing",  # share of the question's verbatim terms absent from the unit, neighbours and section
    "form_match",  # the unit holds the form of answer the question asks for (date, number, name, ...)
    "form_missing",  # the question asks for a definite form and the unit holds none
    "is_code",  # the unit is a code block or table
    "is_heading",  # the unit is a heading
    "length",  # log(characters) / log(1000)
    "opens_section",  # the unit is the first of its chunk after a heading, or of its chunk
)
PREFIX = 5  # letters two words must share to meet in prefix_coverage

_YEAR = re.compile(r"\b(?:1[5-9]|20)\d\d\b")
_MONTH = re.compile(r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
                    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b", re.I)
_NUMBER = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
                     r"forty|fifty|hundreds?|thousands?|millions?|billions?|dozens?|once|twice|half|daily|"
                     r"weekly|monthly|yearly|annually)\b", re.I)
_CAPITAL = re.compile(r"(?<=\s)[A-Z][\w’'-]+")
_CODEISH = re.compile(r"[A-Za-z_]\w*\.[A-Za-z_]\w*|\w+\(\)|\\[A-Za-z@]+|[a-z]+_[a-z_]+|--?[a-z][\w-]+|`")
_CAUSE = re.compile(r"\b(?:because|since|so that|in order to|due to|as a result|therefore|thus|otherwise|"
                    r"to (?:avoid|prevent|ensure|allow|make)|reason)\b", re.I)
# A unit that opens by pointing back ("This ...", "The same program ...") is cited
# together with the unit before it, so that what it refers to is in the citation.
_ANAPHOR = re.compile(r"^[\"'“‘(]*(?:this|that|these|those|it|its|they|them|their|such|he|she|his|her|both|"
                      r"here|there|the same|the former|the latter|the above|also)\b", re.I)


@dataclass(frozen=True)
class SelectionPolicy:
    """The fitted numbers of evidence selection (``rag/answer/policy.json``)."""

    weights: dict[str, float]  # one per FEATURES name: the logistic model's coefficients
    bias: float  # the logistic model's intercept
    answer_threshold: float  # abstain when the best unit's probability is below this
    more_threshold: float  # a further unit is cited only with at least this probability ...
    more_ratio: float  # ... and at least this share of the best unit's probability
    max_units: int  # never more units than this
    extra_units: int  # nor more than the question's parts plus this
    fitted: dict[str, object] = field(default_factory=dict)  # how and on what the values were fitted
    # Readers of units that add a signal each, in turn (the learned ranker, then in the accurate
    # mode a larger model's judgement): see Stage.
    stages: tuple["Stage", ...] = ()

    @classmethod
    def load(cls, path: Path | None = None) -> "SelectionPolicy":
        data = json.loads(Path(path or POLICY_FILE).read_text(encoding="utf-8"))
        data["stages"] = tuple(Stage(**stage) for stage in data.get("stages", ()))
        return cls(**data)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=False) + "\n", encoding="utf-8")

    def uses(self, signal: str) -> bool:
        return any(stage.signal == signal for stage in self.stages)

    @property
    def columns(self) -> tuple[str, ...]:
        """The signals the weights apply to, in order: FEATURES, then each stage's."""
        return FEATURES + tuple(stage.signal for stage in self.stages)

    def probability(self, x: np.ndarray) -> np.ndarray:
        """P(a unit holds a fact) for rows of ``columns``."""
        w = np.array([self.weights[f] for f in self.columns], dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-(x @ w + self.bias)))



@dataclass(frozen=True)
class Stage:
    """A reader of units that adds one signal: it reads the ``reads`` units that the
    columns before it rank best (``order``: their weights, those of the policy fitted
    without this stage), and its score is ``fill`` for the units it does not read."""

    signal: str  # RANKER (rag.answer.ranker) or JUDGE (rag.answer.llm_judge)
    reads: int
    order: dict[str, float]
    fill: float

    def reads_rows(self, x: np.ndarray) -> np.ndarray:
        """The rows of ``x`` (the columns before this stage) that it reads, best first."""
        s = x @ np.array(list(self.order.values()), dtype=np.float64)
        return np.lexsort((np.arange(len(s)), -s))[:self.reads]


@dataclass(frozen=True)
class Candidate:
    record: Record
    features: np.ndarray  # in the policy's columns order (FEATURES, then the ranker's score if it weighs one)
    probability: float = 0.0

    @property
    def chunk_id(self) -> str:
        return str(self.record.metadata.get("chunk_id", ""))


@dataclass(frozen=True)
class Selection:
    answerable: bool
    evidence: list[Candidate]
    candidates: list[Candidate]  # every unit scored, best first
    reasons: list[str] = field(default_factory=list)


def _coverage(q: tuple[str, ...], weights: list[float], found: set[str]) -> float:
    total = sum(weights)
    return sum(w for t, w in zip(q, weights) if t in found) / total if total else 0.0


def _form(text: str, question: Question, q_norm: str) -> bool | None:
    """Does the unit hold the form of answer asked for? None when no form is asked."""
    if question.kind == DATE:
        return bool(_YEAR.search(text) or _MONTH.search(text))
    if question.kind == NUMBER:
        return any(m.group().lower() not in q_norm for m in _NUMBER.finditer(text))
    if question.kind == NAME:
        return any(m.group().lower() not in q_norm for m in _CAPITAL.finditer(" " + text))
    if question.kind == REASON:
        return bool(_CAUSE.search(text))
    if question.kind in (CHOICE, OTHER):
        new = [m.group() for m in _CODEISH.finditer(text)] + [m.group() for m in _CAPITAL.finditer(" " + text)]
        return any(normalize(t) not in q_norm for t in new)
    return None


def _rank_scores(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: -values[i])
    out = [0.0] * len(values)
    for rank, i in enumerate(order):
        out[i] = 1.0 / (1.0 + rank)
    return out


def _with_antecedent(rec: Record, prev: Record | None, chunks: dict[str, tuple[int, str]]) -> Record:
    """``rec``, or the passage from the unit before it to its end when it opens by
    pointing back (the passage is cut from its chunk, so it is verbatim)."""
    if prev is None or prev.metadata.get("kind") == "heading" or not _ANAPHOR.match(rec.text):
        return rec
    chunk = chunks.get(str(rec.metadata.get("chunk_id")))
    if chunk is None:
        return rec
    start, text = chunk
    lo, hi = prev.start - start, rec.end - start
    if lo < 0 or hi > len(text) or text[hi - len(rec.text):hi] != rec.text:
        return rec
    return Record(rec.id, text[lo:hi], {**rec.metadata, "start": prev.start})


def candidate_features(question: Question, result: SearchResult) -> list[tuple[Record, np.ndarray]]:
    """Every usable evidence unit of the retrieved chunks with its signals (a unit
    that points back comes with the unit before it: see ``_with_antecedent``)."""
    records = result.sentences
    if not records:
        return []
    lex: LexicalIndex = result.lexical
    q = question.content
    idf = [lex.idf(t) for t in q]
    max_idf = max(idf) if idf else 1.0
    hits = result.hits + result.extra
    chunk_rank = {h.chunk_id: 1.0 / (1 + i) for i, h in enumerate(hits)}
    chunk_dense = {h.chunk_id: h.dense for h in hits}
    chunk_text = {h.chunk_id: (h.start, h.text) for h in hits}
    by_pos = {(str(r.metadata.get("chunk_id")), int(r.metadata.get("index", 0))): r for r in records}
    toks = {r.id: set(tokens(r.text)) for r in records}
    dense = result.sentence_vectors @ result.query_vector if len(records) else np.zeros(0)
    stated = result.statement_vector if result.statement_vector is not None else result.query_vector
    dense_statement = result.sentence_vectors @ stated
    row_of = {r.id: i for i, r in enumerate(records)}
    q_prefix = [t[:PREFIX] for t in q]
    q_norm = question.norm
    q_set = set(q)
    q_list = tokens(question.text)
    q_pairs = set(zip(q_list, q_list[1:]))
    rows: list[tuple[Record, list[float]]] = []
    for rec, d, ds in zip(records, dense, dense_statement):
        if looks_like_injection(rec.text):
            continue
        cid, idx = str(rec.metadata.get("chunk_id")), int(rec.metadata.get("index", 0))
        prev = by_pos.get((cid, idx - 1))
        near = [by_pos[(cid, j)] for j in (idx - 1, idx, idx + 1) if (cid, j) in by_pos]  # the unit and neighbours
        s_tok = toks[rec.id]
        window = set().union(*(toks[r.id] for r in near))
        section = rec.section
        sec_tok = set(tokens(section))
        around = normalize(" ".join([section] + [r.text for r in near]))
        matched = [w for t, w in zip(q, idf) if t in s_tok]
        mean_vec = result.sentence_vectors[[row_of[r.id] for r in near]].sum(axis=0)
        norm = float(np.linalg.norm(mean_vec)) or 1.0
        s_prefix = {t[:PREFIX] for t in s_tok}
        opens = prev is None or prev.metadata.get("kind") == "heading"
        s_list = tokens(rec.text)
        s_pairs = set(zip(s_list, s_list[1:]))
        missing = [t for t in question.terms if normalize(t) not in around]
        form = _form(rec.text, question, q_norm)
        rows.append((_with_antecedent(rec, prev, chunk_text), [
            float(d), 0.0, 0.0, float(ds), float(mean_vec @ result.query_vector) / norm,
            chunk_dense.get(cid, 0.0), chunk_rank.get(cid, 0.0),
            _coverage(q, idf, s_tok), _coverage(q, idf, window), _coverage(q, idf, sec_tok), 0.0, 0.0,
            len(q_pairs & s_pairs) / len(q_pairs) if q_pairs else 0.0,
            _coverage(tuple(q_prefix), idf, s_prefix),
            (max(matched) / max_idf) if matched else 0.0,
            len(s_tok - q_set) / max(1, len(s_tok)),
            len(missing) / len(question.terms) if question.terms else 0.0,
            1.0 if form else 0.0, 1.0 if form is False else 0.0,
            1.0 if rec.metadata.get("kind") in ("code", "table") else 0.0,
            1.0 if rec.metadata.get("kind") == "heading" else 0.0,
            math.log(max(2, len(rec.text))) / math.log(1000),
            1.0 if opens else 0.0,
        ]))
    i_dense, i_cov, i_win = FEATURES.index("dense"), FEATURES.index("coverage"), FEATURES.index("window_coverage")
    dense_rank = _rank_scores([r[1][i_dense] for r in rows])
    cov_rank = _rank_scores([r[1][i_cov] + 0.5 * r[1][i_win] for r in rows])
    top_dense = max(r[1][i_dense] for r in rows)
    top_cov = max(r[1][i_cov] for r in rows)
    out = []
    for (rec, f), dr, cr in zip(rows, dense_rank, cov_rank):
        f[FEATURES.index("dense_rank")] = dr
        f[FEATURES.index("dense_gap")] = f[i_dense] - top_dense
        f[FEATURES.index("coverage_rank")] = cr
        f[FEATURES.index("coverage_gap")] = f[i_cov] - top_cov
        out.append((rec, np.array(f, dtype=np.float64)))
    return out


class UnitRanker(Protocol):
    """Scores (question, passage) pairs; ``rag.answer.ranker.Ranker``."""

    def scores(self, question: str, passages: Sequence[str]) -> np.ndarray: ...


def with_stages(question: Question, rows: Sequence[tuple[Record, np.ndarray]], policy: SelectionPolicy,
                readers: Mapping[str, UnitRanker]) -> np.ndarray:
    """The signals of ``rows`` in ``policy.columns`` order: each stage's reader scores
    the units it reads (``readers``: by signal name), its ``fill`` for the others."""
    x = np.stack([f for _, f in rows])
    if not policy.stages:
        return x
    from rag.answer.ranker import passage

    for stage in policy.stages:
        reader = readers.get(stage.signal)
        if reader is None:
            raise ValueError(f"this selection policy weighs the {stage.signal!r} signal, and no reader for it was given")
        read = stage.reads_rows(x)
        column = np.full(len(rows), stage.fill, dtype=np.float64)
        column[read] = reader.scores(question.text, [passage(rows[i][0].section, rows[i][0].text) for i in read])
        x = np.hstack([x, column[:, None]])
    return x


def score(question: Question, result: SearchResult, policy: SelectionPolicy,
          readers: Mapping[str, UnitRanker] | None = None) -> list[Candidate]:
    rows = candidate_features(question, result)
    if not rows:
        return []
    x = with_stages(question, rows, policy, readers or {})
    probs = policy.probability(x)
    cands = [Candidate(rec, f, float(p)) for (rec, _), f, p in zip(rows, x, probs)]
    cands.sort(key=lambda c: (-c.probability, c.record.source, c.record.start))
    return cands


def pick(probs: Sequence[float], texts: Sequence[str], answer_threshold: float, more_threshold: float,
         more_ratio: float, limit: int) -> list[int]:
    """The positions of the units to cite among candidates ordered best first
    (``texts`` normalised); [] means abstain. The rule of ``choose``, shared with
    the fit's simulation (``rag.evaluation.fitting``) so that both cite the same."""
    if not probs or probs[0] < answer_threshold:
        return []
    chosen, seen = [0], [texts[0]]
    floor = max(more_threshold, more_ratio * probs[0])
    for i in range(1, len(probs)):
        if len(chosen) >= limit or probs[i] < floor:
            break
        if any(texts[i] in s or s in texts[i] for s in seen):
            continue  # repeats (or contains) a unit already cited
        seen.append(texts[i])
        chosen.append(i)
    return chosen


def choose(question: Question, cands: list[Candidate], policy: SelectionPolicy) -> Selection:
    """The decision on scored candidates (best first)."""
    if not cands:
        return Selection(False, [], [], ["nothing retrieved"])
    best = cands[0]
    limit = min(policy.max_units, question.parts + policy.extra_units)
    picked = pick([c.probability for c in cands], [normalize(c.record.text) for c in cands],
                  policy.answer_threshold, policy.more_threshold, policy.more_ratio, limit)
    if not picked:
        return Selection(False, [], cands, [f"best evidence probability {best.probability:.2f} "
                                            f"< {policy.answer_threshold:.2f}"])
    chosen = sorted((cands[i] for i in picked),
                    key=lambda c: (c.record.source != best.record.source, c.record.source, c.record.start))
    return Selection(True, chosen, cands)


def select(question: Question, result: SearchResult, policy: SelectionPolicy,
           readers: Mapping[str, UnitRanker] | None = None) -> Selection:
    return choose(question, score(question, result, policy, readers), policy)
