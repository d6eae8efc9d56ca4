// TFRecord framing, the container of TensorBoard's event files: each record is
//   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes |
//   data | uint32 masked CRC-32C of the data
// (tensorflow/core/lib/io/record_writer.cc). FrameRecord() writes one; ReadRecords() splits a
// whole file back, checking both CRCs (for tests and tools).
//
// Example:
//   std::string file = FrameRecord(event_a) + FrameRecord(event_b);
//   absl::StatusOr<std::vector<std::string>> records = ReadRecords(file);
//   if (!records.ok()) return records.status();  // "record at byte 41: data CRC 0x... does not
//   ..."
#ifndef TRAINLAB_PLUGINS_TENSORBOARD_RECORD_H_
#define TRAINLAB_PLUGINS_TENSORBOARD_RECORD_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace trainlab::tensorboard {

// The framing's fixed sizes (tensorflow/core/lib/io/record_writer.h: kHeaderSize, kFooterSize).
inline constexpr size_t kRecordHeaderSize = sizeof(uint64_t) + sizeof(uint32_t);  // 12
inline constexpr size_t kRecordFooterSize = sizeof(uint32_t);                     // 4

// One framed record holding `data`.
std::string FrameRecord(std::string_view data);

// Appends one framed record holding `data` to `out` (what FrameRecord returns).
void AppendRecord(std::string_view data, std::string& out);

// Every record's data, in order. A bad CRC or a truncated record is an error naming its byte
// offset and what is wrong: "record at byte 120: data CRC 0x1234abcd does not match 0x...",
// "record at byte 120: truncated: 8 bytes of a 30-byte record".
absl::StatusOr<std::vector<std::string>> ReadRecords(std::string_view file_bytes);

}  // namespace trainlab::tensorboard

#endif  // TRAINLAB_PLUGINS_TENSORBOARD_RECORD_H_
