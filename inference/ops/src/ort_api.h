// The ONNX Runtime C++ API, without a link-time dependency on libonnxruntime.
//
// The op library asks the running ONNX Runtime for its API table in RegisterCustomOps
// (Ort::InitApi), so one build serves every ONNX Runtime that offers API version
// ORT_API_VERSION or newer. Include this header instead of onnxruntime_cxx_api.h.
#pragma once

#define ORT_API_MANUAL_INIT
#include "onnxruntime_cxx_api.h"
#undef ORT_API_MANUAL_INIT
