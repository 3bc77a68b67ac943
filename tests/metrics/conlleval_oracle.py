"""Oracle test for src/metrics/conlleval.c.

Independent re-implementations, written from the documented rules:
  * conlleval.pl (CoNLL-2000 evaluation script): its token-by-token startOfChunk /
    endOfChunk functions and the `inCorrect` flag that counts a chunk as correct when
    gold and guess start together with the same type and end together; a sentence
    boundary is processed as an O/O token.
  * seqeval's strict mode with the IOB2 scheme (seqeval.scheme.Tokens.entities with the
    IOB2 start/inside/end patterns; an 'O' is appended to each sentence).
Random tag sequences (well-formed, noisy and uniformly random, so plenty of ill-formed
I- tags) are scored by both this script and the C driver conlleval_cli; every count
(overall and per type, chunks and tokens) must agree.

With --conll FILE it scores a prediction file as `conlleval.pl -d '\t'` reads one (columns
split on TAB, gold tag second to last, guess last; an empty line or a first column `-X-` is a
sentence boundary) and prints `gold found correct`; with --results results.csv --lang L it
also checks those counts against the `gold`, `pred`, `correct` of L's row (peprime evaluate).
"""
import argparse
import random
import subprocess
import sys
import tempfile
from collections import Counter

TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
TYPES = ["PER", "ORG", "LOC", "MISC"]


def split(t):
    if t == "O":
        return "O", ""
    return t[0], t[2:]


# ---- conlleval.pl --------------------------------------------------------------------
def end_of_chunk(prev_tag, tag, prev_type, typ):
    end = False
    if prev_tag == "B" and tag == "B":
        end = True
    if prev_tag == "B" and tag == "O":
        end = True
    if prev_tag == "I" and tag == "B":
        end = True
    if prev_tag == "I" and tag == "O":
        end = True
    if prev_tag != "O" and prev_tag != "." and prev_type != typ:
        end = True
    return end


def start_of_chunk(prev_tag, tag, prev_type, typ):
    start = False
    if prev_tag == "B" and tag == "B":
        start = True
    if prev_tag == "I" and tag == "B":
        start = True
    if prev_tag == "O" and tag == "B":
        start = True
    if prev_tag == "O" and tag == "I":
        start = True
    if tag != "O" and tag != "." and prev_type != typ:
        start = True
    return start


def conlleval(sentences):
    found_c, found_g, correct = Counter(), Counter(), Counter()
    tokens = tokens_ok = 0
    in_correct = False
    last_c, last_ct, last_g, last_gt = "O", "", "O", ""
    stream = []
    for gold, pred in sentences:
        stream.extend(zip(gold, pred))
        stream.append(None)  # boundary line: processed as O / O
    for item in stream:
        if item is None:
            c, ct, g, gt = "O", "", "O", ""
        else:
            (c, ct), (g, gt) = split(item[0]), split(item[1])
        if in_correct:
            ec = end_of_chunk(last_c, c, last_ct, ct)
            eg = end_of_chunk(last_g, g, last_gt, gt)
            if ec and eg and last_gt == last_ct:
                in_correct = False
                correct[last_ct] += 1
            elif ec != eg or gt != ct:
                in_correct = False
        sc = start_of_chunk(last_c, c, last_ct, ct)
        sg = start_of_chunk(last_g, g, last_gt, gt)
        if sc and sg and gt == ct:
            in_correct = True
        if sc:
            found_c[ct] += 1
        if sg:
            found_g[gt] += 1
        if item is not None:
            tokens += 1
            tokens_ok += (c == g and ct == gt)
        last_c, last_ct, last_g, last_gt = c, ct, g, gt
    if in_correct:
        correct[last_ct] += 1
    return found_c, found_g, correct, tokens, tokens_ok


# ---- seqeval strict IOB2 -------------------------------------------------------------
def sq_prefix(t):
    return t[0]


def sq_tag(t):
    return t[1:].strip("-") or "_"


def sq_is_start(prev, cur):
    return sq_prefix(cur) == "B"


def sq_is_inside(prev, cur):
    return sq_prefix(prev) in "BI" and sq_prefix(cur) == "I" and sq_tag(prev) == sq_tag(cur)


def sq_is_end(prev, cur):
    p, c, same = sq_prefix(prev), sq_prefix(cur), sq_tag(prev) == sq_tag(cur)
    pats = [("I", "O", None), ("I", "I", False), ("I", "B", None),
            ("B", "O", None), ("B", "I", False), ("B", "B", None)]
    return any(p == a and c == b and (s is None or s == same) for a, b, s in pats)


def sq_entities(seq):
    toks = list(seq) + ["O"]
    ents = []
    i, prev = 0, "O"
    while i < len(toks):
        tok = toks[i]
        if sq_is_start(prev, tok):
            end = len(toks) - 2
            p = tok
            for j in range(i + 1, len(toks)):
                if sq_is_inside(p, toks[j]):
                    p = toks[j]
                else:
                    end = j
                    break
            if sq_is_end(toks[end - 1], toks[end]):
                ents.append((sq_tag(tok), i, end))
            i = end
        else:
            i += 1
        prev = toks[i - 1]
    return ents


def strict(sentences):
    found_c, found_g, correct = Counter(), Counter(), Counter()
    tokens = tokens_ok = 0
    for gold, pred in sentences:
        ge, pe = set(sq_entities(gold)), set(sq_entities(pred))
        for t, _, _ in ge:
            found_c[t] += 1
        for t, _, _ in pe:
            found_g[t] += 1
        for t, _, _ in ge & pe:
            correct[t] += 1
        tokens += len(gold)
        tokens_ok += sum(a == b for a, b in zip(gold, pred))
    return found_c, found_g, correct, tokens, tokens_ok


# ---- random data -----------------------------------------------------------------------
def well_formed(rng, n):
    out = []
    while len(out) < n:
        if rng.random() < 0.5:
            out.append("O")
        else:
            t = rng.choice(TYPES)
            out.append("B-" + t)
            for _ in range(rng.randrange(3)):
                out.append("I-" + t)
    return out[:n]


def sentence(rng):
    n = rng.randrange(1, 13)
    kind = rng.random()
    gold = well_formed(rng, n) if kind < 0.7 else [rng.choice(TAGS) for _ in range(n)]
    pred = list(gold)
    noise = rng.choice([0.0, 0.1, 0.3, 1.0])
    for i in range(n):
        if rng.random() < noise:
            pred[i] = rng.choice(TAGS)
    if rng.random() < 0.5:
        gold, pred = pred, gold
    return gold, pred


def run_c(cli, sentences, strict_mode):
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
        for gold, pred in sentences:
            for a, b in zip(gold, pred):
                f.write(f"{a} {b}\n")
            f.write("\n")
        f.flush()
        args = [cli] + (["--strict"] if strict_mode else []) + [",".join(TAGS)]
        with open(f.name) as inp:
            out = subprocess.run(args, stdin=inp, capture_output=True, text=True, check=True).stdout
    res = {}
    for line in out.splitlines():
        w = line.split()
        if w[0] == "ALL":
            res["ALL"] = tuple(map(int, w[1:]))
        elif w[0] == "TYPE":
            res[w[1]] = tuple(map(int, w[2:]))
        elif w[0] == "TOKENS":
            res["TOKENS"] = tuple(map(int, w[1:]))
    return res


def expected(sentences, strict_mode):
    fc, fg, cc, tok, tok_ok = (strict if strict_mode else conlleval)(sentences)
    res = {"ALL": (sum(fc.values()), sum(fg.values()), sum(cc.values())), "TOKENS": (tok, tok_ok)}
    for t in TYPES:
        res[t] = (fc[t], fg[t], cc[t])
    return res


def read_conll(path):
    """Sentences of (gold, guess) tag lists from a file, read as conlleval.pl -d '\\t' does."""
    sentences, gold, pred, width = [], [], [], None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.rstrip("\n").split("\t") if line.strip() else []
            if not fields or fields[0] == "-X-":
                if gold:
                    sentences.append((gold, pred))
                gold, pred = [], []
                continue
            if width is None:
                width = len(fields)
            if len(fields) != width or width < 2:
                raise SystemExit(f"{path}:{lineno}: {len(fields)} columns, expected {width} (conlleval.pl would stop)")
            gold.append(fields[-2])
            pred.append(fields[-1])
    if gold:
        sentences.append((gold, pred))
    return sentences


def check_file(path, results, lang):
    sents = read_conll(path)
    fc, fg, cc, _, _ = conlleval(sents)
    counts = (sum(fc.values()), sum(fg.values()), sum(cc.values()))
    print(f"{path}: {len(sents)} sentences, gold {counts[0]} found {counts[1]} correct {counts[2]}")
    if not results:
        return 0
    import csv
    with open(results) as f:
        rows = {r["language"]: r for r in csv.DictReader(f)}
    if lang not in rows:
        print(f"{results} has no row for {lang}")
        return 1
    want = tuple(int(rows[lang][k]) for k in ("gold", "pred", "correct"))
    if want != counts:
        print(f"MISMATCH: {results} {lang} gold/pred/correct = {want}, the file gives {counts}")
        return 1
    print(f"{results} {lang}: gold/pred/correct {want} agree")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli")
    ap.add_argument("--conll", help="score this prediction file instead of the random trials")
    ap.add_argument("--results", help="results.csv to compare --conll's counts with")
    ap.add_argument("--lang", help="row of --results")
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20240601)
    a = ap.parse_args()
    if a.conll:
        return check_file(a.conll, a.results, a.lang)
    if not a.cli:
        ap.error("--cli is required for the random trials")
    rng = random.Random(a.seed)
    passed = failed = 0
    modes_differ = 0
    for trial in range(a.trials):
        sents = [sentence(rng) for _ in range(rng.randrange(1, 40))]
        results = {}
        for mode in (0, 1):
            want, got = expected(sents, mode), run_c(a.cli, sents, mode)
            results[mode] = want
            if want == got:
                passed += 1
            else:
                failed += 1
                if failed <= 5:
                    print(f"trial {trial} strict={mode}: python {want} != C {got}")
                    print("  sentences:", sents)
        modes_differ += results[0]["ALL"] != results[1]["ALL"]
    # The two modes must actually disagree on ill-formed input, or the test proves little.
    if modes_differ == 0:
        print("conlleval and strict never differed: the random data has no ill-formed sequences")
        failed += 1
    print(f"conlleval oracle: modes differed in {modes_differ} of {a.trials} trials")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
