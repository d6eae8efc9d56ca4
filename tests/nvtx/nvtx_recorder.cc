// An NVTX injection library that writes down every range and mark: for tests of trainlab's --nvtx
// ranges on a machine with no GPU and no Nsight.
//
// NVTX's first call in a process loads the library named by NVTX_INJECTION64_PATH and calls its
// InitializeInjectionNvtx2, which points NVTX's function tables at the functions below. Each call
// then appends one tab-separated line to the file named by NVTX_RECORD_FILE (nothing is recorded
// when it is unset):
//   <thread> <event> <domain> <name> <payload> [<range id>]
// <thread> numbers threads in the order they first record (0, 1, ...); <event> is init, push, pop,
// start, end or mark; the domain-less API's domain is "-"; pop and end have "-" for name and
// payload; start and end add the range's id. Registered strings are written as their text, and
// tabs and newlines in names as spaces.
//
// Each NVTX instance in a process (each shared library that includes the NVTX headers has its
// own) calls InitializeInjectionNvtx2 and records an init line; all of them append to one file.
//
// Example (tests/nvtx/nvtx_demo.cc, built with Bazel):
//   export NVTX_INJECTION64_PATH=$PWD/bazel-bin/tests/nvtx/libnvtx_recorder.so
//   NVTX_RECORD_FILE=/tmp/r.tsv bazel-bin/tests/nvtx/nvtx_demo
//   /tmp/r.tsv, columns aligned here:
//     0  init   -         -               -
//     0  push   trainlab  forward         7
//     1  push   trainlab  layer1.0.conv1  -
//     1  pop    trainlab  -               -
//     0  pop    trainlab  -               -
//     0  start  trainlab  epoch           1  1
//     0  end    trainlab  -               -  1
//     0  mark   trainlab  done            -
//     0  push   -         save            -
//     0  pop    -         -               -
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

// NVTX's types and declarations without its implementation: the documented mode for tools.
#define NVTX_NO_IMPL
#include "nvtx3/nvToolsExt.h"

// What the handles that NVTX passes back point to (the API leaves both types to the tool). Never
// freed: a handle may be used until the process ends (Keep makes them reachable).
struct nvtxDomainRegistration_st {
  std::string name;
};
struct nvtxStringRegistration_st {
  std::string text;
};

namespace {

std::atomic<uint64_t> next_range_id{1};  // 0 is no range.

std::mutex mutex;          // Guards the four below, and keeps each line whole.
FILE* file = nullptr;      // NVTX_RECORD_FILE, opened by the first InitializeInjectionNvtx2.
int init_calls = 0;        // How many NVTX instances have attached.
int threads_recorded = 0;  // The next thread's number.
// Every handle given out, so that a leak checker sees them as still reachable.
std::vector<const void*>* const handles = new std::vector<const void*>;

// `handle`, added to `handles`.
template <typename T>
T* Keep(T* handle) {
  std::lock_guard<std::mutex> lock(mutex);
  handles->push_back(handle);
  return handle;
}

// `text` with tabs and newlines as spaces, so that it fits in one field.
std::string Field(const char* text) {
  std::string field = text != nullptr ? text : "?";
  for (char& c : field) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return field;
}

std::string DomainName(nvtxDomainHandle_t domain) { return domain != nullptr ? domain->name : "-"; }

std::string Message(const nvtxEventAttributes_t* attributes) {
  if (attributes == nullptr) return "?";
  switch (attributes->messageType) {
    case NVTX_MESSAGE_TYPE_ASCII:
      return Field(attributes->message.ascii);
    case NVTX_MESSAGE_TYPE_REGISTERED:
      return attributes->message.registered != nullptr ? attributes->message.registered->text : "?";
    default:
      return "?";
  }
}

std::string Payload(const nvtxEventAttributes_t* attributes) {
  if (attributes == nullptr) return "-";
  const auto& payload = attributes->payload;
  char number[32];
  switch (attributes->payloadType) {
    case NVTX_PAYLOAD_TYPE_UNSIGNED_INT64:
      return std::to_string(payload.ullValue);
    case NVTX_PAYLOAD_TYPE_INT64:
      return std::to_string(payload.llValue);
    case NVTX_PAYLOAD_TYPE_UNSIGNED_INT32:
      return std::to_string(payload.uiValue);
    case NVTX_PAYLOAD_TYPE_INT32:
      return std::to_string(payload.iValue);
    case NVTX_PAYLOAD_TYPE_DOUBLE:
      std::snprintf(number, sizeof number, "%g", payload.dValue);
      return number;
    case NVTX_PAYLOAD_TYPE_FLOAT:
      std::snprintf(number, sizeof number, "%g", static_cast<double>(payload.fValue));
      return number;
    default:
      return "-";
  }
}

// Appends `<thread>\t<event>\t<domain>\t<name>\t<payload>[\t<range id>]\n`; a range id of 0 (which
// no range gets) leaves the sixth field out. The caller holds `mutex`.
void WriteLocked(const char* event, const std::string& domain, const std::string& name,
                 const std::string& payload, nvtxRangeId_t range_id) {
  if (file == nullptr) return;
  // Numbered under the lock, so that a thread's first line comes before any later thread's.
  thread_local int thread = -1;
  if (thread < 0) thread = threads_recorded++;
  std::string line =
      std::to_string(thread) + "\t" + event + "\t" + domain + "\t" + name + "\t" + payload;
  if (range_id != 0) line += "\t" + std::to_string(range_id);
  line += "\n";
  std::fputs(line.c_str(), file);
  std::fflush(file);
}

void Write(const char* event, const std::string& domain, const std::string& name,
           const std::string& payload, nvtxRangeId_t range_id = 0) {
  std::lock_guard<std::mutex> lock(mutex);
  WriteLocked(event, domain, name, payload, range_id);
}

// This thread's push-pop depth in `domain` (nullptr: the domain-less API), for the levels that
// push and pop return.
int& Depth(nvtxDomainHandle_t domain) {
  thread_local std::unordered_map<nvtxDomainHandle_t, int> depths;
  return depths[domain];
}

// Push returns the 0-based level of the range it opened; pop the level of the range it closed,
// or -1 when none was open (a pop is recorded either way, so that a test sees an unbalanced one).
int Push(nvtxDomainHandle_t domain, const std::string& name, const std::string& payload) {
  Write("push", DomainName(domain), name, payload);
  return Depth(domain)++;
}

int Pop(nvtxDomainHandle_t domain) {
  Write("pop", DomainName(domain), "-", "-");
  int& depth = Depth(domain);
  if (depth == 0) return -1;
  return --depth;
}

nvtxRangeId_t Start(nvtxDomainHandle_t domain, const std::string& name,
                    const std::string& payload) {
  const nvtxRangeId_t id = next_range_id++;
  Write("start", DomainName(domain), name, payload, id);
  return id;
}

void End(nvtxDomainHandle_t domain, nvtxRangeId_t id) {
  Write("end", DomainName(domain), "-", "-", id);
}

void Mark(nvtxDomainHandle_t domain, const std::string& name, const std::string& payload) {
  Write("mark", DomainName(domain), name, payload);
}

// --- NVTX_CB_MODULE_CORE2: the domain API ----------------------------------------------------

nvtxDomainHandle_t NVTX_API DomainCreateA(const char* name) {
  return Keep(new nvtxDomainRegistration_st{Field(name)});
}

void NVTX_API DomainDestroy(nvtxDomainHandle_t) {}

nvtxStringHandle_t NVTX_API DomainRegisterStringA(nvtxDomainHandle_t, const char* text) {
  return Keep(new nvtxStringRegistration_st{Field(text)});
}

int NVTX_API DomainRangePushEx(nvtxDomainHandle_t domain, const nvtxEventAttributes_t* attrs) {
  return Push(domain, Message(attrs), Payload(attrs));
}

int NVTX_API DomainRangePop(nvtxDomainHandle_t domain) { return Pop(domain); }

nvtxRangeId_t NVTX_API DomainRangeStartEx(nvtxDomainHandle_t domain,
                                          const nvtxEventAttributes_t* attrs) {
  return Start(domain, Message(attrs), Payload(attrs));
}

void NVTX_API DomainRangeEnd(nvtxDomainHandle_t domain, nvtxRangeId_t id) { End(domain, id); }

void NVTX_API DomainMarkEx(nvtxDomainHandle_t domain, const nvtxEventAttributes_t* attrs) {
  Mark(domain, Message(attrs), Payload(attrs));
}

// --- NVTX_CB_MODULE_CORE: the domain-less API ------------------------------------------------

int NVTX_API RangePushA(const char* message) { return Push(nullptr, Field(message), "-"); }

int NVTX_API RangePushEx(const nvtxEventAttributes_t* attrs) {
  return Push(nullptr, Message(attrs), Payload(attrs));
}

int NVTX_API RangePop() { return Pop(nullptr); }

nvtxRangeId_t NVTX_API RangeStartEx(const nvtxEventAttributes_t* attrs) {
  return Start(nullptr, Message(attrs), Payload(attrs));
}

nvtxRangeId_t NVTX_API RangeStartA(const char* message) {
  return Start(nullptr, Field(message), "-");
}

void NVTX_API RangeEnd(nvtxRangeId_t id) { End(nullptr, id); }

void NVTX_API MarkA(const char* message) { Mark(nullptr, Field(message), "-"); }

void NVTX_API MarkEx(const nvtxEventAttributes_t* attrs) {
  Mark(nullptr, Message(attrs), Payload(attrs));
}

// Points NVTX's slot `id` of `table` (`size` slots) at `function`. The explicit `Fn` (the slot's
// *_impl_fntype) makes the compiler check the function's signature.
template <typename Fn>
void Attach(NvtxFunctionTable table, unsigned int size, unsigned int id, Fn function) {
  if (id < size && table[id] != nullptr) {
    *table[id] = reinterpret_cast<NvtxFunctionPointer>(function);
  }
}

// NVTX's function table for `module`, or false when this NVTX instance has none.
bool GetTable(const NvtxExportTableCallbacks* callbacks, NvtxCallbackModule module,
              NvtxFunctionTable* table, unsigned int* size) {
  return callbacks->GetModuleFunctionTable(module, table, size) != 0 && *table != nullptr;
}

}  // namespace

// Called by each NVTX instance's first NVTX call. Returns 1 when the functions above are
// attached, 0 (NVTX then turns every call into a no-op) when this NVTX offers no function tables.
extern "C" __attribute__((visibility("default"))) int InitializeInjectionNvtx2(
    NvtxGetExportTableFunc_t get_export_table) {
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (init_calls++ == 0) {
      if (const char* path = std::getenv("NVTX_RECORD_FILE"); path != nullptr && *path != '\0') {
        file = std::fopen(path, "a");
        if (file == nullptr) std::perror(("nvtx_recorder: " + std::string(path)).c_str());
      }
    }
    WriteLocked("init", "-", "-", "-", 0);
  }
  if (get_export_table == nullptr) return 0;
  const auto* callbacks =
      static_cast<const NvtxExportTableCallbacks*>(get_export_table(NVTX_ETID_CALLBACKS));
  if (callbacks == nullptr || callbacks->GetModuleFunctionTable == nullptr) return 0;

  NvtxFunctionTable core = nullptr, core2 = nullptr;
  unsigned int core_size = 0, core2_size = 0;
  if (!GetTable(callbacks, NVTX_CB_MODULE_CORE, &core, &core_size) ||
      !GetTable(callbacks, NVTX_CB_MODULE_CORE2, &core2, &core2_size)) {
    return 0;
  }

  Attach<nvtxDomainCreateA_impl_fntype>(core2, core2_size, NVTX_CBID_CORE2_DomainCreateA,
                                        DomainCreateA);
  Attach<nvtxDomainDestroy_impl_fntype>(core2, core2_size, NVTX_CBID_CORE2_DomainDestroy,
                                        DomainDestroy);
  Attach<nvtxDomainRegisterStringA_impl_fntype>(
      core2, core2_size, NVTX_CBID_CORE2_DomainRegisterStringA, DomainRegisterStringA);
  Attach<nvtxDomainRangePushEx_impl_fntype>(core2, core2_size, NVTX_CBID_CORE2_DomainRangePushEx,
                                            DomainRangePushEx);
  Attach<nvtxDomainRangePop_impl_fntype>(core2, core2_size, NVTX_CBID_CORE2_DomainRangePop,
                                         DomainRangePop);
  Attach<nvtxDomainRangeStartEx_impl_fntype>(core2, core2_size, NVTX_CBID_CORE2_DomainRangeStartEx,
                                             DomainRangeStartEx);
  Attach<nvtxDomainRangeEnd_impl_fntype>(core2, core2_size, NVTX_CBID_CORE2_DomainRangeEnd,
                                         DomainRangeEnd);
  Attach<nvtxDomainMarkEx_impl_fntype>(core2, core2_size, NVTX_CBID_CORE2_DomainMarkEx,
                                       DomainMarkEx);

  Attach<nvtxRangePushA_impl_fntype>(core, core_size, NVTX_CBID_CORE_RangePushA, RangePushA);
  Attach<nvtxRangePushEx_impl_fntype>(core, core_size, NVTX_CBID_CORE_RangePushEx, RangePushEx);
  Attach<nvtxRangePop_impl_fntype>(core, core_size, NVTX_CBID_CORE_RangePop, RangePop);
  Attach<nvtxRangeStartEx_impl_fntype>(core, core_size, NVTX_CBID_CORE_RangeStartEx, RangeStartEx);
  Attach<nvtxRangeStartA_impl_fntype>(core, core_size, NVTX_CBID_CORE_RangeStartA, RangeStartA);
  Attach<nvtxRangeEnd_impl_fntype>(core, core_size, NVTX_CBID_CORE_RangeEnd, RangeEnd);
  Attach<nvtxMarkA_impl_fntype>(core, core_size, NVTX_CBID_CORE_MarkA, MarkA);
  Attach<nvtxMarkEx_impl_fntype>(core, core_size, NVTX_CBID_CORE_MarkEx, MarkEx);
  return 1;
}
