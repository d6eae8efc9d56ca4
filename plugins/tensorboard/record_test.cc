#include "plugins/tensorboard/record.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "plugins/tensorboard/crc32c.h"

namespace trainlab::tensorboard {
namespace {

// Whether `status` is an error whose message contains `part`.
::testing::AssertionResult ErrorContains(const absl::Status& status, const std::string& part) {
  if (status.ok()) return ::testing::AssertionFailure() << "OK, expected an error";
  if (std::string(status.message()).find(part) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << status << " lacks \"" << part << "\"";
}

std::string Bytes(std::initializer_list<unsigned char> bytes) {
  return std::string(bytes.begin(), bytes.end());
}

TEST(RecordTest, FrameLayoutByteForByte) {
  // What TensorBoard's own tensorboard.summary.writer.record_writer.RecordWriter writes for
  // b"abc": 0300000000000000 b099490e 616263 6e57f121.
  const std::string expected = Bytes({0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xb0, 0x99,
                                      0x49, 0x0e, 'a', 'b', 'c', 0x6e, 0x57, 0xf1, 0x21});
  EXPECT_EQ(FrameRecord("abc"), expected);

  // The same from the definition: little-endian length and masked CRCs.
  const std::string length = Bytes({0x03, 0, 0, 0, 0, 0, 0, 0});
  const uint32_t length_crc = MaskedCrc32c(length);
  const uint32_t data_crc = MaskedCrc32c("abc");
  EXPECT_EQ(length_crc, 0x0e4999b0u);
  EXPECT_EQ(data_crc, 0x21f1576eu);

  std::string appended = "prefix";
  AppendRecord("abc", appended);
  EXPECT_EQ(appended, "prefix" + expected);
}

TEST(RecordTest, LengthIsSixtyFourBitLittleEndian) {
  const std::string framed = FrameRecord(std::string(0x1234, 'x'));
  ASSERT_EQ(framed.size(), kRecordHeaderSize + 0x1234 + kRecordFooterSize);
  EXPECT_EQ(framed.substr(0, 8), Bytes({0x34, 0x12, 0, 0, 0, 0, 0, 0}));
}

TEST(RecordTest, RoundTripsSeveralRecords) {
  std::string big(100 * 1024, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + 7);
  const std::vector<std::string> records = {"first", "", big, std::string("\0\xff\0", 3), "last"};
  std::string file;
  for (const std::string& record : records) file += FrameRecord(record);
  absl::StatusOr<std::vector<std::string>> read = ReadRecords(file);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, records);

  absl::StatusOr<std::vector<std::string>> empty = ReadRecords("");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());
}

// Two records, "hello" (21 bytes framed) then "world!": the second starts at byte 21.
std::string TwoRecords() { return FrameRecord("hello") + FrameRecord("world!"); }
constexpr size_t kSecond = 21;

TEST(RecordTest, FlippedLengthBitIsReportedWithItsOffset) {
  std::string file = TwoRecords();
  file[kSecond + 1] ^= 0x01;
  absl::StatusOr<std::vector<std::string>> read = ReadRecords(file);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(ErrorContains(read.status(), "record at byte 21: length CRC 0x"));
}

TEST(RecordTest, FlippedDataBitIsReportedWithItsOffset) {
  std::string file = TwoRecords();
  file[kSecond + kRecordHeaderSize + 2] ^= 0x40;
  absl::StatusOr<std::vector<std::string>> read = ReadRecords(file);
  ASSERT_FALSE(read.ok());
  EXPECT_TRUE(ErrorContains(read.status(), "record at byte 21: data CRC 0x"));
  EXPECT_TRUE(ErrorContains(read.status(), " does not match 0x"));
}

TEST(RecordTest, FlippedCrcBitsAreReported) {
  std::string file = TwoRecords();
  file[8] ^= 0x80;  // the first record's length CRC
  absl::StatusOr<std::vector<std::string>> read = ReadRecords(file);
  ASSERT_FALSE(read.ok());
  EXPECT_TRUE(ErrorContains(read.status(), "record at byte 0: length CRC"));

  file = TwoRecords();
  file[file.size() - 1] ^= 0x02;  // the second record's data CRC
  read = ReadRecords(file);
  ASSERT_FALSE(read.ok());
  EXPECT_TRUE(ErrorContains(read.status(), "record at byte 21: data CRC"));
}

TEST(RecordTest, TruncationIsReported) {
  const std::string file = TwoRecords();  // 21 + 22 bytes
  absl::StatusOr<std::vector<std::string>> read = ReadRecords(file.substr(0, kSecond + 8));
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(std::string(read.status().message()),
            "record at byte 21: truncated: 8 bytes of a 12-byte header");

  read = ReadRecords(file.substr(0, file.size() - 1));
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(std::string(read.status().message()),
            "record at byte 21: truncated: 21 bytes of a 22-byte record");

  read = ReadRecords(file.substr(0, kSecond + kRecordHeaderSize));
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(std::string(read.status().message()),
            "record at byte 21: truncated: 12 bytes of a 22-byte record");
}

}  // namespace
}  // namespace trainlab::tensorboard
