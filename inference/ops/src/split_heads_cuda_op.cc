// SplitHeadsNorm on the CUDA execution provider: shapes checked on the host, one launch on the stream
// ONNX Runtime hands the op; no allocation, no synchronisation (IO binding, CUDA graph capture).
#include <cstdint>
#include <string>

#include "cuda/launch.h"
#include "split_heads_op.h"

namespace podium::split_heads {

OrtStatusPtr CudaKernel::ComputeV2(OrtKernelContext* context) {
  return GuardStatus([&]() -> OrtStatusPtr {
    Ort::KernelContext ctx(context);
    const CallInputs inputs = ReadInputs(ctx, attributes_);
    const Problem& problem = inputs.problem;
    const std::string op = std::string(kName) + ": ";
    const bool float32 = type_ == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    const int64_t max_head_dim = float32 ? 128 : 256;  // 32 lanes of 16 bytes
    if (problem.head_dim % 8 != 0 || problem.head_dim > max_head_dim) {
      return MakeStatus(ORT_INVALID_ARGUMENT, op + "the CUDA kernel takes head_dim a multiple of 8 up to " +
                                                  std::to_string(max_head_dim) + (float32 ? " in float32" : "") +
                                                  ", got " + std::to_string(problem.head_dim) + ".");
    }
    cuda::SplitHeadsParams params{};
    params.qkv = inputs.qkv.GetTensorRawData();
    params.q_weight = inputs.q_weight.GetTensorRawData();
    params.k_weight = inputs.k_weight.GetTensorRawData();
    for (size_t i = 0; i < kOutputCount; ++i) {
      params.out[i] = ctx.GetOutput(i, problem.OutputShape()).GetTensorMutableRawData();
    }
    if (problem.Empty()) return nullptr;
    for (const void* pointer : {params.qkv, params.q_weight, params.k_weight, static_cast<const void*>(params.out[0]),
                                static_cast<const void*>(params.out[1]), static_cast<const void*>(params.out[2])}) {
      if (reinterpret_cast<uintptr_t>(pointer) % 16 != 0) {
        return MakeStatus(ORT_INVALID_ARGUMENT, op + "qkv, the weights and the outputs must start on 16-byte "
                                                    "boundaries on the GPU; bind buffers from a CUDA allocator.");
      }
    }
    params.rows = problem.Rows();
    params.tokens = problem.tokens;
    params.heads = static_cast<int32_t>(problem.heads);
    params.head_dim = static_cast<int32_t>(problem.head_dim);
    params.epsilon = problem.epsilon;
    const auto type = float32 ? cuda::ElementType::kFloat32
                      : type_ == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 ? cuda::ElementType::kBFloat16
                                                                       : cuda::ElementType::kFloat16;
    const auto stream = static_cast<cudaStream_t>(ctx.GetGPUComputeStream());
    if (const cudaError_t error = cuda::LaunchSplitHeadsNorm(params, type, stream); error != cudaSuccess) {
      return MakeStatus(ORT_RUNTIME_EXCEPTION, op + "the CUDA kernel failed to launch (" + cudaGetErrorName(error) +
                                                   ": " + cudaGetErrorString(error) + ").");
    }
    return nullptr;
  }, kName);
}

}  // namespace podium::split_heads
