"""The plots of analysis/report.py (matplotlib, Agg): priming and fine-tuning curves, F1 per
target language, the cosine heatmaps of the languages' inner-loop updates (and the matrices
they show), and v2's priming gain against base strength."""
import math
import os

import numpy as np

from .cells import ARM_LABEL, PE_LABEL, cell_name, v2_label, v2_order, warn
from .read import read_log, read_task_updates


def arm_colors():
    return {"none": "#444444", "maml": "#d62728", "maml-all": "#ff7f0e", "multitask": "#1f77b4"}


def save_fig(fig, out, name):
    """Lays out, writes OUT/NAME.png and closes the figure; returns the path."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    path = os.path.join(out, name + ".png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def smooth(y, k):
    """Trailing moving average over k points (over fewer at the start)."""
    if len(y) < 2 or k <= 1:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    n = np.minimum(np.arange(1, len(y) + 1), k)
    return (c[1:] - c[np.arange(1, len(y) + 1) - n]) / n


def plot_curves(run, out, pes, arms, seeds, stage, fname, series, ylabels, title, skip_none):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    col = arm_colors()
    fig, axes = plt.subplots(len(series), len(pes), figsize=(5.5 * len(pes), 3.6 * len(series)), squeeze=False)
    drawn = 0
    for j, pe in enumerate(pes):
        for arm in arms:
            if skip_none and arm == "none":
                continue
            first = True
            for s in seeds:
                path = os.path.join(run, stage, cell_name(pe, arm, s), fname)
                if not os.path.exists(path):
                    continue
                try:
                    log = read_log(path, ["step"] + series)
                except (OSError, KeyError) as e:
                    warn("cannot read /log of %s: %s" % (path, e))
                    continue
                if "step" not in log:
                    continue
                for i, name in enumerate(series):
                    if name not in log or not len(log[name]):
                        continue
                    y = log[name]
                    ok = np.isfinite(y)
                    if name == "dev_f1":  # -1 marks steps without a dev evaluation
                        ok &= y >= 0
                    x = log["step"][:len(y)][ok]
                    y = y[ok]
                    if name == "dev_f1":
                        y = 100.0 * y
                    if name.endswith("loss"):
                        y = smooth(y, 9)
                    axes[i][j].plot(x, y, color=col[arm], alpha=0.75, lw=1.2,
                                    marker="o" if len(x) < 12 else None, ms=3,
                                    label=ARM_LABEL[arm] if first else None)
                    drawn += 1
                first = False
        for i, name in enumerate(series):
            ax = axes[i][j]
            ax.set_title("%s — %s" % (PE_LABEL.get(pe, pe), title[i]), fontsize=10)
            ax.set_xlabel("step")
            ax.set_ylabel(ylabels[i])
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    path = save_fig(fig, out, "meta_loss" if stage == "prime" else "finetune_loss")
    return path if drawn else None


def plot_f1(out, cell, pes, arms, langs):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    col = arm_colors()
    rows = langs + ["average"]
    fig, axes = plt.subplots(1, len(pes), figsize=(6.5 * len(pes), 3.8), squeeze=False)
    width = 0.8 / max(1, len(arms))
    for j, pe in enumerate(pes):
        ax = axes[0][j]
        for a_i, arm in enumerate(arms):
            m = [np.mean(cell[(r, pe, arm)]) if cell[(r, pe, arm)] else np.nan for r in rows]
            e = [np.std(cell[(r, pe, arm)], ddof=1) if len(cell[(r, pe, arm)]) > 1 else 0 for r in rows]
            x = np.arange(len(rows)) + (a_i - (len(arms) - 1) / 2) * width
            ax.bar(x, m, width, yerr=e, color=col[arm], label=ARM_LABEL[arm], capsize=2)
        ax.set_xticks(np.arange(len(rows)))
        ax.set_xticklabels(rows)
        ax.set_ylabel("entity F1 (%)")
        ax.set_title("zero-shot F1 from English — %s" % PE_LABEL.get(pe, pe), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    return save_fig(fig, out, "f1_per_language")


def task_cosines(run, pes, seeds, arm="maml"):
    """{(pe, seed): (langs, raw, centred, updates)} from RUN/prime/<pe>-<arm>-s<seed>/primed.h5
    /tasks: the cosine similarity between the languages' per-task PE modules. Every task starts
    its inner loop from its episode's start, so what is compared is the update each language
    made (state - start; `updates` False for files without the starts, which hold raw
    states). raw: the updates themselves; centred: with their mean over languages removed,
    i.e. only what is language-specific."""
    mats = {}
    for pe in pes:
        for s in seeds:
            path = os.path.join(run, "prime", cell_name(pe, arm, s), "primed.h5")
            if not os.path.exists(path):
                continue
            try:
                states, d = read_task_updates(path)
            except (OSError, KeyError) as e:
                warn("cannot read /tasks of %s: %s" % (path, e))
                continue
            if len(states) < 2:
                continue
            ls = sorted(states)
            X = np.stack([states[l] for l in ls])
            pair = []
            for centre in (False, True):
                Y = X - X.mean(axis=0, keepdims=True) if centre else X
                n = np.linalg.norm(Y, axis=1, keepdims=True)
                n[n == 0] = 1
                Y = Y / n
                pair.append(Y @ Y.T)
            mats[(pe, s)] = (ls, pair[0], pair[1], d)
    return mats


def plot_cosine(out, mats, arm="maml"):
    """Heatmaps of task_cosines' matrices averaged over seeds, one row per PE method. Left: the
    languages' inner-loop updates; right: the same with their mean over languages removed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = []
    for pe in sorted({k[0] for k in mats}, key=lambda p: list(PE_LABEL).index(p) if p in PE_LABEL else 9):
        raw, cen, langs, deltas = [], [], None, True
        for (pp, s), (ls, R, C, d) in sorted(mats.items()):
            if pp != pe:
                continue
            if langs is None:
                langs = ls
            if ls != langs:
                warn("%s seed %d has tasks %s, expected %s; skipped" % (pe, s, ls, langs))
                continue
            deltas = deltas and d
            raw.append(R)
            cen.append(C)
        if raw:
            panels.append((pe, langs, np.mean(raw, axis=0), np.mean(cen, axis=0), len(raw), deltas))
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 2, figsize=(9.6, 4.2 * len(panels)), squeeze=False)
    for i, (pe, langs, R, Cm, n, deltas) in enumerate(panels):
        what = "inner-loop updates (state - episode start)" if deltas else "inner-loop states"
        seeds_s = "mean of %d seed%s" % (n, "s" if n > 1 else "")
        chance = -1.0 / (len(langs) - 1)
        for j, (M, title) in enumerate(((R, "%s %s: %s\n(cosine, %s)" % (arm, PE_LABEL.get(pe, pe), what, seeds_s)),
                                        (Cm, "%s %s: the same minus their mean over languages\n(cosine, %s; "
                                             "unrelated vectors give %.2f)" % (arm, PE_LABEL.get(pe, pe), seeds_s,
                                                                                chance)))):
            ax = axes[i][j]
            if j == 0 and not deltas:
                # no starts in the file: raw states say nothing about the updates
                ax.axis("off")
                ax.text(0.5, 0.5, "inner-loop starts not stored:\nupdates cannot be measured", ha="center",
                        va="center", fontsize=9)
                continue
            im = ax.imshow(M, vmin=-1, vmax=1, cmap="RdBu_r")
            ax.set_xticks(range(len(langs)))
            ax.set_yticks(range(len(langs)))
            ax.set_xticklabels(langs)
            ax.set_yticklabels(langs)
            for a in range(len(langs)):
                for b in range(len(langs)):
                    ax.text(b, a, ("%.3f" if j == 0 else "%.2f") % M[a, b], ha="center", va="center", fontsize=7)
            ax.set_title(title, fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.046)
    return save_fig(fig, out, "task_cosine")


def plot_gain_vs_base(out, gains, bases, base_x, xlabel, stronger_right=False):
    """Average priming gain (mean ± 95% CI over seeds) of each arm against base strength. Arms
    are drawn side by side around each base (a small offset) so that their intervals do not hide
    each other, in one colour per arm across the panels; every panel spans all bases."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pes = sorted({pe for (pe, _, _) in gains})
    fig, axes = plt.subplots(1, len(pes), figsize=(6.0 * len(pes), 4.0), squeeze=False)
    cmap = plt.get_cmap("tab10")
    every = v2_order({a for (_, a, _) in gains})
    xs = [base_x[b] for b in bases]
    span = (max(xs) - min(xs)) or 1.0
    step = 0.015 * span
    for j, pe in enumerate(pes):
        ax = axes[0][j]
        arms = v2_order({a for (p, a, _) in gains if p == pe})
        for i, arm in enumerate(arms):
            pts = [(base_x[b], gains[(pe, arm, b)]) for b in bases if (pe, arm, b) in gains and gains[(pe, arm, b)]["n"]]
            if not pts:
                continue
            dx = (i - (len(arms) - 1) / 2.0) * step
            x = [p[0] + dx for p in pts]
            y = [p[1]["mean"] for p in pts]
            e = [p[1]["ci95"] if math.isfinite(p[1]["ci95"]) else 0.0 for p in pts]
            ax.errorbar(x, y, yerr=e, marker="o", capsize=3, color=cmap(every.index(arm) % 10), label=v2_label(arm))
        ax.axhline(0.0, color="#888888", lw=0.8)
        pad = 0.06 * span + step * len(every) / 2.0
        ax.set_xlim((max(xs) + pad, min(xs) - pad) if stronger_right else (min(xs) - pad, max(xs) + pad))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("gain over no priming, average F1 (points)")
        ax.set_title("priming gain vs base strength — %s" % PE_LABEL.get(pe, pe), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_fig(fig, out, "gain_vs_base")
