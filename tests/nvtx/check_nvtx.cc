// Checks the NVTX ranges a run recorded through tests/nvtx's recorder (nvtx_test.sh): every range
// closed on the thread that opened it, the lab's phases in the lab's order with their payloads,
// and with --mode=layers every layer inside them, named as the per-layer profile names them.
//
//   check_nvtx --mode=phases|layers --batches=B --epochs=E [--evaluate]
//              [--profile_json=profile.json] RECORD.tsv
//
// Prints what it checked and exits 0, or prints each problem and exits 1.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Node {
  std::string name, payload;
  std::vector<std::unique_ptr<Node>> children;
  std::vector<std::string> ChildNames() const {
    std::vector<std::string> out;
    for (const auto& c : children) out.push_back(c->name);
    return out;
  }
};

int problems = 0;
void Problem(const std::string& what) {
  std::cout << "PROBLEM: " << what << "\n";
  ++problems;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::vector<std::string> Split(const std::string& line) {
  std::vector<std::string> f;
  std::stringstream in(line);
  std::string x;
  while (std::getline(in, x, '\t')) f.push_back(x);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode, file, profile_json;
  int batches = 0, epochs = 0;
  bool evaluate = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--mode=", 0) == 0) {
      mode = a.substr(7);
    } else if (a.rfind("--batches=", 0) == 0) {
      batches = std::stoi(a.substr(10));
    } else if (a.rfind("--epochs=", 0) == 0) {
      epochs = std::stoi(a.substr(9));
    } else if (a == "--evaluate") {
      evaluate = true;
    } else if (a.rfind("--profile_json=", 0) == 0) {
      profile_json = a.substr(15);
    } else {
      file = a;
    }
  }
  if ((mode != "phases" && mode != "layers") || batches < 1 || epochs < 1 || file.empty()) {
    std::cerr << "usage: check_nvtx --mode=phases|layers --batches=B --epochs=E [--evaluate] "
                 "[--profile_json=F] RECORD.tsv\n";
    return 2;
  }
  std::ifstream in(file);
  if (!in) {
    std::cout << "PROBLEM: no record at " << file << "\n";
    return 1;
  }

  // Each thread's tree of pushed ranges; the start/end ranges by id.
  std::map<std::string, std::unique_ptr<Node>> roots;
  std::map<std::string, std::vector<Node*>> stacks;
  std::map<std::string, std::string> open_spans;           // id -> name
  std::vector<std::pair<std::string, std::string>> spans;  // (name, payload), in start order
  std::string epoch_thread;
  int lines = 0;
  for (std::string line; std::getline(in, line);) {
    ++lines;
    const std::vector<std::string> f = Split(line);
    if (f.size() < 5) {
      Problem("line " + std::to_string(lines) + " has too few fields: " + line);
      continue;
    }
    const std::string &thread = f[0], &event = f[1], &domain = f[2], &name = f[3], &payload = f[4];
    if (event == "init") continue;
    if (domain != "trainlab") Problem("a range outside the trainlab domain: " + line);
    auto& root = roots[thread];
    if (!root) {
      root = std::make_unique<Node>();
      stacks[thread] = {root.get()};
    }
    std::vector<Node*>& stack = stacks[thread];
    if (event == "push") {
      stack.back()->children.push_back(std::make_unique<Node>(Node{name, payload, {}}));
      stack.push_back(stack.back()->children.back().get());
    } else if (event == "pop") {
      if (stack.size() == 1) {
        Problem("thread " + thread + " pops a range it never pushed (line " +
                std::to_string(lines) + ")");
      } else {
        stack.pop_back();
      }
    } else if (event == "start") {
      open_spans[f.size() > 5 ? f[5] : ""] = name;
      spans.emplace_back(name, payload);
      if (name == "epoch") epoch_thread = thread;
    } else if (event == "end") {
      if (open_spans.erase(f.size() > 5 ? f[5] : "") == 0) Problem("an end of no range: " + line);
    } else if (event != "mark") {
      Problem("an unknown event: " + line);
    }
  }
  for (const auto& [thread, stack] : stacks) {
    if (stack.size() != 1) {
      Problem("thread " + thread + " leaves " + std::to_string(stack.size() - 1) +
              " range(s) open, innermost '" + stack.back()->name + "'");
    }
  }
  for (const auto& [id, name] : open_spans) Problem("range '" + name + "' started, never ended");

  // The epochs: start/end ranges with payloads 1..E.
  std::vector<std::string> want_spans, got_spans;
  for (int e = 1; e <= epochs; ++e) want_spans.push_back("epoch/" + std::to_string(e));
  for (const auto& [n, p] : spans) got_spans.push_back(n + "/" + p);
  if (got_spans != want_spans) {
    Problem("start/end ranges: [" + Join(got_spans) + "], want [" + Join(want_spans) + "]");
  }
  if (epoch_thread.empty() || !roots.count(epoch_thread)) {
    Problem("no epoch range: nothing more to check");
    return 1;
  }

  // The training thread: per epoch, wait/copy/step for each batch, the last wait (no batch
  // left), the evaluation.
  const Node& main = *roots[epoch_thread];
  std::vector<std::string> want, got;
  for (int e = 1; e <= epochs; ++e) {
    for (int b = 1; b <= batches; ++b) {
      for (const char* phase : {"wait", "copy", "step"}) {
        want.push_back(std::string(phase) + "/" + std::to_string(b));
      }
    }
    want.push_back("wait/" + std::to_string(batches + 1));
    if (evaluate) want.push_back("evaluation/" + std::to_string(e));
  }
  for (const auto& c : main.children) got.push_back(c->name + "/" + c->payload);
  if (got != want) Problem("top-level ranges: [" + Join(got) + "]\n  want [" + Join(want) + "]");

  const std::vector<std::string> step_parts = {"zero grad", "forward",        "loss",
                                               "backward",  "optimizer step", "sync"};
  std::vector<std::string> first_forward;  // the first step's layers, forward and loss
  int steps = 0, layer_ranges = 0;
  for (const auto& top : main.children) {
    if (top->name == "evaluation") {
      if (mode == "phases" && !top->children.empty()) {
        Problem("--nvtx=phases: the evaluation holds ranges: " + Join(top->ChildNames()));
      }
      continue;
    }
    if (top->name != "step") {
      if (!top->children.empty()) {
        Problem("'" + top->name + "' holds ranges: " + Join(top->ChildNames()));
      }
      continue;
    }
    ++steps;
    if (top->ChildNames() != step_parts) {
      Problem("step " + top->payload + " holds [" + Join(top->ChildNames()) + "], want [" +
              Join(step_parts) + "]");
      continue;
    }
    std::vector<std::string> forward, backward;
    for (const auto& part : top->children) {
      for (const auto& layer : part->children) {
        ++layer_ranges;
        if (!layer->children.empty()) {
          Problem("layer '" + layer->name + "' holds ranges: " + Join(layer->ChildNames()));
        }
        if (part->name == "forward" || part->name == "loss") {
          forward.push_back(layer->name);
        } else if (part->name == "backward") {
          backward.push_back(layer->name);
        } else {
          Problem("'" + part->name + "' holds layer '" + layer->name + "'");
        }
      }
    }
    if (mode == "phases") {
      if (!forward.empty() || !backward.empty()) {
        Problem("--nvtx=phases: step " + top->payload + " holds layers: " + Join(forward));
      }
      continue;
    }
    // Layers: forward names are the profile's; each backward node is a layer's or the engine's.
    if (forward.empty()) Problem("step " + top->payload + ": no layer in its forward");
    if (steps == 1) {
      first_forward = forward;
    } else if (forward != first_forward) {
      Problem("step " + top->payload + "'s layers differ from step 1's: [" + Join(forward) + "]");
    }
    const std::set<std::string> forward_set(forward.begin(), forward.end());
    std::set<std::string> backward_layers;
    for (const std::string& b : backward) {
      if (EndsWith(b, " (backward)")) {
        const std::string layer = b.substr(0, b.size() - 11);
        if (!forward_set.count(layer)) Problem("backward of no forward layer: " + b);
        backward_layers.insert(layer);
      } else if (b.empty()) {
        Problem("a backward range with no name");
      }  // else an autograd node no layer created, by its own name (AccumulateGrad, a view)
    }
    for (const std::string& f : forward) {
      if (f.find("conv") != std::string::npos && !backward_layers.count(f)) {
        Problem("convolution " + f + " has no backward range");
      }
    }
  }
  if (steps != batches * epochs) {
    Problem(std::to_string(steps) + " steps, want " + std::to_string(batches * epochs));
  }
  if (mode == "layers" && evaluate) {
    for (const auto& top : main.children) {
      if (top->name != "evaluation") continue;
      const std::vector<std::string> names = top->ChildNames();
      // The model's forward per test batch: the step's layers without its loss.
      std::vector<std::string> model(first_forward.begin(), first_forward.end());
      while (!model.empty() && model.back().find("cross_entropy") != std::string::npos) {
        model.pop_back();
      }
      if (model.empty() || names.empty() || names.size() % model.size() != 0) {
        Problem("evaluation " + top->payload + " holds " + std::to_string(names.size()) +
                " layers, not a multiple of the model's " + std::to_string(model.size()));
        continue;
      }
      for (size_t i = 0; i < names.size(); ++i) {
        if (names[i] != model[i % model.size()]) {
          Problem("evaluation " + top->payload + ": layer " + std::to_string(i) + " is " +
                  names[i] + ", want " + model[i % model.size()]);
          break;
        }
      }
    }
  }
  // Other threads: on a CPU nothing runs elsewhere (a GPU's backward would).
  for (const auto& [thread, root] : roots) {
    if (thread != epoch_thread && !root->children.empty()) {
      Problem("thread " + thread + " has ranges: " + Join(root->ChildNames()));
    }
  }

  // The per-layer profile's forward rows, by name and order.
  if (!profile_json.empty()) {
    std::ifstream pj(profile_json);
    nlohmann::json j = nlohmann::json::parse(pj, nullptr, /*allow_exceptions=*/false);
    std::vector<std::string> rows;
    if (j.is_object() && j.contains("summary") && j["summary"].contains("layers")) {
      for (const auto& row : j["summary"]["layers"]) {
        if (row.value("pass", "") == "forward" && row.value("strategy", "") == "eager") {
          rows.push_back(row.value("name", ""));
        }
      }
    }
    // (The profile lists its rows by time, slowest first: compare the names, not the order.)
    std::vector<std::string> ours = first_forward;
    std::sort(rows.begin(), rows.end());
    std::sort(ours.begin(), ours.end());
    if (rows.empty()) {
      Problem("no eager forward layers in " + profile_json);
    } else if (rows != ours) {
      Problem("the layers' ranges are not the profile's layers:\n  nvtx    [" + Join(ours) +
              "]\n  profile [" + Join(rows) + "]");
    } else {
      std::cout << "The " << rows.size() << " forward layers are named as in " << profile_json
                << "\n";
    }
  }

  std::cout << lines << " events; " << steps << " steps over " << epochs << " epochs; "
            << layer_ranges << " layer ranges in steps\n";
  if (problems > 0) {
    std::cout << problems << " problem(s)\n";
    return 1;
  }
  std::cout << "ok\n";
  return 0;
}
