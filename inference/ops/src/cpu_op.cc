#include "cpu_op.h"

#include "cpu_kernel.h"

namespace podium {
namespace {

struct Job {
  const Problem* problem;
  const cpu::Tensors* tensors;
};

void RunJobTask(void* job, size_t task) {
  const Job& j = *static_cast<const Job*>(job);
  cpu::RunTask(*j.problem, *j.tensors, static_cast<int64_t>(task));
}

}  // namespace

OrtStatusPtr CpuKernel::ComputeV2(OrtKernelContext* context) {
  return GuardStatus([&]() -> OrtStatusPtr {
    Ort::KernelContext ctx(context);
    const CallInputs inputs = ReadInputs(ctx, attributes_);
    const Problem& problem = inputs.problem;
    const int32_t* row_ptr = inputs.values[kRowPtr].GetTensorData<int32_t>();
    const int32_t* col_idx = inputs.values[kColIdx].GetTensorData<int32_t>();
    const CsrFault fault = FindCsrFault(problem, row_ptr, col_idx);
    if (fault.kind != CsrFaultKind::kNone) return MakeStatus(ORT_INVALID_ARGUMENT, DescribeCsrFault(problem, fault));

    Ort::UnownedValue output = ctx.GetOutput(0, inputs.shapes[kQuery]);
    if (problem.Empty()) return nullptr;
    const cpu::Tensors tensors{inputs.values[kQuery].GetTensorData<float>(),
                               inputs.values[kKey].GetTensorData<float>(),
                               inputs.values[kValue].GetTensorData<float>(),
                               row_ptr,
                               col_idx,
                               output.GetTensorMutableData<float>()};
    Job job{&problem, &tensors};
    ctx.ParallelFor(&RunJobTask, static_cast<size_t>(cpu::TaskCount(problem)), 0, &job);
    return nullptr;
  });
}

}  // namespace podium
