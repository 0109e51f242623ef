// The library's entry points: RegisterCustomOps (called by ONNX Runtime through
// SessionOptions.register_custom_ops_library; registers BlockSparseAttention and SplitHeadsNorm in the
// ai.podium domain) and three small queries for inference/ops/__init__.py.
#include <mutex>
#include <string>
#include <vector>

#include "cpu_op.h"
#include "split_heads_op.h"
#ifdef PODIUM_OPS_WITH_CUDA
#include "cuda_op.h"
#endif

#define PODIUM_EXPORT extern "C" __attribute__((visibility("default")))

#ifndef PODIUM_OPS_BUILD_INFO
#define PODIUM_OPS_BUILD_INFO "cpu"
#endif

namespace {

// Domains must outlive every session that uses them.
std::vector<Ort::CustomOpDomain>& RegisteredDomains() {
  static std::vector<Ort::CustomOpDomain> domains;
  return domains;
}
std::mutex g_domains_mutex;

}  // namespace

PODIUM_EXPORT OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
  const OrtApi* api = api_base->GetApi(ORT_API_VERSION);
  if (api == nullptr) {  // an ONNX Runtime older than the headers we were built with
    const std::string message = std::string(podium::kOpName) + ": ONNX Runtime " + api_base->GetVersionString() +
                                " is too old; the op library needs ONNX Runtime 1.21 or newer.";
    return api_base->GetApi(1)->CreateStatus(ORT_FAIL, message.c_str());
  }
  Ort::InitApi(api);
  return podium::GuardStatus([&]() -> OrtStatusPtr {
    static podium::CpuOp cpu_op;
    Ort::CustomOpDomain domain{podium::kOpDomain};
    static podium::split_heads::CpuOp split_heads_cpu_op;
    domain.Add(&cpu_op);
    domain.Add(&split_heads_cpu_op);
#ifdef PODIUM_OPS_WITH_CUDA
    static podium::CudaOp<ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16> cuda_fp16_op;
    static podium::CudaOp<ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16> cuda_bf16_op;
    static podium::split_heads::CudaOp<ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT> split_heads_fp32_op;
    static podium::split_heads::CudaOp<ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16> split_heads_fp16_op;
    static podium::split_heads::CudaOp<ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16> split_heads_bf16_op;
    domain.Add(&cuda_fp16_op);
    domain.Add(&cuda_bf16_op);
    domain.Add(&split_heads_fp32_op);
    domain.Add(&split_heads_fp16_op);
    domain.Add(&split_heads_bf16_op);
#endif
    Ort::UnownedSessionOptions(options).Add(domain);
    std::lock_guard<std::mutex> lock(g_domains_mutex);
    RegisteredDomains().push_back(std::move(domain));
    return nullptr;
  });
}

// The newest ai.podium opset version this library implements.
PODIUM_EXPORT int PodiumOpsOpVersion(void) { return podium::kOpSetVersion; }

// 1 when the library carries CUDA kernels.
PODIUM_EXPORT int PodiumOpsHasCuda(void) {
#ifdef PODIUM_OPS_WITH_CUDA
  return 1;
#else
  return 0;
#endif
}

// One line: what the library was built with ("cpu" or "cuda 13.0, sm_75 ... sm_120 + PTX").
PODIUM_EXPORT const char* PodiumOpsBuildInfo(void) { return PODIUM_OPS_BUILD_INFO; }
