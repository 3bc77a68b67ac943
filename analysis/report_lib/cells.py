"""The experiment's cells and arms for analysis/report.py: the <pe>-<arm>-s<seed> cell names, the
arms' and PE methods' order and labels (v1 and v2), v2's arm contrasts, and warn(), the
report's one way to print a problem."""
import re
import sys


CELL = re.compile(r"^(?P<pe>[a-z]+)-(?P<arm>none|maml|maml-all|multitask)-s(?P<seed>\d+)$")
V2_ARM_ORDER = ["none", "mlm", "maml", "maml-meta", "maml-sgd", "maml-so", "maml-all", "mt-matched", "mt-persistent"]
V2_ARM_LABEL = {"none": "no priming", "mlm": "continued MLM (equal compute)", "maml": "MAML (Adam inner, fresh start)",
                "maml-meta": "MAML, meta-learned start", "maml-sgd": "MAML (SGD inner)",
                "maml-so": "MAML second order (SGD inner)", "maml-all": "MAML inner = all (SGD)",
                "mt-matched": "multi-task matched", "mt-persistent": "multi-task persistent head (v1)"}
# (arm a, arm b, what the difference isolates): paired by seed within a base and PE method
V2_CONTRASTS = [("maml", "mt-matched", "the inner loop (same encoder sentences)"),
                ("maml-sgd", "maml-all", "a PE-specific inner loop vs adapting everything"),
                ("maml-so", "maml-sgd", "second order"),
                ("maml-meta", "maml", "a meta-learned start vs a fresh draw"),
                ("maml-sgd", "maml", "the inner optimiser: SGD at the calibrated rate vs Adam (see 'What the inner loop moved')"),
                ("maml", "mlm", "MAML vs equal-compute masked LM"),
                ("mt-persistent", "mt-matched", "a persistent, trained head (v1's multi-task)")]
ARM_ORDER = ["none", "maml", "maml-all", "multitask"]
ARM_LABEL = {"none": "no priming", "maml": "MAML", "maml-all": "MAML inner=all", "multitask": "multi-task"}
PE_LABEL = {"adapter": "adapter", "prefix": "prefix", "lora": "LoRA"}


def warn(msg):
    print("report: " + msg, file=sys.stderr)


def cell_name(pe, arm, seed):
    return "%s-%s-s%d" % (pe, arm, seed)


def cell_key(cell):
    m = CELL.match(cell)
    return m["pe"], m["arm"], int(m["seed"])


def v2_order(arms):
    return sorted(arms, key=lambda a: (V2_ARM_ORDER.index(a) if a in V2_ARM_ORDER else 99, a))


def v2_label(arm):
    return V2_ARM_LABEL.get(arm, arm)
