#include "plugins/distributed/communicator.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef TRAINLAB_HAS_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <cstring>
#include <exception>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/torch_error.h"

namespace trainlab::distributed {
namespace {

std::string Seconds(std::chrono::milliseconds t) {
  return absl::StrCat(std::chrono::duration<double>(t).count(), " s");
}

// torchrun's agent hosts the store in its own PyTorch; TCPStore's wire protocol changed between
// releases (a LibTorch 2.x client is reset by Debian's torchrun 1.13 and retries until the
// timeout), so a failure to reach it names that cause too.
std::string AgentStoreHint(const DistEnv& env) {
  if (!env.agent_store) return "";
  return absl::StrCat(
      ". torchrun's agent hosts this store: its PyTorch must be the version of the LibTorch "
      "linked here (",
      TORCH_VERSION,
      "); use that version's torchrun, or start each rank without torchrun (RANK, WORLD_SIZE, "
      "LOCAL_RANK, MASTER_ADDR, MASTER_PORT set per process)");
}

}  // namespace

const char* BackendName(Backend b) { return b == Backend::kNccl ? "nccl" : "gloo"; }

bool NcclBuilt() {
#ifdef TRAINLAB_HAS_NCCL
  return true;
#else
  return false;
#endif
}

absl::StatusOr<Backend> ChooseBackend(const std::string& flag, const c10::Device& device) {
  if (flag == "gloo") return Backend::kGloo;
  if (flag == "auto") return NcclBuilt() && device.is_cuda() ? Backend::kNccl : Backend::kGloo;
  if (flag != "nccl") {
    return absl::InvalidArgumentError(
        absl::StrCat("--dist_backend=", flag, ": not auto, gloo or nccl"));
  }
  if (!NcclBuilt()) {
    return absl::FailedPreconditionError(
        "--dist_backend=nccl: this build has no NCCL process group (build with --config=cuda; "
        "--dist_backend=gloo serves CPU and, through host copies, CUDA tensors)");
  }
  if (!device.is_cuda()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--dist_backend=nccl: NCCL runs on CUDA devices and this rank trains on ",
                     device.str(), " (--device=cuda, or --dist_backend=gloo on the CPU)"));
  }
  return Backend::kNccl;
}

Communicator::Communicator(DistEnv env, std::chrono::milliseconds timeout, Backend backend)
    : env_(std::move(env)), timeout_(timeout), backend_(backend) {}

Communicator::~Communicator() = default;

absl::Status Communicator::Failed(const std::string& what, const std::exception& e) const {
  return absl::UnavailableError(
      absl::StrCat("rank ", env_.rank, " of ", env_.world_size, ": ", what,
                   " failed (a peer rank died, hung past the ", Seconds(timeout_),
                   " timeout, or cannot be reached): ", TorchErrorLine(e)));
}

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::Connect(
    const DistEnv& env, std::chrono::milliseconds timeout, Backend backend, c10::Device device) {
  if (backend == Backend::kNccl && (!NcclBuilt() || !device.is_cuda())) {
    return ChooseBackend("nccl", device).status();
  }
  std::unique_ptr<Communicator> c(new Communicator(env, timeout, backend));
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.master_port);
    so.isServer = env.hosts_store();
    so.numWorkers = env.agent_store ? c10::nullopt : c10::optional<size_t>(env.world_size);
    so.waitWorkers = false;
    so.timeout = timeout;
    so.multiTenant = env.agent_store;
    c10::intrusive_ptr<c10d::Store> store =
        c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    if (env.agent_store) store = c10::make_intrusive<c10d::PrefixStore>(env.store_prefix(), store);
    c->store_ = store;
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("rank ", env.rank, " of ", env.world_size, ": cannot ",
                     env.hosts_store() ? "host" : "reach", " the store at ", env.master_addr, ":",
                     env.master_port, " within ", Seconds(timeout),
                     " (MASTER_ADDR/MASTER_PORT): ", TorchErrorLine(e), AgentStoreHint(env)));
  }
  try {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    // Loopback jobs bind Gloo to 127.0.0.1; others to this machine's resolved hostname.
    const bool loopback = env.master_addr == "localhost" || env.master_addr.rfind("127.", 0) == 0;
    options->devices.push_back(loopback
                                   ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                   : c10d::ProcessGroupGloo::createDefaultDevice());
    auto gloo =
        c10::make_intrusive<c10d::ProcessGroupGloo>(c->store_, env.rank, env.world_size, options);
#if TORCH_VERSION_MAJOR >= 2
    // LibTorch 2.x: a ProcessGroup dispatches to per-device backends (as Python's
    // init_process_group("gloo") sets up); Gloo serves CPU tensors, and CUDA ones through
    // host staging unless NCCL takes them (below).
    auto group = c10::make_intrusive<c10d::ProcessGroup>(c->store_, env.rank, env.world_size);
    group->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
    for (c10::DeviceType type : {c10::DeviceType::CPU, c10::DeviceType::CUDA}) {
      group->setBackend(type, c10d::ProcessGroup::BackendType::GLOO, gloo);
    }
    c->group_ = std::move(group);
#else
    c->group_ = std::move(gloo);
#endif
  } catch (const std::exception& e) {
    return c->Failed("joining the Gloo process group", e);
  }
  // Every rank's backend, compared over Gloo before any NCCL: a rank that makes an NCCL
  // communicator while another does not would wait for it until the timeout.
  absl::StatusOr<std::vector<std::string>> chosen =
      c->AllGatherBytes(absl::StrCat(BackendName(backend), " on ", device.str()));
  if (!chosen.ok()) return chosen.status();
  bool same = true;
  std::vector<std::string> each;
  for (size_t r = 0; r < chosen->size(); ++r) {
    const std::string& mine = (*chosen)[r];
    same = same && mine.substr(0, mine.find(' ')) == BackendName(backend);
    each.push_back(absl::StrCat("rank ", r, ": ", mine));
  }
  if (!same) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the ranks chose different data-parallel backends (", absl::StrJoin(each, ", "),
        "); start every rank with the same --device and --dist_backend"));
  }
  if (backend == Backend::kNccl) {
    if (absl::Status s = c->AddNccl(device); !s.ok()) return s;
  }
  return c;
}

absl::Status Communicator::AddNccl(c10::Device device) {
#ifdef TRAINLAB_HAS_NCCL
  try {
    // As Python's init_process_group("cpu:gloo,cuda:nccl", device_id=cuda:LOCAL_RANK): the
    // rank's GPU is the current device before NCCL makes its communicator, NCCL's store keys
    // live under their own prefix (Gloo's and NCCL's would collide: both key by rank), and the
    // communicator is made now, on that device (eagerly: a rank that cannot join fails here,
    // within the timeout, rather than at the first all-reduce).
    if (!device.has_index()) device = c10::Device(c10::kCUDA, c10::cuda::current_device());
    c10::cuda::set_device(device.index());
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout_;
    auto nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
        c10::make_intrusive<c10d::PrefixStore>("nccl/", store_), env_.rank, env_.world_size,
        options);
    // Bound to the rank's GPU, as init_process_group(device_id=...) binds it: setBackend hands
    // the group's bound device to the backend it registers.
    group_->setBoundDeviceId(device);
    nccl->setBoundDeviceId(device);
    nccl->eagerConnectSingleDevice(device);
    group_->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::NCCL, nccl);
  } catch (const std::exception& e) {
    return Failed(absl::StrCat("joining the NCCL process group on ", device.str()), e);
  }
  return absl::OkStatus();
#else
  return ChooseBackend("nccl", device).status();
#endif
}

absl::Status Communicator::AverageInPlace(const std::vector<at::Tensor>& tensors) {
  if (tensors.empty()) return absl::OkStatus();
  try {
    std::vector<at::Tensor> flat = {at::cat([&] {
      std::vector<at::Tensor> parts;
      for (const at::Tensor& t : tensors) parts.push_back(t.reshape(-1));
      return parts;
    }())};
    group_->allreduce(flat)->wait(timeout_);
    flat[0].div_(env_.world_size);
    int64_t offset = 0;
    for (const at::Tensor& t : tensors) {
      t.copy_(flat[0].narrow(0, offset, t.numel()).view_as(t));
      offset += t.numel();
    }
  } catch (const std::exception& e) {
    return Failed("an all-reduce", e);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<double>> Communicator::ReduceOverRanks(const std::vector<double>& values,
                                                                  Reduce op, const char* what) {
  if (values.empty()) return values;
  try {
    std::vector<at::Tensor> t = {
        at::tensor(at::ArrayRef<double>(values), at::TensorOptions().dtype(at::kDouble))};
    c10d::AllreduceOptions o;
    o.reduceOp = op == Reduce::kMax ? c10d::ReduceOp::MAX : c10d::ReduceOp::SUM;
    group_->allreduce(t, o)->wait(timeout_);
    const double* p = t[0].data_ptr<double>();
    return std::vector<double>(p, p + values.size());
  } catch (const std::exception& e) {
    return Failed(what, e);
  }
}

absl::StatusOr<std::vector<double>> Communicator::SumOverRanks(const std::vector<double>& values) {
  return ReduceOverRanks(values, Reduce::kSum, "an all-reduce of the epoch's figures");
}

absl::StatusOr<std::vector<double>> Communicator::MaxOverRanks(const std::vector<double>& values) {
  return ReduceOverRanks(values, Reduce::kMax, "agreeing on the batch's outcome");
}

absl::StatusOr<std::string> Communicator::BroadcastBytes(const std::string& bytes, int root) {
  if (root < 0 || root >= env_.world_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "broadcast from rank ", root, ": no such rank (world size ", env_.world_size, ")"));
  }
  try {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    const bool sends = env_.rank == root;
    std::vector<at::Tensor> size = {
        at::full({1}, sends ? static_cast<int64_t>(bytes.size()) : int64_t{0},
                 at::TensorOptions().dtype(at::kLong))};
    group_->broadcast(size, o)->wait(timeout_);
    const int64_t n = size[0].item<int64_t>();
    if (n == 0) return std::string();
    if (sends) {
      // The sender's bytes, lent to Gloo without a copy (it only reads them).
      at::Tensor view =
          at::from_blob(const_cast<char*>(bytes.data()), {n}, at::TensorOptions().dtype(at::kByte));
      std::vector<at::Tensor> data = {view};
      group_->broadcast(data, o)->wait(timeout_);
      return bytes;
    }
    std::string out(static_cast<size_t>(n), '\0');
    std::vector<at::Tensor> data = {
        at::from_blob(out.data(), {n}, at::TensorOptions().dtype(at::kByte))};
    group_->broadcast(data, o)->wait(timeout_);
    return out;
  } catch (const std::exception& e) {
    return Failed(
        root == 0 ? "receiving rank 0's data" : absl::StrCat("receiving rank ", root, "'s data"),
        e);
  }
}

absl::StatusOr<std::vector<std::string>> Communicator::AllGatherBytes(const std::string& bytes,
                                                                      const std::string& what) {
  try {
    const int w = env_.world_size;
    auto gather = [&](const at::Tensor& mine) {
      std::vector<std::vector<at::Tensor>> out(1);
      for (int r = 0; r < w; ++r) out[0].push_back(at::empty_like(mine));
      std::vector<at::Tensor> in = {mine};
      group_->allgather(out, in)->wait(timeout_);
      return out[0];
    };
    const std::vector<at::Tensor> sizes = gather(
        at::full({1}, static_cast<int64_t>(bytes.size()), at::TensorOptions().dtype(at::kLong)));
    int64_t longest = 1;
    for (const at::Tensor& s : sizes) longest = std::max(longest, s.item<int64_t>());
    at::Tensor mine = at::zeros({longest}, at::TensorOptions().dtype(at::kByte));
    std::memcpy(mine.data_ptr(), bytes.data(), bytes.size());
    const std::vector<at::Tensor> all = gather(mine);
    std::vector<std::string> out;
    for (int r = 0; r < w; ++r) {
      out.emplace_back(static_cast<const char*>(all[r].data_ptr()),
                       static_cast<size_t>(sizes[r].item<int64_t>()));
    }
    return out;
  } catch (const std::exception& e) {
    return Failed(what, e);
  }
}

absl::Status Communicator::Broadcast(const std::vector<at::Tensor>& tensors) {
  try {
    // One broadcast per dtype (parameters are float; BatchNorm's batch counters are int64).
    std::map<at::ScalarType, std::vector<at::Tensor>> by_type;
    for (const at::Tensor& t : tensors) by_type[t.scalar_type()].push_back(t.detach());
    for (auto& [type, group] : by_type) {
      std::vector<at::Tensor> parts;
      for (const at::Tensor& t : group) parts.push_back(t.reshape(-1));
      std::vector<at::Tensor> flat = {at::cat(parts)};
      c10d::BroadcastOptions o;
      o.rootRank = 0;
      group_->broadcast(flat, o)->wait(timeout_);
      int64_t offset = 0;
      for (at::Tensor& t : group) {
        t.copy_(flat[0].narrow(0, offset, t.numel()).view_as(t));
        offset += t.numel();
      }
    }
  } catch (const std::exception& e) {
    return Failed("broadcasting rank 0's parameters", e);
  }
  return absl::OkStatus();
}

absl::Status Communicator::Barrier() {
  try {
    group_->barrier()->wait(timeout_);
  } catch (const std::exception& e) {
    return Failed("a barrier", e);
  }
  return absl::OkStatus();
}

}  // namespace trainlab::distributed
