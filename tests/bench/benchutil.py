"""Shared pieces of the PyTorch speed anchors: thread/BLAS setup before torch loads, the
benchmark shapes, fast float32 weights, full-length batches, real-data batches (the sentences
`peprime bench --data --dump` drew, re-tokenized here and padded to each batch's longest),
peak RSS and JSON rows."""
import json
import os
import platform
import resource
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(os.path.dirname(HERE), "ref")

# XLM-R-style shapes, the `tiny` and `base` of docs/benchmarks.md (peprime bench --shape).
CONFIGS = {
    "tiny": dict(L=4, C=256, NH=4, FF=1024, V=16000, T=64, B=16),
    "base": dict(L=12, C=768, NH=12, FF=3072, V=250002, T=128, B=8),
}


def set_threads_env(n, blas=None):
    """Must run before `import torch`: OpenBLAS (pthread build) reads its thread count at load.
    n = torch's intra-op threads (OMP_NUM_THREADS matches), blas = OpenBLAS's (default n)."""
    os.environ["OPENBLAS_NUM_THREADS"] = str(n if blas is None else blas)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def blas_info():
    """(library path, OpenBLAS core name, OpenBLAS threads) of the BLAS loaded into this process."""
    import ctypes
    libs = sorted({ln.split()[-1] for ln in open("/proc/self/maps") if "blas" in ln.split()[-1]})
    core, nthreads = "unknown", -1
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
            fn = lib.openblas_get_corename
            fn.restype = ctypes.c_char_p
            core = fn().decode()
            nthreads = lib.openblas_get_num_threads()
            break
        except (OSError, AttributeError):
            continue
    return ";".join(libs) or "none found", core, nthreads


def cpu_name():
    """'model name (family F model M)' of the first CPU (a VM's model name can be just 'AMD EPYC')."""
    info = {}
    for line in open("/proc/cpuinfo"):
        key, _, val = line.partition(":")
        if key.strip() in ("model name", "cpu family", "model") and key.strip() not in info:
            info[key.strip()] = val.strip()
    name = info.get("model name") or platform.processor() or "unknown"
    return f"{name} (family {info.get('cpu family', '?')} model {info.get('model', '?')})"


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def bench_spec(er, cfg, head="tagger", pe="adapter"):
    """The model of `peprime bench` (jobs/cmd_bench.c, pep_bench_shape): pe = adapter (Pfeiffer,
    ReLU, bottleneck C/16), prefix (30 keys/values per layer) or lora (r 8, alpha 16)."""
    c = CONFIGS[cfg]
    method = {"adapter": "adapter-pfeiffer", "prefix": "prefix", "lora": "lora"}[pe]
    return er.make_spec("tiny", method, head, L=c["L"], C=c["C"], NH=c["NH"], FF=c["FF"], V=c["V"], max_T=c["T"],
                        max_B=c["B"], max_positions=514, ntags=7, bottleneck=c["C"] // 16, prefix_len=30,
                        lora_rank=8, lora_alpha=16.0, init_std=0.02)


def bench_params(er, spec, torch):
    """float32 weights drawn in place (no float64 temporaries, so RSS is the model's)."""
    out = {}
    g = torch.Generator().manual_seed(0)
    for name, shape, _ in er.param_specs(spec):
        t = torch.empty(shape, dtype=torch.float32)
        if name.endswith("LayerNorm.weight") or name.endswith("layer_norm.weight"):
            t.fill_(1.0)
        elif len(shape) == 1:
            t.zero_()
        else:
            t.normal_(0.0, spec["init_std"], generator=g)
        out[name] = t
    return out


def full_batch(spec, B, T, torch, seed=0):
    """B full-length sentences <s> w ... w </s> with a tag on every word."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, spec["V"] - 1, (B, T), generator=g)
    ids[:, 0], ids[:, -1] = 0, 2
    labels = torch.randint(0, spec["ntags"], (B, T), generator=g)
    labels[:, 0], labels[:, -1] = -100, -100
    return ids, labels


TAGS = "O,B-PER,I-PER,B-ORG,I-ORG,B-LOC,I-LOC".split(",")  # data.tags' default


def data_root():
    return os.environ.get("PEPRIME_DATA") or os.path.join(os.path.dirname(os.path.dirname(REF)), "..", "shared", "data")


def read_conll(path):
    """[(words, tags)] of a WikiAnn CoNLL file (token<TAB>tag lines, blank line between sentences)."""
    out, words, tags = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                if words:
                    out.append((words, tags))
                words, tags = [], []
                continue
            w, t = line.split("\t")
            words.append(w)
            tags.append(t)
    if words:
        out.append((words, tags))
    return out


def encode_sentence(sp, words, T):
    """peprime's pep_ner_align with the sentencepiece module: [<s>] + each word's
    pieces (fairseq ids: spm id + 1, <unk> 3) + [</s>], pieces cut at T - 2; returns (ids,
    first piece index of every word or -1)."""
    def fairseq(i):
        return 3 if i == sp.unk_id() else 0 if i == sp.bos_id() else 2 if i == sp.eos_id() else \
            1 if i == sp.pad_id() else i + 1
    ids, first, limit = [0], [], T - 2
    for w in words:
        p = sp.encode(w, out_type=int)
        if not p and w:
            p = [sp.unk_id()]
        if len(ids) - 1 < limit and p:
            first.append(len(ids))
            for i in p:
                if len(ids) - 1 >= limit:
                    break
                ids.append(fairseq(i))
        else:
            first.append(-1)
    ids.append(2)
    return ids, first


def load_dump(path, tokenizer, torch):
    """The batches of a `peprime bench ... --dump FILE` and the model vocabulary peprime uses
    with that tokenizer (pieces + 2): ([(ids (B, Tb), labels (B, Tb), real tokens)], V), each
    batch padded to its longest sentence (what Hugging Face's collator does), the
    sentences re-read from the train split and re-tokenized with the sentencepiece module; every
    sentence's ids must equal peprime's (raises otherwise)."""
    import sentencepiece
    with open(path) as f:
        head = f.readline().split()
        lang, T = head[head.index("lang") + 1], int(head[head.index("T") + 1])
        lines = f.read().splitlines()
    sp = sentencepiece.SentencePieceProcessor(model_file=tokenizer)
    sents = read_conll(os.path.join(data_root(), "ner", "wikiann", lang, "train.txt"))
    batches, i = [], 0
    while i < len(lines):
        _, _, nseq = lines[i].split()
        rows = [list(map(int, ln.split())) for ln in lines[i + 1:i + 1 + int(nseq)]]
        i += 1 + int(nseq)
        Tb = max(len(r) - 1 for r in rows)
        ids = torch.full((len(rows), Tb), 1, dtype=torch.long)
        labels = torch.full((len(rows), Tb), -100, dtype=torch.long)
        for b, r in enumerate(rows):
            words, tags = sents[r[0]]
            mine, first = encode_sentence(sp, words, T)
            if mine != r[1:]:
                raise SystemExit(f"{path}: sentence {r[0]} of {lang}/train tokenizes to {mine[:12]}... here but "
                                 f"{r[1:13]}... in peprime")
            ids[b, :len(mine)] = torch.tensor(mine)
            for f_, t in zip(first, tags):
                if f_ >= 0:
                    labels[b, f_] = TAGS.index(t)
        batches.append((ids, labels, sum(len(r) - 1 for r in rows)))
    return batches, sp.get_piece_size() + 2


def emit(row):
    """One human line and one JSON line (prefixed 'JSON ') per result row."""
    human = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                      if k not in ("blas", "host"))
    print(human, flush=True)
    print("JSON " + json.dumps(row), flush=True)


def run_children(script, rows, extra):
    """Runs `script` once per row (own process -> per-config peak RSS); collects JSON rows."""
    results = []
    for args in rows:
        cmd = [sys.executable, script] + args + extra
        p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        for ln in p.stdout.splitlines():
            if ln.startswith("JSON "):
                results.append(json.loads(ln[5:]))
                print(ln, flush=True)
        if p.returncode != 0:
            print(f"# child failed ({p.returncode}): {' '.join(cmd)}", flush=True)
    return results


def host():
    return platform.node()
