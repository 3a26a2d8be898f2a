"""Fitting the evidence-selection policy (``rag.answer.selection.SelectionPolicy``) on
labelled candidates. Pure numpy, deterministic: the same table gives the same
policy, bit for bit, so a test can check that the committed values are what the
fitting script produces.

The table holds, for every question of a suite, every candidate unit's signals
(``rag.answer.selection.FEATURES``), which gold facts it contains, and whether it comes
from a supporting source. Two steps:

1. the weights: a listwise model, a softmax over each answerable question's
   candidates fitted (Newton's method, L2 penalty) so that the units holding a
   gold fact from a supporting source come first, then scaled by a one-variable
   logistic fit (Platt scaling) into the probability that a unit holds a fact;
   the penalty is chosen from ``L2_GRID`` by leave-one-corpus-out strict;
2. the thresholds: a grid search that maximises the macro-average strict score of
   the answers the policy would give, simulated exactly as the scorer judges an
   extractive answer (the cited units verbatim): answerable -> every fact in the
   cited units, every cited unit holding a fact from a supporting source;
   unanswerable -> abstained. Ties go to fewer cited units, then higher thresholds.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.answer.selection import FEATURES, SelectionPolicy, Stage, pick

L2_GRID = (0.3, 1.0, 3.0)  # penalties tried on the squared weights; the best leave-one-corpus-out wins
NEWTON_STEPS = 60
ANSWER_THRESHOLDS = tuple(round(x, 2) for x in np.arange(0.05, 0.96, 0.05))
MORE_THRESHOLDS = tuple(round(x, 2) for x in np.arange(0.05, 0.96, 0.05))
MORE_RATIOS = (0.0, 0.2, 0.4, 0.6, 0.8)
MAX_UNITS = (1, 2, 3)
EXTRA_UNITS = (0, 1)


@dataclass(frozen=True)
class QuestionRows:
    corpus: str
    id: str
    answerable: bool
    n_facts: int
    parts: int
    features: np.ndarray  # (candidates, len(columns)): FEATURES, then the ranker's score if the fit uses it
    facts: tuple[frozenset[int], ...]  # gold facts each candidate contains
    supporting: tuple[bool, ...]  # each candidate is from a supporting source
    texts: tuple[str, ...]  # normalised texts (for the duplicate rule of selection)

    @property
    def labels(self) -> np.ndarray:
        return np.array([bool(f) and s for f, s in zip(self.facts, self.supporting)], dtype=np.float64)


def _listwise(rows: Sequence[QuestionRows], l2: float) -> np.ndarray:
    """Weights of a softmax over each question's candidates (labels shared evenly)."""
    data = [(r.features, r.labels) for r in rows if r.answerable and len(r.features) and r.labels.sum() > 0]
    return conditional_logit(data, l2, data[0][0].shape[1] if data else len(FEATURES))


def conditional_logit(groups: Sequence[tuple[np.ndarray, np.ndarray]], l2: float, dims: int) -> np.ndarray:
    """Weights of a softmax over each group's rows (``(rows, labels)``, labels shared
    evenly among a group's positives; every group has one), by Newton's method with an
    L2 penalty on the weights."""
    w = np.zeros(dims)
    for _ in range(NEWTON_STEPS):
        grad, hess = np.zeros(dims), np.zeros((dims, dims))
        for x, y in groups:
            s = x @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            grad += x.T @ (p - y / y.sum())
            mean = x.T @ p
            hess += (x * p[:, None]).T @ x - np.outer(mean, mean)
        grad = grad / max(1, len(groups)) + l2 * w
        hess = hess / max(1, len(groups)) + l2 * np.eye(dims)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return w


def _platt(rows: Sequence[QuestionRows], w: np.ndarray) -> tuple[float, float]:
    """Scale and intercept mapping a unit's score to P(it holds a fact); each question weighs 1."""
    used = [r for r in rows if len(r.features)]
    s = np.concatenate([r.features @ w for r in used])
    y = np.concatenate([r.labels for r in used])
    sw = np.concatenate([np.full(len(r.features), 1.0 / len(r.features)) for r in used])
    xb = np.stack([s, np.ones_like(s)], axis=1)
    ab = np.zeros(2)
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(xb @ ab)))
        step = np.linalg.solve((xb * (sw * p * (1 - p))[:, None]).T @ xb + 1e-9 * np.eye(2), xb.T @ (sw * (p - y)))
        ab -= step
        if np.max(np.abs(step)) < 1e-12:
            break
    return float(ab[0]), float(ab[1])


def fit_weights(rows: Sequence[QuestionRows], l2: float,
                columns: Sequence[str] = FEATURES) -> tuple[dict[str, float], float]:
    """Per-signal weights (``columns``: the names of the rows' feature columns) and the
    intercept of P(unit holds a gold fact)."""
    w = _listwise(rows, l2)
    scale, bias = _platt(rows, w)
    return {f: round(float(scale * v), 6) for f, v in zip(columns, w)}, round(bias, 6)


def _probabilities(rows: Sequence[QuestionRows], weights: dict[str, float], bias: float) -> list[np.ndarray]:
    w = np.array(list(weights.values()))  # in the rows' column order (fit_weights keeps it)
    return [1.0 / (1.0 + np.exp(-(r.features @ w + bias))) if len(r.features) else np.zeros(0) for r in rows]


@dataclass(frozen=True)
class _Ranked:
    """One question's candidates ordered best first (as ``rag.answer.selection.score`` orders them)."""

    order: np.ndarray  # candidate indices, best first
    probs: list[float]  # their probabilities, in that order
    texts: list[str]  # their normalised texts, in that order


def _ranked(rows: Sequence[QuestionRows], probs: Sequence[np.ndarray]) -> list[_Ranked]:
    out = []
    for row, p in zip(rows, probs):
        order = np.lexsort((np.arange(len(p)), -p)) if len(p) else np.zeros(0, dtype=int)
        out.append(_Ranked(order, [float(p[i]) for i in order], [row.texts[i] for i in order]))
    return out


@dataclass(frozen=True)
class _Outcomes:
    """What ``pick`` can cite for every question, ready for a vectorised threshold
    search: the probabilities of the units it would cite in turn (the best, then
    the next ones that repeat none before them; ``MAX_CITED`` at most, -inf
    beyond), and the strict outcome of citing the first k of them (k = 0..MAX_CITED).
    ``pick`` cites a prefix of that sequence, as long as the probabilities hold."""

    probs: np.ndarray  # (questions, MAX_CITED)
    strict_k: np.ndarray  # (questions, MAX_CITED + 1)

    @classmethod
    def of(cls, rows: Sequence[QuestionRows], ranked: Sequence[_Ranked]) -> "_Outcomes":
        n = max(MAX_UNITS)
        probs = np.full((len(rows), n), -np.inf)
        strict_k = np.zeros((len(rows), n + 1), dtype=bool)
        for q, (row, r) in enumerate(zip(rows, ranked)):
            seq: list[int] = []
            seen: list[str] = []
            for i, text in enumerate(r.texts):
                if len(seq) == n:
                    break
                if seq and any(text in t or t in text for t in seen):
                    continue
                seq.append(i)
                seen.append(text)
            probs[q, :len(seq)] = [r.probs[i] for i in seq]
            for k in range(n + 1):
                strict_k[q, k] = strict_of(row, [int(r.order[i]) for i in seq[:k]]) if k <= len(seq) else False
        return cls(probs, strict_k)

    def strict(self, t_answer: float, t_more: float, ratio: float, limit: np.ndarray) -> np.ndarray:
        """Each question's strict outcome under these thresholds (as ``pick`` decides)."""
        first = self.probs[:, 0]
        floor = np.maximum(t_more, ratio * first)
        more = np.cumprod(self.probs[:, 1:] >= floor[:, None], axis=1).sum(axis=1)
        k = np.where(first >= t_answer, np.minimum(1 + more, limit), 0)
        return self.strict_k[np.arange(len(k)), k].astype(np.float64)


def _chosen(ranked: _Ranked, t_answer: float, t_more: float, ratio: float, limit: int) -> list[int]:
    """The candidates ``rag.answer.selection.choose`` cites ([] = abstain)."""
    return [int(ranked.order[i]) for i in pick(ranked.probs, ranked.texts, t_answer, t_more, ratio, limit)]


def strict_of(row: QuestionRows, chosen: list[int]) -> bool:
    if not row.answerable:
        return not chosen
    if not chosen:
        return False
    got: set[int] = set()
    for i in chosen:
        if not row.facts[i] or not row.supporting[i]:
            return False
        got |= row.facts[i]
    return len(got) == row.n_facts


def simulate(rows: Sequence[QuestionRows], policy: SelectionPolicy) -> dict[str, float]:
    """Strict per corpus (and ``macro``) of the extractive answers ``policy`` gives."""
    ranked = _ranked(rows, _probabilities(rows, policy.weights, policy.bias))
    per: dict[str, list[bool]] = {}
    for row, r in zip(rows, ranked):
        limit = min(policy.max_units, row.parts + policy.extra_units)
        chosen = _chosen(r, policy.answer_threshold, policy.more_threshold, policy.more_ratio, limit)
        per.setdefault(row.corpus, []).append(strict_of(row, chosen))
    out = {c: float(np.mean(v)) for c, v in per.items()}
    out["macro"] = float(np.mean(list(out.values()))) if out else 0.0
    return out


def fit_policy(rows: Sequence[QuestionRows], l2: float, note: dict[str, object] | None = None,
               stages: tuple[Stage, ...] = ()) -> SelectionPolicy:
    """``stages``: the policy's readers of units, whose scores are the rows' last columns, in order."""
    columns = FEATURES + tuple(stage.signal for stage in stages)
    weights, bias = fit_weights(rows, l2, columns)
    outcome = _Outcomes.of(rows, _ranked(rows, _probabilities(rows, weights, bias)))
    corpora = sorted({r.corpus for r in rows})
    index = {c: i for i, c in enumerate(corpora)}
    corpus_of = np.array([index[r.corpus] for r in rows])
    sizes = np.bincount(corpus_of, minlength=len(corpora))
    parts = np.array([r.parts for r in rows])
    best_key: tuple[float, ...] | None = None
    best = None
    for t_answer, t_more, ratio, max_units, extra in itertools.product(
            ANSWER_THRESHOLDS, MORE_THRESHOLDS, MORE_RATIOS, MAX_UNITS, EXTRA_UNITS):
        if max_units == 1 and (t_more, ratio, extra) != (MORE_THRESHOLDS[0], MORE_RATIOS[0], EXTRA_UNITS[0]):
            continue  # further units are never cited: one setting stands for all
        limit = np.minimum(max_units, parts + extra)
        hits = np.bincount(corpus_of, weights=outcome.strict(t_answer, t_more, ratio, limit),
                           minlength=len(corpora))
        macro = float(np.mean(hits / sizes))
        key = (round(macro, 9), -max_units, -extra, t_answer, t_more, ratio)
        if best_key is None or key > best_key:
            best_key, best = key, (t_answer, t_more, ratio, max_units, extra)
    assert best is not None
    t_answer, t_more, ratio, max_units, extra = best
    fitted: dict[str, object] = {"by": "eval/fit_policy.py", "questions": len(rows), "corpora": corpora,
                                 "l2": l2, **(note or {})}
    return SelectionPolicy(weights, bias, float(t_answer), float(t_more), float(ratio), int(max_units), int(extra),
                           fitted, stages)


def leave_one_corpus_out(rows: Sequence[QuestionRows], l2: float,
                         stages: tuple[Stage, ...] = ()) -> dict[str, tuple[SelectionPolicy, float]]:
    """For each corpus: the policy fitted on the others, and its simulated strict there."""
    out = {}
    for corpus in sorted({r.corpus for r in rows}):
        train = [r for r in rows if r.corpus != corpus]
        test = [r for r in rows if r.corpus == corpus]
        policy = fit_policy(train, l2, {"left_out": corpus}, stages)
        out[corpus] = (policy, simulate(test, policy)[corpus])
    return out


def p_at_1(rows: Sequence[QuestionRows], policy: SelectionPolicy) -> dict[str, float]:
    """Per corpus (and ``macro``): the share of answerable questions whose best unit holds a gold fact."""
    per: dict[str, list[bool]] = {}
    for row, p in zip(rows, _probabilities(rows, policy.weights, policy.bias)):
        if row.answerable:
            per.setdefault(row.corpus, []).append(bool(len(p)) and bool(row.labels[int(np.argmax(p))]))
    out = {c: float(np.mean(v)) for c, v in per.items()}
    out["macro"] = float(np.mean(list(out.values()))) if out else 0.0
    return out


def choose_l2(rows: Sequence[QuestionRows], stages: tuple[Stage, ...] = ()) -> tuple[float, dict[float, float]]:
    """The penalty of ``L2_GRID`` with the best leave-one-corpus-out macro strict
    (ties: the larger penalty), and every penalty's figure."""
    figures = {l2: float(np.mean([s for _, s in leave_one_corpus_out(rows, l2, stages).values()])) for l2 in L2_GRID}
    best = max(L2_GRID, key=lambda l2: (round(figures[l2], 9), l2))
    return best, figures
