"""Reading an experiment's run folder for analysis/report.py with h5py: which cells it holds and
their status, results.json, a checkpoint's /log series, stored config and /tasks (the
languages' inner-loop updates and their summary), and v2's results_long.csv."""
import csv
import json
import os

import numpy as np

from .cells import CELL, cell_key, warn


def cells_in(run):
    found = set()
    for sub in ("prime", "finetune", "evaluate", "failed"):
        d = os.path.join(run, sub)
        if os.path.isdir(d):
            for name in os.listdir(d):
                m = CELL.match(name)
                if m:
                    found.add((m["pe"], m["arm"], int(m["seed"])))
    return found


def read_results(path):
    with open(path) as f:
        r = json.load(f)
    if r.get("format") != "peprime-results-1":
        raise ValueError("format %r, expected peprime-results-1" % r.get("format"))
    return {lang: v for lang, v in r["languages"].items()}


def read_log(path, names):
    """The /log series of a checkpoint as numpy arrays (missing series are left out)."""
    import h5py
    out = {}
    with h5py.File(path, "r") as f:
        if "log" not in f:
            return out
        for n in names:
            if n in f["log"]:
                out[n] = np.asarray(f["log"][n][...], dtype=float)
    return out


def read_task_parts(path):
    """{lang: {dataset name: float64 array}} of /tasks/<lang> and of /tasks/<lang>.start (the
    state that language's last episode started its inner loop from), as two dicts."""
    import h5py
    states, starts = {}, {}
    with h5py.File(path, "r") as f:
        if "tasks" not in f:
            return states, starts
        for key in sorted(f["tasks"].keys()):
            g = f["tasks"][key]
            arrs = {n: np.asarray(g[n][...], dtype=np.float64).ravel() for n in sorted(g.keys())}
            if key.endswith(".start"):
                starts[key[:-len(".start")]] = arrs
            else:
                states[key] = arrs
    return states, starts


def read_task_updates(path, part=None):
    """{lang: flat float64 vector} and whether they are updates. Each language's update is
    /tasks/<lang> minus /tasks/<lang>.start, the state that episode's inner loop actually
    started from (not /pe: v1 subtracted /pe, which is the run.seed initialisation and not the
    inner loop's start, so every "update" carried the same offset). When any language lacks
    its start (files written before the starts were kept) the raw states are returned and the
    second value is False. part: None for every tensor, "head" for the tagging head
    (classifier.*) only, "pe" for the PE modules only."""
    return task_updates(*read_task_parts(path), part)


def task_updates(states, starts, part=None):
    """read_task_updates on read_task_parts' two dicts."""
    keep = lambda n: part is None or (n.startswith("classifier") == (part == "head"))
    flat = lambda arrs: np.concatenate([a for n, a in arrs.items() if keep(n)] or [np.zeros(0)])
    if states and all(l in starts and starts[l].keys() == v.keys() and
                      all(starts[l][n].shape == v[n].shape for n in v) for l, v in states.items()):
        return {l: flat(v) - flat(starts[l]) for l, v in states.items()}, True
    return {l: flat(v) for l, v in states.items()}, False


def update_summary(path):
    """Per part of the task states ("head", "pe"): the mean norm of the languages' inner-loop
    updates and the mean cosine between the updates of two languages. {} when the file has no
    per-task starts."""
    out, parts = {}, read_task_parts(path)
    for part in ("head", "pe"):
        ups, deltas = task_updates(*parts, part)
        if not deltas or len(ups) < 2:
            return {}
        X = np.stack([ups[l] for l in sorted(ups)])
        n = np.linalg.norm(X, axis=1)
        cos = [X[i] @ X[j] / (n[i] * n[j]) for i in range(len(X)) for j in range(i + 1, len(X)) if n[i] * n[j] > 0]
        out[part + "_update"] = float(n.mean())
        if cos:
            out[part + "_cosine"] = float(np.mean(cos))
    return out


def status_of(run, cell):
    """('ok', None) or (problem, detail)."""
    failed = os.path.join(run, "failed", cell)
    if os.path.exists(failed):
        with open(failed) as f:
            return "failed", f.read().strip()
    res = os.path.join(run, "evaluate", cell, "results.json")
    if os.path.exists(res):
        return "ok", None
    pe, arm, _ = cell_key(cell)
    for stage, fname in (("prime", "primed.h5"), ("finetune", "adapted.h5"), ("evaluate", "results.json")):
        if stage == "prime" and arm == "none":
            continue
        if not os.path.exists(os.path.join(run, stage, cell, fname)):
            started = os.path.isdir(os.path.join(run, stage, cell))
            return "missing", "%s %s" % (stage, "interrupted or running" if started else "not run")
    return "missing", "?"


def read_long(path):
    """{(base, pe, arm, seed): {language: f1 in %}} from a results_long.csv."""
    need = ["base", "pe", "arm", "seed", "language", "f1"]
    out = {}
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        missing = [c for c in need if c not in (r.fieldnames or [])]
        if missing:
            raise ValueError("%s: columns %s missing (expected %s)" % (path, ", ".join(missing), ",".join(need)))
        for i, row in enumerate(r, start=2):
            try:
                key = (int(row["base"]), row["pe"], row["arm"], int(row["seed"]))
                out.setdefault(key, {})[row["language"]] = float(row["f1"])
            except (TypeError, ValueError) as e:
                raise ValueError("%s line %d: %s" % (path, i, e))
    return out


def read_config_attr(path):
    """The resolved INI a checkpoint stores in its root attribute 'config', as {section.key: value}."""
    import h5py
    with h5py.File(path, "r") as f:
        text = f.attrs.get("config", b"")
    text = text.decode() if isinstance(text, bytes) else str(text)
    cfg, sec = {}, ""
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            sec = line[1:-1].strip()
        elif "=" in line:
            k, v = line.split("=", 1)
            cfg["%s.%s" % (sec, k.strip())] = v.strip()
    return cfg


def mlm_loss_at(run, step, window=100):
    """Mean masked-LM training loss over the `window` steps up to `step`, from the log of
    RUN/pretrain/base.h5 or, for bases taken with --bases-from (no pretraining in this run),
    of the stripped base RUN/bases/base-step<step>.h5, which keeps the log up to its step."""
    paths = [os.path.join(run, "pretrain", "base.h5"), os.path.join(run, "bases", "base-step%d.h5" % step)]
    path = next((p for p in paths if os.path.exists(p)), None)
    if path is None:
        return None
    try:
        log = read_log(path, ["step", "loss"])
    except (OSError, KeyError) as e:
        warn("cannot read /log of %s: %s" % (path, e))
        return None
    if "step" not in log or "loss" not in log:
        return None
    sel = (log["step"] <= step) & (log["step"] > step - window)
    return float(np.mean(log["loss"][sel])) if sel.any() else None


def priming_budget(cfg):
    """(passes, encoder-gradient sentences) per meta-step from a prime stage's config; a pass
    is one forward + backward of one support- or query-sized batch."""
    g = lambda k, d: cfg.get(k, d)
    method, k = g("maml.method", "maml"), int(g("maml.inner_steps", "1"))
    order, m = int(g("maml.order", "1")), int(g("maml.meta_batch", "4"))
    q, sup = int(g("maml.query_size", "8")), int(g("maml.support_size", "8"))
    if method == "multitask-matched":
        return m * 1, m * q
    if method == "multitask":
        return m * 2, m * (q + sup)
    return m * (k + 1 + (2 * k if order == 2 else 0)), m * q
