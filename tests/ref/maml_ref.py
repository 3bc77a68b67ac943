"""PyTorch 1.13 MAML oracle for peprime's priming step (docs/model.md, "MAML priming"), over
the functional encoder of encoder_ref.py.

    phi_0 = the inner-set parameters as given (fresh or meta-learned)
    phi_{j+1} = phi_j - a * grad_phi L_S(theta, phi_j)      j = 0 .. k-1
    meta-loss = L_Q(theta, phi_k)

The meta-gradient of every outer parameter is computed
  order 2: exactly, by autograd through all k inner steps (create_graph=True);
  order 1: with the inner gradients detached, i.e. grad_theta L_Q(theta, phi_k) for theta,
           and grad_phi L_Q(theta, phi_k) for a meta-learned phi_0.
`meta_grad_adjoint` is docs/model.md's adjoint recursion with exact Hessian-vector
products; selfcheck.py verifies it equals the order-2 answer (dropout off). With a task seed,
every pass runs in training mode with the masks peprime draws for it (pass_seed, then
dropout_ref.py): inner step j and its HVP passes the masks of j, the query those of k.

Command line:
  maml_ref.py make-fixture --spec tiny --pe adapter-pfeiffer --inner pe+head --outer plm \
      --lr 0.5 --k 3 --seed 1 --out M.safetensors
writes spec/<key>, every weight by name, support_ids/labels, query_ids/labels,
maml/{inner_lr,k,inner_groups,outer_groups,pe_init_meta,fresh_seed,task_seed}, meta_loss_o1,
meta_loss_o2, support_loss0, query_loss0 (the multi-task baseline's two losses at the stored
weights), fast/<inner name> (phi_k), meta_grad_o1/<outer
name>, meta_grad_o2/<outer name>, rel_diff_o1_o2 = ||o1 - o2|| / ||o2|| over all outer
parameters, kink_crossings (ReLU adapter units whose pre-activation changes sign between the
two finite-difference passes of an HVP, summed over the k HVPs; kink_crossings()), and
mt_grad/<name> for every name in O u I: the multi-task baseline's gradient
grad (L_S + L_Q) / 2 at the stored weights. With --fresh-seed S (maml.pe_init = fresh),
phi_0 of the PE + head members of I is peprime's seeded init (init_ref.py), also stored as
fresh0/<name>; the stored weights of those tensors are then not used by MAML. With
--dropout P, training mode (model.dropout = attention_dropout = P) with the masks of
--task-seed.
  maml_ref.py make-fixture-set --out-dir DIR     the standard set + DIR/maml_fixtures.txt
  maml_ref.py make-rule-fixture-set --out-dir DIR
                 the per-group inner rules (maml.inner_pe_optim / inner_head_optim, their rates,
                 and the finetune rule that replays fine-tuning's AdamW): DIR/maml_rule_fixtures.txt.
                 Each adds maml/rule/{pe,head}_{optim,lr} (optim 0 sgd, 1 adam, 2 finetune),
                 maml/replay/* (the replayed optimizer) and maml/order2 (1: the rules are SGD, so
                 meta_grad_o2 is the exact answer; 0: first order only, meta_grad_o2 absent).
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import encoder_ref as er  # noqa: E402
import init_ref as ir  # noqa: E402
import safetensors_io  # noqa: E402


def split_names(spec, inner_mask, outer_mask):
    """(inner names, outer names) from group bit masks (plm 1, pe 2, head 4)."""
    rows = er.param_specs(spec)
    inner = [n for n, _, g in rows if inner_mask & (1 << g)]
    outer = [n for n, _, g in rows if outer_mask & (1 << g)]
    return inner, outer


def pass_seed(task_seed, j):
    """Dropout seed of pass j of a task (src/maml/maml.c pass_seed): inner step j and the
    finite-difference passes of its HVP use j, the query k; the multi-task baseline 0 (support)
    and 1 (query). None (dropout off) stays None."""
    if task_seed is None:
        return None
    return ir.splitmix64(task_seed ^ ((0x51ED270B27A3C1F5 * (j + 1)) & ir.M64))


def _loss(params, batch, spec, dropout_seed=None):
    return er.forward(params, batch[0], batch[1], spec, dropout_seed)[0]


def _grads(out, inputs, **kw):
    gs = torch.autograd.grad(out, inputs, allow_unused=True, **kw)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, gs)]


def inner_loop(leaves, inner, support, spec, lr, k, order, task_seed=None, stepper=None):
    """phi_k as a dict (a function of the leaves through the graph when order == 2). With
    task_seed, step j runs in training mode with the dropout masks of pass_seed(task_seed, j).
    lr: one rate, or a dict name -> rate (per-group SGD rates). stepper(j, phi, g) -> new phi:
    another update rule (first order only: the gradients it gets are detached)."""
    phi = {n: leaves[n] for n in inner}
    for j in range(k):
        cur = dict(leaves)
        cur.update(phi)
        g = _grads(_loss(cur, support, spec, pass_seed(task_seed, j)), [phi[n] for n in inner],
                   create_graph=(order == 2))
        if order != 2:
            g = [x.detach() for x in g]
        if stepper is not None:
            assert order == 1
            phi = stepper(j, phi, dict(zip(inner, g)))
            continue
        phi = {n: phi[n] - (lr[n] if isinstance(lr, dict) else lr) * gi for n, gi in zip(inner, g)}
    return phi


def schedule_lr(rp, t):
    """The learning rate of fine-tuning's step t (0-based): linear warm-up to lr over `warmup`
    steps, then constant or a linear decay to 0 at `steps` (docs/config.md, optim.schedule)."""
    if rp["warmup"] > 0 and t < rp["warmup"]:
        return rp["lr"] * (t + 1) / rp["warmup"]
    if not rp["linear"] or rp["steps"] <= rp["warmup"]:
        return rp["lr"]
    return rp["lr"] * max(0.0, (rp["steps"] - t) / (rp["steps"] - rp["warmup"]))


class RuleStepper:
    """The inner step of per-group rules: rules = {group: (optim, lr)} with optim "sgd", "adam"
    (bias-corrected, moments from zero, betas/eps of `adam`, constant lr) or "finetune": the
    fine-tuning optimizer `replay` (AdamW: the gradient scaled by min(1, clip / (||g_pe+head|| +
    1e-6)), moments from zero, bias correction, decoupled weight decay) at the rate of
    fine-tuning's step replay["start"] + j. Written from the update rules' definitions
    (Kingma & Ba; Loshchilov & Hutter), not from peprime's code."""

    def __init__(self, group_of, rules, adam, replay):
        self.group_of, self.rules, self.adam, self.replay = group_of, rules, adam, replay
        self.m, self.v = {}, {}

    def __call__(self, j, phi, g):
        rp = self.replay
        clip = 1.0
        if any(r[0] == "finetune" for r in self.rules.values()):
            norm = sum(float((g[n].double() ** 2).sum()) for n in g if self.group_of[n] != er.GROUP_PLM) ** 0.5
            if rp["clip"] > 0 and norm > rp["clip"]:
                clip = rp["clip"] / (norm + 1e-6)
        out = {}
        for n, p in phi.items():
            optim, lr = self.rules[self.group_of[n]]
            if optim == "sgd":
                out[n] = p - lr * g[n]
                continue
            if optim == "adam":
                b1, b2, eps, wd, lr_t, gn = self.adam["beta1"], self.adam["beta2"], self.adam["eps"], 0.0, lr, g[n]
            else:
                b1, b2, eps, wd = rp["beta1"], rp["beta2"], rp["eps"], rp["weight_decay"]
                lr_t, gn = schedule_lr(rp, rp["start"] + j), g[n] * clip
            m = b1 * self.m.get(n, torch.zeros_like(p)) + (1 - b1) * gn
            v = b2 * self.v.get(n, torch.zeros_like(p)) + (1 - b2) * gn * gn
            self.m[n], self.v[n] = m, v
            mhat, vhat = m / (1 - b1 ** (j + 1)), v / (1 - b2 ** (j + 1))
            out[n] = p - lr_t * (mhat / (vhat.sqrt() + eps) + wd * p)
        return out


def meta_grad(params, spec, support, query, inner_mask, outer_mask, lr, k, order, task_seed=None, stepper=None):
    """(meta-loss, {outer name: meta-gradient}, phi_k) for order 1 or 2; with task_seed, every
    pass in training mode with peprime's dropout masks for that task (the masks are fixed, so
    order 2 is the exact meta-gradient of the loss with those masks). lr and stepper: as in
    inner_loop."""
    inner, outer = split_names(spec, inner_mask, outer_mask)
    leaves = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
    phi = inner_loop(leaves, inner, support, spec, lr, k, order, task_seed, stepper)
    cur = dict(leaves)
    cur.update(phi)
    lq = _loss(cur, query, spec, pass_seed(task_seed, k))
    g = _grads(lq, [leaves[n] for n in outer])
    return lq.detach(), dict(zip(outer, g)), {n: t.detach() for n, t in phi.items()}


def meta_grad_adjoint(params, spec, support, query, inner_mask, outer_mask, lr, k, task_seed=None, visit=None):
    """docs/model.md's adjoint recursion with exact Hessian-vector products (double
    backward). Must equal meta_grad(order=2). With task_seed, every pass with the dropout masks
    peprime draws for it. visit(j, phi_j, v), when given, sees each HVP's point and vector
    (dicts over the inner set, detached) before it is taken."""
    inner, outer = split_names(spec, inner_mask, outer_mask)
    names = [n for n, _, _ in er.param_specs(spec)]
    theta_names = [n for n in names if n not in inner]
    base = {n: p.detach() for n, p in params.items()}
    phis = [{n: base[n] for n in inner}]
    for j in range(k):  # forward inner loop, storing phi_j only
        cur = dict(base)
        cur.update({n: t.clone().requires_grad_(True) for n, t in phis[-1].items()})
        g = _grads(_loss(cur, support, spec, pass_seed(task_seed, j)), [cur[n] for n in inner])
        phis.append({n: phis[-1][n] - lr * gi for n, gi in zip(inner, g)})
    cur = {n: t.clone().requires_grad_(True) for n, t in base.items()}
    cur.update({n: t.clone().requires_grad_(True) for n, t in phis[k].items()})
    lq = _loss(cur, query, spec, pass_seed(task_seed, k))
    gq = _grads(lq, [cur[n] for n in names])
    gq = dict(zip(names, gq))
    v = {n: gq[n] for n in inner}
    g = {n: gq[n] for n in theta_names}
    for j in range(k - 1, -1, -1):
        if visit is not None:
            visit(j, {n: t.detach() for n, t in phis[j].items()}, {n: t.detach() for n, t in v.items()})
        cur = {n: t.clone().requires_grad_(True) for n, t in base.items()}
        cur.update({n: t.clone().requires_grad_(True) for n, t in phis[j].items()})
        gs = _grads(_loss(cur, support, spec, pass_seed(task_seed, j)), [cur[n] for n in inner], create_graph=True)
        dot = sum((gi * v[n]).sum() for gi, n in zip(gs, inner))
        hv = dict(zip(names, _grads(dot, [cur[n] for n in names])))
        for n in theta_names:
            g[n] = g[n] - lr * hv[n]
        for n in inner:
            v[n] = v[n] - lr * hv[n]
    out = {n: (v[n] if n in v else g[n]) for n in outer}
    return lq.detach(), out


def kink_crossings(params, spec, support, query, inner_mask, outer_mask, lr, k, task_seed=None, fd_eps=1e-3):
    """How many ReLU adapter units (one per unit and real token, summed over the k HVPs) have
    pre-activations of opposite sign in the two finite-difference passes peprime runs for the
    HVP at phi_j: phi_j +- e v, e = fd_eps / ||v||, v the exact adjoint, masks of pass j. Each
    of them is a kink inside the central difference: replaying phi_j's pattern is what keeps
    peprime's order-2 answer on autograd's there. 0 without ReLU adapters."""
    if spec["pe"] != er.PE["adapter"] or spec["adapter_act"] != er.ACT["relu"]:
        return 0
    real = (support[0] != er.PAD_ID).unsqueeze(-1)
    count = [0]

    def visit(j, phi, v):
        e = fd_eps / max(sum(float((t.double() ** 2).sum()) for t in v.values()) ** 0.5, 1e-30)
        signs = []
        for sgn in (1.0, -1.0):
            cur = dict(params)
            cur.update({n: phi[n] + sgn * e * v[n] for n in phi})
            er.RELU_PROBE = []
            try:
                with torch.no_grad():
                    _loss(cur, support, spec, pass_seed(task_seed, j))
                signs.append([d > 0 for d in er.RELU_PROBE])
            finally:
                er.RELU_PROBE = None
        count[0] += sum(int(((a != b) & real).sum()) for a, b in zip(*signs))

    meta_grad_adjoint(params, spec, support, query, inner_mask, outer_mask, lr, k, task_seed, visit)
    return count[0]


def rel_diff(a, b, names):
    num = sum(float(((a[n].double() - b[n].double()) ** 2).sum()) for n in names)
    den = sum(float((b[n].double() ** 2).sum()) for n in names)
    return (num ** 0.5) / max(den ** 0.5, 1e-30)


def fresh_start(params, spec, inner_mask, fresh_seed):
    """phi_0 under maml.pe_init = fresh: the non-PLM inner tensors as peprime's seeded
    initialiser writes them (init_ref.py), the PLM members of I (inner set all) as given."""
    start = dict(params)
    for n, shape, g in er.param_specs(spec):
        if g != er.GROUP_PLM and inner_mask & (1 << g):
            start[n] = torch.from_numpy(ir.init_tensor(n, shape, fresh_seed, spec["init_std"])).to(params[n].dtype)
    return start


def multitask_grad(params, spec, support, query, names, task_seed=None):
    """The multi-task baseline's (support loss, query loss, gradient) for one task: grad of
    (L_S + L_Q) / 2 over `names` at the given parameters (no inner loop)."""
    leaves = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
    ls = _loss(leaves, support, spec, pass_seed(task_seed, 0))
    lq = _loss(leaves, query, spec, pass_seed(task_seed, 1))
    return ls.detach(), lq.detach(), dict(zip(names, _grads(0.5 * (ls + lq), [leaves[n] for n in names])))


def make_fixture(spec, seed, inner_mask, outer_mask, lr, k, dtype=torch.float32, fresh_seed=None, task_seed=None):
    """The fixture dict and ||o1 - o2|| / ||o2||. fresh_seed: phi_0 of the PE + head members
    of I is peprime's fresh init with that seed (maml.pe_init = fresh), not the stored weights.
    task_seed: training mode (the spec's dropout rates) with the masks pep_maml_task draws for
    that task seed. Stores kink_crossings (kink_crossings())."""
    gen = torch.Generator().manual_seed(seed)
    params = {n: t.to(dtype) for n, t in er.random_params(spec, gen).items()}
    support = er.random_batch(spec, gen)
    query = er.random_batch(spec, gen)
    start = params if fresh_seed is None else fresh_start(params, spec, inner_mask, fresh_seed)
    l1, g1, _ = meta_grad(start, spec, support, query, inner_mask, outer_mask, lr, k, 1, task_seed)
    l2, g2, phi2 = meta_grad(start, spec, support, query, inner_mask, outer_mask, lr, k, 2, task_seed)
    inner, outer = split_names(spec, inner_mask, outer_mask)
    update = [n for n, _, _ in er.param_specs(spec) if n in inner or n in outer]
    ls0, lq0, gmt = multitask_grad(params, spec, support, query, update, task_seed)
    out = er.spec_tensors(spec)
    out["support_ids"], out["support_labels"] = support[0].int(), support[1].int()
    out["query_ids"], out["query_labels"] = query[0].int(), query[1].int()
    out["maml/inner_lr"] = np.array(lr, dtype=np.float32)
    out["maml/k"] = np.array(k, dtype=np.int32)
    out["maml/inner_groups"] = np.array(inner_mask, dtype=np.int32)
    out["maml/outer_groups"] = np.array(outer_mask, dtype=np.int32)
    out["maml/pe_init_meta"] = np.array(int(fresh_seed is None), dtype=np.int32)
    out["maml/fresh_seed"] = np.array(fresh_seed or 0, dtype=np.int32)
    out["maml/task_seed"] = np.array(task_seed or 0, dtype=np.int32)
    for n, t in params.items():
        out[n] = t.float()
    if fresh_seed is not None:
        for n in inner:
            if start[n] is not params[n]:
                out["fresh0/" + n] = start[n].float()
    out["support_loss0"] = ls0.float().reshape(())
    out["query_loss0"] = lq0.float().reshape(())
    for n in update:
        out["mt_grad/" + n] = gmt[n].float()
    out["meta_loss_o1"] = l1.float().reshape(())
    out["meta_loss_o2"] = l2.float().reshape(())
    for n, t in phi2.items():
        out["fast/" + n] = t.float()
    for n in g1:
        out["meta_grad_o1/" + n] = g1[n].float()
    for n in g2:
        out["meta_grad_o2/" + n] = g2[n].float()
    d = rel_diff(g1, g2, list(g2))
    out["rel_diff_o1_o2"] = np.array(d, dtype=np.float64)
    out["kink_crossings"] = np.array(kink_crossings(start, spec, support, query, inner_mask, outer_mask, lr, k,
                                                    task_seed), dtype=np.int32)
    return out, d


# (pe, inner set, outer set, k, phi_0, dropout[, options]) of the standard MAML fixture set
# (tiny spec, lr 0.5): phi_0 "meta" = the stored weights, "fresh" = peprime's seeded init
# (maml.pe_init = fresh, FRESH_SEED), the setting of the experiment's maml and maml-all arms;
# dropout > 0: model.dropout = attention_dropout = that, training-mode masks of TASK_SEED.
# The weights and batches come from the fixture's seed: its place in the list (from 1), or
# options["seed"] (then "_seed<N>" ends the name). options["kink"]: the case must cross a
# ReLU kink — some adapter unit's pre-activation changes sign between the two finite-
# difference passes of an HVP (kink_crossings() > 0, checked here) — so it fails unless
# peprime's passes replay the ReLU pattern of phi_j (docs/model.md, "MAML priming"). Without
# that replay the three kink cases were off autograd by 2.75e-2 (Pfeiffer k = 3, dropout 0.1;
# until then it ran with GELU adapters), 905x (Houlsby, seed 28) and 11x (Houlsby, dropout
# 0.1, seed 1) their norm, against the 1e-3 bound; with it, 2.3e-4, 3.5e-4 and 2.8e-4.
FRESH_SEED = 11
TASK_SEED = 77
FIXTURE_SET = [("adapter-pfeiffer", "pe+head", "plm", 1, "meta", 0.0),
               ("adapter-pfeiffer", "pe+head", "plm", 3, "meta", 0.0),
               ("adapter-houlsby", "pe+head", "plm+pe", 2, "meta", 0.0), ("prefix", "pe+head", "plm", 2, "meta", 0.0),
               ("lora", "pe+head", "all", 2, "meta", 0.0), ("lora", "all", "all", 1, "meta", 0.0),
               ("adapter-pfeiffer", "pe+head", "plm", 1, "fresh", 0.0),
               ("adapter-pfeiffer", "all", "plm", 1, "fresh", 0.0),
               ("prefix", "pe+head", "plm", 2, "fresh", 0.0), ("lora", "pe+head", "plm", 2, "fresh", 0.0),
               ("adapter-pfeiffer", "pe+head", "plm", 1, "fresh", 0.1),
               ("adapter-pfeiffer", "pe+head", "plm", 3, "meta", 0.1, {"kink": True}),
               ("adapter-houlsby", "pe+head", "plm+pe", 2, "meta", 0.1),
               ("prefix", "pe+head", "plm", 2, "fresh", 0.1), ("lora", "all", "all", 2, "meta", 0.1),
               ("adapter-houlsby", "pe+head", "plm+pe", 2, "meta", 0.0, {"seed": 28, "kink": True}),
               ("adapter-houlsby", "pe+head", "plm+pe", 2, "meta", 0.1, {"seed": 1, "kink": True})]


OPTIM_CODE = {"sgd": 0, "adam": 1, "finetune": 2}
ADAM = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}  # optim.beta1/beta2/eps defaults (the inner Adam's)
# The replayed fine-tuning optimizer of the finetune fixtures: clip and weight decay active, a
# window (steps 2..4 of 10) that spans the end of the warm-up and the start of the decay.
REPLAY = {"lr": 0.05, "beta1": 0.9, "beta2": 0.98, "eps": 1e-6, "weight_decay": 0.1, "clip": 0.5,
          "warmup": 3, "steps": 10, "linear": 1, "start": 2}
# (name, pe, k, phi_0, {group: (optim, lr)}) of the rule fixtures (tiny spec, inner pe+head, outer plm).
RULE_SET = [("sgd_rates", "adapter-pfeiffer", 2, "meta", {"pe": ("sgd", 2.0), "head": ("sgd", 0.1)}),
            ("sgd_head_only", "prefix", 2, "fresh", {"pe": ("sgd", 0.0), "head": ("sgd", 0.5)}),
            ("adam_pe_sgd_head", "adapter-pfeiffer", 3, "meta", {"pe": ("adam", 0.01), "head": ("sgd", 0.5)}),
            ("finetune", "adapter-pfeiffer", 3, "fresh", {"pe": ("finetune", 0.0), "head": ("finetune", 0.0)}),
            ("finetune", "prefix", 3, "fresh", {"pe": ("finetune", 0.0), "head": ("finetune", 0.0)}),
            ("finetune_head_only", "adapter-houlsby", 3, "meta", {"pe": ("sgd", 0.0), "head": ("finetune", 0.0)})]


def make_rule_fixture(spec, seed, rules, k, fresh_seed=None):
    """A fixture of one task under per-group inner rules (inner set pe+head, outer plm)."""
    inner_mask, outer_mask = er.GROUP_BITS["pe+head"], er.GROUP_BITS["plm"]
    gen = torch.Generator().manual_seed(seed)
    params = {n: t.float() for n, t in er.random_params(spec, gen).items()}
    support = er.random_batch(spec, gen)
    query = er.random_batch(spec, gen)
    start = params if fresh_seed is None else fresh_start(params, spec, inner_mask, fresh_seed)
    group_of = {n: g for n, _, g in er.param_specs(spec)}
    inner, outer = split_names(spec, inner_mask, outer_mask)
    gname = {er.GROUP_PE: "pe", er.GROUP_HEAD: "head"}
    by_group = {g: rules[gname[g]] for g in gname}
    sgd_only = all(r[0] == "sgd" for r in rules.values())
    if sgd_only:
        lr = {n: by_group[group_of[n]][1] for n in inner}
        l1, g1, phi = meta_grad(start, spec, support, query, inner_mask, outer_mask, lr, k, 1)
        l2, g2, _ = meta_grad(start, spec, support, query, inner_mask, outer_mask, lr, k, 2)
    else:
        l1, g1, phi = meta_grad(start, spec, support, query, inner_mask, outer_mask, None, k, 1,
                                stepper=RuleStepper(group_of, by_group, ADAM, REPLAY))
    out = er.spec_tensors(spec)
    out["support_ids"], out["support_labels"] = support[0].int(), support[1].int()
    out["query_ids"], out["query_labels"] = query[0].int(), query[1].int()
    out["maml/inner_lr"] = np.array(0.0, dtype=np.float32)
    out["maml/k"] = np.array(k, dtype=np.int32)
    out["maml/inner_groups"] = np.array(inner_mask, dtype=np.int32)
    out["maml/outer_groups"] = np.array(outer_mask, dtype=np.int32)
    out["maml/pe_init_meta"] = np.array(int(fresh_seed is None), dtype=np.int32)
    out["maml/fresh_seed"] = np.array(fresh_seed or 0, dtype=np.int32)
    out["maml/task_seed"] = np.array(0, dtype=np.int32)
    out["maml/order2"] = np.array(int(sgd_only), dtype=np.int32)
    for g, (optim, rate) in rules.items():
        out[f"maml/rule/{g}_optim"] = np.array(OPTIM_CODE[optim], dtype=np.int32)
        out[f"maml/rule/{g}_lr"] = np.array(rate, dtype=np.float32)
    for key, val in REPLAY.items():
        out["maml/replay/" + key] = np.array(val, dtype=np.float32)
    for n, t in params.items():
        out[n] = t
    if fresh_seed is not None:
        for n in inner:
            out["fresh0/" + n] = start[n].float()
    out["meta_loss_o1"] = l1.float().reshape(())
    out["meta_loss_o2"] = (l2 if sgd_only else l1).float().reshape(())
    for n, t in phi.items():
        out["fast/" + n] = t.float()
    for n in g1:
        out["meta_grad_o1/" + n] = g1[n].float()
    d = 0.0
    if sgd_only:
        for n in g2:
            out["meta_grad_o2/" + n] = g2[n].float()
        d = rel_diff(g1, g2, list(g2))
    out["rel_diff_o1_o2"] = np.array(d, dtype=np.float64)
    out["kink_crossings"] = np.array(0, dtype=np.int32)
    return out, d


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-fixture")
    mk.add_argument("--spec", default="tiny", choices=sorted(er.SPECS))
    mk.add_argument("--pe", default="adapter-pfeiffer")
    mk.add_argument("--head", default="tagger", choices=sorted(er.HEAD))
    mk.add_argument("--inner", default="pe+head", choices=sorted(er.GROUP_BITS))
    mk.add_argument("--outer", default="plm", choices=sorted(er.GROUP_BITS))
    mk.add_argument("--lr", type=float, default=0.5)
    mk.add_argument("--k", type=int, default=3)
    mk.add_argument("--seed", type=int, default=1)
    mk.add_argument("--float64", action="store_true", help="compute in float64 (stored as float32)")
    mk.add_argument("--fresh-seed", type=int, default=None,
                    help="phi_0 of the PE + head members of I = peprime's fresh init with this seed")
    mk.add_argument("--dropout", type=float, default=0.0,
                    help="training mode: model.dropout = attention_dropout = this, masks of --task-seed")
    mk.add_argument("--task-seed", type=int, default=TASK_SEED, help="the task seed given to pep_maml_task")
    mk.add_argument("--min-rel-diff", type=float, default=1e-2,
                    help="fail if first- and second-order differ by less than this (the C test needs a gap)")
    mk.add_argument("--out", required=True)
    fs = sub.add_parser("make-fixture-set", help="the standard MAML set + maml_fixtures.txt listing it")
    fs.add_argument("--out-dir", required=True)
    rs = sub.add_parser("make-rule-fixture-set", help="the per-group inner rules + maml_rule_fixtures.txt")
    rs.add_argument("--out-dir", required=True)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    if a.cmd == "make-rule-fixture-set":
        os.makedirs(a.out_dir, exist_ok=True)
        names, bad = [], 0
        for place, (tag, pe, k, start, rules) in enumerate(RULE_SET, start=1):
            spec = er.make_spec("tiny", pe, "tagger")
            fx, d = make_rule_fixture(spec, 100 + place, rules, k, FRESH_SEED if start == "fresh" else None)
            name = f"maml_rules_{tag}_{pe}_k{k}" + ("_fresh" if start == "fresh" else "") + ".safetensors"
            safetensors_io.write_fixture(os.path.join(a.out_dir, name), fx)
            names.append(name)
            print(f"{name}: meta_loss={float(fx['meta_loss_o1']):.5f} order 2 {'yes' if int(fx['maml/order2']) else 'no'}"
                  f" ||o1-o2||/||o2||={d:.4f}")
            bad += int(fx["maml/order2"]) and d < 1e-2
        with open(os.path.join(a.out_dir, "maml_rule_fixtures.txt"), "w") as f:
            f.write("\n".join(names) + "\n")
        return 1 if bad else 0
    if a.cmd == "make-fixture-set":
        os.makedirs(a.out_dir, exist_ok=True)
        names, bad = [], 0
        for place, (pe, inner, outer, k, start, p, *more) in enumerate(FIXTURE_SET, start=1):
            opt = more[0] if more else {}
            seed = opt.get("seed", place)
            name = f"maml_{pe.replace(':', '-')}_{inner.replace('+', '-')}_to_{outer.replace('+', '-')}_k{k}" + \
                ("_fresh" if start == "fresh" else "") + ("_dropout" if p > 0 else "") + \
                (f"_seed{seed}" if "seed" in opt else "") + ".safetensors"
            spec = er.make_spec("tiny", pe, "tagger", dropout=p, attention_dropout=p)
            fx, d = make_fixture(spec, seed, er.GROUP_BITS[inner], er.GROUP_BITS[outer], 0.5, k,
                                 fresh_seed=FRESH_SEED if start == "fresh" else None,
                                 task_seed=TASK_SEED if p > 0 else None)
            safetensors_io.write_fixture(os.path.join(a.out_dir, name), fx)
            names.append(name)
            kinks = int(fx["kink_crossings"])
            print(f"{name}: meta_loss={float(fx['meta_loss_o2']):.5f} ||o1-o2||/||o2||={d:.4f} "
                  f"kink crossings={kinks}")
            bad += d < 1e-2
            if opt.get("kink") and kinks == 0:
                print(f"error: {name} is listed as crossing a ReLU kink, but no adapter unit changes sign "
                      f"between the finite-difference passes: pick another seed", file=sys.stderr)
                bad += 1
        with open(os.path.join(a.out_dir, "maml_fixtures.txt"), "w") as f:
            f.write("\n".join(names) + "\n")
        return 1 if bad else 0
    spec = er.make_spec(a.spec, a.pe, a.head, dropout=a.dropout, attention_dropout=a.dropout)
    fx, d = make_fixture(spec, a.seed, er.GROUP_BITS[a.inner], er.GROUP_BITS[a.outer], a.lr, a.k,
                         torch.float64 if a.float64 else torch.float32, fresh_seed=a.fresh_seed,
                         task_seed=a.task_seed if a.dropout > 0 else None)
    safetensors_io.write_fixture(a.out, fx)
    print(f"{a.out}: pe={a.pe} inner={a.inner} outer={a.outer} lr={a.lr} k={a.k} "
          f"support_loss0={float(fx['support_loss0']):.5f} meta_loss={float(fx['meta_loss_o2']):.5f} "
          f"||o1-o2||/||o2||={d:.4f}")
    if a.inner == a.outer == "all" or d >= a.min_rel_diff:
        return 0
    print(f"error: first- and second-order meta-gradients differ by only {d:.2e} < {a.min_rel_diff}; "
          f"raise --lr or --k", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
