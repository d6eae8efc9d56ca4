// ReadDistEnv: the environment torchrun, a scheduler or a person sets, and each mistake in it.
#include "plugins/distributed/dist_env.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace trainlab::distributed {
namespace {

absl::StatusOr<std::optional<DistEnv>> Read(std::map<std::string, std::string> vars,
                                            bool group_of_one = false) {
  return ReadDistEnv(
      [vars = std::move(vars)](const char* name) -> const char* {
        auto it = vars.find(name);
        return it == vars.end() ? nullptr : it->second.c_str();
      },
      group_of_one);
}

std::string ErrorOf(std::map<std::string, std::string> vars) {
  auto e = Read(std::move(vars));
  return e.ok() ? "(ok)" : std::string(e.status().message());
}

const std::map<std::string, std::string> kByHand = {
    {"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29511"}};

TEST(DistEnv, NoWorldSizeOrOneIsOneProcess) {
  EXPECT_FALSE(Read({})->has_value());
  EXPECT_FALSE(Read({{"WORLD_SIZE", "1"}, {"RANK", "0"}})->has_value());
}

TEST(DistEnv, AGroupOfOneIsReadAndCheckedWhenAskedFor) {
  const std::map<std::string, std::string> one = {{"WORLD_SIZE", "1"},
                                                  {"RANK", "0"},
                                                  {"LOCAL_RANK", "3"},
                                                  {"MASTER_ADDR", "127.0.0.1"},
                                                  {"MASTER_PORT", "29531"}};
  absl::StatusOr<std::optional<DistEnv>> e = Read(one, /*group_of_one=*/true);
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_TRUE(e->has_value());
  EXPECT_EQ((*e)->world_size, 1);
  EXPECT_EQ((*e)->local_rank, 3);
  EXPECT_EQ((*e)->master_port, 29531);
  EXPECT_TRUE((*e)->hosts_store());
  EXPECT_FALSE(Read(one)->has_value());  // not asked for: one process, no group
  absl::StatusOr<std::optional<DistEnv>> no_port =
      Read({{"WORLD_SIZE", "1"}, {"RANK", "0"}, {"MASTER_ADDR", "127.0.0.1"}}, true);
  ASSERT_FALSE(no_port.ok());
  EXPECT_EQ(no_port.status().message(),
            "MASTER_PORT is not set; WORLD_SIZE=1 needs the store's port");
}

TEST(DistEnv, ByHandRankZeroHostsTheStore) {
  auto e = Read(kByHand);
  ASSERT_TRUE(e.ok() && e->has_value());
  EXPECT_EQ((*e)->rank, 1);
  EXPECT_EQ((*e)->local_rank, 1);  // defaults to RANK on one machine
  EXPECT_FALSE((*e)->hosts_store());
  EXPECT_EQ((*e)->store_prefix(), "");
  auto zero = kByHand;
  zero["RANK"] = "0";
  EXPECT_TRUE((*Read(zero))->hosts_store());
}

TEST(DistEnv, UnderTorchrunEveryRankIsAClientWithTheAttemptPrefix) {
  auto vars = kByHand;
  vars["RANK"] = "0";
  vars["LOCAL_RANK"] = "0";
  vars["TORCHELASTIC_USE_AGENT_STORE"] = "True";
  vars["TORCHELASTIC_RESTART_COUNT"] = "2";
  auto e = Read(vars);
  ASSERT_TRUE(e.ok() && e->has_value());
  EXPECT_FALSE((*e)->hosts_store());
  EXPECT_EQ((*e)->store_prefix(), "/worker/attempt_2");
}

TEST(DistEnv, EachMistakeGetsOneClearError) {
  auto v = kByHand;
  v["RANK"] = "5";
  EXPECT_EQ(ErrorOf(v), "RANK=5 is out of range for WORLD_SIZE=2 (0 to 1)");
  v = kByHand;
  v.erase("RANK");
  EXPECT_EQ(ErrorOf(v), "WORLD_SIZE=2 but RANK is not set (each process needs its rank, 0 to 1)");
  v = kByHand;
  v.erase("MASTER_ADDR");
  EXPECT_EQ(ErrorOf(v).find("WORLD_SIZE=2 needs MASTER_ADDR"), 0u);
  v = kByHand;
  v.erase("MASTER_PORT");
  EXPECT_EQ(ErrorOf(v), "MASTER_PORT is not set; WORLD_SIZE=2 needs the store's port");
  v = kByHand;
  v["MASTER_PORT"] = "70000";
  EXPECT_EQ(ErrorOf(v), "MASTER_PORT=70000: not an integer in [1, 65535]");
  v = kByHand;
  v["WORLD_SIZE"] = "two";
  EXPECT_EQ(ErrorOf(v).find("WORLD_SIZE=two: not an integer"), 0u);
  v = kByHand;
  v["LOCAL_RANK"] = "-1";
  EXPECT_EQ(ErrorOf(v), "LOCAL_RANK=-1: not an integer >= 0");
}

}  // namespace
}  // namespace trainlab::distributed
