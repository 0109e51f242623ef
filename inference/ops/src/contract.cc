#include "contract.h"

#include <cmath>
#include <limits>
#include <sstream>

namespace podium {
namespace {

constexpr int64_t kMaxGridDim = 65535;                              // CUDA grid y/z limit (heads, batch)
constexpr int64_t kMaxSliceElements = std::numeric_limits<int32_t>::max();  // one (batch, head) slice

std::string Prefix() { return std::string(kOpName) + ": "; }

[[noreturn]] void Fail(const std::string& message) { throw ContractError(Prefix() + message); }

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

void CheckRank(const char* name, const Shape& shape, size_t rank, const char* layout) {
  if (shape.size() != rank) {
    Fail(std::string(name) + " must have rank " + std::to_string(rank) + " " + layout + ", got shape " +
         FormatShape(shape) + ".");
  }
}

std::string MaskPosition(const Problem& problem, const CsrFault& fault, const char* tensor) {
  std::ostringstream out;
  out << tensor << "[" << fault.batch;
  if (problem.mask_heads > 1) out << ", " << fault.head;
  out << ", " << fault.index << "]";
  return out.str();
}

}  // namespace

std::string FormatShape(const Shape& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

void CheckAttributes(const Attributes& attributes) {
  if (attributes.block_size != 64 && attributes.block_size != 128) {
    Fail("attribute block_size is " + std::to_string(attributes.block_size) +
         "; it must be 64 or 128 (the side of one square block of the mask, in tokens).");
  }
  if (attributes.has_scale && !(std::isfinite(attributes.scale) && attributes.scale > 0.f)) {
    std::ostringstream out;
    out << "attribute scale is " << attributes.scale
        << "; it must be a positive finite number (leave it out for 1/sqrt(head_dim)).";
    Fail(out.str());
  }
}

Problem DescribeProblem(const Shape& q, const Shape& k, const Shape& v, const Shape& row_ptr, const Shape& col_idx,
                        const Attributes& attributes) {
  CheckRank("q", q, 4, "[batch, heads, q_len, head_dim]");
  CheckRank("k", k, 4, "[batch, heads, kv_len, head_dim]");
  CheckRank("v", v, 4, "[batch, heads, kv_len, head_dim]");
  if (k != v) Fail("k and v must have the same shape, got k " + FormatShape(k) + " and v " + FormatShape(v) + ".");
  if (k[0] != q[0] || k[1] != q[1] || k[3] != q[3]) {
    Fail("k " + FormatShape(k) + " must match q " + FormatShape(q) + " in batch, heads and head_dim.");
  }

  Problem p;
  p.batch = q[0];
  p.heads = q[1];
  p.q_len = q[2];
  p.kv_len = k[2];
  p.head_dim = q[3];
  p.block_size = attributes.block_size;
  p.q_blocks = CeilDiv(p.q_len, p.block_size);
  p.kv_blocks = CeilDiv(p.kv_len, p.block_size);
  p.scale = attributes.has_scale ? attributes.scale
                                 : (p.head_dim > 0 ? 1.f / std::sqrt(static_cast<float>(p.head_dim)) : 1.f);

  if (p.batch > kMaxGridDim || p.heads > kMaxGridDim) {
    Fail("batch " + std::to_string(p.batch) + " and heads " + std::to_string(p.heads) + " must each be at most " +
         std::to_string(kMaxGridDim) + ".");
  }
  if (p.q_len * p.head_dim > kMaxSliceElements || p.kv_len * p.head_dim > kMaxSliceElements) {
    Fail("one (batch, head) slice of q, k or v must hold fewer than 2^31 elements; got q_len " +
         std::to_string(p.q_len) + ", kv_len " + std::to_string(p.kv_len) + ", head_dim " +
         std::to_string(p.head_dim) + ".");
  }

  const bool per_head = row_ptr.size() == 3;
  if (row_ptr.size() != 2 && !per_head) {
    Fail("row_ptr must have shape [batch, q_blocks + 1] (one mask for all heads) or [batch, heads, q_blocks + 1] "
         "(one mask per head), got " + FormatShape(row_ptr) + ".");
  }
  p.mask_heads = per_head ? p.heads : 1;
  const Shape expected_row_ptr = per_head ? Shape{p.batch, p.heads, p.q_blocks + 1} : Shape{p.batch, p.q_blocks + 1};
  if (row_ptr != expected_row_ptr) {
    Fail("row_ptr must have shape " + FormatShape(expected_row_ptr) + " for q_len " + std::to_string(p.q_len) +
         " and block_size " + std::to_string(p.block_size) + " (q_blocks = ceil(q_len / block_size) = " +
         std::to_string(p.q_blocks) + "), got " + FormatShape(row_ptr) + ".");
  }
  if (col_idx.size() != row_ptr.size() || col_idx[0] != p.batch || (per_head && col_idx[1] != p.heads)) {
    Fail(std::string("col_idx must have shape ") + (per_head ? "[batch, heads, nnz]" : "[batch, nnz]") +
         " to go with row_ptr " + FormatShape(row_ptr) + ", got " + FormatShape(col_idx) + ".");
  }
  p.nnz = col_idx.back();
  return p;
}

CsrFault FindCsrFault(const Problem& problem, const int32_t* row_ptr, const int32_t* col_idx) {
  const int64_t slices = problem.batch * problem.mask_heads;
  for (int64_t slice = 0; slice < slices; ++slice) {
    CsrFault fault;
    fault.batch = slice / problem.mask_heads;
    fault.head = problem.mask_heads > 1 ? slice % problem.mask_heads : -1;
    const int32_t* rp = row_ptr + slice * (problem.q_blocks + 1);
    const int32_t* ci = col_idx + slice * problem.nnz;

    if (rp[0] != 0) {
      fault.kind = CsrFaultKind::kRowPtrStart;
      fault.value = rp[0];
      return fault;
    }
    for (int64_t r = 1; r <= problem.q_blocks; ++r) {
      fault.index = r;
      fault.value = rp[r];
      if (rp[r] < 0 || rp[r] > problem.nnz) {
        fault.kind = CsrFaultKind::kRowPtrOutOfRange;
        return fault;
      }
      if (rp[r] < rp[r - 1]) {
        fault.kind = CsrFaultKind::kRowPtrDecreasing;
        return fault;
      }
    }
    for (int64_t r = 0; r < problem.q_blocks; ++r) {
      for (int64_t j = rp[r]; j < rp[r + 1]; ++j) {
        fault.index = j;
        fault.value = ci[j];
        if (ci[j] < 0 || ci[j] >= problem.kv_blocks) {
          fault.kind = CsrFaultKind::kColumnOutOfRange;
          return fault;
        }
        if (j > rp[r] && ci[j] <= ci[j - 1]) {
          fault.kind = CsrFaultKind::kColumnsNotIncreasing;
          return fault;
        }
      }
    }
  }
  return CsrFault{};
}

std::string DescribeCsrFault(const Problem& problem, const CsrFault& fault) {
  std::ostringstream what;
  const std::string rp = MaskPosition(problem, fault, "row_ptr");
  const std::string ci = MaskPosition(problem, fault, "col_idx");
  switch (fault.kind) {
    case CsrFaultKind::kRowPtrStart:
      what << rp << " is " << fault.value << ", but a row-pointer array starts at 0";
      break;
    case CsrFaultKind::kRowPtrOutOfRange:
      what << rp << " = " << fault.value << " is outside [0, " << problem.nnz << "], the length of a col_idx row";
      break;
    case CsrFaultKind::kRowPtrDecreasing:
      what << rp << " = " << fault.value << " is smaller than the row pointer before it; row pointers must not "
           << "decrease";
      break;
    case CsrFaultKind::kColumnOutOfRange:
      what << ci << " = " << fault.value << " is not a key block: there are " << problem.kv_blocks
           << " (kv_len " << problem.kv_len << ", block_size " << problem.block_size << ")";
      break;
    case CsrFaultKind::kColumnsNotIncreasing:
      what << ci << " = " << fault.value << " is not greater than the key block before it; the key blocks of a "
           << "query block must be listed once each, in increasing order";
      break;
    case CsrFaultKind::kNone:
      what << "no fault";
      break;
  }
  return Prefix() + "malformed block mask: " + what.str() +
         ". Build row_ptr/col_idx with inference.ops.csr.block_mask_to_csr.";
}

}  // namespace podium
