#!/usr/bin/python3
# Read and write vae.h checkpoints (safetensors layout) with the Python standard library only.
# With torch:  w = torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(shape)
#              raw = w.contiguous().numpy().tobytes()   (x86/ARM hosts are little-endian)
import json, struct, sys

def load(path):  # -> (metadata dict, {name: (dtype, shape, raw little-endian bytes)})
    b = open(path, "rb").read()
    n, = struct.unpack("<Q", b[:8])
    h = json.loads(b[8:8 + n].decode("utf-8"))
    meta = h.pop("__metadata__", {})
    spans = sorted(tuple(v["data_offsets"]) for v in h.values())
    assert all(a[1] == b_[0] for a, b_ in zip([(0, 0)] + spans, spans)) and 8 + n + (spans[-1][1] if spans else 0) == len(b)
    return meta, {k: (v["dtype"], v["shape"], b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}

def save(path, tensors, meta=None):  # tensors: {name: (dtype, shape, raw little-endian bytes)}
    h, off = ({"__metadata__": meta} if meta else {}), 0
    for k, (dt, shape, raw) in tensors.items():
        h[k] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    j = json.dumps(h, separators=(",", ":")).encode()
    j += b" " * (-(8 + len(j)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(j)) + j + b"".join(t[2] for t in tensors.values()))

# ---- used by tests/test_safetensors.c (not part of the README snippet) ----
if __name__ == "__main__":
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "write":  # fixed content; test_safetensors.c checks every value
        save(path, {
            "enc.fc1.weight": ("F32", [3, 4], struct.pack("<12f", *[i * 0.25 - 1.5 for i in range(12)])),
            "enc.fc1.bias": ("F32", [4], struct.pack("<4f", *[(i + 1) / 3 for i in range(4)])),
            "bn.num_batches_tracked": ("I64", [], struct.pack("<q", 12345678901)),
            "empty": ("F32", [2, 0], b""),
            "n\u00e4me \"q\" \\ \n \U0001F600": ("U8", [3], bytes([1, 2, 255])),
        }, {"arch": "mlp", "note": "\u03c0 \u2603 \U0001F600 \"x\"\t"})
    elif cmd == "dump":  # hex everywhere so the C side can compare without any float formatting
        meta, ts = load(path)
        for k in sorted(meta):
            print("M", k.encode().hex(), meta[k].encode().hex())
        for k in sorted(ts, key=lambda s: s.encode()):
            dt, shape, raw = ts[k]
            print("T", k.encode().hex(), dt, ",".join(map(str, shape)) or "-", raw.hex() or "-")
