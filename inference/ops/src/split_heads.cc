#include "split_heads.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <string>

namespace podium::split_heads {
namespace {

[[noreturn]] void Fail(const std::string& message) { throw ContractError(std::string(kName) + ": " + message); }

}  // namespace

void CheckAttributes(const Attributes& attributes) {
  if (attributes.heads < 1) {
    Fail("attribute heads is " + std::to_string(attributes.heads) + "; it must be the number of attention heads (>= 1).");
  }
  if (!(std::isfinite(attributes.epsilon) && attributes.epsilon > 0.f)) {
    std::ostringstream out;
    out << "attribute epsilon is " << attributes.epsilon << "; it must be a positive finite number (default 1e-6).";
    Fail(out.str());
  }
}

Problem DescribeProblem(const Shape& qkv, const Shape& q_weight, const Shape& k_weight, const Attributes& attributes) {
  if (qkv.size() != 3) {
    Fail("qkv must have rank 3 [batch, tokens, 3 * heads * head_dim], got shape " + FormatShape(qkv) + ".");
  }
  const int64_t parts = 3 * attributes.heads;
  if (qkv[2] % parts != 0) {
    Fail("the last dimension of qkv " + FormatShape(qkv) + " must be 3 * heads * head_dim; it is not a multiple of 3 * " +
         std::to_string(attributes.heads) + " heads.");
  }
  Problem p;
  p.batch = qkv[0];
  p.tokens = qkv[1];
  p.heads = attributes.heads;
  p.head_dim = qkv[2] / parts;
  p.epsilon = attributes.epsilon;
  const Shape weight{p.head_dim};
  if (q_weight != weight || k_weight != weight) {
    Fail("q_weight and k_weight must have shape " + FormatShape(weight) + " (head_dim), got " + FormatShape(q_weight) +
         " and " + FormatShape(k_weight) + ".");
  }
  if (p.Rows() > std::numeric_limits<int32_t>::max() / 32) {
    Fail("qkv " + FormatShape(qkv) + " is too large: batch * tokens * 3 * heads must stay below 2^26.");
  }
  return p;
}

void RunCpu(const Problem& problem, const float* qkv, const float* q_weight, const float* k_weight, float* q, float* k,
            float* v, int64_t token_begin, int64_t token_end) {
  const int64_t heads = problem.heads, dim = problem.head_dim, tokens = problem.tokens;
  float* outputs[3] = {q, k, v};
  const float* weights[2] = {q_weight, k_weight};
  for (int64_t token = token_begin; token < token_end; ++token) {
    const int64_t b = token / tokens, n = token % tokens;
    for (int64_t part = 0; part < 3; ++part) {
      for (int64_t h = 0; h < heads; ++h) {
        const float* in = qkv + ((token * 3 + part) * heads + h) * dim;
        float* out = outputs[part] + ((b * heads + h) * tokens + n) * dim;
        if (part == 2) {
          for (int64_t d = 0; d < dim; ++d) out[d] = in[d];
          continue;
        }
        double squares = 0.0;
        for (int64_t d = 0; d < dim; ++d) squares += static_cast<double>(in[d]) * in[d];
        const float inverse = static_cast<float>(1.0 / std::sqrt(squares / dim + problem.epsilon));
        for (int64_t d = 0; d < dim; ++d) out[d] = in[d] * inverse * weights[part][d];
      }
    }
  }
}

}  // namespace podium::split_heads
