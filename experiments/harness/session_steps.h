// The steps of Session::Start that live in files of their own (the session target's insides,
// not an API): agreeing on settings across ranks and the checkpoint's fingerprint
// (fingerprint.cc), and the "Settings:" paragraph (settings_paragraph.cc).
#ifndef TRAINLAB_EXPERIMENTS_HARNESS_SESSION_STEPS_H_
#define TRAINLAB_EXPERIMENTS_HARNESS_SESSION_STEPS_H_

#include <set>
#include <string>

#include "absl/status/status.h"
#include "experiments/harness/session.h"

namespace trainlab::experiments::internal {

// Settings that cannot change a run's result: left out of Session::Fingerprint.
const std::set<std::string>& NotInFingerprint();

// Every rank's settings against rank 0's: the fingerprint a checkpoint keeps, the dataset's
// content and what decides how many collectives follow. Any difference is one error, the same on
// every rank, naming each setting and the ranks that differ, before any training.
absl::Status AgreeOnSettings(const Session& s);

// The "Settings:" paragraph: data, device, model, threads, allocator, kernels, the run.
std::string SettingsParagraph(const Session& s);

}  // namespace trainlab::experiments::internal

#endif  // TRAINLAB_EXPERIMENTS_HARNESS_SESSION_STEPS_H_
