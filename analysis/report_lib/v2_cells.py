"""Experiment v2's per-cell facts for analysis/report.py, kept across stretches of work: English
dev F1, wall time per stage, priming budget and inner-loop update summary per cell
(OUT/cells_v2.csv), and the task cosines of the strongest base's maml cells
(OUT/task_cosine.csv); rows of earlier reports stay for the cells RUN does not hold."""
import csv
import os
import re

import numpy as np

from .cells import cell_name, warn
from .plots import task_cosines
from .read import priming_budget, read_config_attr, read_log, update_summary


V2_CELL_COLS = ["base", "pe", "arm", "seed", "dev_f1", "prime_s", "finetune_s", "evaluate_s", "passes_per_step",
                "encoder_sentences_per_step", "meta_steps", "head_update", "pe_update", "head_cosine", "pe_cosine"]


def v2_cell_facts(run, keys):
    """{(base, pe, arm, seed): {column of V2_CELL_COLS: value}} of the cells in `keys` that RUN
    holds: the best English dev F1 (%) of the kept model (finetune adapted.h5 /log/dev_f1), wall
    seconds per stage (RUN/timings.csv; arm mlm primes by pretraining) and the priming budget
    per meta-step read from primed.h5's stored config, and from its /tasks the size and the
    cross-language cosine of the last inner-loop updates, head and PE modules apart
    (update_summary)."""
    facts = {}
    path = os.path.join(run, "timings.csv")
    cell = re.compile(r"^b(?P<b>\d+)/(?P<pe>[a-z]+)-(?P<arm>[a-z][a-z0-9-]*)-s(?P<s>\d+)$")
    if os.path.exists(path):
        try:
            with open(path) as f:
                for r in csv.DictReader(f):
                    m = cell.match(r.get("cell", ""))
                    if r.get("status") == "ok" and m:
                        st = "prime" if r["stage"] == "pretrain" else r["stage"]
                        key = (int(m["b"]), m["pe"], m["arm"], int(m["s"]))
                        facts.setdefault(key, {})[st + "_s"] = float(r["seconds"])
        except (OSError, KeyError, ValueError) as e:
            warn("cannot read %s: %s" % (path, e))
    facts = {k: v for k, v in facts.items() if k in keys}
    for key in keys:
        b, pe, arm, seed = key
        c = cell_name(pe, arm, seed)
        ad = os.path.join(run, "b%d" % b, "finetune", c, "adapted.h5")
        if os.path.exists(ad):
            try:
                d = read_log(ad, ["dev_f1"]).get("dev_f1")
            except (OSError, KeyError) as e:
                warn("cannot read /log of %s: %s" % (ad, e))
                d = None
            if d is not None and len(d) and np.nanmax(d) >= 0:
                facts.setdefault(key, {})["dev_f1"] = 100.0 * float(np.nanmax(d))
        pr = os.path.join(run, "b%d" % b, "prime", c, "primed.h5")
        if arm not in ("none", "mlm") and os.path.exists(pr):
            try:
                cfg = read_config_attr(pr)
                passes, sentences = priming_budget(cfg)
                facts.setdefault(key, {}).update(passes_per_step=passes, encoder_sentences_per_step=sentences,
                                                 meta_steps=float(cfg.get("optim.steps", "nan")))
            except (OSError, ValueError, KeyError) as e:
                warn("cannot read the config of %s: %s" % (pr, e))
            try:
                facts.setdefault(key, {}).update(update_summary(pr))
            except (OSError, KeyError) as e:
                warn("cannot read /tasks of %s: %s" % (pr, e))
    return facts


def v2_cells_table(out, run, keys):
    """The per-cell facts (V2_CELL_COLS) of every cell of the long CSV: what RUN holds, over what
    OUT/cells_v2.csv kept from the reports of earlier stretches of work (whose RUN may be on
    another machine); written back to OUT/cells_v2.csv. Returns {key: {column: value}}."""
    path = os.path.join(out, "cells_v2.csv")
    prev = {}
    if os.path.exists(path):
        try:
            with open(path, newline="") as f:
                for r in csv.DictReader(f):
                    k = (int(r["base"]), r["pe"], r["arm"], int(r["seed"]))
                    prev[k] = {c: float(r[c]) for c in V2_CELL_COLS[4:] if r.get(c) not in (None, "")}
        except (OSError, KeyError, ValueError) as e:
            warn("cannot read %s (%s): its cells' dev F1 and wall times are left out" % (path, e))
            prev = {}
    here = {}
    if run:
        try:
            here = v2_cell_facts(run, set(keys))
        except ImportError as e:
            warn("no English dev F1 or priming budget from %s: %s" % (run, e))
    table = {}
    for k in sorted(keys):
        table[k] = dict(prev.get(k, {}))
        table[k].update(here.get(k, {}))
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(V2_CELL_COLS)
        for k, v in table.items():
            w.writerow(list(k) + ["%.6g" % v[c] if c in v else "" for c in V2_CELL_COLS[4:]])
    return table


def v2_task_cosines(out, rd, pes, seeds):
    """task_cosines of the strongest base's maml cells in RD, over those OUT/task_cosine.csv kept
    from earlier stretches' reports (pe, seed pairs RD does not hold); written back to
    OUT/task_cosine.csv (pe, seed, updates, lang_a, lang_b, cosine, cosine_centred)."""
    path = os.path.join(out, "task_cosine.csv")
    mats = {}
    if os.path.exists(path):
        try:
            rows = {}
            with open(path, newline="") as f:
                for r in csv.DictReader(f):
                    rows.setdefault((r["pe"], int(r["seed"])), []).append(r)
            for k, rs in rows.items():
                ls = sorted({r["lang_a"] for r in rs})
                R, C = np.zeros((len(ls), len(ls))), np.zeros((len(ls), len(ls)))
                for r in rs:
                    i, j = ls.index(r["lang_a"]), ls.index(r["lang_b"])
                    R[i, j], C[i, j] = float(r["cosine"]), float(r["cosine_centred"])
                mats[k] = (ls, R, C, rs[0]["updates"] == "1")
        except (OSError, KeyError, ValueError) as e:
            warn("cannot read %s (%s): the cosines of earlier stretches are left out" % (path, e))
            mats = {}
    try:
        if rd:
            mats.update(task_cosines(rd, pes, seeds))
    except ImportError as e:
        warn("no task cosines from %s: %s" % (rd, e))
    mats = {k: v for k, v in mats.items() if k[0] in pes and k[1] in seeds}
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["pe", "seed", "updates", "lang_a", "lang_b", "cosine", "cosine_centred"])
        for (pe, seed), (ls, R, C, d) in sorted(mats.items()):
            for i, a in enumerate(ls):
                for j, b in enumerate(ls):
                    w.writerow([pe, seed, int(bool(d)), a, b, "%.6f" % R[i, j], "%.6f" % C[i, j]])
    return mats
