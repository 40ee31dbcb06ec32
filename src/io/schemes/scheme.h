// Shared machinery of the checkpoint schemes (io/schemes/*.cc): each scheme recognises a
// module by its companion tensors, checks every companion's dtype and shape, and appends
// one TensorSource per weight to the ModelFile, marking the tensors it used as consumed.
// Names: the TensorSource takes the HF name of the weight as a plain checkpoint would
// carry it ("<module>.weight"; gpt-oss experts keep their parameter name "<module>").
#pragma once

#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include "io/hf_config.h"
#include "io/model_file.h"
#include "io/safetensors_reader.h"

namespace imp {

struct SchemeContext {
  const StCollection& st;
  const QuantConfig& quant;
  ModelFile& model;
  std::set<std::string> consumed;

  const StTensor* get(const std::string& name) const;
  // The tensor, which must exist and have one of `dtypes`; errors name tensor, file and role.
  const StTensor& need(const std::string& name, std::initializer_list<StDtype> dtypes, const char* role);
  // As need(), but nullptr when absent.
  const StTensor* opt(const std::string& name, std::initializer_list<StDtype> dtypes, const char* role);
  void expect_shape(const StTensor& t, const std::vector<int64_t>& want, const char* role) const;
  // A per-tensor scalar (shape [] or [1]) in F32, BF16 or F16, as float; must be finite.
  float scalar(const StTensor& t, const char* role) const;
  // The tensor's values as F32 bytes: F32 as stored, F16/BF16/F8_E8M0 widened into
  // ModelFile::owned (exact in every case).
  std::span<const uint8_t> as_f32(const StTensor& t, const char* role);
  // Adds `s` after validating its planes against its format (QuantMatrix sizes), with
  // the module's exclusion noted when it is excluded but quantized anyway.
  void add(TensorSource s);
  // A TensorSource pointing at `t` with its stored shape, file and name.
  TensorSource source_for(const StTensor& t, const std::string& name, FormatId format) const;
};

[[noreturn]] void fail_tensor(const StTensor& t, const std::string& what);

// NVFP4_CKPT planes shared by the three NVFP4 flavours (§6.1): packed U8 [..., in/2] and
// E4M3 block scales [..., in/16]; returns the source with shape [..., in], tensor_scale 1.
TensorSource nvfp4_planes(SchemeContext& ctx, const std::string& name, const StTensor& packed,
                          const StTensor& block_scale);

// One function per scheme; each returns after adding the module's TensorSource(s).
// `module` is the path without the final ".weight" / ".qweight" / "_blocks".
void load_modelopt_nvfp4(SchemeContext& ctx, const std::string& module);
void load_compressed_tensors_nvfp4(SchemeContext& ctx, const std::string& module);
void load_quark_nvfp4(SchemeContext& ctx, const std::string& module);
// FP8 E4M3 with weight_scale (per tensor / channel / 128×128 block by the scale's shape)
// or DeepSeek's weight_scale_inv (block).
void load_fp8(SchemeContext& ctx, const std::string& module);
void load_int8_channel(SchemeContext& ctx, const std::string& module);
void load_gptq(SchemeContext& ctx, const std::string& module);
void load_awq(SchemeContext& ctx, const std::string& module);
void load_mxfp4(SchemeContext& ctx, const std::string& param);  // gpt-oss "<param>_blocks"
void load_bnb_nf4(SchemeContext& ctx, const std::string& module);

// Warnings for fused partitions (q/k/v, gate/up) whose per-tensor scales differ.
void warn_fused_scale_mismatch(ModelFile& model);

}  // namespace imp
