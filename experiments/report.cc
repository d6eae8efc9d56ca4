#include "experiments/report.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "experiments/experiment.h"
#include "experiments/results.h"
#include "experiments/spread.h"

namespace trainlab::experiments {
namespace {

using json = nlohmann::json;

// A number from the results (a diverged loss is the string "nan" or "inf").
double Num(const json& j) { return NumberFromJson(j); }

const json& Runs(const json& config) {
  static const json* empty = new json(json::array());
  return config.contains("runs") ? config["runs"] : *empty;
}

double RunTotal(const json& run, const char* field) {
  double sum = 0;
  for (const json& e : run["epochs"]) sum += Num(e.value(field, json(0)));
  return sum;
}

double RunMean(const json& run, const char* field) {
  const size_t n = run["epochs"].size();
  return n ? RunTotal(run, field) / static_cast<double>(n) : 0.0;
}

double RunLast(const json& run, const char* field) {
  return run["epochs"].empty() ? std::nan("") : Num(run["epochs"].back().value(field, json(0)));
}

Spread Over(const json& config, const std::function<double(const json&)>& metric) {
  std::vector<double> v;
  for (const json& r : Runs(config)) v.push_back(metric(r));
  return Spread::Of(std::move(v));
}
Spread MeanSpread(const json& c, const char* f) {
  return Over(c, [f](const json& r) { return RunMean(r, f); });
}
Spread TotalSpread(const json& c, const char* f) {
  return Over(c, [f](const json& r) { return RunTotal(r, f); });
}
Spread LastSpread(const json& c, const char* f) {
  return Over(c, [f](const json& r) { return RunLast(r, f); });
}

std::string Sec(const Spread& s) { return FormatSeconds(s); }
std::string Plain(const Spread& s, int decimals, const char* unit = "") {
  if (s.n <= 1 || s.min == s.max) return absl::StrFormat("%.*f%s", decimals, s.median, unit);
  return absl::StrFormat("%.*f%s (%.*f-%.*f)", decimals, s.median, unit, decimals, s.min, decimals,
                         s.max);
}

bool Diverged(const json& config) {
  for (const json& r : Runs(config)) {
    if (r.contains("diverged")) return true;
  }
  return false;
}

std::string Escape(std::string s) {  // for a Markdown table cell
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

// --- Plots ---------------------------------------------------------------------------------------

struct Series {
  std::string title;
  std::vector<std::pair<double, double>> points;
  bool right_axis =
      false;  // plotted against a second y axis (a figure much smaller than the others)
};

struct Plot {
  std::string file;  // "c3.svg"
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  std::string y2label;         // for series on the right axis
  bool from_zero = false;      // y axis starts at 0 (times: proportions stay honest)
  bool tics_at_points = true;  // x tics at the data's x values (epochs, worker counts)
};

std::string GnuplotQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// Returns "" when drawn, else why not.
std::string Draw(const std::string& dir, const Plot& p) {
  std::string script = absl::StrCat(
      "set terminal svg size 760,440 dynamic noenhanced font 'sans,11' background '#ffffff'\n",
      "set output ", GnuplotQuote(dir + "/" + p.file), "\n", "set title ", GnuplotQuote(p.title),
      "\n", "set xlabel ", GnuplotQuote(p.xlabel), "\n", "set ylabel ", GnuplotQuote(p.ylabel),
      "\n", "set key outside right top\nset grid\n", p.from_zero ? "set yrange [0:*]\n" : "");
  if (!p.y2label.empty()) {
    absl::StrAppend(&script, "set y2label ", GnuplotQuote(p.y2label),
                    "\nset y2tics\nset ytics nomirror\n", p.from_zero ? "set y2range [0:*]\n" : "");
  }
  if (p.tics_at_points) {
    std::vector<double> xs;
    for (const Series& s : p.series) {
      for (const auto& pt : s.points) xs.push_back(pt.first);
    }
    std::sort(xs.begin(), xs.end());
    xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
    if (!xs.empty() && xs.size() <= 20) {
      std::vector<std::string> tics;
      for (double x : xs) tics.push_back(absl::StrFormat("%g", x));
      absl::StrAppend(&script, "set xtics (", absl::StrJoin(tics, ", "), ")\n");
    }
  }
  std::vector<std::string> plots;
  for (size_t i = 0; i < p.series.size(); ++i) {
    absl::StrAppend(&script, "$d", i, " << EOD\n");
    for (const auto& [x, y] : p.series[i].points) {
      if (std::isfinite(y)) absl::StrAppendFormat(&script, "%.9g %.9g\n", x, y);
    }
    absl::StrAppend(&script, "EOD\n");
    plots.push_back(absl::StrCat("$d", i, " using 1:2", p.series[i].right_axis ? " axes x1y2" : "",
                                 " with linespoints title ", GnuplotQuote(p.series[i].title)));
  }
  absl::StrAppend(&script, "plot ", absl::StrJoin(plots, ", "), "\n");
  const std::string script_path = absl::StrCat(dir, "/.", p.file, ".gp");
  {
    std::ofstream out(script_path);
    out << script;
    if (!out) return absl::StrCat("cannot write ", script_path);
  }
  const std::string cmd = absl::StrCat("gnuplot '", script_path, "' 2>&1");
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string output;
  if (pipe != nullptr) {
    char buf[512];
    while (std::fgets(buf, sizeof buf, pipe) != nullptr) output += buf;
  }
  const int rc = pipe != nullptr ? pclose(pipe) : -1;
  std::filesystem::remove(script_path);
  if (rc != 0) return absl::StrCat("gnuplot failed on ", p.file, ": ", output);
  return "";
}

bool HaveGnuplot() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

// --- Sections ------------------------------------------------------------------------------------

class Writer {
 public:
  explicit Writer(std::string dir) : dir_(std::move(dir)) { can_plot_ = HaveGnuplot(); }

  std::string md;
  std::vector<std::string> plots;
  std::string plot_problem;

  void Line(const std::string& s = "") { absl::StrAppend(&md, s, "\n"); }
  void Row(const std::vector<std::string>& cells) {
    Line(absl::StrCat("| ", absl::StrJoin(cells, " | "), " |"));
  }
  void Header(const std::vector<std::string>& cells) {
    Row(cells);
    std::vector<std::string> dashes(cells.size(), "---");
    Row(dashes);
  }
  void AddPlot(const Plot& p) {
    if (!can_plot_) {
      if (plot_problem.empty()) {
        plot_problem =
            "gnuplot is not installed: install Debian's gnuplot-nox (./bazelw does) and re-render "
            "with "
            "`bazel run //experiments:report -- DIR`";
      }
      return;
    }
    const std::string why = Draw(dir_, p);
    if (!why.empty()) {
      if (plot_problem.empty()) plot_problem = why;
      return;
    }
    plots.push_back(dir_ + "/" + p.file);
    Line(absl::StrCat("![", p.title, "](", p.file, ")"));
    Line();
  }

 private:
  std::string dir_;
  bool can_plot_ = false;
};

void Environment(Writer& w, const std::map<std::string, json>& results) {
  const json& any = results.begin()->second;
  const json& env = any["environment"];
  w.Line("## Environment");
  w.Line();
  w.Header({"", ""});
  auto row = [&](const char* what, const json& v) {
    if (v.is_null()) return;
    w.Row({what, Escape(v.is_string() ? v.get<std::string>() : v.dump())});
  };
  row("CPU", env.value("cpu_model", json()));
  row("cores", env.value("cores", json()));
  row("intra-op threads", env.value("intra_op_threads", json()));
  row("allocator", env.value("allocator", json()));
  row("LibTorch", env.value("libtorch_version", json()));
  row("device", env.value("device", json()));
  row("GPUs", env.value("gpus", json()));
  row("CUDA / cuDNN", env.value("cuda_config", json()));
  row("dataset", env.value("dataset", json()));
  row("git commit", env.value("git_commit", json()));
  row("date", env.value("date", json()));
  const json& s = any["settings"];
  std::vector<std::string> parts;
  for (const char* k : {"batch_size", "epochs", "max_batches_per_epoch", "lr", "weight_decay",
                        "momentum", "seed", "repeats"}) {
    if (s.contains(k)) parts.push_back(absl::StrCat(k, "=", s[k].dump()));
  }
  if (!parts.empty())
    w.Row({"settings (" + any.value("experiment", "") + ")", absl::StrJoin(parts, ", ")});
  w.Line();
  w.Line(
      "Timings are wall-clock seconds on this machine; compare them only within one run of the "
      "report. "
      "On a CPU the loader and the model share the cores, and a CPU step is ~100x an L4's.");
  w.Line();
}

void Missing(Writer& w, const std::string& name) {
  w.Line(absl::StrCat("*Not run: no `", name, ".json` in this folder.*"));
  w.Line();
}

void EpochTable(Writer& w, const json& config) {
  const json& runs = Runs(config);
  if (runs.empty()) return;
  const bool many = runs.size() > 1;
  w.Header({"epoch", "loss", "top-1 %", "data loading", "training", "avg per batch", "epoch time"});
  const size_t epochs = runs[0]["epochs"].size();
  for (size_t e = 0; e < epochs; ++e) {
    auto at = [&](const char* f) {
      std::vector<double> v;
      for (const json& r : runs) {
        if (e < r["epochs"].size()) v.push_back(Num(r["epochs"][e].value(f, json(0))));
      }
      return Spread::Of(v);
    };
    w.Row({std::to_string(e + 1), Plain(at("loss"), 4), Plain(at("top1"), 2), Sec(at("load_s")),
           Sec(at("train_s")), Sec(at("avg_train_per_batch_s")), Sec(at("epoch_s"))});
  }
  w.Line();
  if (many) {
    w.Line(absl::StrCat("Medians over ", runs.size(), " runs, (min-max) beside them."));
    w.Line();
  }
}

void C2(Writer& w, const json& j, const std::string& dir) {
  const json& c = j["configs"][0];
  EpochTable(w, c);
  const Spread load = TotalSpread(c, "load_s"), epoch = TotalSpread(c, "epoch_s");
  w.Line(absl::StrFormat(
      "**Answer:** waiting for data took %.2f%% of the epoch time (%s of %s over %d epochs); the "
      "rest is training.",
      epoch.median > 0 ? 100 * load.median / epoch.median : 0.0, Sec(load), Sec(epoch),
      static_cast<int>(Runs(c)[0]["epochs"].size())));
  w.Line();
  // Per-batch training time from the CSV (first repeat).
  std::ifstream in(dir + "/c2_batches.csv");
  Series s{"training time per batch (s)", {}};
  std::string line;
  std::getline(in, line);
  int64_t i = 0;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ',');
    if (f.size() < 10 || f[1] != "1") continue;
    s.points.emplace_back(static_cast<double>(++i), std::atof(f[7].c_str()));
  }
  if (!s.points.empty()) {
    w.AddPlot({.file = "c2_batches.svg",
               .title = "C2: training time of each batch",
               .xlabel = "batch (epochs one after another)",
               .ylabel = "seconds",
               .series = {s},
               .from_zero = true,
               .tics_at_points = false});
  }
}

void C3(Writer& w, const json& j) {
  w.Header({"workers", "total runtime", "total data loading"});
  Series total{"total runtime (left axis)", {}},
      loading{"total data loading (right axis)", {}, true};
  for (const json& c : j["configs"]) {
    const int n = c.value("num_workers", 0);
    const Spread t = Over(c, [](const json& r) { return Num(r["total_s"]); });
    const Spread l = TotalSpread(c, "load_s");
    w.Row({std::to_string(n), Sec(t), Sec(l)});
    total.points.emplace_back(n, t.median);
    loading.points.emplace_back(n, l.median);
  }
  w.Line();
  const json& s = j["summary"];
  w.Line(absl::StrFormat(
      "**Answer:** the best worker count for total runtime is **%d**, for data loading **%d**.",
      s.value("best_workers_total", -1), s.value("best_workers_loading", -1)));
  w.Line();
  w.AddPlot({.file = "c3.svg",
             .title = "C3: time against loader workers",
             .xlabel = "loader workers",
             .ylabel = "total runtime, s (all epochs)",
             .series = {total, loading},
             .y2label = "data loading, s (all epochs)",
             .from_zero = true});
}

void C4(Writer& w, const json& j) {
  const json& configs = j["configs"];
  if (configs.size() < 2) return;
  const json& a = configs[0];
  const json& b = configs[1];
  w.Line(absl::StrCat("Best worker count: ", j["summary"].value("best_workers", -1), " (",
                      j["summary"].value("best_workers_source", ""), ")."));
  w.Line();
  const std::string la = a.value("label", ""), lb = b.value("label", "");
  w.Header({"epoch", la + ": loading", la + ": training", la + ": epoch", lb + ": loading",
            lb + ": training", lb + ": epoch"});
  const json& ra = Runs(a)[0];
  const json& rb = Runs(b)[0];
  if (Runs(a).size() > 1)
    w.Line("(Per epoch: the first of the runs; the totals below are medians.)\n");
  for (size_t e = 0; e < std::min(ra["epochs"].size(), rb["epochs"].size()); ++e) {
    const json& x = ra["epochs"][e];
    const json& y = rb["epochs"][e];
    w.Row({std::to_string(e + 1), FormatSeconds(Num(x["load_s"])), FormatSeconds(Num(x["train_s"])),
           FormatSeconds(Num(x["epoch_s"])), FormatSeconds(Num(y["load_s"])),
           FormatSeconds(Num(y["train_s"])), FormatSeconds(Num(y["epoch_s"]))});
  }
  w.Line();
  w.Header({"loader stages (summed over threads and epochs)", "read", "crop", "flip", "normalise",
            "assemble", "trainer waited"});
  for (const json* c : {&a, &b}) {
    double read = 0, crop = 0, flip = 0, norm = 0, assemble = 0;
    for (const json& e : Runs(*c)[0]["epochs"]) {
      if (!e.contains("loader_stages")) continue;
      read += Num(e["loader_stages"]["read_s"]);
      crop += Num(e["loader_stages"]["crop_s"]);
      flip += Num(e["loader_stages"]["flip_s"]);
      norm += Num(e["loader_stages"]["normalize_s"]);
      assemble += Num(e["loader_stages"]["assemble_s"]);
    }
    w.Row({c->value("label", ""), FormatSeconds(read), FormatSeconds(crop), FormatSeconds(flip),
           FormatSeconds(norm), FormatSeconds(assemble),
           FormatSeconds(RunTotal(Runs(*c)[0], "load_s"))});
  }
  w.Line();
  const Spread ta = Over(a, [](const json& r) { return Num(r["total_s"]); });
  const Spread tb = Over(b, [](const json& r) { return Num(r["total_s"]); });
  const Spread wa = TotalSpread(a, "load_s"), wb = TotalSpread(b, "load_s");
  w.Line(absl::StrCat("**Answer:** with ", la, " the whole run took ", FormatRatio(ta, tb),
                      " the time of ", lb, " (", Sec(ta), " against ", Sec(tb),
                      "); the trainer waited ", Sec(wa), " against ", Sec(wb), "."));
  w.Line();
}

void C5(Writer& w, const json& j) {
  w.Header({"device", "epoch time (mean)", "training (mean)", "data loading (mean)"});
  for (const json& c : j["configs"]) {
    w.Row({c.value("label", ""), Sec(MeanSpread(c, "epoch_s")), Sec(MeanSpread(c, "train_s")),
           Sec(MeanSpread(c, "load_s"))});
  }
  w.Line();
  w.Line(absl::StrCat("Loader workers: ", j["summary"].value("num_workers", -1), " (",
                      j["summary"].value("num_workers_source", ""), ")."));
  w.Line();
  const json& configs = j["configs"];
  if (configs.size() > 1) {
    w.Line(absl::StrCat(
        "**Answer:** an epoch on the CPU takes ",
        FormatRatio(MeanSpread(configs[0], "epoch_s"), MeanSpread(configs[1], "epoch_s")),
        " the time of one on the GPU."));
  } else {
    w.Line(
        "**Answer:** no GPU here: only the CPU ran, so there is no GPU/CPU ratio in this report. "
        "Run the same "
        "command on a GPU machine and compare with `report --compare`.");
  }
  w.Line();
}

// C6 and C7: the recap table, rankings, and loss / top-1 per epoch.
void Recap(Writer& w, const json& j, const std::string& name, const std::string& what) {
  w.Header({what, "train s/epoch", "loss (mean over epochs)", "top-1 % (mean)", "note"});
  struct Row {
    std::string label;
    double train, loss, top1;
  };
  std::vector<Row> ok;
  std::vector<Series> loss, top1;
  for (const json& c : j["configs"]) {
    const std::string label = c.value("label", "");
    const Spread train = MeanSpread(c, "train_s"), l = MeanSpread(c, "loss"),
                 t = MeanSpread(c, "top1");
    std::string note;
    if (Diverged(c)) {
      const json& d = Runs(c)[0].contains("diverged") ? Runs(c)[0]["diverged"] : json::object();
      note =
          absl::StrCat("diverged at epoch ", d.value("epoch", 0), ", batch ", d.value("batch", 0));
    } else {
      ok.push_back({label, train.median, l.median, t.median});
    }
    w.Row({label, Sec(train), Plain(l, 4), Plain(t, 2), note});
    Series ls{label, {}}, ts{label, {}};
    for (const json& e : Runs(c)[0]["epochs"]) {
      ls.points.emplace_back(Num(e["epoch"]), Num(e["loss"]));
      ts.points.emplace_back(Num(e["epoch"]), Num(e["top1"]));
    }
    loss.push_back(ls);
    top1.push_back(ts);
  }
  w.Line();
  auto ranking = [&](auto key, bool ascending) {
    std::vector<Row> s = ok;
    std::stable_sort(s.begin(), s.end(), [&](const Row& a, const Row& b) {
      return ascending ? key(a) < key(b) : key(a) > key(b);
    });
    std::vector<std::string> names;
    for (const Row& r : s) names.push_back(r.label);
    return names.empty() ? std::string("(no run finished)") : absl::StrJoin(names, ", ");
  };
  w.Line(absl::StrCat(
      "**Answer:** by training time, fastest first: ",
      ranking([](const Row& r) { return r.train; }, true),
      ". By loss, lowest first: ", ranking([](const Row& r) { return r.loss; }, true),
      ". By top-1, highest first: ", ranking([](const Row& r) { return r.top1; }, false), "."));
  w.Line();
  const std::string upper = name == "c6" ? "C6" : "C7";
  w.AddPlot({.file = name + "_loss.svg",
             .title = upper + ": training loss per epoch",
             .xlabel = "epoch",
             .ylabel = "loss (mean over the epoch's batches)",
             .series = loss});
  w.AddPlot({.file = name + "_top1.svg",
             .title = upper + ": training top-1 per epoch",
             .xlabel = "epoch",
             .ylabel = "top-1 %",
             .series = top1,
             .from_zero = true});
}

void C8(Writer& w, const json& j) {
  const int first_steady = j["summary"].value("first_steady_epoch", 6);
  int epochs = 0;
  const json* eager = nullptr;
  for (const json& c : j["configs"]) {
    if (c.value("label", "") == "eager" && !Runs(c).empty()) eager = &c;
    if (!Runs(c).empty()) epochs = std::max<int>(epochs, Runs(c)[0]["epochs"].size());
  }
  auto first = [](const json& r) {
    return r["epochs"].empty() ? 0.0 : Num(r["epochs"][0]["epoch_s"]);
  };
  auto steady = [first_steady](const json& r) {
    double sum = 0;
    int n = 0;
    for (const json& e : r["epochs"]) {
      if (Num(e["epoch"]) >= first_steady) {
        sum += Num(e["epoch_s"]);
        ++n;
      }
    }
    return n ? sum / n : 0.0;
  };
  w.Header({"strategy", "first epoch", absl::StrCat("mean of epochs ", first_steady, "-", epochs),
            "speed-up, first epoch", "speed-up, steady"});
  std::vector<Series> series;
  std::vector<std::string> skipped;
  std::string best;
  double best_ratio = 0;
  for (const json& c : j["configs"]) {
    const std::string label = c.value("label", "");
    if (c.contains("skipped")) {
      skipped.push_back(absl::StrCat("`", label, "`: ", c["skipped"].get<std::string>()));
      continue;
    }
    const Spread f = Over(c, first), s = Over(c, steady);
    std::string up_first = "n/a", up_steady = "n/a";
    if (eager != nullptr) {
      up_first = FormatRatio(Over(*eager, first), f);
      up_steady = FormatRatio(Over(*eager, steady), s);
      const double ratio = s.median > 0 ? Over(*eager, steady).median / s.median : 0;
      if (ratio > best_ratio) {
        best_ratio = ratio;
        best = label;
      }
    }
    w.Row({label, Sec(f), Sec(s), up_first, up_steady});
    Series ser{label, {}};
    for (const json& e : Runs(c)[0]["epochs"])
      ser.points.emplace_back(Num(e["epoch"]), Num(e["epoch_s"]));
    series.push_back(ser);
  }
  w.Line();
  if (!skipped.empty()) {
    w.Line("Skipped here: " + absl::StrJoin(skipped, "; ") + ".");
    w.Line();
  }
  if (eager != nullptr && !best.empty()) {
    w.Line(absl::StrCat(
        "**Answer:** in the steady state the fastest is `", best, "`",
        best == "eager" ? " (no strategy beat eager on this device)" : "",
        "; the first epoch carries each strategy's one-off cost (capture, autotuning)."));
    w.Line();
  }
  w.AddPlot({.file = "c8.svg",
             .title = "C8: epoch time per epoch and strategy (epoch 1 carries one-off costs)",
             .xlabel = "epoch",
             .ylabel = "seconds",
             .series = series,
             .from_zero = true});
}

void Q1Q4(Writer& w, const json& j) {
  const json& s = j["summary"];
  w.Header({"question", "answer (counted from the model)"});
  w.Row({"Q1: convolutional layers",
         absl::StrCat(s.value("conv_layers", -1), " (", s.value("conv_layers_without_1x1", -1),
                      " without the three 1x1 shortcuts)")});
  w.Row({"Q2: input features of the last linear layer",
         std::to_string(s.value("last_linear_in_features", -1))});
  w.Row({"Q3: SGD: trainable parameters / gradients",
         absl::StrCat(s["sgd"].value("parameters", -1), " / ", s["sgd"].value("gradients", -1))});
  w.Row({"Q4: Adam: trainable parameters / gradients (state elements)",
         absl::StrCat(s["adam"].value("parameters", -1), " / ", s["adam"].value("gradients", -1),
                      " (", s["adam"].value("state", -1), ")")});
  w.Line();
  const std::string model =
      s.value("model", s.value("batch_norm", true) ? "resnet18" : "resnet18_no_bn");
  if (model == "resnet18_no_bn") {
    w.Line("(Counted on ResNet-18 without batch norm.)\n");
  } else if (model != "resnet18") {
    w.Line(absl::StrCat("(Counted on --model=", model, ".)\n"));
  }
}

absl::StatusOr<std::map<std::string, json>> ReadAll(const std::string& dir) {
  if (!std::filesystem::is_directory(dir))
    return absl::NotFoundError(absl::StrCat(dir, ": no such directory"));
  std::map<std::string, json> out;
  for (const std::string& name : LabOrder()) {
    TRAINLAB_ASSIGN_OR_RETURN(std::optional<json> j, ReadResults(dir, name));
    if (j) out[name] = std::move(*j);
  }
  if (out.empty()) {
    return absl::NotFoundError(
        absl::StrCat(dir,
                     ": no results file (c2.json ... q1_q4.json); run an experiment with "
                     "--results_dir=",
                     dir, " or `bazel run //experiments:all`"));
  }
  return out;
}

}  // namespace

absl::StatusOr<ReportFiles> RenderReport(const std::string& dir) {
  TRAINLAB_ASSIGN_OR_RETURN(auto results, ReadAll(dir));
  Writer w(dir);
  w.Line("# trainlab: ResNet-18 on CIFAR-10, where the time goes");
  w.Line();
  w.Line(absl::StrCat("Rendered by `bazel run //experiments:report -- ", dir,
                      "` from the results files in this "
                      "folder (one JSON per experiment, per-batch CSVs beside them)."));
  w.Line();
  Environment(w, results);
  struct Section {
    const char* name;
    const char* title;
    const char* question;
  };
  const Section sections[] = {
      {"c2", "C2: time per epoch", "Where does an epoch's time go: waiting for data, or training?"},
      {"c3", "C3: loader workers",
       "How many loader workers give the best data-loading time and total runtime?"},
      {"c4", "C4: one worker against the best count", "What does a single worker cost, and where?"},
      {"c5", "C5: GPU against CPU", "How much faster is an epoch on the GPU?"},
      {"c6", "C6: optimizers",
       "SGD, SGD with Nesterov, Adagrad, Adadelta and Adam: time, loss and accuracy."},
      {"c7", "C7: without batch norm",
       "What does batch norm do to training time, loss and accuracy?"},
      {"c8", "C8: compile strategies",
       "First-epoch time and steady-state time of each strategy against eager."},
      {"q1_q4", "Q1-Q4: the model, counted",
       "Layers, widths, parameters and gradients of ResNet-18."},
  };
  for (const Section& s : sections) {
    w.Line(absl::StrCat("## ", s.title));
    w.Line();
    w.Line(absl::StrCat("*", s.question, "*"));
    w.Line();
    auto it = results.find(s.name);
    if (it == results.end()) {
      Missing(w, s.name);
      continue;
    }
    const json& j = it->second;
    const std::string name = s.name;
    if (name == "c2") C2(w, j, dir);
    if (name == "c3") C3(w, j);
    if (name == "c4") C4(w, j);
    if (name == "c5") C5(w, j);
    if (name == "c6") Recap(w, j, "c6", "optimizer");
    if (name == "c7") Recap(w, j, "c7", "run");
    if (name == "c8") C8(w, j);
    if (name == "q1_q4") Q1Q4(w, j);
  }
  w.Line("## Q5: compile strategies in C++");
  w.Line();
  w.Line(
      "What each strategy does, why torch.compile's modes map to these levers in C++, and what "
      "they give on a "
      "GPU: see `docs/compile_strategies.md` in the repository.");
  w.Line();
  if (!w.plot_problem.empty()) {
    w.Line(absl::StrCat("*Plots: ", w.plot_problem, "*"));
    w.Line();
  }
  ReportFiles files;
  files.report = dir + "/REPORT.md";
  files.plots = w.plots;
  files.plot_problem = w.plot_problem;
  TRAINLAB_RETURN_IF_ERROR(WriteFileAtomically(files.report, w.md));
  return files;
}

absl::StatusOr<std::string> RenderComparison(const std::string& dir, const std::string& other_dir) {
  TRAINLAB_ASSIGN_OR_RETURN(auto a, ReadAll(dir));
  TRAINLAB_ASSIGN_OR_RETURN(auto b, ReadAll(other_dir));
  Writer w(dir);
  w.Line("# trainlab: two result sets side by side");
  w.Line();
  auto where = [](const std::map<std::string, json>& r) {
    const json& env = r.begin()->second["environment"];
    return absl::StrCat(env.value("cpu_model", "?"), ", device ", env.value("device", "?"), ", ",
                        env.value("date", "?"));
  };
  w.Line(absl::StrCat("- **this**: `", dir, "` (", where(a), ")"));
  w.Line(absl::StrCat("- **other**: `", other_dir, "` (", where(b), ")"));
  w.Line();
  w.Line(
      "Ratios are other / this: below 1 means the other set was faster (for times) or lower (for "
      "loss).");
  w.Line();
  for (const std::string& name : LabOrder()) {
    if (!a.count(name) || !b.count(name) || name == "q1_q4") continue;
    w.Line(absl::StrCat("## ", name));
    w.Line();
    w.Header({"configuration", "figure", "this", "other", "other / this"});
    for (const json& ca : a[name]["configs"]) {
      const std::string label = ca.value("label", "");
      const json* cb = nullptr;
      for (const json& c : b[name]["configs"]) {
        if (c.value("label", "") == label) cb = &c;
      }
      if (cb == nullptr || Runs(ca).empty() || Runs(*cb).empty()) continue;
      struct Fig {
        const char* what;
        Spread x, y;
        bool seconds;
      };
      const Fig figs[] = {
          {"epoch time (mean)", MeanSpread(ca, "epoch_s"), MeanSpread(*cb, "epoch_s"), true},
          {"training time (mean)", MeanSpread(ca, "train_s"), MeanSpread(*cb, "train_s"), true},
          {"data loading (mean)", MeanSpread(ca, "load_s"), MeanSpread(*cb, "load_s"), true},
          {"last epoch loss", LastSpread(ca, "loss"), LastSpread(*cb, "loss"), false},
          {"last epoch top-1 %", LastSpread(ca, "top1"), LastSpread(*cb, "top1"), false},
      };
      for (const Fig& f : figs) {
        w.Row({label, f.what, f.seconds ? Sec(f.x) : Plain(f.x, 4),
               f.seconds ? Sec(f.y) : Plain(f.y, 4), FormatRatio(f.y, f.x)});
      }
    }
    w.Line();
  }
  return w.md;
}

}  // namespace trainlab::experiments
