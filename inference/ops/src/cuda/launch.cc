#include "launch.h"

#include <cstdlib>
#include <cstring>

namespace podium::cuda {
namespace {

#ifdef PODIUM_OPS_WITH_SM90A
bool UseWgmma(const Device& device) {
  static const bool forced_portable = [] {
    const char* value = std::getenv("PODIUM_BSA_KERNEL");
    return value != nullptr && std::strcmp(value, "mma") == 0;
  }();
  return device.major == 9 && device.minor == 0 && !forced_portable;
}
#else
bool UseWgmma(const Device&) { return false; }
#endif

}  // namespace

cudaError_t CurrentDevice(Device* device) {
  cudaError_t error = cudaGetDevice(&device->ordinal);
  if (error == cudaSuccess) {
    error = cudaDeviceGetAttribute(&device->major, cudaDevAttrComputeCapabilityMajor, device->ordinal);
  }
  if (error == cudaSuccess) {
    error = cudaDeviceGetAttribute(&device->minor, cudaDevAttrComputeCapabilityMinor, device->ordinal);
  }
  return error;
}

cudaError_t LaunchBlockSparseAttention(const Params& params, ElementType type, const Device& device,
                                       cudaStream_t stream) {
#ifdef PODIUM_OPS_WITH_SM90A
  if (UseWgmma(device)) return LaunchWgmmaKernel(params, type, stream);
#else
  (void)device;
#endif
  return LaunchMmaKernel(params, type, stream);
}

}  // namespace podium::cuda
