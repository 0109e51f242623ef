// The contract of SplitHeadsNorm, and its CPU computation.
//
// A transformer block projects its tokens to q, k and v with one matrix product. SplitHeadsNorm takes
// that product, qkv [batch, tokens, 3 * heads * head_dim] (q, then k, then v, each head after head),
// and writes q, k and v as [batch, heads, tokens, head_dim], with q and k RMS-normalised over head_dim
// and scaled by their weights (QK-RMSNorm). ONNX Runtime would run this as a split, two RMSNorms and
// three transposes; RMSNorm over rows of 64 is slow there (one CTA per row).
//
// Plain C++ (no ONNX Runtime, no CUDA), shared by the CPU and the CUDA kernels.
#pragma once

#include <cstdint>

#include "contract.h"

namespace podium::split_heads {

inline constexpr const char* kName = "SplitHeadsNorm";
inline constexpr int kSinceVersion = 2;  // the ai.podium opset version that added this op

enum InputIndex : size_t { kQkv = 0, kQWeight = 1, kKWeight = 2, kInputCount = 3 };
inline constexpr size_t kOutputCount = 3;  // q, k, v

struct Attributes {
  int64_t heads = 0;
  float epsilon = 1e-6f;
};

// Checks the attributes; throws ContractError.
void CheckAttributes(const Attributes& attributes);

struct Problem {
  int64_t batch = 0;
  int64_t tokens = 0;
  int64_t heads = 0;
  int64_t head_dim = 0;
  float epsilon = 0.f;

  int64_t Rows() const { return batch * tokens * 3 * heads; }  // rows of head_dim values, q, k and v
  Shape OutputShape() const { return {batch, heads, tokens, head_dim}; }
  bool Empty() const { return Rows() == 0 || head_dim == 0; }
};

// Checks the three input shapes against each other and the attributes; throws ContractError.
Problem DescribeProblem(const Shape& qkv, const Shape& q_weight, const Shape& k_weight, const Attributes& attributes);

// Computes the outputs of tokens [token_begin, token_end) of the flattened batch * tokens axis (float32).
void RunCpu(const Problem& problem, const float* qkv, const float* q_weight, const float* k_weight, float* q, float* k,
            float* v, int64_t token_begin, int64_t token_end);

}  // namespace podium::split_heads
