#!/usr/bin/env bash
# `peprime evaluate` writes <out>/predictions/<lang>.conll (token TAB gold TAB predicted), and an
# independent conlleval (tests/metrics/conlleval_oracle.py --conll, reading the file as
# `conlleval.pl -d '\t'` does) finds the gold / found / correct phrase counts of results.csv.
# Test files are hand-made in three shapes read through data.path: TAB IOB2 with ill-formed gold
# (I- after O; the tiny model, pretrained and fine-tuned on such text, predicts them too), CoNLL-2003 (space-separated, four columns, -DOCSTART-, IOB1,
# a MISC type read as O) and IOBES; sentences longer than max_seq_len check the truncated words
# (predicted O). The files are the same for 1, 2 and 3 ranks, and `peprime tokenizer text` with the
# same data.* settings gives exactly the words evaluate read.
#   predictions.sh PEPRIME_BIN WORKDIR [MPIEXEC]
set -euo pipefail
B="$1"; W="$2"; MPIEXEC="${3:-mpiexec}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ORACLE="$HERE/../metrics/conlleval_oracle.py"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# a dataset of its own: nothing may need the WikiAnn data root
export PEPRIME_DATA=/nonexistent-peprime-data
rm -rf "$W"; mkdir -p "$W"; cd "$W"
/usr/bin/python3 - "$W/data" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(7)
syl = ["ka", "zu", "mo", "ri", "fe", "ny", "lo", "chi", "va", "bu"]
types = ["PER", "ORG", "LOC"]
# entity words are capitalised and drawn from a per-type pool, so a small model learns them
pool = {t: ["".join(rng.choice(syl) for _ in range(2)).capitalize() + t[0].lower() for _ in range(30)]
        for t in types + ["MISC"]}
def word(t=None):
    if t: return rng.choice(pool[t])
    return "".join(rng.choice(syl) for _ in range(rng.randrange(1, 3)))
def chunks(n, extra_types=()):
    """(type or None, length) runs covering n words."""
    out, left = [], n
    while left > 0:
        k = min(left, rng.randrange(1, 4))
        out.append((rng.choice(types + list(extra_types)) if rng.random() < 0.4 else None, k))
        left -= k
    return out
def length():
    return rng.randrange(40, 60) if rng.random() < 0.1 else rng.randrange(1, 15)
def write(lang, split, lines):
    os.makedirs(f"{root}/{lang}", exist_ok=True)
    with open(f"{root}/{lang}/{split}.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
# xx: TAB-separated IOB2; a third of the chunks open with I- (ill-formed, kept as written), so
# the model learns to predict ill-formed sequences too
def xx(n):
    lines = []
    for s in range(n):
        for t, k in chunks(length()):
            first = "I-" if rng.random() < 0.33 else "B-"
            for j in range(k):
                lines.append(f"{word(t)}\t" + ("O" if t is None else (first if j == 0 else "I-") + t))
        lines.append("")
    return lines
write("xx", "train", xx(400))
write("xx", "dev", xx(60))
write("xx", "test", xx(150))
# yy: CoNLL-2003: space-separated, POS and chunk columns, -DOCSTART-, IOB1 (B- only between
# adjacent chunks of one type), MISC not in data.tags
lines = ["-DOCSTART- -X- -X- O", ""]
for s in range(150):
    if s % 40 == 39: lines += ["-DOCSTART- -X- -X- O", ""]
    prev = None
    for t, k in chunks(length(), ["MISC"]):
        for j in range(k):
            tag = "O" if t is None else ("B-" if j == 0 and prev == t else "I-") + t
            lines.append(f"{word(t)} NN I-NP {tag}")
        prev = t
    lines.append("")
write("yy", "test", lines)
# zz: IOBES, with a few ill-formed runs (E- or I- out of place)
lines = []
for s in range(150):
    tags = []
    for t, k in chunks(length()):
        if t is None: tags += [("O", None)] * k
        elif k == 1: tags.append(("S-" + t, t))
        else: tags += [("B-" + t, t)] + [("I-" + t, t)] * (k - 2) + [("E-" + t, t)]
    for i in range(len(tags)):
        if rng.random() < 0.03:
            t = rng.choice(types)
            tags[i] = (rng.choice(["E-", "I-"]) + t, t)
    lines += [f"{word(t)}\t{g}" for g, t in tags] + [""]
write("zz", "test", lines)
PY
cat > job.ini <<INI
include = $HERE/tiny-model.ini
[model]
tokenizer_vocab = 200
[data]
path = $W/data/{lang}/{split}.txt
languages = xx
source = xx
targets = xx
pretrain_languages = xx
[optim]
lr = 5e-2
batch_size = 16
steps = 300
[run]
log_every = 20
INI
"$B" pretrain --config job.ini --out base --set optim.steps=20 --set optim.lr=5e-3 >base.log 2>&1 || { tail -5 base.log; exit 1; }
"$B" finetune --config job.ini --init base/base.h5 --out ft >ft.log 2>&1 || { tail -5 ft.log; exit 1; }

check() { # check OUT LANG: oracle counts == results.csv, with some correct phrases
  /usr/bin/python3 "$ORACLE" --conll "$1/predictions/$2.conll" --results "$1/results.csv" --lang "$2"
  awk -F, -v l="$2" '$1 == l && $7 > 0 { ok = 1 } END { exit !ok }' "$1/results.csv" ||
    { echo "$2: no correct phrase, the check proves little"; exit 1; }
}
evaluate() { # evaluate RANKS OUT TARGET [--set ...]
  local np="$1" out="$2" tgt="$3"; shift 3
  local cmd=("$B" evaluate --config job.ini --model ft/adapted.h5 --out "$out" --set "data.targets=$tgt" "$@")
  if [ "$np" = 1 ]; then "${cmd[@]}" >"$out.log" 2>&1; else
    timeout -k 5 180 "$MPIEXEC" --oversubscribe --bind-to none -n "$np" "${cmd[@]}" >"$out.log" 2>&1; fi ||
    { tail -5 "$out.log"; exit 1; }
}

evaluate 1 xx1 xx
check xx1 xx
grep -q "truncated" xx1.log || { echo "no sentence was truncated: the test misses that case"; exit 1; }
for np in 2 3; do
  evaluate "$np" "xx$np" xx
  cmp xx1/predictions/xx.conll "xx$np/predictions/xx.conll" || { echo "predictions differ with $np ranks"; exit 1; }
  cmp xx1/results.csv "xx$np/results.csv" || { echo "results differ with $np ranks"; exit 1; }
done
/usr/bin/python3 - xx1/predictions/xx.conll "$W/data/xx/test.txt" <<'PY'
import sys
pred = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
src = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])]
assert len(pred) == len(src), (len(pred), len(src))
for p, s in zip(pred, src):
    assert (p == [""]) == (s == [""]) and (p == [""] or p[:2] == s), (p, s)
def ill(col):
    bad, prev = 0, "O"
    for l in pred:
        t = l[col] if len(l) == 3 else "O"
        bad += t.startswith("I-") and (prev == "O" or prev[2:] != t[2:])
        prev = t
    return bad
print(f"xx: tokens and gold as in the source file; ill-formed I- tags: gold {ill(1)}, predicted {ill(2)}")
assert ill(1) > 0 and ill(2) > 0, "the test needs ill-formed gold and predicted sequences"
PY

evaluate 1 yy1 yy --set data.separator=whitespace --set data.scheme=iob1 --set data.unknown_types=O
check yy1 yy
grep -q "read as O (MISC" yy1.log || { echo "the MISC tags read as O were not reported"; exit 1; }
evaluate 2 yy2 yy --set data.separator=whitespace --set data.scheme=iob1 --set data.unknown_types=O
cmp yy1/predictions/yy.conll yy2/predictions/yy.conll
if "$B" evaluate --config job.ini --model ft/adapted.h5 --out yybad --set data.targets=yy \
     --set data.separator=whitespace --set data.scheme=iob1 >yybad.log 2>&1; then
  echo "MISC without data.unknown_types = O should fail"; exit 1; fi
grep -q "yy/test.txt: entity types not in data.tags (which has PER, ORG, LOC): MISC (.* tags, first at line" yybad.log ||
  { tail -2 yybad.log; echo "unclear message for the unknown type"; exit 1; }

# the tokenizer reads the same text through the same reader (tokens only, boundaries skipped)
"$B" tokenizer text --data "$W" --languages yy --split test --set "data.path=$W/data/{lang}/{split}.txt" \
  --set data.separator=whitespace --set data.scheme=iob1 --set data.unknown_types=O > yy.text
[ "$(wc -l < yy.text)" = 150 ] || { echo "tokenizer text: $(wc -l < yy.text) lines, expected 150 sentences"; exit 1; }
if grep -qE "DOCSTART| NN | I-NP " yy.text; then echo "tokenizer text kept a marker or a middle column"; exit 1; fi
cmp <(cut -f1 yy1/predictions/yy.conll | awk 'NF { printf "%s%s", s, $0; s = " "; next } { print ""; s = "" }') yy.text ||
  { echo "tokenizer text differs from the words evaluate read"; exit 1; }

evaluate 1 zz1 zz --set data.scheme=iobes
check zz1 zz
echo "prediction files agree with results.csv under an independent conlleval, for 1-3 ranks"
