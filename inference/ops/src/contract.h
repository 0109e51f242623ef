// The contract of BlockSparseAttention: names, attributes, shapes and the block-mask rules.
//
// Everything here is plain C++ (no ONNX Runtime, no CUDA), shared by the CPU and the CUDA
// kernels so that both accept exactly the same inputs and word their errors the same way.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace podium {

inline constexpr const char* kOpName = "BlockSparseAttention";
inline constexpr const char* kOpDomain = "ai.podium";
inline constexpr int kSinceVersion = 1;  // the ai.podium opset version that added BlockSparseAttention
// The newest ai.podium opset version this library implements (2 added SplitHeadsNorm, split_heads.h).
inline constexpr int kOpSetVersion = 2;

// Input positions of the node.
enum InputIndex : size_t { kQuery = 0, kKey = 1, kValue = 2, kRowPtr = 3, kColIdx = 4, kInputCount = 5 };

// A user-facing contract violation; what() is a full sentence that says what to fix.
class ContractError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The node's attributes, read once when ONNX Runtime creates the kernel.
struct Attributes {
  int64_t block_size = 0;  // query and key block size, 64 or 128
  bool has_scale = false;  // false: the scale is 1/sqrt(head_dim)
  float scale = 0.f;
};

// Checks the attributes; throws ContractError.
void CheckAttributes(const Attributes& attributes);

// The sizes of one call, derived from the input shapes after they were checked against each other.
struct Problem {
  int64_t batch = 0;
  int64_t heads = 0;
  int64_t q_len = 0;
  int64_t kv_len = 0;
  int64_t head_dim = 0;
  int64_t block_size = 0;
  int64_t q_blocks = 0;    // ceil(q_len / block_size)
  int64_t kv_blocks = 0;   // ceil(kv_len / block_size)
  int64_t nnz = 0;         // length of one col_idx row (entries past the row's row_ptr end are padding)
  int64_t mask_heads = 1;  // 1: one mask for every head; heads: one mask per head
  float scale = 0.f;       // the softmax scale actually applied

  // The mask slice (index into the leading dims of row_ptr and col_idx) used by batch b and head h.
  int64_t MaskSlice(int64_t b, int64_t h) const { return b * mask_heads + (mask_heads > 1 ? h : 0); }
  bool Empty() const { return batch == 0 || heads == 0 || q_len == 0 || head_dim == 0; }
};

using Shape = std::vector<int64_t>;

// Checks the five input shapes against each other and against the attributes; throws ContractError.
Problem DescribeProblem(const Shape& q, const Shape& k, const Shape& v, const Shape& row_ptr, const Shape& col_idx,
                        const Attributes& attributes);

// The ways a block mask in CSR form can be malformed. The values are shared with the CUDA kernels,
// which find the same faults on the device.
enum class CsrFaultKind : int32_t {
  kNone = 0,
  kRowPtrStart = 1,          // row_ptr[.., 0] is not 0
  kRowPtrOutOfRange = 2,     // a row pointer is negative or past the end of col_idx
  kRowPtrDecreasing = 3,     // a row pointer is smaller than the one before it
  kColumnOutOfRange = 4,     // a key-block index is negative or >= kv_blocks
  kColumnsNotIncreasing = 5, // key-block indices of one row are not strictly increasing
};

struct CsrFault {
  CsrFaultKind kind = CsrFaultKind::kNone;
  int64_t batch = 0;
  int64_t head = -1;  // -1: the mask is shared by all heads
  int64_t index = 0;  // position in the row_ptr row (row-pointer faults) or the col_idx row (column faults)
  int64_t value = 0;  // the offending entry
};

// Finds the first fault of the mask on the host, or returns kind kNone. Reads only inside the tensors.
CsrFault FindCsrFault(const Problem& problem, const int32_t* row_ptr, const int32_t* col_idx);

// "BlockSparseAttention: malformed block mask: ...": the message for a fault, with the fix.
std::string DescribeCsrFault(const Problem& problem, const CsrFault& fault);

// "[2, 16, 100, 64]"
std::string FormatShape(const Shape& shape);

}  // namespace podium
