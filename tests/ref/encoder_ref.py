"""PyTorch 1.13 reference oracle of the peprime encoder (docs/model.md, formula by formula).

The model is one pure function `forward(params, ids, labels, spec) -> (loss, logits)` over a
dict name -> tensor with Hugging Face XLM-R names, so autograd gives the gradient of every
parameter and maml_ref.py can differentiate through an inner loop.

Command line:
  encoder_ref.py make-fixture --spec tiny --pe lora --head tagger --seed 1 --out F.safetensors
      random weights (every parameter, adapter up / LoRA B non-zero), a padded batch with
      ignored labels, and: loss, logits, grad/<name> for every parameter, spec/<key>;
      --dropout P: training mode with peprime's masks (dropout_ref.py), dropout_seed stored.
  encoder_ref.py make-fixture-set --out-dir DIR
      the standard parity set (FIXTURE_SET) and DIR/fixtures.txt naming one file a line.
  encoder_ref.py forward-only --in W.safetensors --out O.safetensors
      W.safetensors holds spec/<key>, the weights by name, input_ids and optionally labels;
      O.safetensors gets logits and loss.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dropout_ref  # noqa: E402
import safetensors_io  # noqa: E402

PAD_ID, BOS_ID, EOS_ID, UNK_ID, IGNORE = 1, 0, 2, 3, -100

# Enum values exactly as src/model/model.h.
HEAD = {"tagger": 0, "mlm": 1}
PE = {"none": 0, "adapter": 1, "prefix": 2, "lora": 3}
PLACEMENT = {"pfeiffer": 0, "houlsby": 1}
ACT = {"relu": 0, "gelu": 1, "swish": 2}
GROUP_PLM, GROUP_PE, GROUP_HEAD = 0, 1, 2
GROUP_BITS = {"plm": 1, "pe": 2, "head": 4, "pe+head": 6, "plm+pe": 3, "all": 7}

# Integer and float fields of struct pep_model_spec, in its order.
SPEC_INT_KEYS = ["L", "C", "NH", "FF", "V", "max_T", "max_B", "max_positions", "type_vocab", "ntags",
                 "head", "pe", "placement", "adapter_act", "bottleneck", "prefix_len", "prefix_reparam",
                 "prefix_hidden", "lora_rank"]
SPEC_FLOAT_KEYS = ["ln_eps", "dropout", "attention_dropout", "init_std", "lora_alpha"]

# Fixture shapes: small on purpose so the C parity tests run in well under a second.
SPECS = {
    "micro": dict(L=2, C=8, NH=2, FF=12, V=11, max_T=5, max_B=2, ntags=3, bottleneck=3, prefix_len=2,
                  prefix_hidden=4, lora_rank=2),
    "tiny": dict(L=2, C=32, NH=4, FF=64, V=50, max_T=12, max_B=4, ntags=7, bottleneck=8, prefix_len=5,
                 prefix_hidden=16, lora_rank=4),
    "small": dict(L=3, C=48, NH=6, FF=96, V=80, max_T=16, max_B=4, ntags=9, bottleneck=12, prefix_len=6,
                  prefix_hidden=24, lora_rank=8),
}


def make_spec(name="tiny", pe="none", head="tagger", **over):
    """Spec dict (keys of struct pep_model_spec). `pe` is none | adapter-pfeiffer |
    adapter-houlsby | prefix | prefix-reparam | lora, optionally with ':relu|gelu|swish'
    for adapters (default relu)."""
    s = dict(L=2, C=32, NH=4, FF=64, V=50, max_T=12, max_B=3, max_positions=0, type_vocab=1, ntags=7,
             ln_eps=1e-5, dropout=0.0, attention_dropout=0.0, init_std=0.02, head=HEAD[head], pe=PE["none"],
             placement=0, adapter_act=ACT["relu"], bottleneck=8, prefix_len=5, prefix_reparam=0,
             prefix_hidden=16, lora_rank=4, lora_alpha=8.0)
    s.update(SPECS[name])
    method, _, act = pe.partition(":")
    if method == "none":
        pass
    elif method.startswith("adapter-"):
        s["pe"] = PE["adapter"]
        s["placement"] = PLACEMENT[method[len("adapter-"):]]
        s["adapter_act"] = ACT[act or "relu"]
    elif method in ("prefix", "prefix-reparam"):
        s["pe"] = PE["prefix"]
        s["prefix_reparam"] = int(method == "prefix-reparam")
    elif method == "lora":
        s["pe"] = PE["lora"]
    else:
        raise ValueError(f"unknown --pe '{pe}' (none, adapter-pfeiffer, adapter-houlsby, prefix, "
                         f"prefix-reparam, lora)")
    s.update(over)
    if s["max_positions"] == 0:
        s["max_positions"] = s["max_T"] + 2  # XLM-R: padding_idx + 1 + longest sequence
    assert s["C"] % s["NH"] == 0
    return s


def param_specs(spec):
    """[(name, shape, group)] in parameter-table order: plm rows, pe rows, head rows."""
    L, C, FF, V = spec["L"], spec["C"], spec["FF"], spec["V"]
    rows = [("embeddings.word_embeddings.weight", (V, C), GROUP_PLM),
            ("embeddings.position_embeddings.weight", (spec["max_positions"], C), GROUP_PLM),
            ("embeddings.token_type_embeddings.weight", (spec["type_vocab"], C), GROUP_PLM),
            ("embeddings.LayerNorm.weight", (C,), GROUP_PLM),
            ("embeddings.LayerNorm.bias", (C,), GROUP_PLM)]
    for l in range(L):
        p = f"encoder.layer.{l}."
        for lin, o, i in (("attention.self.query", C, C), ("attention.self.key", C, C),
                          ("attention.self.value", C, C), ("attention.output.dense", C, C)):
            rows += [(p + lin + ".weight", (o, i), GROUP_PLM), (p + lin + ".bias", (o,), GROUP_PLM)]
        rows += [(p + "attention.output.LayerNorm.weight", (C,), GROUP_PLM),
                 (p + "attention.output.LayerNorm.bias", (C,), GROUP_PLM),
                 (p + "intermediate.dense.weight", (FF, C), GROUP_PLM), (p + "intermediate.dense.bias", (FF,), GROUP_PLM),
                 (p + "output.dense.weight", (C, FF), GROUP_PLM), (p + "output.dense.bias", (C,), GROUP_PLM),
                 (p + "output.LayerNorm.weight", (C,), GROUP_PLM), (p + "output.LayerNorm.bias", (C,), GROUP_PLM)]
    R, P, r = spec["bottleneck"], spec["prefix_len"], spec["lora_rank"]
    if spec["pe"] == PE["adapter"]:
        for l in range(L):
            sites = ["output.adapter."]
            if spec["placement"] == PLACEMENT["houlsby"]:
                sites = ["attention.output.adapter."] + sites
            for site in sites:
                p = f"encoder.layer.{l}." + site
                rows += [(p + "adapter_down.weight", (R, C), GROUP_PE), (p + "adapter_down.bias", (R,), GROUP_PE),
                         (p + "adapter_up.weight", (C, R), GROUP_PE), (p + "adapter_up.bias", (C,), GROUP_PE)]
    elif spec["pe"] == PE["prefix"] and spec["prefix_reparam"]:
        H = spec["prefix_hidden"]
        rows += [("prefix.embedding", (P, C), GROUP_PE),
                 ("prefix.mlp.0.weight", (H, C), GROUP_PE), ("prefix.mlp.0.bias", (H,), GROUP_PE),
                 ("prefix.mlp.2.weight", (2 * L * C, H), GROUP_PE), ("prefix.mlp.2.bias", (2 * L * C,), GROUP_PE)]
    elif spec["pe"] == PE["prefix"]:
        for l in range(L):
            p = f"encoder.layer.{l}.attention.self."
            rows += [(p + "prefix_key", (P, C), GROUP_PE), (p + "prefix_value", (P, C), GROUP_PE)]
    elif spec["pe"] == PE["lora"]:
        for l in range(L):
            for proj in ("query", "value"):
                p = f"encoder.layer.{l}.attention.self.{proj}."
                rows += [(p + "lora_A", (r, C), GROUP_PE), (p + "lora_B", (C, r), GROUP_PE)]
    if spec["head"] == HEAD["tagger"]:
        rows += [("classifier.weight", (spec["ntags"], C), GROUP_HEAD), ("classifier.bias", (spec["ntags"],), GROUP_HEAD)]
    else:
        rows += [("lm_head.dense.weight", (C, C), GROUP_HEAD), ("lm_head.dense.bias", (C,), GROUP_HEAD),
                 ("lm_head.layer_norm.weight", (C,), GROUP_HEAD), ("lm_head.layer_norm.bias", (C,), GROUP_HEAD),
                 ("lm_head.bias", (V,), GROUP_HEAD)]
    return rows


def random_params(spec, gen, dtype=torch.float32):
    """Random weights with O(1) activations everywhere; nothing is zero (adapter up and LoRA B
    included), so every gradient is non-trivial."""
    out = {}
    for name, shape, _ in param_specs(spec):
        if name.endswith("LayerNorm.weight") or name.endswith("layer_norm.weight"):
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
        elif len(shape) == 1:
            t = 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
        elif "embeddings." in name or name == "prefix.embedding" or name.endswith("prefix_key") \
                or name.endswith("prefix_value"):
            t = 0.5 * torch.randn(shape, generator=gen, dtype=torch.float64)
        else:  # Linear (out, in)
            t = torch.randn(shape, generator=gen, dtype=torch.float64) / math.sqrt(shape[1])
        out[name] = t.to(dtype)
    return out


def positions(ids):
    """XLM-R create_position_ids_from_input_ids with padding_idx 1."""
    m = (ids != PAD_ID).long()
    return torch.cumsum(m, dim=1) * m + PAD_ID


def gelu_erf(z):
    return F.gelu(z)  # exact erf form 0.5 z (1 + erf(z / sqrt 2)); selfcheck.py checks the formula


def _act(z, kind):
    if kind == ACT["relu"]:
        return torch.relu(z)
    if kind == ACT["gelu"]:
        return gelu_erf(z)
    return z * torch.sigmoid(z)  # swish


def _ln(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)  # biased variance


def _linear(x, w, b=None):
    return F.linear(x, w, b)  # x W^T + b


# When a list: every ReLU adapter's pre-activation (B, T, R) of the forwards that follow is
# appended to it, detached (maml_ref.py counts the units that cross their kink).
RELU_PROBE = None


def _adapter(params, prefix, y, spec):
    d = _linear(y, params[prefix + "adapter_down.weight"], params[prefix + "adapter_down.bias"])
    if RELU_PROBE is not None and spec["adapter_act"] == ACT["relu"]:
        RELU_PROBE.append(d.detach())
    return _linear(_act(d, spec["adapter_act"]), params[prefix + "adapter_up.weight"], params[prefix + "adapter_up.bias"])


def prefix_kv(params, spec):
    """[(key (P, C), value (P, C))] per layer, flat or through the reparameterisation MLP."""
    L, C = spec["L"], spec["C"]
    if spec["prefix_reparam"]:
        h = torch.tanh(_linear(params["prefix.embedding"], params["prefix.mlp.0.weight"], params["prefix.mlp.0.bias"]))
        kv = _linear(h, params["prefix.mlp.2.weight"], params["prefix.mlp.2.bias"])  # (P, 2 L C)
        return [(kv[:, 2 * l * C:(2 * l + 1) * C], kv[:, (2 * l + 1) * C:(2 * l + 2) * C]) for l in range(L)]
    return [(params[f"encoder.layer.{l}.attention.self.prefix_key"],
             params[f"encoder.layer.{l}.attention.self.prefix_value"]) for l in range(L)]


def _dropout(x, seed, site, p):
    """Training-mode dropout of a (B, T, W) activation with peprime's mask (dropout_ref.py);
    identity when seed is None (evaluation) or p == 0."""
    if seed is None or p <= 0:
        return x
    B, T, W = x.shape
    keep = torch.from_numpy(dropout_ref.keep_activation(seed, site, B, T, W, p)).to(x.dtype)
    return x * keep * float(dropout_ref.scale(p))


def encode(params, ids, spec, dropout_seed=None):
    """Final hidden states (B, T, C) of the encoder; dropout on (training mode) with the masks
    of dropout_ref.py when dropout_seed is not None."""
    B, T = ids.shape
    C, NH, eps = spec["C"], spec["NH"], spec["ln_eps"]
    HS = C // NH
    pd, pa = spec["dropout"], spec["attention_dropout"]
    m = ids != PAD_ID
    pos = positions(ids)
    x = params["embeddings.word_embeddings.weight"][ids] + params["embeddings.position_embeddings.weight"][pos] \
        + params["embeddings.token_type_embeddings.weight"][0]
    x = _ln(x, params["embeddings.LayerNorm.weight"], params["embeddings.LayerNorm.bias"], eps)
    x = _dropout(x, dropout_seed, dropout_ref.SITE_EMB, pd)
    prefixes = prefix_kv(params, spec) if spec["pe"] == PE["prefix"] else None
    key_mask = m
    if prefixes is not None:  # prefix keys are never masked
        key_mask = torch.cat([torch.ones(B, spec["prefix_len"], dtype=torch.bool), m], dim=1)
    neg = torch.zeros(key_mask.shape, dtype=x.dtype).masked_fill(~key_mask, -1e9)  # (B, Tk)
    lora_scale = spec["lora_alpha"] / spec["lora_rank"]
    for l in range(spec["L"]):
        p = f"encoder.layer.{l}."
        q = _linear(x, params[p + "attention.self.query.weight"], params[p + "attention.self.query.bias"])
        k = _linear(x, params[p + "attention.self.key.weight"], params[p + "attention.self.key.bias"])
        v = _linear(x, params[p + "attention.self.value.weight"], params[p + "attention.self.value.bias"])
        if spec["pe"] == PE["lora"]:
            for name in ("query", "value"):
                A, Bm = params[p + f"attention.self.{name}.lora_A"], params[p + f"attention.self.{name}.lora_B"]
                delta = lora_scale * ((x @ A.t()) @ Bm.t())
                if name == "query":
                    q = q + delta
                else:
                    v = v + delta
        if prefixes is not None:
            pk, pv = prefixes[l]
            k = torch.cat([pk.unsqueeze(0).expand(B, -1, -1), k], dim=1)
            v = torch.cat([pv.unsqueeze(0).expand(B, -1, -1), v], dim=1)
        Tk = k.shape[1]
        qh = q.view(B, T, NH, HS).transpose(1, 2)   # (B, NH, T, HS)
        kh = k.reshape(B, Tk, NH, HS).transpose(1, 2)
        vh = v.reshape(B, Tk, NH, HS).transpose(1, 2)
        scores = (qh @ kh.transpose(-1, -2)) / math.sqrt(HS) + neg[:, None, None, :]
        att = torch.softmax(scores, dim=-1)
        if dropout_seed is not None and pa > 0:
            keep = dropout_ref.keep_attention(dropout_seed, dropout_ref.site_layer(l, 1), B, NH, T, Tk, pa)
            att = att * torch.from_numpy(keep).to(att.dtype) * float(dropout_ref.scale(pa))
        ctx = (att @ vh).transpose(1, 2).reshape(B, T, C)
        a = _linear(ctx, params[p + "attention.output.dense.weight"], params[p + "attention.output.dense.bias"])
        a = _dropout(a, dropout_seed, dropout_ref.site_layer(l, 2), pd)
        if spec["pe"] == PE["adapter"] and spec["placement"] == PLACEMENT["houlsby"]:
            a = a + _adapter(params, p + "attention.output.adapter.", a, spec)
        x1 = _ln(a + x, params[p + "attention.output.LayerNorm.weight"], params[p + "attention.output.LayerNorm.bias"], eps)
        h = gelu_erf(_linear(x1, params[p + "intermediate.dense.weight"], params[p + "intermediate.dense.bias"]))
        o = _linear(h, params[p + "output.dense.weight"], params[p + "output.dense.bias"])
        o = _dropout(o, dropout_seed, dropout_ref.site_layer(l, 3), pd)
        if spec["pe"] == PE["adapter"]:
            o = o + _adapter(params, p + "output.adapter.", o, spec)
        x = _ln(o + x1, params[p + "output.LayerNorm.weight"], params[p + "output.LayerNorm.bias"], eps)
    return x


def head_logits(params, x, spec, dropout_seed=None):
    if spec["head"] == HEAD["tagger"]:
        x = _dropout(x, dropout_seed, dropout_ref.SITE_HEAD, spec["dropout"])
        return _linear(x, params["classifier.weight"], params["classifier.bias"])
    z = gelu_erf(_linear(x, params["lm_head.dense.weight"], params["lm_head.dense.bias"]))
    z = _ln(z, params["lm_head.layer_norm.weight"], params["lm_head.layer_norm.bias"], spec["ln_eps"])
    return _linear(z, params["embeddings.word_embeddings.weight"], params["lm_head.bias"])  # tied decoder


def loss_fn(logits, labels):
    """Mean cross-entropy over labels != -100 (0 when there are none)."""
    flat = logits.reshape(-1, logits.shape[-1])
    lab = labels.reshape(-1)
    keep = lab != IGNORE
    n = int(keep.sum())
    if n == 0:
        return flat.sum() * 0.0
    sel = flat[keep]
    return (torch.logsumexp(sel, dim=-1) - sel.gather(1, lab[keep].unsqueeze(1)).squeeze(1)).sum() / n


def forward(params, ids, labels, spec, dropout_seed=None):
    """(loss, logits) of docs/model.md: evaluation mode (dropout off) when dropout_seed is None,
    training mode with peprime's masks for that seed otherwise."""
    logits = head_logits(params, encode(params, ids, spec, dropout_seed), spec, dropout_seed)
    return loss_fn(logits, labels), logits


def random_batch(spec, gen, B=None, T=None):
    """(input_ids, labels) int64, mixed lengths padded to the longest: row 0 has T tokens,
    row 1 one token (labelled), the last row T // 3, the others random in 1..T; <s> ... </s>
    for rows of two or more. Ignored labels on specials, padding and some 'non-first
    subwords'; for the MLM head ~30% of real tokens are masked/replaced and labelled.
    peprime runs the same sentences unpadded (tests/testutil.c cuts each row at its first
    pad), so the padded oracle with its attention mask is the reference of the ragged batch."""
    B = B or spec["max_B"]
    T = T or spec["max_T"]
    V = spec["V"]
    ids = torch.full((B, T), PAD_ID, dtype=torch.long)
    labels = torch.full((B, T), IGNORE, dtype=torch.long)
    for b in range(B):
        if b == 0:
            n = T
        elif b == 1:
            n = 1
        elif b == B - 1:
            n = max(2, T // 3)
        else:
            n = int(torch.randint(1, T + 1, (1,), generator=gen))
        if n == 1:
            inner = [0]
            ids[b, 0] = int(torch.randint(4, V - 1, (1,), generator=gen))
        else:
            inner = list(range(1, n - 1))
            ids[b, 0], ids[b, n - 1] = BOS_ID, EOS_ID
            ids[b, 1:n - 1] = torch.randint(4, V - 1, (n - 2,), generator=gen)
        for t in inner:
            u = float(torch.rand((), generator=gen))
            if spec["head"] == HEAD["tagger"]:
                if u > 0.2 or n == 1:  # else: a non-first subword, no loss
                    labels[b, t] = int(torch.randint(0, spec["ntags"], (1,), generator=gen))
            elif u < 0.3 or t == inner[0]:
                labels[b, t] = ids[b, t]
                ids[b, t] = V - 1 if u < 0.24 or t == inner[0] else int(torch.randint(4, V - 1, (1,), generator=gen))
    return ids, labels


# The parity set: every PE method and activation with the tagger, and the MLM head; the third
# field turns training mode on (model.dropout and attention_dropout TRAIN_DROPOUT, masks from
# dropout_ref.py for the fixture's dropout_seed).
FIXTURE_SET = [("none", "tagger", False), ("none", "tagger", True), ("adapter-pfeiffer", "tagger", True),
               ("adapter-pfeiffer:swish", "tagger", True), ("adapter-houlsby:gelu", "tagger", True),
               ("prefix", "tagger", True), ("prefix-reparam", "tagger", True), ("lora", "tagger", True),
               ("none", "mlm", False), ("lora", "mlm", True), ("adapter-houlsby", "mlm", True)]
TRAIN_DROPOUT = 0.1


def spec_tensors(spec):
    out = {}
    for k in SPEC_INT_KEYS:
        out["spec/" + k] = np.array(int(spec[k]), dtype=np.int32)
    for k in SPEC_FLOAT_KEYS:
        out["spec/" + k] = np.array(float(spec[k]), dtype=np.float32)
    return out


def spec_from_tensors(t):
    s = {k: int(t["spec/" + k]) for k in SPEC_INT_KEYS}
    s.update({k: float(t["spec/" + k]) for k in SPEC_FLOAT_KEYS})
    return s


def make_fixture(spec, seed, dtype=torch.float32, dropout_seed=None):
    """Ordered dict of everything the C parity test needs; training mode (dropout with the
    spec's rates and the masks of dropout_seed, stored as `dropout_seed`) when dropout_seed is
    not None."""
    gen = torch.Generator().manual_seed(seed)
    params = {k: v.to(dtype).requires_grad_(True) for k, v in random_params(spec, gen).items()}
    ids, labels = random_batch(spec, gen)
    loss, logits = forward(params, ids, labels, spec, dropout_seed)
    names = list(params)
    grads = torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)
    out = spec_tensors(spec)
    out["input_ids"] = ids.int()
    out["labels"] = labels.int()
    if dropout_seed is not None:
        out["dropout_seed"] = np.array(dropout_seed, dtype=np.int32)
    for n in names:
        out[n] = params[n].detach().float()
    out["loss"] = loss.detach().float().reshape(())
    out["logits"] = logits.detach().float()
    for n, g in zip(names, grads):
        out["grad/" + n] = (torch.zeros_like(params[n]) if g is None else g).float()
    return out


def load_params(t, spec, dtype=torch.float32):
    missing = [n for n, _, _ in param_specs(spec) if n not in t]
    if missing:
        raise KeyError(f"weights file lacks {len(missing)} parameters, first: {missing[0]}")
    return {n: torch.from_numpy(np.array(t[n])).to(dtype) for n, _, _ in param_specs(spec)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-fixture")
    mk.add_argument("--spec", default="tiny", choices=sorted(SPECS))
    mk.add_argument("--pe", default="none")
    mk.add_argument("--head", default="tagger", choices=sorted(HEAD))
    mk.add_argument("--seed", type=int, default=1)
    mk.add_argument("--float64", action="store_true", help="compute the reference in float64 (stored as float32)")
    mk.add_argument("--dropout", type=float, default=0.0,
                    help="training mode: model.dropout = attention_dropout = this, masks of --dropout-seed")
    mk.add_argument("--dropout-seed", type=int, default=1234)
    mk.add_argument("--out", required=True)
    fs = sub.add_parser("make-fixture-set", help="the standard parity set + fixtures.txt listing it")
    fs.add_argument("--spec", default="tiny", choices=sorted(SPECS))
    fs.add_argument("--out-dir", required=True)
    fo = sub.add_parser("forward-only")
    fo.add_argument("--in", dest="inp", required=True)
    fo.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    if a.cmd == "make-fixture-set":
        os.makedirs(a.out_dir, exist_ok=True)
        names = []
        for seed, (pe, head, train) in enumerate(FIXTURE_SET, start=1):
            name = f"enc_{pe.replace(':', '-')}_{head}{'_dropout' if train else ''}.safetensors"
            p = TRAIN_DROPOUT if train else 0.0
            fx = make_fixture(make_spec(a.spec, pe, head, dropout=p, attention_dropout=p), seed,
                              dropout_seed=1000 + seed if train else None)
            safetensors_io.write_fixture(os.path.join(a.out_dir, name), fx)
            names.append(name)
            print(f"{name}: loss={float(fx['loss']):.6f}")
        with open(os.path.join(a.out_dir, "fixtures.txt"), "w") as f:
            f.write("\n".join(names) + "\n")
    elif a.cmd == "make-fixture":
        spec = make_spec(a.spec, a.pe, a.head, dropout=a.dropout, attention_dropout=a.dropout)
        fx = make_fixture(spec, a.seed, torch.float64 if a.float64 else torch.float32,
                          a.dropout_seed if a.dropout > 0 else None)
        safetensors_io.write_fixture(a.out, fx)
        print(f"{a.out}: spec={a.spec} pe={a.pe} head={a.head} loss={float(fx['loss']):.6f} "
              f"params={len([k for k in fx if k.startswith('grad/')])}")
    else:
        t = safetensors_io.read(a.inp)
        spec = spec_from_tensors(t)
        params = load_params(t, spec)
        ids = torch.from_numpy(t["input_ids"].astype(np.int64))
        labels = torch.from_numpy(t["labels"].astype(np.int64)) if "labels" in t else torch.full_like(ids, IGNORE)
        with torch.no_grad():
            loss, logits = forward(params, ids, labels, spec)
        safetensors_io.write_fixture(a.out, {"logits": logits.float(), "loss": loss.float().reshape(())})
        print(f"{a.out}: logits {tuple(logits.shape)} loss={float(loss):.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
