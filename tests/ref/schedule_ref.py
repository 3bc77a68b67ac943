"""Learning-rate schedule oracle for src/optim (pep_optim_lr_at), from PyTorch's own schedulers.

peprime's optim.schedule after optim.warmup W steps of linear warm-up, over optim.steps S:
  warm-up   t < W:  lr * (t + 1) / W
  constant        lr
  linear          lr * (S - t) / (S - W)
  cosine          lr * (r + (1 - r) * (1 + cos(pi * (t - W) / (S - W))) / 2),  r = optim.min_lr_ratio
(S <= W: lr after the warm-up whatever the schedule). Here each is built from
torch.optim.lr_scheduler classes stepped like a training loop (the rate of step t is the
optimizer's lr when step t runs): LinearLR(1 / W, 1, W - 1) for the warm-up, then ConstantLR,
LinearLR(1, 0, S - W) or CosineAnnealingLR(S - W, eta_min = r * lr), joined by SequentialLR at
W. Every value is also checked against the formula of transformers'
get_cosine_schedule_with_warmup / get_linear_schedule_with_warmup written out (their
lr_lambda after the warm-up; min_lr_rate as in get_cosine_with_min_lr_schedule_with_warmup):
the two must agree to 1e-6 before anything is written. Hugging Face's warm-up is t / W (its step
0 runs at rate 0); peprime's is (t + 1) / W, the same as LinearLR above.

  schedule_ref.py make-fixture OUT.csv
      one row per (case, step): schedule,lr,warmup,steps,min_lr_ratio,t,expected_lr
      (read by tests/torch/test_schedule_parity.c)
"""
import argparse
import math
import os
import sys
import warnings

import torch

# SequentialLR starts each scheduler after the first with step(0), which torch 1.13 warns about
warnings.filterwarnings("ignore", message="The epoch parameter")

# (schedule, lr, warmup, steps, min_lr_ratio)
CASES = [
    ("cosine", 1e-3, 10, 100, 0.0),
    ("cosine", 3e-4, 0, 50, 0.0),
    ("cosine", 5e-4, 1, 40, 0.0),
    ("cosine", 1e-3, 10, 100, 0.1),
    ("cosine", 2e-5, 25, 300, 0.05),
    ("cosine", 1e-2, 3, 7, 0.5),
    ("cosine", 1e-3, 20, 20, 0.0),   # S == W: constant after the warm-up
    ("linear", 1e-3, 10, 100, 0.0),
    ("linear", 1e-4, 0, 30, 0.0),
    ("linear", 5e-4, 1, 40, 0.0),
    ("constant", 1e-3, 10, 60, 0.0),
    ("constant", 1e-4, 0, 20, 0.0),
]


def torch_rates(schedule, lr, warmup, steps, ratio):
    """The rate of each step t in [0, steps) from torch.optim.lr_scheduler."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    decay = steps - warmup
    parts, milestones = [], []
    if warmup > 1:
        parts.append(torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / warmup, end_factor=1.0,
                                                       total_iters=warmup - 1))
    elif warmup == 1:
        parts.append(torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0))
    if warmup > 0:
        milestones.append(warmup)
    if schedule == "constant" or decay <= 0:
        parts.append(torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0))
    elif schedule == "linear":
        parts.append(torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=decay))
    else:
        parts.append(torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=decay, eta_min=ratio * lr))
    sched = parts[0] if len(parts) == 1 else torch.optim.lr_scheduler.SequentialLR(opt, parts, milestones)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def hf_rate(schedule, lr, warmup, steps, ratio, t):
    """transformers' lr_lambda after the warm-up (peprime's warm-up before it), times lr."""
    if t < warmup:
        return lr * (t + 1) / warmup
    if schedule == "constant" or steps <= warmup:
        return lr
    if schedule == "linear":  # get_linear_schedule_with_warmup
        return lr * max(0.0, float(steps - t) / float(max(1, steps - warmup)))
    # get_cosine_schedule_with_warmup, num_cycles = 0.5; min_lr_rate of the min-lr variant
    progress = float(t - warmup) / float(max(1, steps - warmup))
    factor = 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress))
    return lr * max(0.0, factor * (1.0 - ratio) + ratio)


def make_fixture(out):
    rows = []
    for case in CASES:
        schedule, lr, warmup, steps, ratio = case
        tr = torch_rates(*case)
        for t, x in enumerate(tr):
            h = hf_rate(*case, t)
            if abs(x - h) > 1e-6 * lr:
                sys.exit("torch and the Hugging Face formula disagree for %s at step %d: %.9g vs %.9g" % (case, t, x, h))
            rows.append("%s,%.9g,%d,%d,%.9g,%d,%.17g" % (schedule, lr, warmup, steps, ratio, t, x))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write("schedule,lr,warmup,steps,min_lr_ratio,t,expected_lr\n")
        f.write("\n".join(rows) + "\n")
    print("%s: %d rates of %d schedules (torch.optim.lr_scheduler, checked against the HF formulas)"
          % (out, len(rows), len(CASES)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-fixture")
    mk.add_argument("out")
    a = ap.parse_args()
    if a.cmd == "make-fixture":
        make_fixture(a.out)


if __name__ == "__main__":
    main()
