#include "cuda_op.h"

#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace podium {
namespace {

std::string CudaErrorText(cudaError_t error) {
  return std::string(cudaGetErrorName(error)) + ": " + cudaGetErrorString(error);
}

std::string DescribeLaunchError(cudaError_t error, const cuda::Device& device) {
  std::string message = std::string(kOpName) + ": the CUDA kernel failed to launch (" + CudaErrorText(error) + ").";
  if (error == cudaErrorNoKernelImageForDevice || error == cudaErrorInvalidDeviceFunction) {
    message += " The op library has no kernel for this GPU (compute capability " + std::to_string(device.major) +
               "." + std::to_string(device.minor) + "); rebuild it on this machine with installer/build_ops.sh.";
  }
  return message;
}

bool Aligned16(const void* pointer) { return reinterpret_cast<uintptr_t>(pointer) % 16 == 0; }

}  // namespace

CudaKernel::CudaKernel(const Attributes& attributes, ONNXTensorElementDataType type)
    : attributes_(attributes),
      type_(type == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 ? cuda::ElementType::kBFloat16
                                                           : cuda::ElementType::kFloat16) {
  void* host = nullptr;
  cudaError_t error = cudaHostAlloc(&host, sizeof(cuda::DeviceFault), cudaHostAllocMapped | cudaHostAllocPortable);
  if (error == cudaSuccess) {
    std::memset(host, 0, sizeof(cuda::DeviceFault));
    fault_host_ = static_cast<cuda::DeviceFault*>(host);
    void* device = nullptr;
    error = cudaHostGetDevicePointer(&device, host, 0);
    fault_device_ = static_cast<cuda::DeviceFault*>(device);
  }
  if (error != cudaSuccess) {
    if (host != nullptr) cudaFreeHost(host);
    throw std::runtime_error("cannot map 16 bytes of host memory for the block-mask check (" + CudaErrorText(error) +
                             "); is the CUDA driver working?");
  }
}

CudaKernel::~CudaKernel() { cudaFreeHost(fault_host_); }

OrtStatusPtr CudaKernel::TakeEarlierFault(const Problem& problem) {
  volatile cuda::DeviceFault* record = fault_host_;
  const int32_t kind_and_head = record->kind_and_head;
  if (kind_and_head == 0) return nullptr;
  CsrFault fault;
  fault.kind = static_cast<CsrFaultKind>(kind_and_head & 0xff);
  fault.head = (kind_and_head >> 8) - 1;
  fault.batch = record->batch;
  fault.index = record->index;
  fault.value = record->value;
  record->kind_and_head = 0;
  return MakeStatus(ORT_INVALID_ARGUMENT,
                    DescribeCsrFault(problem, fault) +
                        " (Found on the GPU by an earlier run of this node, which wrote NaN for the query rows of "
                        "that mask row.)");
}

OrtStatusPtr CudaKernel::ComputeV2(OrtKernelContext* context) {
  return GuardStatus([&]() -> OrtStatusPtr {
    Ort::KernelContext ctx(context);
    const CallInputs inputs = ReadInputs(ctx, attributes_);
    const Problem& problem = inputs.problem;
    const std::string op = std::string(kOpName) + ": ";
    if (problem.head_dim != 64 && problem.head_dim != 128) {
      return MakeStatus(ORT_INVALID_ARGUMENT,
                        op + "the CUDA kernel takes head_dim 64 or 128, got " + std::to_string(problem.head_dim) + ".");
    }
    if (OrtStatusPtr earlier = TakeEarlierFault(problem)) return earlier;

    cuda::Device device;
    if (const cudaError_t error = cuda::CurrentDevice(&device); error != cudaSuccess) {
      return MakeStatus(ORT_RUNTIME_EXCEPTION, op + "no CUDA device (" + CudaErrorText(error) + ").");
    }
    if (type_ == cuda::ElementType::kBFloat16 && device.major < 8) {
      const std::string capability = std::to_string(device.major) + "." + std::to_string(device.minor);
      return MakeStatus(ORT_INVALID_ARGUMENT, op + "bfloat16 needs a GPU of compute capability 8.0 or newer, this one is " +
                                                  capability + "; export the model in float16.");
    }

    Ort::UnownedValue output = ctx.GetOutput(0, inputs.shapes[kQuery]);
    if (problem.Empty()) return nullptr;

    cuda::Params params{};
    params.q = inputs.values[kQuery].GetTensorRawData();
    params.k = inputs.values[kKey].GetTensorRawData();
    params.v = inputs.values[kValue].GetTensorRawData();
    params.out = output.GetTensorMutableRawData();
    if (!Aligned16(params.q) || !Aligned16(params.k) || !Aligned16(params.v) || !Aligned16(params.out)) {
      return MakeStatus(ORT_INVALID_ARGUMENT, op + "q, k, v and the output must start on 16-byte boundaries on the "
                                                  "GPU; bind buffers from a CUDA allocator.");
    }
    params.row_ptr = inputs.values[kRowPtr].GetTensorData<int32_t>();
    params.col_idx = inputs.values[kColIdx].GetTensorData<int32_t>();
    params.fault = fault_device_;
    params.batch = static_cast<int32_t>(problem.batch);
    params.heads = static_cast<int32_t>(problem.heads);
    params.q_len = static_cast<int32_t>(problem.q_len);
    params.kv_len = static_cast<int32_t>(problem.kv_len);
    params.head_dim = static_cast<int32_t>(problem.head_dim);
    params.block_size = static_cast<int32_t>(problem.block_size);
    params.q_blocks = static_cast<int32_t>(problem.q_blocks);
    params.kv_blocks = static_cast<int32_t>(problem.kv_blocks);
    params.nnz = static_cast<int32_t>(problem.nnz);
    params.mask_heads = static_cast<int32_t>(problem.mask_heads);
    params.scale_log2 = problem.scale * 1.4426950408889634f;

    const auto stream = static_cast<cudaStream_t>(ctx.GetGPUComputeStream());
    if (const cudaError_t error = cuda::LaunchBlockSparseAttention(params, type_, device, stream);
        error != cudaSuccess) {
      return MakeStatus(ORT_RUNTIME_EXCEPTION, DescribeLaunchError(error, device));
    }
    return nullptr;
  });
}

}  // namespace podium
