#include "plugins/tensorboard/crc32c.h"

#include <cstdint>
#include <random>
#include <string>

#include "gtest/gtest.h"

namespace trainlab::tensorboard {
namespace {

// CRC-32C one bit at a time, straight from the definition: reflected, polynomial 0x1EDC6F41
// reversed (0x82F63B78, RFC 3720 B.4), initial value and final XOR all ones.
uint32_t ReferenceCrc32c(std::string_view data) {
  constexpr uint32_t kReflectedPolynomial = 0x82F63B78u;
  uint32_t crc = 0xFFFFFFFFu;
  for (const char c : data) {
    crc ^= static_cast<unsigned char>(c);
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? kReflectedPolynomial : 0);
  }
  return ~crc;
}

TEST(Crc32cTest, Supported) { EXPECT_TRUE(Crc32cSupported()); }

TEST(Crc32cTest, CheckValue) {
  // The catalogue's check value (CRC-32/ISCSI over "123456789").
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(ReferenceCrc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c("", 0x12345678u), 0x12345678u);
}

// RFC 3720 (iSCSI), appendix B.4.
TEST(Crc32cTest, Rfc3720Vectors) {
  EXPECT_EQ(Crc32c(std::string(32, '\x00')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(descending), 0x113FDB5Cu);
}

TEST(Crc32cTest, ExtendsAcrossSplits) {
  std::mt19937 random(20240611);
  for (int trial = 0; trial < 200; ++trial) {
    std::string data(random() % 300, '\0');
    for (char& c : data) c = static_cast<char>(random());
    const size_t split = data.empty() ? 0 : random() % (data.size() + 1);
    const std::string_view view(data);
    EXPECT_EQ(Crc32c(view.substr(split), Crc32c(view.substr(0, split))), Crc32c(data))
        << "size " << data.size() << ", split at " << split;
  }
}

TEST(Crc32cTest, AgreesWithBitwiseReferenceAtEveryLengthAndAlignment) {
  std::mt19937 random(7);
  std::string buffer(128, '\0');
  for (char& c : buffer) c = static_cast<char>(random());
  for (size_t start = 0; start < 8; ++start) {
    for (size_t length = 0; length <= 70; ++length) {
      const std::string_view data = std::string_view(buffer).substr(start, length);
      ASSERT_EQ(Crc32c(data), ReferenceCrc32c(data)) << "start " << start << ", length " << length;
    }
  }
}

TEST(Crc32cTest, MaskedIsRotatedPlusDelta) {
  for (const std::string data : {"", "123456789", "brain.Event:2", "\x01\x02\xff"}) {
    const uint32_t crc = Crc32c(data);
    EXPECT_EQ(MaskedCrc32c(data), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
  }
  // A value worked by hand: Crc32c("123456789") = 0xE3069283, rotated right by 15 = 0x2507C60D.
  EXPECT_EQ(MaskedCrc32c("123456789"), 0x2507C60Du + 0xa282ead8u);
}

}  // namespace
}  // namespace trainlab::tensorboard
