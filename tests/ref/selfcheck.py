"""Self-check of the PyTorch oracles (no pytest): run with /usr/bin/python3; exit status 0
means every check passed.

* torch.autograd.gradcheck in float64 of (loss, logits) w.r.t. every parameter on the
  `micro` spec for every PE method and both heads (so the gradients the C tests compare
  against are the true derivatives of the forward);
* the forward against docs/model.md written out independently: gelu_erf, LayerNorm, XLM-R
  positions, a layer against torch.nn.TransformerEncoderLayer (post-LN, erf GELU, key
  padding mask), padding invariance (also with dropout on: masks keyed by sequence and
  position, tests/ref/dropout_ref.py), zero adapter-up / LoRA-B = no PE, LoRA merge and
  prefix eject are re-parameterisations;
* MAML: the adjoint recursion with exact HVPs equals autograd through the inner loop,
  gradcheck of the meta-loss w.r.t. the outer parameters, and first-order really differs;
* safetensors_io round trip.
"""
import math
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import encoder_ref as er  # noqa: E402
import maml_ref  # noqa: E402
import safetensors_io  # noqa: E402

D = torch.float64
FAILS = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def micro(pe, head="tagger"):
    spec = er.make_spec("micro", pe, head)
    gen = torch.Generator().manual_seed(7)
    params = er.random_params(spec, gen, D)
    ids, labels = er.random_batch(spec, gen)
    return spec, params, ids, labels


def gradcheck_model(pe, head, dropout_seed=None):
    spec, params, ids, labels = micro(pe, head)
    if dropout_seed is not None:
        spec = dict(spec, dropout=0.2, attention_dropout=0.2)
    names = list(params)

    def f(*ts):
        loss, logits = er.forward(dict(zip(names, ts)), ids, labels, spec, dropout_seed)
        return loss, logits

    inputs = tuple(params[n].clone().requires_grad_(True) for n in names)
    t0 = time.time()
    ok = torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4, raise_exception=False)
    n = sum(p.numel() for p in inputs)
    check(ok, f"gradcheck float64 micro pe={pe} head={head} dropout_seed={dropout_seed} ({n} weights, "
              f"{time.time() - t0:.1f} s)")


def rel(a, b):
    return float((a - b).norm() / max(float(b.norm()), 1e-300))


def formula_checks():
    z = torch.linspace(-6, 6, 101, dtype=D)
    check(torch.allclose(er.gelu_erf(z), 0.5 * z * (1 + torch.erf(z / math.sqrt(2))), atol=1e-15),
          "gelu_erf = 0.5 z (1 + erf(z / sqrt 2))")
    x = torch.randn(3, 8, dtype=D)
    w, b = torch.randn(8, dtype=D), torch.randn(8, dtype=D)
    mu, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    check(torch.allclose(er._ln(x, w, b, 1e-5), (x - mu) / torch.sqrt(var + 1e-5) * w + b, atol=1e-12),
          "LayerNorm with biased variance and eps")
    ids = torch.tensor([[0, 5, 6, 2, 1, 1], [0, 7, 2, 1, 1, 1]])
    check(er.positions(ids).tolist() == [[2, 3, 4, 5, 1, 1], [2, 3, 4, 1, 1, 1]], "XLM-R positions (padding row 1)")


def nn_layer_check():
    """The encoder with pe=none against torch.nn.TransformerEncoderLayer (an independent
    implementation of post-LN attention + GELU FFN with key padding mask)."""
    spec, params, ids, _ = micro("none")
    C, NH = spec["C"], spec["NH"]
    m = ids != er.PAD_ID
    pos = er.positions(ids)
    x = params["embeddings.word_embeddings.weight"][ids] + params["embeddings.position_embeddings.weight"][pos] \
        + params["embeddings.token_type_embeddings.weight"][0]
    x = torch.nn.functional.layer_norm(x, (C,), params["embeddings.LayerNorm.weight"],
                                       params["embeddings.LayerNorm.bias"], spec["ln_eps"])
    for l in range(spec["L"]):
        p = f"encoder.layer.{l}."
        layer = torch.nn.TransformerEncoderLayer(C, NH, spec["FF"], dropout=0.0, activation="gelu",
                                                 layer_norm_eps=spec["ln_eps"], batch_first=True,
                                                 norm_first=False).to(D)
        with torch.no_grad():
            layer.self_attn.in_proj_weight.copy_(torch.cat([params[p + f"attention.self.{s}.weight"]
                                                            for s in ("query", "key", "value")]))
            layer.self_attn.in_proj_bias.copy_(torch.cat([params[p + f"attention.self.{s}.bias"]
                                                          for s in ("query", "key", "value")]))
            layer.self_attn.out_proj.weight.copy_(params[p + "attention.output.dense.weight"])
            layer.self_attn.out_proj.bias.copy_(params[p + "attention.output.dense.bias"])
            layer.norm1.weight.copy_(params[p + "attention.output.LayerNorm.weight"])
            layer.norm1.bias.copy_(params[p + "attention.output.LayerNorm.bias"])
            layer.linear1.weight.copy_(params[p + "intermediate.dense.weight"])
            layer.linear1.bias.copy_(params[p + "intermediate.dense.bias"])
            layer.linear2.weight.copy_(params[p + "output.dense.weight"])
            layer.linear2.bias.copy_(params[p + "output.dense.bias"])
            layer.norm2.weight.copy_(params[p + "output.LayerNorm.weight"])
            layer.norm2.bias.copy_(params[p + "output.LayerNorm.bias"])
        x = layer(x, src_key_padding_mask=~m)  # grad enabled + params requiring grad: no fast path
    ours = er.encode(params, ids, spec)
    check(rel(ours[m], x[m]) < 1e-10, f"encoder = nn.TransformerEncoderLayer stack on real tokens "
                                       f"(rel {rel(ours[m], x[m]):.1e})")


def invariance_checks():
    for pe in ("none", "adapter-houlsby:gelu", "prefix", "lora"):
        spec, params, ids, labels = micro(pe)
        B, T = ids.shape
        ids2 = torch.cat([ids, torch.full((B, 3), er.PAD_ID)], 1)
        lab2 = torch.cat([labels, torch.full((B, 3), er.IGNORE)], 1)
        l1, g1 = er.forward(params, ids, labels, spec)
        l2, g2 = er.forward(params, ids2, lab2, spec)
        m = ids != er.PAD_ID
        check(abs(float(l1 - l2)) < 1e-12 and rel(g2[:, :T][m], g1[m]) < 1e-12,
              f"extra padding changes neither loss nor real-token logits (pe={pe})")
    # Dropout masks are keyed by (sequence, position), not by the padded layout.
    for pe in ("adapter-houlsby:gelu", "prefix"):
        spec, params, ids, labels = micro(pe)
        spec = dict(spec, dropout=0.3, attention_dropout=0.2)
        B, T = ids.shape
        ids2 = torch.cat([ids, torch.full((B, 3), er.PAD_ID)], 1)
        lab2 = torch.cat([labels, torch.full((B, 3), er.IGNORE)], 1)
        l0, _ = er.forward(params, ids, labels, spec)
        l1, g1 = er.forward(params, ids, labels, spec, dropout_seed=5)
        l2, g2 = er.forward(params, ids2, lab2, spec, dropout_seed=5)
        m = ids != er.PAD_ID
        check(abs(float(l1 - l2)) < 1e-12 and rel(g2[:, :T][m], g1[m]) < 1e-12 and abs(float(l1 - l0)) > 1e-3,
              f"with dropout on, extra padding changes neither loss nor real-token logits (pe={pe})")
    spec0, p0, ids, labels = micro("none")
    base, _ = er.forward(p0, ids, labels, spec0)
    for pe, zero in (("adapter-pfeiffer", "adapter_up"), ("adapter-houlsby:swish", "adapter_up"), ("lora", "lora_B")):
        spec, params, _, _ = micro(pe)
        q = dict(params)
        q.update({n: p0[n] for n in p0})
        q.update({n: torch.zeros_like(t) for n, t in q.items() if zero in n})
        loss, _ = er.forward(q, ids, labels, spec)
        check(abs(float(loss - base)) < 1e-12, f"{pe} with zero {zero} = the model without PE")
    # LoRA merge: Wq += (alpha / r) B A.
    spec, params, ids, labels = micro("lora")
    lora_loss, lora_logits = er.forward(params, ids, labels, spec)
    merged = {n: t for n, t in params.items() if "lora_" not in n}
    s = spec["lora_alpha"] / spec["lora_rank"]
    for l in range(spec["L"]):
        for proj in ("query", "value"):
            p = f"encoder.layer.{l}.attention.self.{proj}."
            merged[p + "weight"] = merged[p + "weight"] + s * params[p + "lora_B"] @ params[p + "lora_A"]
    _, mlogits = er.forward(merged, ids, labels, er.make_spec("micro", "none"))
    check(rel(mlogits, lora_logits) < 1e-12, "LoRA merge leaves the logits unchanged")
    # Prefix eject: the MLP evaluated once gives flat per-layer prefixes.
    spec, params, ids, labels = micro("prefix-reparam")
    _, rlogits = er.forward(params, ids, labels, spec)
    flat = {n: t for n, t in params.items() if not n.startswith("prefix.")}
    for l, (k, v) in enumerate(er.prefix_kv(params, spec)):
        flat[f"encoder.layer.{l}.attention.self.prefix_key"] = k
        flat[f"encoder.layer.{l}.attention.self.prefix_value"] = v
    _, flogits = er.forward(flat, ids, labels, er.make_spec("micro", "prefix"))
    check(rel(flogits, rlogits) < 1e-12, "prefix eject leaves the logits unchanged")
    # No labels: loss 0.
    loss, _ = er.forward(params, ids, torch.full_like(labels, er.IGNORE), spec)
    check(float(loss) == 0.0, "loss is 0 when every label is -100")


def maml_checks():
    for pe, inner, outer, k in (("adapter-pfeiffer", "pe+head", "plm", 2), ("prefix", "pe+head", "plm+pe", 1),
                                ("lora", "all", "all", 2)):
        spec, params, s_ids, s_lab = micro(pe)
        gen = torch.Generator().manual_seed(11)
        query = er.random_batch(spec, gen)
        support = (s_ids, s_lab)
        im, om = er.GROUP_BITS[inner], er.GROUP_BITS[outer]
        lr = 0.3
        l2, g2, _ = maml_ref.meta_grad(params, spec, support, query, im, om, lr, k, order=2)
        l1, g1, _ = maml_ref.meta_grad(params, spec, support, query, im, om, lr, k, order=1)
        la, ga = maml_ref.meta_grad_adjoint(params, spec, support, query, im, om, lr, k)
        names = list(g2)
        check(rel(torch.cat([ga[n].flatten() for n in names]), torch.cat([g2[n].flatten() for n in names])) < 1e-10
              and abs(float(la - l2)) < 1e-12,
              f"MAML adjoint recursion = autograd through the inner loop (pe={pe} {inner}->{outer} k={k})")
        d = maml_ref.rel_diff(g1, g2, names)
        check(d > 1e-2, f"MAML first-order differs from exact ({d:.3f}) (pe={pe} k={k})")
        # gradcheck the exact meta-gradient w.r.t. a few outer tensors (finite differences of the meta-loss).
        groups = {n: g for n, _, g in er.param_specs(spec)}
        pick = [n for n in names if n.endswith("LayerNorm.bias")][:1]  # one tensor per outer group
        pick += [n for n in names if groups[n] == er.GROUP_PE][:1] + [n for n in names if groups[n] == er.GROUP_HEAD][1:2]

        def f(*ts):
            with torch.enable_grad():  # the inner loop differentiates even in gradcheck's numerical pass
                leaves = {n: t.detach().requires_grad_(True) for n, t in params.items()}
                leaves.update(dict(zip(pick, ts)))
                inner_names, _ = maml_ref.split_names(spec, im, om)
                phi = maml_ref.inner_loop(leaves, inner_names, support, spec, lr, k, order=2)
                cur = dict(leaves)
                cur.update(phi)
                return maml_ref._loss(cur, query, spec)

        ok = torch.autograd.gradcheck(f, tuple(params[n].clone().requires_grad_(True) for n in pick), eps=1e-6,
                                      atol=1e-6, rtol=1e-4, raise_exception=False)
        check(ok, f"gradcheck of the k={k} meta-loss w.r.t. {pick}")


def safetensors_check():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.safetensors")
        data = {"a/b": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.array([[1, -2]], dtype=np.int32),
                "s": np.array(3.5, dtype=np.float64), "e": np.zeros((0, 4), dtype=np.float32)}
        safetensors_io.write_fixture(path, data)
        back = safetensors_io.read(path)
        check(list(back) == list(data) and all(back[k].dtype == data[k].dtype and back[k].shape == data[k].shape
                                               and np.array_equal(back[k], data[k]) for k in data),
              "safetensors_io round trip (f32, i32, f64 scalar, empty)")


def main():
    torch.set_num_threads(1)
    t0 = time.time()
    formula_checks()
    safetensors_check()
    nn_layer_check()
    invariance_checks()
    for pe, head in (("none", "tagger"), ("adapter-pfeiffer", "tagger"), ("adapter-houlsby:gelu", "tagger"),
                     ("adapter-pfeiffer:swish", "tagger"), ("prefix", "tagger"), ("prefix-reparam", "tagger"),
                     ("lora", "tagger"), ("none", "mlm"), ("adapter-houlsby", "mlm")):
        gradcheck_model(pe, head)
    for pe in ("adapter-houlsby:gelu", "prefix", "lora"):
        gradcheck_model(pe, "tagger", dropout_seed=3)
    maml_checks()
    print(f"{len(FAILS)} failed, {time.time() - t0:.1f} s")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
