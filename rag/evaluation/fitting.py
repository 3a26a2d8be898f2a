"""Fitting the evidence-selection policy (``rag.selection.SelectionPolicy``) on
labelled candidates. Pure numpy, deterministic: the same table gives the same
policy, bit for bit, so a test can check that the committed values are what the
fitting script produces.

The table holds, for every question of a suite, every candidate unit's signals
(``rag.selection.FEATURES``), which gold facts it contains, and whether it comes
from a supporting source. Two steps:

1. the weights: an L2-regularised logistic regression (Newton's method) of
   "this unit holds a gold fact (and is from a supporting source)", each question
   weighing the same whatever its number of candidates;
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

from rag.selection import FEATURES, SelectionPolicy

L2 = 0.1  # the logistic regression's penalty on the squared weights (not on the intercept)
NEWTON_STEPS = 50
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
    features: np.ndarray  # (candidates, len(FEATURES))
    facts: tuple[frozenset[int], ...]  # gold facts each candidate contains
    supporting: tuple[bool, ...]  # each candidate is from a supporting source
    texts: tuple[str, ...]  # normalised texts (for the duplicate rule of selection)

    @property
    def labels(self) -> np.ndarray:
        return np.array([bool(f) and s for f, s in zip(self.facts, self.supporting)], dtype=np.float64)


def fit_weights(rows: Sequence[QuestionRows], l2: float = L2) -> tuple[dict[str, float], float]:
    """Logistic regression weights and intercept (each question weighs 1 in all)."""
    xs = [r.features for r in rows if len(r.features)]
    x = np.vstack(xs)
    y = np.concatenate([r.labels for r in rows if len(r.features)])
    sw = np.concatenate([np.full(len(r.features), 1.0 / len(r.features)) for r in rows if len(r.features)])
    xb = np.hstack([x, np.ones((len(x), 1))])
    beta = np.zeros(xb.shape[1])
    penalty = np.full(xb.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(xb @ beta)))
        grad = xb.T @ (sw * (p - y)) + penalty * beta
        hess = (xb * (sw * p * (1 - p))[:, None]).T @ xb + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    weights = {f: round(float(b), 6) for f, b in zip(FEATURES, beta[:-1])}
    return weights, round(float(beta[-1]), 6)


def _probabilities(rows: Sequence[QuestionRows], weights: dict[str, float], bias: float) -> list[np.ndarray]:
    w = np.array([weights[f] for f in FEATURES])
    return [1.0 / (1.0 + np.exp(-(r.features @ w + bias))) if len(r.features) else np.zeros(0) for r in rows]


def _chosen(row: QuestionRows, order: np.ndarray, probs: np.ndarray, t_answer: float, t_more: float,
            ratio: float, limit: int) -> list[int]:
    """The units ``rag.selection.choose`` cites (same rules; [] = abstain)."""
    if not len(order) or probs[order[0]] < t_answer:
        return []
    best = order[0]
    chosen = [best]
    seen = [row.texts[best]]
    floor = max(t_more, ratio * probs[best])
    for i in order[1:]:
        if len(chosen) >= limit or probs[i] < floor:
            break
        text = row.texts[i]
        if any(text in s or s in text for s in seen):
            continue
        seen.append(text)
        chosen.append(i)
    return chosen


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
    probs = _probabilities(rows, policy.weights, policy.bias)
    per: dict[str, list[bool]] = {}
    for row, p in zip(rows, probs):
        order = np.lexsort((np.arange(len(p)), -p)) if len(p) else np.zeros(0, dtype=int)
        limit = min(policy.max_units, row.parts + policy.extra_units)
        chosen = _chosen(row, order, p, policy.answer_threshold, policy.more_threshold, policy.more_ratio, limit)
        per.setdefault(row.corpus, []).append(strict_of(row, chosen))
    out = {c: float(np.mean(v)) for c, v in per.items()}
    out["macro"] = float(np.mean(list(out.values()))) if out else 0.0
    return out


def fit_policy(rows: Sequence[QuestionRows], note: dict[str, object] | None = None) -> SelectionPolicy:
    weights, bias = fit_weights(rows)
    probs = _probabilities(rows, weights, bias)
    orders = [np.lexsort((np.arange(len(p)), -p)) if len(p) else np.zeros(0, dtype=int) for p in probs]
    corpora = sorted({r.corpus for r in rows})
    index = {c: i for i, c in enumerate(corpora)}
    sizes = np.bincount([index[r.corpus] for r in rows], minlength=len(corpora))
    best_key: tuple[float, ...] | None = None
    best = None
    for t_answer, t_more, ratio, max_units, extra in itertools.product(
            ANSWER_THRESHOLDS, MORE_THRESHOLDS, MORE_RATIOS, MAX_UNITS, EXTRA_UNITS):
        if max_units == 1 and (t_more, ratio, extra) != (MORE_THRESHOLDS[0], MORE_RATIOS[0], EXTRA_UNITS[0]):
            continue  # further units are never cited: one setting stands for all
        hits = np.zeros(len(corpora))
        for row, order, p in zip(rows, orders, probs):
            limit = min(max_units, row.parts + extra)
            if strict_of(row, _chosen(row, order, p, t_answer, t_more, ratio, limit)):
                hits[index[row.corpus]] += 1
        macro = float(np.mean(hits / sizes))
        key = (round(macro, 9), -max_units, -extra, t_answer, t_more, ratio)
        if best_key is None or key > best_key:
            best_key, best = key, (t_answer, t_more, ratio, max_units, extra)
    assert best is not None
    t_answer, t_more, ratio, max_units, extra = best
    fitted: dict[str, object] = {"by": "eval/fit_policy.py", "questions": len(rows), "corpora": corpora,
                                 "l2": L2, **(note or {})}
    return SelectionPolicy(weights, bias, float(t_answer), float(t_more), float(ratio), int(max_units), int(extra),
                           fitted)


def leave_one_corpus_out(rows: Sequence[QuestionRows]) -> dict[str, tuple[SelectionPolicy, float]]:
    """For each corpus: the policy fitted on the others, and its simulated strict there."""
    out = {}
    for corpus in sorted({r.corpus for r in rows}):
        train = [r for r in rows if r.corpus != corpus]
        test = [r for r in rows if r.corpus == corpus]
        policy = fit_policy(train, {"left_out": corpus})
        out[corpus] = (policy, simulate(test, policy)[corpus])
    return out
