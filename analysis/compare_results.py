"""Prints zero-shot entity F1 side by side for several evaluate results files.

  compare_results.py "label=path/results.json" ...

Reads peprime's results.json (format peprime-results-1) with the standard library only.
A missing or unreadable file is reported and skipped, not fatal.
"""
import json
import sys


def main(argv):
    runs = []
    for arg in argv:
        label, _, path = arg.partition("=")
        try:
            with open(path) as f:
                runs.append((label, json.load(f)))
        except (OSError, ValueError) as e:
            print("missing or unreadable results for %s: %s (%s)" % (label, path, e))
    if not runs:
        return 1
    langs = []
    for _, r in runs:
        for lang in r.get("languages", {}):
            if lang not in langs:
                langs.append(lang)
    head = "%-10s" % "language" + "".join("%16s" % label[:15] for label, _ in runs)
    print("zero-shot entity F1 (%), conlleval rules\n" + head)
    print("-" * len(head))
    for lang in langs:
        cells = []
        for _, r in runs:
            v = r.get("languages", {}).get(lang)
            cells.append("%16s" % ("%.2f" % (100 * v["f1"]) if v else "n/a"))
        print("%-10s" % lang + "".join(cells))
    print("-" * len(head))
    print("%-10s" % "macro" + "".join("%16.2f" % (100 * r.get("macro", {}).get("f1", 0.0)) for _, r in runs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
