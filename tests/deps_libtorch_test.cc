// LibTorch is linked and usable: a tensor op, and a backward pass with a known gradient.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/version.h>

#include "gtest/gtest.h"

namespace {

TEST(LibTorch, MatmulGivesTheKnownProduct) {
  at::Tensor a = at::tensor({1.0, 2.0, 3.0, 4.0}, at::kDouble).reshape({2, 2});
  at::Tensor b = at::tensor({5.0, 6.0, 7.0, 8.0}, at::kDouble).reshape({2, 2});
  at::Tensor c = at::matmul(a, b);
  EXPECT_DOUBLE_EQ(c[0][0].item<double>(), 19.0);
  EXPECT_DOUBLE_EQ(c[1][1].item<double>(), 50.0);
}

TEST(LibTorch, BackwardOfSumOfSquaresIsTwiceTheInput) {
  at::Tensor x = at::tensor({1.5, -2.0, 0.25}, at::kDouble).set_requires_grad(true);
  at::Tensor y = (x * x).sum();
  torch::autograd::backward({y});
  ASSERT_TRUE(x.grad().defined());
  EXPECT_TRUE(at::allclose(x.grad(), 2 * x.detach()));
}

TEST(LibTorch, VersionIsKnown) { EXPECT_GE(TORCH_VERSION_MAJOR, 1); }

}  // namespace
