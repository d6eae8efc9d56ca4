// check_results RESULTS.json STDOUT.txt BATCHES.csv
// Checks that an experiment's results file says what its run printed: the JSON parses, has the
// schema's fields, each lab block on stdout (in order) equals the JSON's epoch rounded the way the
// block rounds it, and the CSV has one row per batch the JSON counts. Exit 0 when all hold.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

int failures = 0;
void Fail(const std::string& what) {
  std::cerr << "check_results: " << what << "\n";
  ++failures;
}

std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: check_results RESULTS.json STDOUT.txt BATCHES.csv\n";
    return 2;
  }
  std::ifstream jin(argv[1]);
  nlohmann::json j = nlohmann::json::parse(jin, nullptr, false);
  if (j.is_discarded()) {
    Fail(std::string(argv[1]) + ": not valid JSON");
    return 1;
  }
  // Schema 2 names the variants "variants" (schema 1: "configs").
  const char* variants = j.value("schema_version", 0) >= 2 ? "variants" : "configs";
  for (const char* key : {"schema_version", "experiment", "command_line", "settings", "environment",
                          variants, "summary"}) {
    if (!j.contains(key)) Fail(std::string("missing field ") + key);
  }
  for (const char* key :
       {"cpu_model", "cores", "intra_op_threads", "allocator", "libtorch_version", "date"}) {
    if (!j["environment"].contains(key)) Fail(std::string("environment lacks ") + key);
  }
  if (failures) return 1;

  // The blocks, in order: "Epoch N Summary:" then six "- Name: value" lines.
  std::ifstream out(argv[2]);
  std::vector<std::vector<std::string>> blocks;
  std::string line;
  const std::regex value(R"(^- [^:]+: ([0-9.]+)%?s?$)");
  while (std::getline(out, line)) {
    if (line.rfind("Epoch ", 0) == 0 && line.find(" Summary:") != std::string::npos) {
      blocks.push_back({line.substr(6, line.find(' ', 6) - 6)});
      for (int i = 0; i < 6 && std::getline(out, line); ++i) {
        std::smatch m;
        if (std::regex_match(line, m, value)) {
          blocks.back().push_back(m[1]);
        } else {
          Fail("unexpected block line: " + line);
        }
      }
    }
  }
  size_t b = 0;
  int64_t batches = 0;
  for (const auto& variant : j[variants]) {
    for (const auto& run : variant["runs"]) {
      for (const auto& e : run["epochs"]) {
        batches += e["batches"].get<int64_t>();
        if (b >= blocks.size()) {
          Fail("the JSON has more epochs than the run printed blocks");
          continue;
        }
        const std::vector<std::string>& blk = blocks[b++];
        const std::vector<std::string> want = {
            std::to_string(e["epoch"].get<int64_t>()),
            Fmt("%.4f", e["loss"].get<double>()),
            Fmt("%.2f", e["top1"].get<double>()),
            Fmt("%.4f", e["load_s"].get<double>()),
            Fmt("%.4f", e["train_s"].get<double>()),
            Fmt("%.4f", e["avg_train_per_batch_s"].get<double>()),
            Fmt("%.4f", e["epoch_s"].get<double>())};
        if (blk != want) {
          std::string got, w;
          for (const auto& s : blk) got += s + " ";
          for (const auto& s : want) w += s + " ";
          Fail("block " + std::to_string(b) + " printed [" + got + "], JSON says [" + w + "]");
        }
      }
    }
  }
  if (b != blocks.size())
    Fail("the run printed " + std::to_string(blocks.size()) + " blocks, the JSON has " +
         std::to_string(b));

  std::ifstream csv(argv[3]);
  int64_t rows = -1;  // the header
  while (std::getline(csv, line)) ++rows;
  if (rows != batches)
    Fail("the CSV has " + std::to_string(rows) + " rows, the JSON counts " +
         std::to_string(batches) + " batches");
  if (failures == 0)
    std::cout << "check_results: " << b << " blocks and " << rows << " batch rows match\n";
  return failures ? 1 : 0;
}
