// GGUF output of `imp quantize`: metadata (copied from a GGUF input in order, or built from
// an HF folder's config and tokenizer — quant/hf_export.h), general.file_type of the mix,
// general.quantization_version 2, then the tensors streamed one by one at the offsets the
// header announces (io/gguf_writer.h add_tensor_info / header_bytes).
#include <cstring>
#include <fstream>

#include "common/error.h"
#include "formats/traits.h"
#include "quant/hf_export.h"
#include "quant/pipeline_internal.h"

namespace imp {
namespace {

uint64_t align_up(uint64_t p, uint64_t a) { return p + (a - p % a) % a; }

bool replaced_key(const std::string& k) {
  return k == "general.file_type" || k == "general.quantization_version" || k.rfind("split.", 0) == 0;
}

}  // namespace

void write_gguf_output(PipelineRun& run) {
  QuantInput& in = run.in;
  GgufWriter w;
  if (in.is_gguf) {
    for (const auto& [k, v] : in.gguf.kv) {
      if (!replaced_key(k)) w.set(k, v);
    }
  } else {
    for (auto& n : gguf_metadata_from_hf(w, in)) run.notes.push_back(std::move(n));
  }
  w.set("general.quantization_version", GgufValue::of_uint(GgufType::kUint32, 2));
  w.set("general.file_type", GgufValue::of_uint(GgufType::kUint32, uint64_t(run.target.mix->file_type)));
  for (size_t i = 0; i < in.tensors.size(); ++i) {
    w.add_tensor_info(in.tensors[i].out_name, in.tensors[i].src->shape, run.decisions[i].to);
  }
  std::vector<uint64_t> offsets;
  const std::vector<uint8_t> head = w.header_bytes(offsets);
  std::ofstream out(run.tmp, std::ios::binary | std::ios::trunc);
  if (!out) fail("{}: cannot create {}", run.p.out, run.tmp);
  out.write(reinterpret_cast<const char*>(head.data()), std::streamsize(head.size()));
  const std::vector<char> zeros(w.alignment(), 0);
  uint64_t pos = 0;  // within the data section
  for (size_t i = 0; i < in.tensors.size(); ++i) {
    const InputTensor& t = in.tensors[i];
    const Decision& d = run.decisions[i];
    std::vector<uint8_t> bytes;
    if (d.quantize) {
      bytes = run.quantize(i).data;  // GGUF types are self-contained: the data plane is the tensor
    } else if (d.to == t.src->format && !run.kept_changes(i)) {
      bytes = load_bytes(t);
    } else {
      // Kept, but the output stores another plain type (HF 1-D → F32, or a format GGUF lacks),
      // or a fold changed its values.
      const std::vector<float> x = run.load(i);
      TensorJob job{t.out_name, x, t.rows(), t.cols(), d.to, 0};
      bytes = quantize_tensor(job, QuantOptions{}).data;
    }
    out.write(zeros.data(), std::streamsize(offsets[i] - pos));
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    pos = offsets[i] + bytes.size();
    run.report(i, int64_t(bytes.size()));
  }
  out.write(zeros.data(), std::streamsize(align_up(pos, w.alignment()) - pos));
  out.flush();
  if (!out) fail("{}: write failed (disk full?)", run.tmp);
}

}  // namespace imp
