#!/usr/bin/env python3
"""Reads trainlab's TensorBoard event files back with the real TensorBoard, and checks them
against the results files of the same run (c2.json, c2_batches.csv).

    check_tensorboard.py readback --logdir TB --experiment c2 --results RES --label sgd
    check_tensorboard.py steps --logdir TB --run c2/sgd          # max batch step on disk
    check_tensorboard.py served --url http://127.0.0.1:PORT --experiment c6 --results RES \
        --labels sgd,adam

`readback` uses TensorBoard's event reader (EventAccumulator, with its purge of orphaned data,
as `tensorboard --logdir` loads runs); `served` asks a running `tensorboard` over HTTP for the
scalars and the HParams sessions, as its dashboards do. Run with PYTHONPATH at the pinned
TensorBoard wheel (@tensorboard) and Debian's /usr/bin/python3.
"""
import argparse
import csv
import json
import math
import os
import sys
import time
import urllib.parse
import urllib.request

BATCH_TAGS = ["batch/loss", "batch/top1", "batch/learning_rate", "batch/data_wait_s",
              "batch/copy_s", "batch/train_s", "batch/images_per_s"]
EPOCH_TAGS = ["epoch/loss", "epoch/top1", "epoch/data_loading_s", "epoch/training_s",
              "epoch/avg_train_per_batch_s", "epoch/epoch_s", "epoch/epoch"]
LOADER_TAGS = ["loader/read_s", "loader/crop_s", "loader/flip_s", "loader/normalize_s",
               "loader/assemble_s"]
TEST_TAGS = ["test/loss", "test/top1"]

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL: " + what)
    return ok


def close(got, want, rel=1e-5, abs_tol=2e-6):
    """A float32 simple_value against a figure printed with 6 significant digits or decimals."""
    return math.isclose(got, want, rel_tol=rel, abs_tol=abs_tol)


def accumulator(path):
    from tensorboard.backend.event_processing import event_accumulator as ea
    acc = ea.EventAccumulator(path, size_guidance={ea.SCALARS: 0, ea.TENSORS: 0},
                              purge_orphaned_data=True)
    acc.Reload()
    return acc


def results(results_dir, experiment):
    with open(os.path.join(results_dir, experiment + ".json")) as f:
        doc = json.load(f)
    with open(os.path.join(results_dir, experiment + "_batches.csv")) as f:
        rows = list(csv.DictReader(f))
    return doc, rows


def variant_run(doc, label, repeat=1):
    for v in doc["variants"]:
        if v["label"] == label:
            for r in v["runs"]:
                if r.get("repeat", 1) == repeat:
                    return r
    raise SystemExit("no run '%s' #%d in the results" % (label, repeat))


def expected_batches(rows, label):
    """(step, row) per batch of `label`, repeat 1, on the board's global batch step axis."""
    rows = [r for r in rows if r["variant"] == label and int(r["repeat"]) == 1]
    per_epoch = {}
    for r in rows:
        per_epoch.setdefault(int(r["epoch"]), []).append(r)
    bpe = len(per_epoch[min(per_epoch)])
    out = []
    for r in rows:
        out.append(((int(r["epoch"]) - 1) * bpe + int(r["batch"]) + 1, r))
    return out, bpe


def hparams_of(acc):
    from tensorboard.plugins.hparams import plugin_data_pb2
    out = {}
    for tag in ("_hparams_/session_start_info", "_hparams_/session_end_info"):
        meta = acc.SummaryMetadata(tag)
        check(meta.plugin_data.plugin_name == "hparams", tag + ": plugin hparams")
        out[tag] = plugin_data_pb2.HParamsPluginData.FromString(meta.plugin_data.content)
    return out


def text_of(acc, tag):
    """The newest text of `tag` (the event reader keeps every session's: it purges scalars only;
    TensorBoard's server purges texts too)."""
    events = acc.Tensors(tag)
    check(len(events) >= 1, "%s: no text" % tag)
    return events[-1].tensor_proto.string_val[0].decode("utf-8") if events else ""


def readback(args):
    doc, rows = results(args.results, args.experiment)
    run = variant_run(doc, args.label)
    run_dir = os.path.join(args.logdir, args.experiment, args.label)
    acc = accumulator(run_dir)
    # (A purge empties a tag's series but leaves its name: count the tags that hold values.)
    tags = set(t for t in acc.Tags()["scalars"] if acc.Scalars(t))
    epochs = run["epochs"]
    evaluated = all("test" in e for e in epochs)
    want_tags = set(BATCH_TAGS + EPOCH_TAGS + LOADER_TAGS + (TEST_TAGS if evaluated else []))
    check(tags == want_tags, "scalar tags: got %s, want %s" % (sorted(tags), sorted(want_tags)))

    # Per batch: every step once, in order, each value the CSV's.
    batches, bpe = expected_batches(rows, args.label)
    steps = [s for s, _ in batches]
    for tag in BATCH_TAGS:
        got = acc.Scalars(tag)
        check([e.step for e in got] == steps,
              "%s: steps %s, want %s" % (tag, [e.step for e in got][:50], steps[:50]))
    values = {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in BATCH_TAGS}
    for step, r in batches:
        size, wait, copy, train = int(r["size"]), float(r["wait_s"]), float(r["copy_s"]), \
            float(r["train_s"])
        want = {"batch/loss": float(r["loss"]),
                "batch/top1": 100.0 * int(r["correct"]) / size,
                "batch/learning_rate": float(r["lr"]),
                "batch/data_wait_s": wait, "batch/copy_s": copy, "batch/train_s": train}
        for tag, w in want.items():
            g = values[tag].get(step)
            check(g is not None and close(g, w), "%s at step %d: %s, CSV %s" % (tag, step, g, w))
        ips = values["batch/images_per_s"].get(step)
        check(ips is not None and close(ips, size / (wait + copy + train), rel=1e-3),
              "batch/images_per_s at step %d: %s" % (step, ips))

    # Per epoch: at the step of the epoch's last batch, each value the JSON's.
    epoch_steps = [e["epoch"] * bpe for e in epochs]
    fields = {"epoch/loss": "loss", "epoch/top1": "top1", "epoch/data_loading_s": "load_s",
              "epoch/training_s": "train_s", "epoch/epoch_s": "epoch_s",
              "epoch/avg_train_per_batch_s": "avg_train_per_batch_s", "epoch/epoch": "epoch"}
    fields.update({t: ("loader_stages", t.split("/")[1]) for t in LOADER_TAGS})
    if evaluated:
        fields.update({"test/loss": ("test", "loss"), "test/top1": ("test", "top1")})
    for tag, field in fields.items():
        got = acc.Scalars(tag)
        check([e.step for e in got] == epoch_steps, "%s: steps %s, want %s" %
              (tag, [e.step for e in got], epoch_steps))
        for e, g in zip(epochs, got):
            want = e[field[0]][field[1]] if isinstance(field, tuple) else e[field]
            check(close(g.value, want, rel=1e-6, abs_tol=1e-7),
                  "%s epoch %d: %s, JSON %s" % (tag, e["epoch"], g.value, want))

    # HParams: the run's settings, its group, its end.
    hp = hparams_of(acc)
    start = hp["_hparams_/session_start_info"].session_start_info
    check(start.group_name == "%s/%s" % (args.experiment, args.label),
          "group_name %r" % start.group_name)
    variant = next(v for v in doc["variants"] if v["label"] == args.label)
    check(start.hparams["optimizer"].string_value == variant["optimizer"],
          "hparams: optimizer %r, results %r" % (start.hparams["optimizer"].string_value,
                                                 variant["optimizer"]))
    check(start.hparams["variant"].string_value == args.label, "hparams: variant")
    check(int(start.hparams["batch_size"].number_value) == int(rows[0]["size"]),
          "hparams: batch_size %s" % start.hparams["batch_size"].number_value)
    end = hp["_hparams_/session_end_info"].session_end_info
    check(end.status == 1, "session end status %d, want STATUS_SUCCESS" % end.status)

    # The experiment's own run: the Settings paragraph and the section with its answer.
    own = accumulator(os.path.join(args.logdir, args.experiment))
    settings = text_of(own, "settings")
    check(settings.startswith("Settings:\n- "), "settings text: %r" % settings[:80])
    section = text_of(own, "section")
    check("Answer" in section and "|" in section, "section text: %r" % section[:200])
    # Its plots, as PNG images (gnuplot's, 760x440).
    images = own.Tags()["images"]
    check(len(images) >= 1 and all(t.startswith("plot/") for t in images),
          "plot images: %s" % images)
    for tag in images:
        img = own.Images(tag)[-1]
        check(img.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n" and
              (img.width, img.height) == (760, 440),
              "%s: %dx%d, %r" % (tag, img.width, img.height, img.encoded_image_string[:8]))
    print("readback: %d scalar tags, %d batch steps, %d epochs: %s" %
          (len(tags), len(steps), len(epochs), "ok" if not failures else "FAILED"))


def steps(args):
    """The largest batch step on disk in the run's event files (0 if none)."""
    acc = accumulator(os.path.join(args.logdir, args.run))
    got = [e.step for e in acc.Scalars("batch/loss")] if "batch/loss" in acc.Tags()["scalars"] \
        else []
    print(max(got) if got else 0)


def http_json(url, body=None, timeout=20):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode())


def served(args):
    doc, _ = results(args.results, args.experiment)
    labels = args.labels.split(",")
    runs = ["%s/%s" % (args.experiment, l) for l in labels]
    deadline = time.time() + args.wait_s
    have = []
    while time.time() < deadline:  # the server loads the folder in the background
        try:
            have = http_json(args.url + "/data/runs")
            if all(r in have for r in runs):
                tags = http_json(args.url + "/data/plugin/scalars/tags")
                if all("epoch/loss" in tags.get(r, {}) for r in runs):
                    break
        except OSError:
            pass
        time.sleep(0.5)
    check(all(r in have for r in runs), "runs served: %s, want %s" % (have, runs))
    for label, run_name in zip(labels, runs):
        run = variant_run(doc, label)
        q = urllib.parse.urlencode({"run": run_name, "tag": "epoch/loss"})
        series = http_json(args.url + "/data/plugin/scalars/scalars?" + q)
        check([round(v, 4) for _, _, v in series] == [round(e["loss"], 4) for e in run["epochs"]],
              "%s epoch/loss served %s, JSON %s" % (run_name, series, run["epochs"]))
        q = urllib.parse.urlencode({"run": run_name, "tag": "batch/loss"})
        series = http_json(args.url + "/data/plugin/scalars/scalars?" + q)
        n = sum(e["batches"] for e in run["epochs"])
        check(len(series) == n, "%s batch/loss: %d points, want %d" % (run_name, len(series), n))
    # The experiment's own run: its section's plots as images.
    images = http_json(args.url + "/data/plugin/images/tags").get(args.experiment, {})
    check(any(t.startswith("plot/") for t in images), "%s: plot images served: %s" %
          (args.experiment, sorted(images)))
    # HParams: the experiment (its hyperparameters and the values each run took) and one session
    # group per run, with the runs' final figures.
    experiment = http_json(args.url + "/data/plugin/hparams/experiment", {"experimentName": ""})
    infos = {h["name"]: h for h in experiment.get("hparamInfos", [])}
    check("optimizer" in infos, "hparams experiment: no 'optimizer' (%s)" % sorted(infos))
    if "optimizer" in infos:
        domain = infos["optimizer"].get("domainDiscrete", [])
        check(sorted(domain) == sorted(set(run_label.split()[0] for run_label in labels)),
              "optimizer values %s" % domain)
    metrics = [m["name"]["tag"] for m in experiment.get("metricInfos", [])]
    check("test/top1" in metrics or "epoch/loss" in metrics, "metrics: %s" % metrics)
    groups = http_json(args.url + "/data/plugin/hparams/session_groups", {
        "experimentName": "",
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                            "STATUS_RUNNING"],
        "colParams": [{"metric": {"tag": "epoch/loss"}}, {"hparam": "optimizer"}],
        "startIndex": 0, "sliceSize": 100, "aggregationType": "AGGREGATION_AVG"})
    by_name = {g["name"]: g for g in groups.get("sessionGroups", [])}
    for label, run_name in zip(labels, runs):
        g = by_name.get(run_name)
        if not check(g is not None, "no session group %s in %s" % (run_name, sorted(by_name))):
            continue
        check(g["hparams"].get("optimizer") == label.split()[0], "%s: optimizer %s" %
              (run_name, g["hparams"].get("optimizer")))
        loss = [m["value"] for m in g.get("metricValues", [])
                if m["name"]["tag"] == "epoch/loss"]
        want = variant_run(doc, label)["epochs"][-1]["loss"]
        check(len(loss) == 1 and close(loss[0], want, rel=1e-5),
              "%s: epoch/loss in the HParams table %s, JSON %s" % (run_name, loss, want))
        check(all(s.get("status") == "STATUS_SUCCESS" for s in g.get("sessions", [])),
              "%s: sessions %s" % (run_name, g.get("sessions")))
    print("served: %d runs, HParams of %d groups: %s" %
          (len(runs), len(by_name), "ok" if not failures else "FAILED"))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("readback")
    r.add_argument("--logdir", required=True)
    r.add_argument("--experiment", required=True)
    r.add_argument("--results", required=True)
    r.add_argument("--label", required=True)
    s = sub.add_parser("steps")
    s.add_argument("--logdir", required=True)
    s.add_argument("--run", required=True)
    v = sub.add_parser("served")
    v.add_argument("--url", required=True)
    v.add_argument("--experiment", required=True)
    v.add_argument("--results", required=True)
    v.add_argument("--labels", required=True)
    v.add_argument("--wait_s", type=float, default=40)
    args = p.parse_args()
    {"readback": readback, "steps": steps, "served": served}[args.cmd](args)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
