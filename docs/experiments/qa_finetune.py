"""Approach (c) of issue 13, measured against the shipped (b): a fine-tuned intent classifier (all-MiniLM-L6-v2,
top layers fine-tuned, cosine softmax head over the intent families and an explicit out-of-scope class; optionally
hard-negative batches + supervised contrastive loss) vs the stock MiniLM + logistic regression + nearest-example
second opinion, under one protocol: 5-fold CV over edgefx/qa/banks.json (fold by example, noisy copies in their
example's fold, the split of export.intents.choose) and the tuning sets dev / dev2 scored through the runtime's own
resolver and answerer code. Never reads tests/data/qa_unseen.jsonl. Results: docs/experiments/qa_finetune.md.

Lab copy (the scripts were run from /tmp/qa_c as lab.py, run.py, fold.py, combine.py, analyse.py; concatenated here):

    LAB_BANKS=<banks snapshot> LAB_SETS=dev,dev2 python fold.py ce1 '{}' <k> 1        # one CV fold of (c)
    python combine.py ce1                                                              # pooled CV, thresholds
    python run.py stock_fp32 --cfg '{"stock":true,"l2":3e-6}' --threads 1             # (b) CV, same folds
    python run.py ce1 --cfg '{"epochs":1,"layers":2}' --folds "" --final --int8 --threads {1,2}  # full-bank models
    LAB_B=<(b) npz> python analyse.py ce1                                             # tuning sets, t1 vs t2
"""


from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, "/work/main")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from edgefx.qa.intents import MERGED, OUT_OF_SCOPE  # noqa: E402
from edgefx.qa.reading import load_tokenizer  # noqa: E402
from edgefx.qa.slots import keys_for  # noqa: E402
from edgefx.qa.text import shorthand, speller_for  # noqa: E402
from export.intents import NOISY_COPIES, THRESHOLDS, WRONG_PENALTY, noisy_copies  # noqa: E402
from export.intents import fit as lr_fit  # noqa: E402
from export.qa import MINILM, TOKENIZER, model_dir, source_file  # noqa: E402

ROOT = Path("/work/main")
MAX_TOKENS = 64
FOLDS = 5
OUT = Path("/tmp/qa_c/out")


def log(*a: object) -> None:
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ---------------------------------------------------------------- data
class Data:
    """Banks (re-read from disk), normalised as the runtime does, their noisy copies, the tuning sets."""

    def __init__(self) -> None:
        raw = json.loads(Path(os.environ.get("LAB_BANKS", "/tmp/qa_c/banks_snapshot.json")).read_text())
        merged: dict[str, list[str]] = {}
        for name, ex in raw.items():
            merged.setdefault(MERGED.get(name, name), []).extend(ex)
        self.classes = list(merged)
        self.oos = self.classes.index(OUT_OF_SCOPE)
        self.tokenizer = load_tokenizer(source_file(MINILM, TOKENIZER))
        all_texts = [t for ts in merged.values() for t in ts]
        self.speller = speller_for(self.tokenizer.get_vocab(), all_texts)
        pairs = [(t, c) for c in self.classes for t in merged[c]]
        self.texts = [self.norm(t) for t, _ in pairs]
        self.y = np.array([self.classes.index(c) for _, c in pairs])
        rng = np.random.default_rng(0)  # the shipped fit's copies, in its order
        noisy = [(copy, i) for i, (t, _) in enumerate(pairs) for copy in noisy_copies(t, rng, NOISY_COPIES)]
        self.noisy = [self.norm(t) for t, _ in noisy]
        self.source = np.array([i for _, i in noisy])
        self.folds = np.random.default_rng(0).permutation(len(self.y)) % FOLDS  # as export.intents.choose
        self.sets = {name: self.load_set(name) for name in os.environ.get("LAB_SETS", "dev").split(",")}

    def norm(self, text: str) -> str:
        return self.speller(shorthand(text))

    def ids(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text).ids[:MAX_TOKENS]
        if len(ids) == MAX_TOKENS:
            ids[-1] = self.tokenizer.token_to_id("[SEP]")
        return ids

    def load_set(self, name: str) -> tuple[list, dict, list[str]]:
        from edgefx.evaluation.qa_eval import load_set

        assert name != "unseen"
        q = ROOT / f"tests/data/qa_{name}.jsonl"
        r = ROOT / f"tests/data/qa_{name}_results.json"
        r = r if r.exists() else ROOT / "tests/data/qa_dev_results.json"  # dev2 asks about the dev results
        rows, facts = load_set(q, r)
        return rows, facts, [self.norm(row.question) for row in rows]


# ---------------------------------------------------------------- model
def load_bert(dropout: float) -> torch.nn.Module:
    from transformers import BertModel

    bert = BertModel.from_pretrained(str(model_dir()), add_pooling_layer=False, attn_implementation="eager",
                                     hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return bert


def ext_mask(mask: torch.Tensor) -> torch.Tensor:
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


def pad(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(len(s) for s in seqs)
    ids = torch.tensor([s + [0] * (n - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in seqs])
    return ids, mask


@torch.no_grad()
def lower(bert: torch.nn.Module, seqs: list[list[int]], frozen: int) -> list[torch.Tensor]:
    """Hidden states after the first `frozen` layers, per example (unpadded): computed once, the frozen part."""
    bert.eval()
    order = np.argsort([len(s) for s in seqs], kind="stable")
    out: list[torch.Tensor | None] = [None] * len(seqs)
    for i in range(0, len(seqs), 128):
        idx = order[i:i + 128]
        ids, mask = pad([seqs[j] for j in idx])
        h = bert.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids))
        m = ext_mask(mask)
        for layer in bert.encoder.layer[:frozen]:
            h = layer(h, m)
        for r, j in enumerate(idx):
            out[j] = h[r, :len(seqs[j])].clone()
    return out  # type: ignore[return-value]


def upper(bert: torch.nn.Module, states: list[torch.Tensor], frozen: int) -> torch.Tensor:
    """Unit sentence vectors from the cached lower states through the trainable upper layers."""
    n = max(s.shape[0] for s in states)
    h = torch.zeros(len(states), n, states[0].shape[1])
    mask = torch.zeros(len(states), n)
    for r, s in enumerate(states):
        h[r, :s.shape[0]] = s
        mask[r, :s.shape[0]] = 1
    m = ext_mask(mask)
    for layer in bert.encoder.layer[frozen:]:
        h = layer(h, m)
    pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return torch.nn.functional.normalize(pooled, dim=1)


@torch.no_grad()
def embed(bert: torch.nn.Module, seqs: list[list[int]]) -> np.ndarray:
    """fp32 unit vectors (the exported graph's computation), batched by length."""
    bert.eval()
    states = lower(bert, seqs, 0)
    out = np.zeros((len(seqs), 384))
    order = np.argsort([len(s) for s in seqs], kind="stable")
    for i in range(0, len(seqs), 128):
        idx = order[i:i + 128]
        out[idx] = upper(bert, [states[j] for j in idx], 0).double().numpy()
    return out


def supcon(z: torch.Tensor, y: torch.Tensor, oos: int, tau: float) -> torch.Tensor:
    """Supervised contrastive loss; out-of-scope examples are negatives only (they share no meaning)."""
    sim = z @ z.T / tau
    eye = torch.eye(len(y), dtype=torch.bool)
    sim = sim.masked_fill(eye, -1e9)
    pos = (y[:, None] == y[None, :]) & ~eye & (y[:, None] != oos)
    logp = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    has = pos.any(1)
    if not has.any():
        return z.sum() * 0
    return -((logp * pos).sum(1)[has] / pos.sum(1)[has]).mean()


def hard_batches(y: np.ndarray, X0: np.ndarray, classes: int, oos: int, bs: int, rng: np.random.Generator,
                 n_batches: int) -> list[np.ndarray]:
    """Batches of an anchor intent, its 3 most confusable intents (stock centroids) and its nearest
    out-of-scope examples: the hard negatives a random batch rarely holds."""
    inside = [c for c in range(classes) if c != oos]
    cent = np.stack([X0[y == c].mean(0) for c in inside])
    cent /= np.linalg.norm(cent, axis=1, keepdims=True)
    sims = cent @ cent.T
    np.fill_diagonal(sims, -9)
    oos_idx = np.where(y == oos)[0]
    near_oos = {c: oos_idx[np.argsort(-(X0[oos_idx] @ cent[k]))[:60]] for k, c in enumerate(inside)}
    by_class = {c: np.where(y == c)[0] for c in range(classes)}
    per = bs // 5
    out = []
    for b in range(n_batches):
        k = b % len(inside)
        group = [inside[k]] + [inside[j] for j in np.argsort(-sims[k])[:3]]
        idx = [rng.choice(by_class[c], per, replace=False) for c in group]
        idx.append(rng.choice(near_oos[inside[k]], bs - per * 4, replace=False))
        out.append(np.concatenate(idx))
    rng.shuffle(out)
    return out


_LOWER: dict = {}


def train(data: Data, train_idx: np.ndarray, cfg: dict, threads: int) -> tuple[torch.nn.Module, dict]:
    """Fine-tune the top layers and a cosine softmax head on the training examples and their noisy copies."""
    torch.set_num_threads(threads)
    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    t0 = time.time()
    bert = load_bert(cfg.get("dropout", 0.0))
    frozen = 6 - cfg["layers"]
    bert.embeddings.requires_grad_(False)
    for layer in bert.encoder.layer[:frozen]:
        layer.requires_grad_(False)
    keep = np.isin(data.source, train_idx)
    y = np.concatenate([data.y[train_idx], data.y[data.source[keep]]])
    key = (frozen, threads)
    if key not in _LOWER:  # the frozen part is the stock model's: the same for every fold, computed once
        _LOWER.clear()
        import hashlib
        digest = hashlib.sha256("\n".join(data.texts + data.noisy).encode()).hexdigest()[:12]
        path = OUT / f"lower_{frozen}_{threads}_{digest}.pt"
        if path.exists():
            _LOWER[key] = torch.load(path)
        else:
            _LOWER[key] = lower(bert, [data.ids(t) for t in data.texts + data.noisy], frozen)
            torch.save(_LOWER[key], str(path) + ".tmp")
            os.replace(str(path) + ".tmp", path)
    cache = _LOWER[key]
    states = [cache[i] for i in train_idx] + [cache[len(data.texts) + j] for j in np.where(keep)[0]]
    t_lower = time.time() - t0
    C = len(data.classes)
    head = torch.nn.Parameter(torch.zeros(C, 384))
    with torch.no_grad():  # class centroids of the stock vectors: a head that starts where the LR would
        X0 = upper(bert, states, frozen).numpy() if cfg["layers"] else None
    X0 = np.asarray(X0, np.float64)
    with torch.no_grad():
        for c in range(C):
            v = X0[y == c].mean(0)
            head[c] = torch.tensor(v / np.linalg.norm(v), dtype=torch.float32)
    bias = torch.nn.Parameter(torch.zeros(C))
    enc_params = [p for p in bert.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": enc_params, "lr": cfg["lr"], "weight_decay": 0.01},
                             {"params": [head, bias], "lr": cfg["head_lr"], "weight_decay": 0.0}])
    bs = cfg["batch"]
    n_per_epoch = len(y) // bs
    steps = cfg["epochs"] * n_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / (0.06 * steps)) * max(0.0, (steps - s) / steps))
    yt = torch.tensor(y)
    s, m = cfg["scale"], cfg["margin"]
    step, losses = 0, []
    bert.train()
    for epoch in range(cfg["epochs"]):
        if cfg.get("hard"):
            batches = hard_batches(y, X0, C, data.oos, bs, rng, n_per_epoch)
        else:
            perm = rng.permutation(len(y))
            batches = [perm[i * bs:(i + 1) * bs] for i in range(n_per_epoch)]
        for idx in batches:
            z = upper(bert, [states[j] for j in idx], frozen)
            w = torch.nn.functional.normalize(head, dim=1)
            cos = z @ w.T
            target = yt[idx]
            logits = s * (cos - m * torch.nn.functional.one_hot(target, C)) + bias
            loss = torch.nn.functional.cross_entropy(logits, target)
            if cfg.get("supcon"):
                loss = loss + cfg["supcon"] * supcon(z, target, data.oos, cfg.get("tau", 0.1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(enc_params + [head, bias], 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            losses.append(float(loss.detach()))
            step += 1
    bert.eval()
    W = (torch.nn.functional.normalize(head.detach(), dim=1).T * s).double().numpy()
    info = {"train_s": round(time.time() - t0, 1), "lower_s": round(t_lower, 1), "steps": step, "threads": threads,
            "loss": round(float(np.mean(losses[-50:])), 4), "examples": len(y)}
    bert.head_W, bert.head_b = W, bias.detach().double().numpy()  # type: ignore[attr-defined]
    return bert, info


# ---------------------------------------------------------------- deciding and scoring
def softmax(Z: np.ndarray) -> np.ndarray:
    Z = Z - Z.max(1, keepdims=True)
    P = np.exp(Z)
    return P / P.sum(1, keepdims=True)


_KNN_CACHE: dict = {}


def knn_scores(bank: np.ndarray, labels: np.ndarray, V: np.ndarray, classes: int, oos: int, k: int = 3):
    key = (id(bank), id(V), bank.shape, V.shape)
    if key not in _KNN_CACHE:
        S = V @ bank.T
        scores = np.stack([np.sort(S[:, labels == c], axis=1)[:, -k:].mean(1) for c in range(classes)], axis=1)
        inside = np.delete(np.arange(classes), oos)
        best = inside[np.argmax(scores[:, inside], axis=1)]
        _KNN_CACHE[key] = (best, scores[np.arange(len(V)), best], scores[:, oos], bank, V)
    return _KNN_CACHE[key][:3]


def knn_pick(bank: np.ndarray, labels: np.ndarray, V: np.ndarray, classes: int, oos: int, kmin: float,
             kmargin: float, k: int = 3) -> np.ndarray:
    """The nearest-example intent per row (-1: none), as edgefx.qa.intents.IntentClassifier.nearest."""
    best, top, out = knn_scores(bank, labels, V, classes, oos, k)
    ok = (top >= kmin) & (top - out >= kmargin)
    return np.where(ok, best, -1)


def decide(P: np.ndarray, oos: int, threshold: float, knn: np.ndarray | None = None) -> np.ndarray:
    """Chosen class per row, -1 refused: the runtime's rule (regression, then nearest-example second opinion)."""
    best = P.argmax(1)
    sure = P.max(1) >= threshold
    if knn is not None:
        sure = sure | (knn == best)
    return np.where((best != oos) & sure, best, -1)


def cv_scores(pred: np.ndarray, y: np.ndarray, oos: int) -> dict:
    inside = y != oos
    right = np.mean(pred[inside] == y[inside])
    refused = np.mean(pred[~inside] == -1)
    wrong = np.sum((pred != -1) & (pred != y))
    return {"right": round(float(right), 4), "refused": round(float(refused), 4),
            "wrong": int(wrong), "wrong_pct_answerable": round(float(wrong / inside.sum()), 4)}


def objective(pred: np.ndarray, y: np.ndarray, oos: int) -> float:
    s = cv_scores(pred, y, oos)
    return s["right"] + s["refused"] - WRONG_PENALTY * s["wrong"] / len(y)


def pick_threshold(P: np.ndarray, y: np.ndarray, oos: int, knn: np.ndarray | None) -> float:
    """The centre of the best plateau of the CV objective, as export.intents.choose."""
    values = np.array([objective(decide(P, oos, t, knn), y, oos) for t in THRESHOLDS])
    smooth = np.array([values[max(i - 1, 0):i + 2].mean() for i in range(len(values))])
    return float(THRESHOLDS[int(np.argmax(smooth))])


def set_scores(data: Data, name: str, pred: np.ndarray) -> tuple[dict, list]:
    """Score chosen classes (-1 refused) on a tuning set through the runtime's own resolver and answerer code (keys,
    slots, preferred keys, refusals), judged as `edgefx eval qa` judges."""
    from edgefx.evaluation.qa_eval import judge, score
    from edgefx.qa.answerer import QuestionAnswerer
    from edgefx.qa.intents import IntentResolver

    rows, facts, normed = data.sets[name]
    by_text = {t: (data.classes[int(c)] if c != -1 else None) for t, c in zip(normed, pred)}
    resolver = IntentResolver.__new__(IntentResolver)
    resolver.speller = data.speller
    resolver.encoder = lambda text: text  # the "vector" is the normalised text; the decision is precomputed
    resolver.classifier = SimpleNamespace(decide=lambda text: (by_text[text], 0.9, by_text[text] or "oos"))
    qa = QuestionAnswerer.__new__(QuestionAnswerer)
    qa.resolver = resolver
    qa.extract = lambda question, fact: (fact.answer, True)
    qa.suggestions = lambda resolution, n=3: []
    answers = [qa.answer(facts[row.context], row.question) for row in rows]
    s = score(rows, answers)
    verdicts = [judge(r, a) for r, a in zip(rows, answers)]
    return ({k: s[k] for k in ("answerable_right", "unanswerable_refused", "confident_wrong",
                               "confident_wrong_per_answerable")}, verdicts)


# ---------------------------------------------------------------- int8
def export_int8(bert: torch.nn.Module, folder: Path) -> dict[str, Path]:
    from export.qa import _SentenceEncoder, export_onnx, quantize_int8

    folder.mkdir(parents=True, exist_ok=True)
    fp32, int8 = folder / "fp32.onnx", folder / "int8.onnx"
    bert.config._attn_implementation = "sdpa"
    export_onnx(_SentenceEncoder.build(bert.eval()), fp32, ["sentence_embedding"])
    quantize_int8(fp32, int8, per_channel=True, gather=False)
    return {"fp32": fp32, "int8": int8}


def embed_onnx(path: Path, seqs: list[list[int]], threads: int = 1) -> np.ndarray:
    """One text per run, as the runtime's QuestionEncoder."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    out = []
    for s in seqs:
        ids = np.array([s], np.int64)
        (v,) = sess.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})
        out.append(v[0])
    return np.asarray(out, np.float64)


# ================================================================ run.py (CV driver, final models)

import argparse, json, sys, time
from pathlib import Path
import numpy as np
import torch

KNN_MIN = np.round(np.arange(0.30, 0.81, 0.02), 2)
KNN_MARGIN = np.round(np.arange(-0.10, 0.21, 0.02), 2)


def knn_grid(bankX, bankY, V, y, C, oos, P, threshold):
    """Best (knn_min, knn_margin) for the second opinion on pooled OOF rows, at the regression threshold."""
    from lab import objective
    best = (-9, None)
    for a in KNN_MIN:
        for m in KNN_MARGIN:
            pred = decide(P, oos, threshold, knn_pick_pooled(bankX, bankY, V, C, oos, a, m))
            v = objective(pred, y, oos)
            if v > best[0] + 1e-12:
                best = (v, (float(a), float(m)))
    return best[1]


def knn_pick_pooled(banks, labels, Vs, C, oos, a, m):
    return np.concatenate([knn_pick(b, l, v, C, oos, a, m) for b, l, v in zip(banks, labels, Vs)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--cfg", default="{}")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--folds", default="0,1,2,3,4")
    ap.add_argument("--final", action="store_true")
    ap.add_argument("--int8", action="store_true", help="embed through the int8 ONNX export (final model)")
    ap.add_argument("--lr-head", action="store_true", help="also refit the LR head on the fine-tuned vectors")
    args = ap.parse_args()
    cfg = {"seed": 1, "layers": 2, "epochs": 3, "batch": 32, "lr": 1e-4, "head_lr": 5e-3, "scale": 20.0,
           "margin": 0.0, "supcon": 0.0, "hard": False, "dropout": 0.0, **json.loads(args.cfg)}
    stock = cfg.get("stock", False)
    out = OUT / args.name
    out.mkdir(parents=True, exist_ok=True)
    data = Data()
    C, oos = len(data.classes), data.oos
    log(args.name, cfg, "examples", len(data.y), "classes", C, "sets", list(data.sets))
    all_seq = [data.ids(t) for t in data.texts]
    noisy_seq = [data.ids(t) for t in data.noisy]
    set_seq = {n: [data.ids(t) for t in s[2]] for n, s in data.sets.items()}
    res = {"cfg": cfg, "threads": args.threads, "folds": {}}
    folds = [int(f) for f in args.folds.split(",")] if args.folds else []
    if stock:
        torch.set_num_threads(args.threads)
        if cfg.get("onnx"):
            emb = lambda s: embed_onnx(cfg["onnx"], s)
        else:
            bert = load_bert(0.0)
            emb = lambda s: embed(bert, s)
        Xall, Xnoisy = emb(all_seq), emb(noisy_seq)
        Xsets = {n: emb(s) for n, s in set_seq.items()}
    oof = {"P": np.zeros((len(data.y), C)), "y": data.y}
    banks, blabels, Vs, sets_P, sets_knn = [], [], [], {n: [] for n in data.sets}, {n: [] for n in data.sets}
    order = []
    for k in folds:
        tr, te = np.where(data.folds != k)[0], np.where(data.folds == k)[0]
        t0 = time.time()
        if stock:
            keep = np.isin(data.source, tr)
            W, b = lr_fit(np.vstack([Xall[tr], Xnoisy[keep]]), np.concatenate([data.y[tr], data.y[data.source[keep]]]), C, cfg.get("l2", 1e-5))
            V, bank, Vsets, info = Xall[te], Xall[tr], Xsets, {"fit_s": round(time.time() - t0, 1)}
        else:
            bert, info = train(data, tr, cfg, args.threads)
            W, b = bert.head_W, bert.head_b
            V, bank = embed(bert, [all_seq[i] for i in te]), embed(bert, [all_seq[i] for i in tr])
            Vsets = {n: embed(bert, s) for n, s in set_seq.items()}
        P = lr_probs(V, W, b)
        oof["P"][te] = P
        banks.append(bank); blabels.append(data.y[tr]); Vs.append(V); order.append(te)
        for n in data.sets:
            sets_P[n].append(lr_probs(Vsets[n], W, b)); sets_knn[n].append((bank, data.y[tr], Vsets[n]))
        res["folds"][k] = info
        log("fold", k, info, "fold-alone t=0.5:", cv_scores(decide(P, oos, 0.5), data.y[te], oos))
    if folds:
        te_all = np.concatenate(order)
        y = data.y[te_all]
        P = oof["P"][te_all]
        t = pick_threshold(P, y, oos, None)
        res["cv_threshold"] = t
        res["cv"] = cv_scores(decide(P, oos, t), y, oos)
        # second opinion, its thresholds on the pooled OOF rows
        km = knn_grid(banks, blabels, Vs, y, C, oos, P, t)
        knn = knn_pick_pooled(banks, blabels, Vs, C, oos, *km)
        t2 = pick_threshold(P, y, oos, knn)
        knn = knn_pick_pooled(banks, blabels, Vs, C, oos, *km)
        res["cv_knn"] = {"threshold": t2, "knn": km, **cv_scores(decide(P, oos, t2, knn), y, oos)}
        res["cv_curve"] = {f"{th:.2f}": cv_scores(decide(P, oos, th), y, oos) for th in THRESHOLDS[::3]}
        for n in data.sets:  # each fold model on the tuning set, at the CV threshold; mean over folds
            per = [set_scores(data, n, decide(Pn, oos, t))[0] for Pn in sets_P[n]]
            per2 = [set_scores(data, n, decide(Pn, oos, t2, knn_pick(bk, bl, v, C, oos, *km)))[0]
                    for Pn, (bk, bl, v) in zip(sets_P[n], sets_knn[n])]
            res[f"{n}_fold_models"] = {key: round(float(np.mean([p[key] for p in per])), 4) for key in per[0]}
            res[f"{n}_fold_models_knn"] = {key: round(float(np.mean([p[key] for p in per2])), 4) for key in per2[0]}
        log("CV", res["cv_threshold"], res["cv"], "knn", res["cv_knn"])
        for n in data.sets:
            log(n, "fold models", res[f"{n}_fold_models"], "knn", res[f"{n}_fold_models_knn"])
        np.savez(out / "oof.npz", P=P, y=y, te=te_all)
    if folds:
        (out / f"cv_t{args.threads}.json").write_text(json.dumps(res, indent=1))
    if stock and args.final:
        stock_final(cfg, data, res, out, Xall, Xnoisy)
    elif args.final:
        final(args, cfg, data, res, out, all_seq, noisy_seq, set_seq)


def stock_final(cfg, data, res, out, Xall, Xnoisy):
    """(b) refitted on these banks as export.intents.fit_intents does (L2 fixed at the shipped choice; the threshold
    from the pooled CV above, the same rule as export.intents.choose), saved in the runtime's npz format."""
    from export.intents import knn_thresholds
    C, oos = len(data.classes), data.oos
    kmin, kmargin = knn_thresholds(Xall, data.y, C, oos)
    W, b = lr_fit(np.vstack([Xall, Xnoisy]), np.concatenate([data.y, data.y[data.source]]), C, cfg["l2"])
    with (out / "int8.npz").open("wb") as fh:
        np.savez(fh, W=W, b=b, classes=np.array(data.classes), threshold=np.float64(res["cv_threshold"]),
                 bank=Xall.astype(np.float32), labels=data.y, knn_min=np.float64(kmin), knn_margin=np.float64(kmargin),
                 banks_sha256=np.array("lab"), l2=np.float64(cfg["l2"]))
    log("stock final", res["cv_threshold"], kmin, kmargin)


def final(args, cfg, data, res, out, all_seq, noisy_seq, set_seq):
    """Train on all banks; save per precision the tuning sets' probabilities and the bank vectors (thresholds are
    applied afterwards by analyse.py, from the CV)."""
    bert, info = train(data, np.arange(len(data.y)), cfg, args.threads)
    log("final trained", info)
    W, b = bert.head_W, bert.head_b
    torch.save({k: v for k, v in bert.state_dict().items()}, out / f"final_t{args.threads}.pt")
    precisions = {"fp32": lambda s: embed(bert, s)}
    if args.int8:
        paths = export_int8(bert, out / f"onnx_t{args.threads}")
        precisions["int8"] = lambda s: embed_onnx(paths["int8"], s)
    arrays = {"W": W, "b": b}
    for prec, emb in precisions.items():
        arrays[f"bank_{prec}"] = emb(all_seq)
        for n, s in set_seq.items():
            arrays[f"{n}_{prec}"] = emb(s)
        log("final embedded", prec)
    np.savez(out / f"final_t{args.threads}.npz", **arrays)
    (out / f"final_t{args.threads}.json").write_text(json.dumps({"train": info, "cfg": cfg}, indent=1))


if __name__ == "__main__":
    main()


# ================================================================ fold.py (one CV fold; script body)
# import json, sys, time
# import numpy as np
# sys.path.insert(0, "/tmp/qa_c")
# from lab import OUT, Data, embed, log, train, cv_scores, decide
# from export.intents import probabilities as lr_probs
#
# name, cfg_json, k, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
# cfg = {"seed": 1, "layers": 2, "epochs": 1, "batch": 32, "lr": 1e-4, "head_lr": 5e-3, "scale": 20.0,
#        "margin": 0.0, "supcon": 0.0, "hard": False, "dropout": 0.0, **json.loads(cfg_json)}
# data = Data()
# out = OUT / name
# out.mkdir(parents=True, exist_ok=True)
# tr, te = np.where(data.folds != k)[0], np.where(data.folds == k)[0]
# bert, info = train(data, tr, cfg, threads)
# seqs = [data.ids(t) for t in data.texts]
# V, bank = embed(bert, [seqs[i] for i in te]), embed(bert, [seqs[i] for i in tr])
# arrays = {"te": te, "tr": tr, "V": V, "bank": bank, "W": bert.head_W, "b": bert.head_b}
# for n, (_, _, normed) in data.sets.items():
#     arrays[f"set_{n}"] = embed(bert, [data.ids(q) for q in normed])
# np.savez(out / f"fold{k}.npz", **arrays)
# (out / f"fold{k}.json").write_text(json.dumps({"cfg": cfg, "info": info, "classes": data.classes}))
# log(name, "fold", k, info, cv_scores(decide(lr_probs(V, bert.head_W, bert.head_b), data.oos, 0.5), data.y[te], data.oos))

# ================================================================ combine.py (script body)
# import json, sys
# import numpy as np
# sys.path.insert(0, "/tmp/qa_c")
# from lab import OUT, THRESHOLDS, Data, cv_scores, decide, knn_pick, pick_threshold, set_scores
# from run import knn_grid, knn_pick_pooled
# from export.intents import probabilities as lr_probs
#
# name = sys.argv[1]
# data = Data()
# C, oos = len(data.classes), data.oos
# folds = [np.load(p) for p in sorted((OUT / name).glob("fold*.npz"))]
# P = np.concatenate([lr_probs(f["V"], f["W"], f["b"]) for f in folds])
# y = np.concatenate([data.y[f["te"]] for f in folds])
# t = pick_threshold(P, y, oos, None)
# res = {"folds": len(folds), "cv_threshold": t, "cv": cv_scores(decide(P, oos, t), y, oos)}
# banks, bl, Vs = [f["bank"] for f in folds], [data.y[f["tr"]] for f in folds], [f["V"] for f in folds]
# km = knn_grid(banks, bl, Vs, y, C, oos, P, t)
# knn = knn_pick_pooled(banks, bl, Vs, C, oos, *km)
# t2 = pick_threshold(P, y, oos, knn)
# res["cv_knn"] = {"threshold": t2, "knn": km, **cv_scores(decide(P, oos, t2, knn), y, oos)}
# res["cv_curve"] = {f"{th:.2f}": cv_scores(decide(P, oos, th), y, oos) for th in THRESHOLDS[::3]}
# for n in data.sets:
#     per, per2 = [], []
#     for f in folds:
#         if f"set_{n}" not in f.files or len(f[f"set_{n}"]) != len(data.sets[n][0]):
#             continue
#         Pn = lr_probs(f[f"set_{n}"], f["W"], f["b"])
#         per.append(set_scores(data, n, decide(Pn, oos, t))[0])
#         per2.append(set_scores(data, n, decide(Pn, oos, t2, knn_pick(f["bank"], data.y[f["tr"]], f[f"set_{n}"], C, oos, *km)))[0])
#     if per:
#         res[f"{n}_fold_models"] = {k: round(float(np.mean([p[k] for p in per])), 4) for k in per[0]}
#         res[f"{n}_fold_models_knn"] = {k: round(float(np.mean([p[k] for p in per2])), 4) for k in per2[0]}
# (OUT / name / "cv_t1.json").write_text(json.dumps(res, indent=1))
# print(json.dumps({k: v for k, v in res.items() if k != "cv_curve"}, indent=1))

# ================================================================ analyse.py

import json
import os
import sys
from pathlib import Path

import numpy as np

from export.intents import probabilities as lr_probs  # noqa: E402


def shipped(data: Data, precision: str = "int8", npz: str = "") -> dict:
    """(b) exactly as shipped: the stock sentence model and models/intents/<precision>.npz, the runtime's decide."""
    from edgefx.qa.intents import IntentClassifier

    clf = IntentClassifier(Path(npz or f"/work/main/models/intents/{precision}.npz"))
    assert clf.classes == data.classes, "banks changed since the shipped fit"
    out = {}
    for n, (rows, facts, normed) in data.sets.items():
        V = embed_onnx(Path(f"/work/main/models/sentence/{precision}.onnx"), [data.ids(t) for t in normed])
        pred = []
        for v, text in zip(V, normed):
            intent, _, _ = clf.decide(v, text)
            pred.append(-1 if intent is None else data.classes.index(intent))
        out[n] = (set_scores(data, n, np.array(pred))[0], np.array(pred))
    return out


def tuned(data: Data, name: str, threads: int, precision: str) -> dict:
    cv = json.loads((OUT / name / "cv_t1.json").read_text())
    z = np.load(OUT / name / f"final_t{threads}.npz")
    t, (t2, km) = cv["cv_threshold"], (cv["cv_knn"]["threshold"], cv["cv_knn"]["knn"])
    C, oos = len(data.classes), data.oos
    out = {}
    for n, (rows, facts, normed) in data.sets.items():
        key = f"{n}_{precision}"
        if key in z.files and len(z[key]) == len(normed):
            V = z[key]
        else:  # the set grew since the final run: embed it with that run's int8 export
            assert precision == "int8"
            V = embed_onnx(OUT / name / f"onnx_t{threads}" / "int8.onnx", [data.ids(q) for q in normed])
        P = lr_probs(V, z["W"], z["b"])
        p1 = decide(P, oos, t)
        p2 = decide(P, oos, t2, knn_pick(z[f"bank_{precision}"], data.y, V, C, oos, *km))
        out[n] = (set_scores(data, n, p1)[0], p1)
        out[n + "+knn"] = (set_scores(data, n, p2)[0], p2)
    return out


def main() -> None:
    data = Data()
    npz = os.environ.get("LAB_B", "")
    report = {"b_int8": {k: v[0] for k, v in shipped(data, "int8", npz).items()}}
    for name in sys.argv[1:]:
        runs = {th: tuned(data, name, th, "int8") for th in (1, 2) if (OUT / name / f"final_t{th}.npz").exists()}
        for th, r in runs.items():
            report[f"{name}_int8_t{th}"] = {k: v[0] for k, v in r.items()}
        if len(runs) == 2:
            report[f"{name}_identical_t1_t2"] = {k: round(float(np.mean(runs[1][k][1] == runs[2][k][1])), 4)
                                               for k in runs[1]}
    print(json.dumps(report, indent=1))


