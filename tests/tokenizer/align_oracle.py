"""Reference for `peprime tokenizer align`: XTREME's per-word tagging alignment, computed
with SentencePiece's own Python binding. Each word is encoded on its own (its own dummy
prefix); a non-empty word with no pieces becomes <unk>; ids map to fairseq / XLM-R
(<s>=0 <pad>=1 </s>=2 <unk>=3, piece i -> i + 1); pieces are cut at T - 2 and wrapped in
<s> ... </s>. Prints per line: ids TAB first-piece index per word (-1 if cut) TAB cut words.
usage: align_oracle.py MODEL T < text"""
import sys

import sentencepiece as spm


def main():
    sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
    T = int(sys.argv[2])
    unk, bos, eos = sp.unk_id(), sp.bos_id(), sp.eos_id()
    fs = {unk: 3, bos: 0, eos: 2}
    out = sys.stdout
    for line in sys.stdin.buffer:
        line = line.rstrip(b"\n")
        words = line.split(b" ") if line else []
        pieces, first = [], []
        for w in words:
            ids = sp.encode(w.decode("utf-8", "surrogateescape")) if w else []
            if w and not ids:
                ids = [unk]
            first.append(len(pieces) + 1 if ids else -1)
            pieces.extend(ids)
        pieces = pieces[: T - 2]
        cut = 0
        for k, f in enumerate(first):
            if f > T - 2:
                first[k] = -1
                cut += 1
        ids = [0] + [fs.get(i, i + 1) for i in pieces] + [2]
        out.write(" ".join(map(str, ids)) + "\t" + " ".join(map(str, first)) + "\t%d\n" % cut)


if __name__ == "__main__":
    main()
