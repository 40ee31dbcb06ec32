import sys, numpy as np, gguf
from gguf import GGUFReader, GGUFWriter, GGMLQuantizationType as T
src, dst = sys.argv[1], sys.argv[2]
r = GGUFReader(src)
arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
w = GGUFWriter(dst, arch)
for f in r.fields.values():
    if f.name.startswith("GGUF.") or f.name in ("general.architecture", "general.file_type"): continue
    t = f.types
    if t[0] == gguf.GGUFValueType.ARRAY:
        sub = t[1]
        if sub == gguf.GGUFValueType.STRING:
            val = [bytes(f.parts[i]).decode("utf-8", "surrogateescape") for i in f.data]
        else:
            val = [f.parts[i].tolist()[0] for i in f.data]
        w.add_key_value(f.name, val, t[0], sub_type=sub)
    elif t[0] == gguf.GGUFValueType.STRING:
        w.add_key_value(f.name, bytes(f.parts[-1]).decode("utf-8", "surrogateescape"), t[0])
    else:
        w.add_key_value(f.name, f.parts[-1].tolist()[0], t[0])
w.add_file_type(0)
for t in r.tensors:
    a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
    w.add_tensor(t.name, a.reshape([int(x) for x in reversed(t.shape)]) if a.ndim == 1 and len(t.shape) > 1 else a)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
