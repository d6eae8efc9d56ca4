#include "plugins/tensorboard/record.h"

#include <cstdint>
#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "plugins/tensorboard/crc32c.h"

namespace trainlab::tensorboard {
namespace {

void AppendLittleEndian(uint64_t value, int bytes, std::string& out) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t ReadLittleEndian(std::string_view bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    value |= uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  }
  return value;
}

std::string Hex(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", value);
  return text;
}

absl::Status RecordError(size_t offset, const std::string& what) {
  return absl::DataLossError(absl::StrCat("record at byte ", offset, ": ", what));
}

}  // namespace

void AppendRecord(std::string_view data, std::string& out) {
  const size_t start = out.size();
  out.reserve(start + kRecordHeaderSize + data.size() + kRecordFooterSize);
  AppendLittleEndian(data.size(), sizeof(uint64_t), out);
  AppendLittleEndian(MaskedCrc32c(std::string_view(out).substr(start, sizeof(uint64_t))),
                     sizeof(uint32_t), out);
  out.append(data);
  AppendLittleEndian(MaskedCrc32c(data), sizeof(uint32_t), out);
}

std::string FrameRecord(std::string_view data) {
  std::string out;
  AppendRecord(data, out);
  return out;
}

absl::StatusOr<std::vector<std::string>> ReadRecords(std::string_view file_bytes) {
  std::vector<std::string> records;
  size_t offset = 0;
  while (offset < file_bytes.size()) {
    const std::string_view rest = file_bytes.substr(offset);
    if (rest.size() < kRecordHeaderSize) {
      return RecordError(offset, absl::StrCat("truncated: ", rest.size(), " bytes of a ",
                                              kRecordHeaderSize, "-byte header"));
    }
    const std::string_view length_bytes = rest.substr(0, sizeof(uint64_t));
    const auto length_crc =
        static_cast<uint32_t>(ReadLittleEndian(rest.substr(sizeof(uint64_t), sizeof(uint32_t))));
    const uint32_t expected_length_crc = MaskedCrc32c(length_bytes);
    if (length_crc != expected_length_crc) {
      return RecordError(offset, absl::StrCat("length CRC ", Hex(length_crc), " does not match ",
                                              Hex(expected_length_crc)));
    }
    const uint64_t length = ReadLittleEndian(length_bytes);
    const size_t after_header = rest.size() - kRecordHeaderSize;
    if (after_header < kRecordFooterSize || length > after_header - kRecordFooterSize) {
      return RecordError(
          offset, absl::StrCat("truncated: ", rest.size(), " bytes of a ",
                               length + kRecordHeaderSize + kRecordFooterSize, "-byte record"));
    }
    const std::string_view data = rest.substr(kRecordHeaderSize, length);
    const auto data_crc = static_cast<uint32_t>(
        ReadLittleEndian(rest.substr(kRecordHeaderSize + length, kRecordFooterSize)));
    const uint32_t expected_data_crc = MaskedCrc32c(data);
    if (data_crc != expected_data_crc) {
      return RecordError(offset, absl::StrCat("data CRC ", Hex(data_crc), " does not match ",
                                              Hex(expected_data_crc)));
    }
    records.emplace_back(data);
    offset += kRecordHeaderSize + length + kRecordFooterSize;
  }
  return records;
}

}  // namespace trainlab::tensorboard
