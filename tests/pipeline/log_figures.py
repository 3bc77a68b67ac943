"""Independent oracle for the figures peprime logs and stores (tests/pipeline/log_figures.sh).

It re-derives, without peprime code, what each step processed: the sentence draws of
pretrain / finetune / prime (peprime's seeded xoshiro256** streams, re-implemented here
from src/core/rng.c and src/maml/tasks.c) on a hand-made corpus, and each sentence's ids
from the sentencepiece module (<s> + the pieces of every word + </s>; max_seq_len is set
above the longest sentence). Then it checks the checkpoint's /log and /tasks against that.

  log_figures.py corpus ROOT                      write the hand-made corpus
  log_figures.py tokens CKPT --stage pretrain|finetune|prime --root ROOT --spm SPM
                 --langs aa,bb --seed S [--batch GB] [--meta-batch M --support S --query Q]
      /log/tokens of every step == the real ids of the sentences drawn (not B * T)
  log_figures.py rate CKPT [--skip-last]
      /log/tokens_per_s == /log/tokens / step time within 10% (step time: the gap between
      consecutive /log/wall_time entries)
  log_figures.py tasks REF.h5 OTHER.h5 --langs aa,bb,cc --seed S --meta-batch M --support S --query Q
      /tasks/<lang> of OTHER (another rank count) == REF: the same episode (the language's
      last task of the meta-step, by the oracle), the same losses and the same state
"""
import argparse
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
from init_ref import M64, Rng, splitmix64  # noqa: E402  peprime's seeded streams, one Python twin


def sentences(root, lang, split="train"):
    out, cur = [], []
    with open(os.path.join(root, "ner", "wikiann", lang, split + ".txt"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                cur.append(line.split("\t")[0])
            elif cur:
                out.append(cur)
                cur = []
    if cur:
        out.append(cur)
    return out


def corpus(root):
    """Three languages, sentences of 1-9 words from a few words per language: batches mix
    lengths, so a padded count differs from the real one."""
    words = {"aa": ["alpha", "bravo", "charlie", "delta"], "bb": ["echo", "foxtrot", "golf", "hotel"],
             "cc": ["india", "juliet", "kilo", "lima"]}
    for lang, ws in words.items():
        d = os.path.join(root, "ner", "wikiann", lang)
        os.makedirs(d, exist_ok=True)
        for split, count in (("train", 60), ("dev", 12), ("test", 12)):
            with open(os.path.join(d, split + ".txt"), "w") as f:
                for s in range(count):
                    n = 1 + (s * 7 + len(lang) + len(split)) % 9
                    for j in range(n):
                        w = ws[(s + j) % len(ws)]
                        f.write("%s\t%s\n" % (w, "B-PER" if j == 0 and s % 3 == 0 else "O"))
                    f.write("\n")
    # the tokenizer's text: the corpus words many times, among filler words that give the
    # trainer enough candidates to reach its vocabulary size
    letters, x = "abcdefghijklmnopqrstuvwxyz", 12345
    with open(os.path.join(root, "text.txt"), "w") as f:
        for line in range(400):
            filler = []
            for _ in range(4):
                x = splitmix64(x)
                filler.append("".join(letters[(x >> (5 * k)) % 26] for k in range(3 + x % 5)))
            f.write(" ".join(words["aa bb cc".split()[line % 3]] + filler) + "\n")


def sentence_ids(spm_path, root, lang):
    """Ids per sentence: <s>, the pieces of each word (XLM-R encodes words separately), </s>."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=spm_path)
    return [2 + sum(len(sp.encode(w)) for w in sent) for sent in sentences(root, lang)]


def step_tokens(a, nsteps):
    lens = [sentence_ids(a.spm, a.root, lang) for lang in a.langs]
    sizes = [len(x) for x in lens]
    out = []
    for step in range(nsteps):
        if a.stage in ("pretrain", "finetune"):
            # one language by data size, then GB of its sentences (stage_pretrain.c / stage_finetune.c)
            r = Rng(a.seed, step, 0x3D1 if a.stage == "pretrain" else 0xF17E)
            pick, lang = r.below(sum(sizes)), 0
            while pick >= sizes[lang]:
                pick -= sizes[lang]
                lang += 1
            out.append(sum(lens[lang][r.below(sizes[lang])] for _ in range(a.batch)))
        else:
            # every task of the meta-batch: a language, then support + query distinct sentences
            total = 0
            for t in range(a.meta_batch):
                lang, idx = draw_task(a, step, t, sizes)
                total += sum(lens[lang][i] for i in idx)
            out.append(total)
    return out


def draw_task(a, step, t, sizes):
    """pep_task_draw with uniform language weights (float32 accumulation, as in tasks.c)."""
    r = Rng(a.seed, step, t)
    nlang = len(sizes)
    w = np.float32(1.0 / nlang)
    u, acc, lang = r.uniform(), np.float32(0), nlang - 1
    for i in range(nlang):
        acc = np.float32(acc + w)
        if u < acc:
            lang = i
            break
    idx = []
    while len(idx) < a.support + a.query:
        x = r.below(sizes[lang])
        if x not in idx:
            idx.append(x)
    return lang, idx


def cmd_tokens(a):
    with h5py.File(a.ckpt, "r") as f:
        logged = f["log/tokens"][()]
    want = step_tokens(a, len(logged))
    bad = [(i + 1, int(x), y) for i, (x, y) in enumerate(zip(logged, want)) if int(x) != y]
    print("%s: %d steps, tokens per step logged %s, oracle %s" % (a.stage, len(logged), [int(x) for x in logged[:6]],
                                                                  want[:6]))
    if bad:
        sys.exit("steps whose /log/tokens is not the real token count (step, logged, oracle): %s" % bad[:5])


def cmd_rate(a):
    with h5py.File(a.ckpt, "r") as f:
        tok, tps, wall = f["log/tokens"][()], f["log/tokens_per_s"][()], f["log/wall_time"][()]
    steps = range(1, len(tok) - (1 if a.skip_last else 0))
    ratios = [tps[i] / (tok[i] / (wall[i] - wall[i - 1])) for i in steps]
    print("tokens_per_s / (tokens / step time): min %.3f median %.3f max %.3f over %d steps; logged %.0f-%.0f tokens/s"
          % (min(ratios), float(np.median(ratios)), max(ratios), len(ratios), min(tps), max(tps)))
    off = [(i + 1, round(r, 3)) for i, r in zip(steps, ratios) if abs(r - 1) > 0.10]
    # the gap between wall_time entries also holds the between-steps work (the stop-signal
    # agreement, a progress line), and a shared machine may stall any one step: the median
    # and most steps must match; a rate over another interval (e.g. since the last progress
    # line) is off on most steps
    if abs(float(np.median(ratios)) - 1) > 0.10 or len(off) > 0.2 * len(ratios):
        sys.exit("tokens_per_s is not tokens / step time within 10%% (median ratio %.3f; steps off: %s)"
                 % (float(np.median(ratios)), off[:8]))
    if off:
        print("within 10%% on all but %d of %d steps (stalls on a shared machine): %s" % (len(off), len(ratios), off))


def cmd_tasks(a):
    sizes = [len(sentences(a.root, lang)) for lang in a.langs]
    with h5py.File(a.ref, "r") as fr, h5py.File(a.other, "r") as fo:
        step = int(fr.attrs["step"])
        for li, lang in enumerate(a.langs):
            last = [t for t in range(a.meta_batch) if draw_task(a, step - 1, t, sizes)[0] == li]
            if not last:
                continue
            gr, go = fr["tasks/" + lang], fo["tasks/" + lang]
            want_episode = (step - 1) * a.meta_batch + last[-1]
            for g, name in ((gr, a.ref), (go, a.other)):
                if int(g.attrs["episode"]) != want_episode:
                    sys.exit("%s: /tasks/%s episode %d, the oracle's last task of %s is episode %d"
                             % (name, lang, g.attrs["episode"], lang, want_episode))
            for k in ("support_loss", "query_loss"):
                x, y = float(go.attrs[k]), float(gr.attrs[k])
                if abs(x - y) > 1e-4 * abs(y):
                    sys.exit("/tasks/%s %s: %s has %.6f, %s has %.6f (the stored episode's own loss in both?)"
                             % (lang, k, a.other, x, a.ref, y))
            for name in gr:
                x, y = go[name][()].astype(np.float64), gr[name][()].astype(np.float64)
                if np.linalg.norm(x - y) > 1e-4 * max(np.linalg.norm(y), 1e-12):
                    sys.exit("/tasks/%s/%s differs between %s and %s" % (lang, name, a.ref, a.other))
            print("/tasks/%s: episode %d (drawn by tasks %s of the last meta-step), support %.5f query %.5f: equal"
                  % (lang, want_episode, last, gr.attrs["support_loss"], gr.attrs["query_loss"]))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("corpus")
    c.add_argument("root")
    for name in ("tokens", "tasks"):
        p = sub.add_parser(name)
        if name == "tokens":
            p.add_argument("ckpt")
            p.add_argument("--stage", required=True)
            p.add_argument("--spm", required=True)
        else:
            p.add_argument("ref")
            p.add_argument("other")
        p.add_argument("--root", required=True)
        p.add_argument("--langs", required=True, type=lambda s: s.split(","))
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--batch", type=int, default=0)
        p.add_argument("--meta-batch", type=int, default=0)
        p.add_argument("--support", type=int, default=0)
        p.add_argument("--query", type=int, default=0)
    r = sub.add_parser("rate")
    r.add_argument("ckpt")
    r.add_argument("--skip-last", action="store_true")
    a = ap.parse_args()
    if a.cmd == "corpus":
        corpus(a.root)
    elif a.cmd == "tokens":
        cmd_tokens(a)
    elif a.cmd == "rate":
        cmd_rate(a)
    else:
        cmd_tasks(a)


if __name__ == "__main__":
    main()
