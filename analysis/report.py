#!/usr/bin/env python3
"""Tables and plots of a priming experiment (scripts/experiment.sh or slurm/pipeline.sh
--pe-methods), read from its results directory with h5py, numpy and matplotlib only — no
peprime code.

  analysis/report.py RUN [--out DIR] [--pe adapter,prefix] [--arms none,maml,...]
                         [--seeds 1,2,3] [--exp JOBDIR]

RUN is laid out as pretrain/base.h5, prime/<cell>/primed.h5, finetune/<cell>/adapted.h5,
evaluate/<cell>/results.json, failed/<cell>, with <cell> = <pe>-<arm>-s<seed>. Without
--pe/--arms/--seeds the cells are the ones found there. Writes into DIR (default RUN/report):

  results.md          the F1 table (targets + average; columns arm x PE method; mean ± std
                      over seeds, best per row and PE method in bold), the gains of every
                      arm over no priming paired by seed, the per-run status
  results_long.csv    one row per (pe, arm, seed, language): f1 precision recall
  gains.csv           paired gains over 'none' per (pe, arm, language)
  meta_loss.png       priming meta-loss (query loss after adaptation) per arm and PE method
  finetune_loss.png   English fine-tuning loss and dev F1 per arm and PE method
  f1_per_language.png zero-shot F1 per target language per arm, error bars = std over seeds
  task_cosine.png     cosine similarity of the languages' per-task adapter states (/tasks)

Experiment v2 (scripts/experiment.sh with a grid.conf: RUN/results_long.csv with columns
base,pe,arm,seed,language,f1 and RUN/b<step>/{prime,finetune,evaluate}/<pe>-<arm>-s<seed>) is
detected by RUN/results_long.csv, or given as --long CSV (then RUN may hold nothing else).
It writes results_v2.md (per base: F1 mean ± std; paired gains over no priming with 95% CIs;
the arm contrasts; English dev F1; wall time and priming compute per arm), gains_v2.csv,
gain_vs_base.png (each arm's average priming gain against base strength) and
task_cosine.png from the strongest base's maml cells, with their data in cells_v2.csv (per
cell: English dev F1, seconds per stage, priming budget) and task_cosine.csv. Rows of those two
files already in DIR stay for the cells RUN does not hold (a later stretch of work on a fresh
machine runs only its own cells; its report keeps the earlier ones').

task_cosine.png compares each language's inner-loop *update*: /tasks/<lang> minus the
episode's actual start /tasks/<lang>.start (written by peprime prime since experiment v2).
For files without the starts it only draws the states with their mean over languages
removed, which equals the centred updates only when every inner loop started from one point.

Missing or failed runs are listed (with the failing stage and its log) and left out; the
tables say over how many seeds each cell is averaged. Exit status 0 when every expected run
is complete, 1 when some are missing or failed (the report is still written), 2 on bad use.

This file is the command line; the work is in report_lib/ beside it: cells (names, labels),
stats, read (the run folder), tables, plots, v1 and v2 (the two reports) and v2_cells. The
names other scripts use (analysis/report_v3.py, tests/analysis/) are imported here.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_lib.cells import warn  # noqa: E402
from report_lib.read import read_log, read_long, read_task_updates  # noqa: E402
from report_lib.stats import holm, paired, t_two_sided_p  # noqa: E402
from report_lib.v1 import report_v1  # noqa: E402
from report_lib.v2 import report_v2  # noqa: E402

# what other scripts take from here: the command line, and the readers and statistics of
# analysis/report_v3.py and tests/analysis/test_report_v2.py
__all__ = ["main", "holm", "paired", "read_log", "read_long", "read_task_updates", "t_two_sided_p"]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--out")
    ap.add_argument("--pe")
    ap.add_argument("--arms")
    ap.add_argument("--seeds")
    ap.add_argument("--exp", help="the experiment's job folder (named in the report)")
    ap.add_argument("--long", help="experiment v2: a results_long.csv (default RUN/results_long.csv when present)")
    a = ap.parse_args(argv)
    run = a.run
    long_csv = a.long or (os.path.join(run, "results_long.csv") if os.path.isdir(run) else None)
    if long_csv and (a.long or os.path.exists(long_csv)):
        if a.long and not os.path.exists(a.long):
            warn("--long %s: file not found" % a.long)
            return 2
        return report_v2(run if os.path.isdir(run) else "", long_csv, a.out or os.path.join(run, "report"), a.exp)
    if not os.path.isdir(run):
        warn("results directory '%s' not found" % run)
        return 2
    return report_v1(run, a.out, a.pe, a.arms, a.seeds, a.exp)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
