#!/usr/bin/python3
"""Mean and spread of each epoch's training loss and top-1 across seeds, for trainlab's c2
(DIR/cpp/seed_N/c2.json) and the lab's Python script (DIR/python/seed_N.json), as a Markdown
table. Written by tools/seed_table.sh; run by hand on a folder it filled:
    /usr/bin/python3 tools/lab/seed_table.py DIR
"""
import glob
import json
import os
import statistics
import sys


def load(folder):
    runs = {}
    for path in sorted(glob.glob(os.path.join(folder, "cpp", "seed_*", "c2.json"))):
        seed = int(os.path.basename(os.path.dirname(path))[len("seed_"):])
        epochs = json.load(open(path))["configs"][0]["runs"][0]["epochs"]
        runs.setdefault("trainlab (C++)", {})[seed] = [(e["loss"], e["top1"]) for e in epochs]
    for path in sorted(glob.glob(os.path.join(folder, "python", "seed_*.json"))):
        d = json.load(open(path))
        runs.setdefault("lab's Python (torch %s)" % d["torch"], {})[d["seed"]] = [
            (e["loss"], e["top1"]) for e in d["epochs"]]
    return runs


def cell(values, digits):
    mean = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return "%.*f ± %.*f (%.*f-%.*f)" % (digits, mean, digits, sd, digits, min(values), digits, max(values))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: seed_table.py DIR")
    runs = load(sys.argv[1])
    if not runs:
        sys.exit("seed_table.py: no results under %s" % sys.argv[1])
    print("| program | seeds | epoch | loss: mean ± sd (min-max) | top-1 %: mean ± sd (min-max) |")
    print("| --- | --- | --- | --- | --- |")
    for program, by_seed in runs.items():
        n_epochs = min(len(v) for v in by_seed.values())
        seeds = ",".join(str(s) for s in sorted(by_seed))
        for e in range(n_epochs):
            losses = [v[e][0] for v in by_seed.values()]
            top1 = [v[e][1] for v in by_seed.values()]
            print("| %s | %s | %d | %s | %s |" % (program, seeds, e + 1, cell(losses, 3), cell(top1, 1)))


if __name__ == "__main__":
    main()
