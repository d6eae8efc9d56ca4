// Q1-Q4's section: the counts q1_q4 took from the model, as a table.
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "experiments/reporting/experiment_report.h"

namespace trainlab::experiments {
namespace {

Section Q1Q4Section(const ExperimentResult& result) {
  const nlohmann::json& s = result.summary;
  const nlohmann::json sgd = SummaryObject(s, "sgd"), adam = SummaryObject(s, "adam");
  Section out;
  Table t{.header = {"question", "answer (counted from the model)"}};
  t.rows.push_back(
      {"Q1: convolutional layers", absl::StrCat(SummaryInt(s, "conv_layers", -1), " (",
                                                SummaryInt(s, "conv_layers_without_1x1", -1),
                                                " without the three 1x1 shortcuts)")});
  t.rows.push_back({"Q2: input features of the last linear layer",
                    std::to_string(SummaryInt(s, "last_linear_in_features", -1))});
  t.rows.push_back(
      {"Q3: SGD: trainable parameters / gradients",
       absl::StrCat(SummaryInt(sgd, "parameters", -1), " / ", SummaryInt(sgd, "gradients", -1))});
  t.rows.push_back(
      {"Q4: Adam: trainable parameters / gradients (state elements)",
       absl::StrCat(SummaryInt(adam, "parameters", -1), " / ", SummaryInt(adam, "gradients", -1),
                    " (", SummaryInt(adam, "state", -1), ")")});
  out.AddTable(std::move(t));
  std::string model = SummaryString(s, "model");
  if (model.empty()) {  // older files recorded only the switch
    const bool bn =
        !s.contains("batch_norm") || !s["batch_norm"].is_boolean() || s["batch_norm"].get<bool>();
    model = bn ? "resnet18" : "resnet18_no_bn";
  }
  if (model == "resnet18_no_bn") {
    out.AddText("(Counted on ResNet-18 without batch norm.)");
  } else if (model != "resnet18") {
    out.AddText(absl::StrCat("(Counted on --model=", model, ".)"));
  }
  return out;
}

absl::Status Q1Q4CheckSummary(const JsonReader& s) {
  constexpr int64_t kMax = int64_t{1} << 40;
  for (const char* key : {"conv_layers", "conv_layers_without_1x1", "last_linear_in_features"}) {
    TRAINLAB_RETURN_IF_ERROR(s.Int(key, -1, kMax).status());
  }
  for (const char* opt : {"sgd", "adam"}) {
    TRAINLAB_ASSIGN_OR_RETURN(JsonReader o, s.Object(opt));
    for (const char* key : {"parameters", "gradients", "state"}) {
      TRAINLAB_RETURN_IF_ERROR(o.Int(key, 0, kMax).status());
    }
  }
  return absl::OkStatus();
}

const bool kRegistered = ReportRegistry::Global().Register(
    "q1_q4", {.title = "Q1-Q4: the model, counted",
              .question = "Layers, widths, parameters and gradients of ResNet-18.",
              .section = Q1Q4Section,
              .check_summary = Q1Q4CheckSummary,
              .in_terminal = false});

}  // namespace
}  // namespace trainlab::experiments
