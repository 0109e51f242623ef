// The CPU kernel: flash-attention style, fp32, one task per (batch, head, query block).
//
// A task copies its query block once, then visits only the key blocks its CSR row keeps, with an
// online softmax (running max and sum per row): no q_len x kv_len matrix is ever formed, and the
// work is proportional to the number of kept blocks. The mask must have been checked
// (FindCsrFault) before any task runs.
#pragma once

#include <cstdint>

#include "contract.h"

namespace podium::cpu {

struct Tensors {
  const float* q;
  const float* k;
  const float* v;
  const int32_t* row_ptr;
  const int32_t* col_idx;
  float* out;
};

// Number of independent tasks: batch * heads * q_blocks.
int64_t TaskCount(const Problem& problem);

// Computes the output rows of one task. Thread-safe: tasks write disjoint rows and keep their
// scratch buffers per thread.
void RunTask(const Problem& problem, const Tensors& tensors, int64_t task);

}  // namespace podium::cpu
