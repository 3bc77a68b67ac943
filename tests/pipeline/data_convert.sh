#!/usr/bin/env bash
# `peprime data convert` on small files this test writes in each layout: Rahimi et al.'s
# `<lang>/train|dev|test` files of `de:token<TAB>tag` lines (with CRLF, a BOM and I- tags after O
# to repair), XTREME's unprefixed `test-<lang>.tsv`, and Hugging Face JSON lines
# (`<lang>/train|validation|test.jsonl`, integer ner_tags, \u escapes, langs, spans). The output
# must equal the expected text byte for byte (the same sentences from both layouts give the same
# files), the table must count sentences, tokens, entities and repairs, and the stages must read
# it: a tokenizer, a 2-step pretraining, a fine-tuning and an evaluation with data.root = the
# output, whose predictions carry the converted test tags as gold. Bad inputs (a prefix of another
# language, a tag outside the set, a label id out of range, tags/tokens length mismatch, bad JSON,
# a TAB or newline in a token, Parquet, an existing output without --force) exit 2 with a
# message naming the file, the line and what to do, and write nothing.
#   data_convert.sh PEPRIME_BIN WORKDIR
set -euo pipefail
B="$1"; W="$2"
HERE="$(cd "$(dirname "$0")" && pwd)"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# only the converted data may be read
export PEPRIME_DATA=/nonexistent-peprime-data
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$W"; mkdir -p "$W"; cd "$W"

# --- inputs -----------------------------------------------------------------------------------
# Rahimi et al.: de/train with two I- tags to repair (New after O, Wien after O); dev with a BOM
# and CRLF line ends and no final blank line.
mkdir -p rahimi/de
printf '%s\n' \
  'de:Angela	B-PER' 'de:Merkel	I-PER' 'de:besuchte	O' 'de:Köln	B-LOC' 'de:.	O' '' \
  'de:Die	O' 'de:UNO	B-ORG' 'de:tagt	O' 'de:in	O' 'de:New	I-LOC' 'de:York	I-LOC' '' \
  'de:Karl	B-PER' 'de:lebt	O' 'de:in	O' 'de:Bonn	B-LOC' '' \
  'de:Siemens	B-ORG' 'de:AG	I-ORG' 'de:baut	O' 'de:Züge	O' '' \
  'de:Otto	B-PER' 'de:arbeitet	O' 'de:bei	O' 'de:der	O' 'de:Deutschen	B-ORG' 'de:Bank	I-ORG' '' \
  'de:Hamburg	B-LOC' 'de:liegt	O' 'de:an	O' 'de:der	O' 'de:Elbe	B-LOC' '' > rahimi/de/train
printf '\xef\xbb\xbfde:Berlin\tB-LOC\r\nde:ist\tO\r\nde:groß\tO\r\n\r\nde:Anna\tB-PER\r\nde:Schmidt\tI-PER\r\nde:spielt\tO' \
  > rahimi/de/dev
printf '%s\n' \
  'de:Bayern	B-ORG' 'de:München	I-ORG' 'de:gewinnt	O' '' \
  'de:Peter	B-PER' 'de:fährt	O' 'de:nach	O' 'de:Wien	I-LOC' '' > rahimi/de/test
# XTREME's copy of a target language's test split: no prefixes (kept as written, also 'fr:x')
printf '%s\n' 'Jacques	B-PER' 'Chirac	I-PER' 'à	O' 'Lyon	B-LOC' '' 'fr:x	O' 'Total	B-ORG' '' > rahimi/test-fr.tsv

# Hugging Face wikiann exported with to_json: the same German sentences (ids O=0 B-PER=1 I-PER=2
# B-ORG=3 I-ORG=4 B-LOC=5 I-LOC=6), Köln / München / fährt / groß as \u escapes, a blank line
mkdir -p hf/de
cat > hf/de/train.jsonl <<'EOF'
{"tokens": ["Angela", "Merkel", "besuchte", "K\u00f6ln", "."], "ner_tags": [1, 2, 0, 5, 0], "langs": ["de", "de", "de", "de", "de"], "spans": ["PER: Angela Merkel", "LOC: K\u00f6ln"]}
{"tokens": ["Die", "UNO", "tagt", "in", "New", "York"], "ner_tags": [0, 3, 0, 0, 6, 6], "langs": ["de", "de", "de", "de", "de", "de"], "spans": ["ORG: UNO", "LOC: New York"]}
{"tokens": ["Karl", "lebt", "in", "Bonn"], "ner_tags": [1, 0, 0, 5], "langs": ["de", "de", "de", "de"], "spans": ["PER: Karl", "LOC: Bonn"]}

{"tokens": ["Siemens", "AG", "baut", "Züge"], "ner_tags": [3, 4, 0, 0], "langs": ["de", "de", "de", "de"], "spans": ["ORG: Siemens AG"]}
{"tokens": ["Otto", "arbeitet", "bei", "der", "Deutschen", "Bank"], "ner_tags": [1, 0, 0, 0, 3, 4], "langs": ["de", "de", "de", "de", "de", "de"], "spans": ["PER: Otto", "ORG: Deutschen Bank"]}
{"tokens": ["Hamburg", "liegt", "an", "der", "Elbe"], "ner_tags": [5, 0, 0, 0, 5], "langs": ["de", "de", "de", "de", "de"], "spans": ["LOC: Hamburg", "LOC: Elbe"]}
EOF
cat > hf/de/validation.jsonl <<'EOF'
{"tokens": ["Berlin", "ist", "gro\u00df"], "ner_tags": [5, 0, 0], "langs": ["de", "de", "de"], "spans": ["LOC: Berlin"]}
{"tokens": ["Anna", "Schmidt", "spielt"], "ner_tags": [1, 2, 0], "langs": ["de", "de", "de"], "spans": ["PER: Anna Schmidt"]}
EOF
cat > hf/de/test.jsonl <<'EOF'
{"tokens": ["Bayern", "M\u00fcnchen", "gewinnt"], "ner_tags": [3, 4, 0], "langs": ["de", "de", "de"], "spans": ["ORG: Bayern M\u00fcnchen"]}
{"tokens": ["Peter", "f\u00e4hrt", "nach", "Wien"], "ner_tags": [1, 0, 0, 6], "langs": ["de", "de", "de", "de"], "spans": ["PER: Peter", "LOC: Wien"]}
EOF

# --- expected output --------------------------------------------------------------------------
mkdir -p expected/de expected/fr
printf '%s\n' \
  'Angela	B-PER' 'Merkel	I-PER' 'besuchte	O' 'Köln	B-LOC' '.	O' '' \
  'Die	O' 'UNO	B-ORG' 'tagt	O' 'in	O' 'New	B-LOC' 'York	I-LOC' '' \
  'Karl	B-PER' 'lebt	O' 'in	O' 'Bonn	B-LOC' '' \
  'Siemens	B-ORG' 'AG	I-ORG' 'baut	O' 'Züge	O' '' \
  'Otto	B-PER' 'arbeitet	O' 'bei	O' 'der	O' 'Deutschen	B-ORG' 'Bank	I-ORG' '' \
  'Hamburg	B-LOC' 'liegt	O' 'an	O' 'der	O' 'Elbe	B-LOC' '' > expected/de/train.txt
printf '%s\n' 'Berlin	B-LOC' 'ist	O' 'groß	O' '' 'Anna	B-PER' 'Schmidt	I-PER' 'spielt	O' '' > expected/de/dev.txt
printf '%s\n' 'Bayern	B-ORG' 'München	I-ORG' 'gewinnt	O' '' 'Peter	B-PER' 'fährt	O' 'nach	O' 'Wien	B-LOC' '' \
  > expected/de/test.txt
printf '%s\n' 'Jacques	B-PER' 'Chirac	I-PER' 'à	O' 'Lyon	B-LOC' '' 'fr:x	O' 'Total	B-ORG' '' > expected/fr/test.txt

same_as_expected() { # same_as_expected ROOT LANG SPLIT...
  local root=$1 lang=$2; shift 2
  for s in "$@"; do
    cmp "$root/ner/wikiann/$lang/$s.txt" "expected/$lang/$s.txt" ||
      { diff "$root/ner/wikiann/$lang/$s.txt" "expected/$lang/$s.txt" | head; fail "$root: $lang/$s.txt differs"; }
  done
}
row() { # row LOG LANG SPLIT: "sentences tokens PER ORG LOC repaired prefixes" of the table
  awk -v l="$2" -v s="$3" '$1 == l && $2 == s { print $3, $4, $5, $6, $7, $8, $9 }' "$1"
}
expect_row() { # expect_row LOG LANG SPLIT "EXPECTED"
  local got; got=$(row "$1" "$2" "$3")
  [ "$got" = "$4" ] || { cat "$1"; fail "$1: $2/$3 row is '$got', expected '$4'"; }
}

# --- conversions ------------------------------------------------------------------------------
help=$("$B" data --help); grep -q -- '--from rahimi|hf-jsonl' <<<"$help" || fail "peprime data --help lacks the usage"
help=$("$B" --help); grep -q '^  data ' <<<"$help" || fail "peprime --help does not list data"

# Rahimi's folder for de, XTREME's test-fr.tsv for fr, both from one --in
"$B" data convert --from rahimi --lang de,fr --in rahimi --out out > rahimi.log 2>&1 || { cat rahimi.log; fail "rahimi"; }
same_as_expected out de train dev test
same_as_expected out fr test
expect_row rahimi.log de train "6 30 3 3 5 1 30"
expect_row rahimi.log de dev "2 6 1 0 1 0 6"
expect_row rahimi.log de test "2 7 1 1 1 1 7"
expect_row rahimi.log fr test "2 6 1 1 1 0 0"
grep -q "note: fr/test: no 'fr:' prefixes" rahimi.log || fail "no note on fr's unprefixed file"
grep -q "note: fr: no train, dev given" rahimi.log || fail "no note on fr's missing splits"
[ -z "$(find out -name '*.tmp')" ] || fail "a .tmp file was left"

# XTREME's intermediate names (<lang>-train, ...) for the same files
mkdir -p renamed && for s in train dev test; do cp "rahimi/de/$s" "renamed/de-$s"; done
"$B" data convert --from rahimi --lang de --in renamed --out out-renamed > renamed.log 2>&1 || { cat renamed.log; fail "de-S"; }
same_as_expected out-renamed de train dev test

# Hugging Face JSON lines: the same files
"$B" data convert --from hf-jsonl --lang de --in hf --out out-hf > hf.log 2>&1 || { cat hf.log; fail "hf-jsonl"; }
same_as_expected out-hf de train dev test
expect_row hf.log de train "6 30 3 3 5 1 -"
# one file by name, and --split
"$B" data convert --from hf-jsonl --lang de --in hf/de/test.jsonl --split dev=hf/de/validation.jsonl --out out-one \
  > one.log 2>&1 || { cat one.log; fail "hf-jsonl --in FILE --split"; }
same_as_expected out-one de dev test
[ ! -e out-one/ner/wikiann/de/train.txt ] || fail "a train split appeared from nowhere"

# --- the stages read the output ----------------------------------------------------------------
cat > job.ini <<INI
include = $HERE/tiny-model.ini
[model]
tokenizer_vocab = 100
[data]
root = $W/out
languages = de
pretrain_languages = de
source = de
targets = de,fr
[optim]
batch_size = 2
steps = 4
lr = 1e-3
INI
"$B" tokenizer text --data "$W/out" --languages de > text.txt
[ "$(cat text.txt)" = "$(awk 'NF { printf "%s%s", w ? " " : "", $1; w = 1; next } { print ""; w = 0 }' expected/de/train.txt)" ] ||
  { cat text.txt; fail "tokenizer text does not give the converted train words"; }
"$B" pretrain --config job.ini --out base --set optim.steps=2 > pretrain.log 2>&1 || { tail -5 pretrain.log; fail "pretrain"; }
"$B" finetune --config job.ini --init base/base.h5 --out ft > ft.log 2>&1 || { tail -5 ft.log; fail "finetune"; }
"$B" evaluate --config job.ini --model ft/adapted.h5 --out ev > ev.log 2>&1 || { tail -5 ev.log; fail "evaluate"; }
for l in de fr; do
  cmp <(cut -f1,2 "ev/predictions/$l.conll") "expected/$l/test.txt" || fail "evaluate's gold for $l is not the converted test"
  grep -q "^$l," ev/results.csv || fail "no $l row in results.csv"
done

# --- bad input: exit 2, a message naming file:line and what to do, nothing written -------------
bad() { # bad NAME "NEEDLE|NEEDLE..." ARGS...: exit 2, every needle in the message, no output root
  local name=$1 needles=$2; shift 2
  local rc=0
  "$B" data convert "$@" --out "bad-$name" > "bad-$name.log" 2>&1 || rc=$?
  [ "$rc" = 2 ] || { cat "bad-$name.log"; fail "$name: exit $rc, expected 2"; }
  local IFS='|'
  for n in $needles; do
    grep -qF -- "$n" "bad-$name.log" || { cat "bad-$name.log"; fail "$name: the message lacks '$n'"; }
  done
  [ ! -e "bad-$name" ] || fail "$name: wrote output for bad input"
}
mkdir -p in-bad/de
cp rahimi/de/train in-bad/de/train
printf '%s\n' 'de:Paris	B-LOC' 'de:ist	O' 'fr:schön	O' '' > in-bad/de/dev
bad prefix "in-bad/de/dev:3:|prefix 'fr:'|'de' (--lang)|its own --lang" --from rahimi --lang de --in in-bad
printf '%s\n' 'de:Paris	B-LOC' '' 'de:Joe	B-MISC' '' > bad-tag.txt
bad tag "bad-tag.txt:3:|tag 'B-MISC' is not in the tag set|--tags" --from rahimi --lang de --split train=bad-tag.txt
printf '%s\n' 'de:Pa	ris	B-LOC' '' > bad-tab.txt
bad tab "bad-tab.txt:1:|2 TABs|cannot contain a TAB" --from rahimi --lang de --split train=bad-tab.txt
printf '%s\n' '{"tokens": ["a"], "ner_tags": [0]}' '{"tokens": ["Paris"], "ner_tags": [7]}' > bad-id.jsonl
bad id "bad-id.jsonl:2:|ner_tags[0] = 7|ids 0..6|--tags" --from hf-jsonl --lang de --split train=bad-id.jsonl
printf '%s\n' '{"tokens": ["Paris", "ist"], "ner_tags": [5]}' > bad-len.jsonl
bad length "bad-len.jsonl:1:|2 tokens but 1 ner_tags" --from hf-jsonl --lang de --split train=bad-len.jsonl
printf '%s\n' '{"tokens": ["a"], "ner_tags": [0]}' '' '{"tokens": ["Paris"] "ner_tags": [5]}' > bad-json.jsonl
bad json "bad-json.jsonl:3:|invalid JSON|column 22|one object" --from hf-jsonl --lang de --split train=bad-json.jsonl
printf '%s\n' '{"tokens": ["Pa\tris"], "ner_tags": [5]}' > bad-jtab.jsonl
bad json-tab "bad-jtab.jsonl:1:|tokens[0] 'Pa\\tris' contains a TAB|replace it" \
  --from hf-jsonl --lang de --split train=bad-jtab.jsonl
printf '%s\n' '{"tokens": ["a", "Pa\nris"], "ner_tags": [0, 5]}' > bad-nl.jsonl
bad newline "bad-nl.jsonl:1:|tokens[1]|newline" --from hf-jsonl --lang de --split train=bad-nl.jsonl
printf '%s\n' '{"tokens": ["a"], "ner_tags": [0], "langs": ["fr"]}' > bad-langs.jsonl
bad langs "bad-langs.jsonl:1:|langs[0] is 'fr'" --from hf-jsonl --lang de --split train=bad-langs.jsonl
printf 'PAR1\x15\x04\x15' > train.parquet
bad parquet "train.parquet is a Parquet file|to_json|--from hf-jsonl" --from hf-jsonl --lang de --in train.parquet
bad no-split "cannot tell the split|--split" --from rahimi --lang de --in bad-tag.txt
bad usage "--from rahimi|hf-jsonl is required" --lang de --in rahimi
# a bad file among good ones: nothing is written, not even the good splits
cp rahimi/de/train rahimi/de/dev in-bad/de/ && cp bad-tag.txt in-bad/de/test
bad partial "in-bad/de/test:3:" --from rahimi --lang de --in in-bad

# existing output: refused without --force (and left alone), replaced with it
cp out/ner/wikiann/de/dev.txt dev.before
rc=0; "$B" data convert --from hf-jsonl --lang de --in hf --out out > exists.log 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q "exists.*--force" exists.log || { cat exists.log; fail "existing output: exit $rc"; }
cmp out/ner/wikiann/de/dev.txt dev.before || fail "a refused run changed the output"
"$B" data convert --from hf-jsonl --lang de --in hf --out out --force > force.log 2>&1 || { cat force.log; fail "--force"; }
same_as_expected out de train dev test
echo "data_convert: ok (rahimi, XTREME and hf-jsonl layouts; stages read the output; 14 bad inputs rejected)"
