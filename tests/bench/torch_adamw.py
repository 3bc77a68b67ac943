"""PyTorch's replicated AdamW step per float on one CPU thread: the outer step a DDP rank runs on
the whole outer set every step (torch.optim.AdamW, weight decay 0.01, on the parameter tensors
of an XLM-R-base-shaped encoder scaled to --layers and --vocab; gradients preset). Prints the
median ms per step and ns per float (wall and CPU time), for analysis/exchange_model.py's
--torch-update-ns.
  /usr/bin/python3 tests/bench/torch_adamw.py [--layers 4] [--vocab 64000] [--steps 5] [--foreach]
"""
import argparse
import statistics
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=64000)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--foreach", action="store_true", help="the multi-tensor implementation")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    C, FF = 768, 3072
    shapes = [(a.vocab, C), (514, C), (1, C), (C,), (C,)]
    for _ in range(a.layers):
        shapes += [(3 * C, C), (3 * C,), (C, C), (C,), (C,), (C,), (FF, C), (FF,), (C, FF), (C,), (C,), (C,)]
    params = [torch.nn.Parameter(torch.randn(*s) * 0.02) for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01, foreach=a.foreach)
    n = sum(p.numel() for p in params)
    times, cpu = [], []
    for i in range(a.steps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        opt.step()
        if i:  # the first step allocates the moments
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    ms, cms = 1e3 * statistics.median(times), 1e3 * statistics.median(cpu)
    # CPU time as peprime's report gives it: a shared machine's scheduling does not inflate it
    print("torch %s AdamW%s, %d threads, %.1f M floats in %d tensors: %.1f ms per step (CPU %.1f ms), %.2f ns per "
          "float (CPU %.2f)" % (torch.__version__, " foreach" if a.foreach else "", a.threads, n / 1e6, len(params), ms, cms, 1e6 * ms / n, 1e6 * cms / n))


if __name__ == "__main__":
    main()
