// A few NVTX calls of each kind trainlab makes, for checking the recorder (nvtx_recorder.cc) by
// hand: domain "trainlab", a registered range with a payload, a range on a second thread, a
// start/end range, a mark, and a domain-less range. Without an injection library every call is a
// no-op and the program prints nothing.
//
// Example:
//   export NVTX_INJECTION64_PATH=$PWD/bazel-bin/tests/nvtx/libnvtx_recorder.so
//   NVTX_RECORD_FILE=/tmp/r.tsv bazel-bin/tests/nvtx/nvtx_demo && cat /tmp/r.tsv
#include <thread>

#include "nvtx3/nvToolsExt.h"

namespace {

// Attributes with an ASCII message and no payload.
nvtxEventAttributes_t Ascii(const char* message) {
  nvtxEventAttributes_t attributes = {};
  attributes.version = NVTX_VERSION;
  attributes.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
  attributes.messageType = NVTX_MESSAGE_TYPE_ASCII;
  attributes.message.ascii = message;
  return attributes;
}

}  // namespace

int main() {
  nvtxDomainHandle_t domain = nvtxDomainCreateA("trainlab");
  nvtxStringHandle_t forward_name = nvtxDomainRegisterStringA(domain, "forward");

  // push forward (registered, payload 7) ... pop, with a range pushed and popped on a second
  // thread in between.
  nvtxEventAttributes_t forward = {};
  forward.version = NVTX_VERSION;
  forward.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
  forward.messageType = NVTX_MESSAGE_TYPE_REGISTERED;
  forward.message.registered = forward_name;
  forward.payloadType = NVTX_PAYLOAD_TYPE_UNSIGNED_INT64;
  forward.payload.ullValue = 7;
  nvtxDomainRangePushEx(domain, &forward);
  std::thread worker([domain] {
    const nvtxEventAttributes_t conv = Ascii("layer1.0.conv1");
    nvtxDomainRangePushEx(domain, &conv);
    nvtxDomainRangePop(domain);
  });
  worker.join();
  nvtxDomainRangePop(domain);

  // A start/end range with payload 1, then a mark.
  nvtxEventAttributes_t epoch = Ascii("epoch");
  epoch.payloadType = NVTX_PAYLOAD_TYPE_UNSIGNED_INT64;
  epoch.payload.ullValue = 1;
  const nvtxRangeId_t epoch_id = nvtxDomainRangeStartEx(domain, &epoch);
  nvtxDomainRangeEnd(domain, epoch_id);
  const nvtxEventAttributes_t done = Ascii("done");
  nvtxDomainMarkEx(domain, &done);

  // The domain-less API: domain "-".
  nvtxRangePushA("save");
  nvtxRangePop();

  nvtxDomainDestroy(domain);
  return 0;
}
