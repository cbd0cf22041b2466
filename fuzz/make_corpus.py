#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses into fuzz/corpus/<harness>/.

Every seed is a small, valid input that reaches deep into its parser; the fuzzer mutates from
there. The files are kept in the repository, so this script is needed only to change them. It
uses the Python standard library, plus ffmpeg for the image seeds. The fixtures (checkpoints,
images, the tokenizer cases) are added by scripts/fuzz.sh as extra corpus folders, not copied.
"""
import gzip
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import types
import zipfile
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(harness, name, data):
    folder = os.path.join(ROOT, harness)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# --- GGUF -------------------------------------------------------------------------------------

def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_file(kvs, tensors, alignment=32):
    """kvs: (key, type, payload bytes); tensors: (name, ne list, ggml type, data bytes)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, kind, payload in kvs:
        out += gguf_string(key) + struct.pack("<I", kind) + payload
    offset = 0
    offsets = []
    for name, ne, kind, data in tensors:
        out += gguf_string(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        out += struct.pack("<IQ", kind, offset)
        offsets.append(offset)
        offset += (len(data) + alignment - 1) // alignment * alignment
    out += b"\0" * ((-len(out)) % alignment)
    for (_, _, _, data) in tensors:
        out += data + b"\0" * ((-len(data)) % alignment)
    return out


def make_gguf():
    floats = struct.pack("<6f", 1, -2, 3.5, 0, 1e-3, 7)
    q8 = struct.pack("<H", 0x3C00) + bytes(range(32))  # one Q8_0 block, scale 1.0
    kvs = [
        ("general.architecture", 8, gguf_string("mobileclip")),
        ("general.alignment", 4, struct.pack("<I", 32)),
        ("mclip.format_version", 4, struct.pack("<I", 2)),
        ("mclip.arch", 8, gguf_string("mobileclip_s0")),
        ("mclip.embed_dim", 4, struct.pack("<I", 512)),
        ("mclip.logit_scale", 6, struct.pack("<f", 4.6)),
        ("mclip.text.causal", 7, b"\x01"),
        ("u8", 0, b"\x07"), ("i8", 1, b"\xf9"), ("u16", 2, b"\x01\x02"), ("i16", 3, b"\xff\xff"),
        ("i32", 5, struct.pack("<i", -5)), ("u64", 10, struct.pack("<Q", 1 << 40)),
        ("i64", 11, struct.pack("<q", -1)), ("f64", 12, struct.pack("<d", 0.25)),
        ("mclip.preprocess.mean", 9, struct.pack("<IQ", 6, 3) + struct.pack("<3f", 0.5, 0.5, 0.5)),
        ("tokenizer.ggml.model", 8, gguf_string("clip")),
        ("tokenizer.ggml.merges", 9, struct.pack("<IQ", 8, 2) + gguf_string("t h") + gguf_string("th e</w>")),
    ]
    tensors = [
        ("weight", [3, 2], 0, floats),
        ("half", [2], 1, struct.pack("<2H", 0x3C00, 0xC000)),
        ("bf", [2], 30, struct.pack("<2H", 0x3F80, 0x4000)),
        ("quantized", [32, 1], 8, q8),
        ("ids", [2], 26, struct.pack("<2i", 1, 2)),
        ("scalar", [], 0, struct.pack("<f", 1.5)),
    ]
    put("gguf", "small.gguf", gguf_file(kvs, tensors))
    put("gguf", "empty.gguf", gguf_file([], []))


# --- safetensors ------------------------------------------------------------------------------

def make_safetensors():
    tensors = {
        "a": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)),
        "b": ("F16", [3], struct.pack("<3H", 0x3C00, 0x0001, 0x7C00)),
        "c": ("BF16", [1, 1], struct.pack("<H", 0x3F80)),
        "d": ("I64", [2], struct.pack("<2q", -1, 1 << 40)),
        "e": ("BOOL", [3], b"\x00\x01\x00"),
        "f": ("F64", [], struct.pack("<d", 0.5)),
        "g": ("U8", [0, 4], b""),
    }
    header = {"__metadata__": {"format": "pt", "note": "seed"}}
    data = b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    text += b" " * ((-len(text)) % 8)
    put("safetensors", "small.safetensors", struct.pack("<Q", len(text)) + text + data)


# --- npy --------------------------------------------------------------------------------------

def npy(descr, shape, data, version=1):
    shape_text = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_text)
    prefix = 10 if version == 1 else 12
    header += " " * ((-(prefix + len(header) + 1)) % 64) + "\n"
    size = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header.encode() + data


def make_npy():
    put("npy", "f4.npy", npy("<f4", [2, 3], struct.pack("<6f", *range(6))))
    put("npy", "i8_v2.npy", npy("<i8", [1, 2], struct.pack("<2q", 49406, 49407), version=2))
    put("npy", "u1_scalar_v3.npy", npy("|u1", [], b"\x2a", version=3))
    put("npy", "b1.npy", npy("|b1", [4], b"\x00\x01\x01\x00"))
    put("npy", "f2_empty.npy", npy("<f2", [0, 5], b""))


# --- PyTorch checkpoints ----------------------------------------------------------------------
# The pickles are written by Python's own pickler over stand-ins registered under torch's names,
# so they hold exactly the opcodes torch.save emits (GLOBAL, BINPERSID, REDUCE, SETITEMS, ...).

def torch_stand_ins():
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    collections_module = sys.modules["collections"]

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in ("FloatStorage", "HalfStorage", "LongStorage", "BoolStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    sys.modules["torch"] = torch
    sys.modules["torch._utils"] = utils
    return torch, utils, collections_module


class Storage:
    def __init__(self, kind, key, numel):
        self.kind, self.key, self.numel = kind, key, numel


class TensorStandIn:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, __import__("collections").OrderedDict())

    def __reduce__(self):
        return (sys.modules["torch._utils"]._rebuild_tensor_v2, self.args)


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.kind, obj.key, "cpu", obj.numel)
        return None


def zip_write(archive, name, data, compression=zipfile.ZIP_STORED):
    """A record with a fixed date, so that the seeds come out the same on every run."""
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = compression
    archive.writestr(info, data)


def torch_zip(state, records, byteorder="little"):
    buffer = io.BytesIO()
    pickled = io.BytesIO()
    TorchPickler(pickled, protocol=2).dump(state)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
        zip_write(z, "archive/data.pkl", pickled.getvalue())
        zip_write(z, "archive/byteorder", byteorder)
        for key, raw in records.items():
            zip_write(z, "archive/data/" + key, raw)
        zip_write(z, "archive/version", "3\n")
    return buffer.getvalue()


def make_pytorch():
    torch, _, collections_module = torch_stand_ins()
    floats = Storage(torch.FloatStorage, "0", 6)
    halves = Storage(torch.HalfStorage, "1", 2)
    longs = Storage(torch.LongStorage, "2", 1)
    state = collections_module.OrderedDict()
    state["weight"] = TensorStandIn(floats, 0, [2, 3], [3, 1])
    state["weight_t"] = TensorStandIn(floats, 0, [3, 2], [1, 3])
    state["row"] = TensorStandIn(floats, 3, [3], [1])
    state["half"] = TensorStandIn(halves, 0, [2], [1])
    state["steps"] = TensorStandIn(longs, 0, [], [])
    records = {"0": struct.pack("<6f", *range(6)), "1": struct.pack("<2H", 0x3C00, 0x4000), "2": struct.pack("<q", 7)}
    put("pytorch_checkpoint", "state_dict.pt", torch_zip(state, records))
    put("pytorch_checkpoint", "nested.pt", torch_zip({"state_dict": state, "epoch": 3, "names": ["a", "b"]}, records))
    big_records = {k: v[::-1] if k == "0" else v for k, v in records.items()}
    put("pytorch_checkpoint", "big_endian.pt", torch_zip(state, big_records, byteorder="big"))
    deflated = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(torch_zip(state, records))) as src, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zip_write(dst, info.filename, src.read(info.filename), zipfile.ZIP_DEFLATED)
    put("pytorch_checkpoint", "deflated.pt", deflated.getvalue())


# --- images -----------------------------------------------------------------------------------

def exif_block(orientation, big_endian=False):
    e = ">" if big_endian else "<"
    tiff = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    tiff += struct.pack(e + "H", 1) + struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "HH", orientation, 0)
    tiff += struct.pack(e + "I", 0)
    return tiff


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(width, height, color_type, bit_depth, rows, extra=b"", interlace=0, palette=None, pixel_bytes=None):
    """rows: the unfiltered scanlines; interlaced images (8-bit multiples only) need pixel_bytes."""
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace))
    if palette:
        out += png_chunk(b"PLTE", palette)
    out += extra
    if interlace:
        # Adam7: seven reduced images, each row filtered on its own.
        scanlines = []
        for x0, y0, dx, dy in ADAM7:
            columns = range(x0, width, dx)
            if not columns:
                continue
            for y in range(y0, height, dy):
                scanlines.append(b"".join(rows[y][x * pixel_bytes:(x + 1) * pixel_bytes] for x in columns))
    else:
        scanlines = rows
    out += png_chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + r for r in scanlines)))
    return out + png_chunk(b"IEND", b"")


def ffmpeg_image(suffix, *codec):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "image" + suffix)
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=16x12:rate=1",
                        "-frames:v", "1", *codec, "-y", path], check=True)
        with open(path, "rb") as f:
            return f.read()


def riff(chunks):
    body = b"WEBP" + b"".join(k + struct.pack("<I", len(d)) + d + (b"\0" if len(d) % 2 else b"") for k, d in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def make_images():
    rgb_rows = [bytes((x * 16 + y) % 256 for x in range(8 * 3)) for y in range(6)]
    put("image", "rgb.png", png(8, 6, 2, 8, rgb_rows, extra=png_chunk(b"eXIf", exif_block(6, big_endian=True))))
    put("image", "gray16_interlaced.png", png(5, 4, 0, 16, [bytes(range(y, y + 10)) for y in range(4)], interlace=1, pixel_bytes=2))
    put("image", "palette2.png", png(7, 3, 3, 2, [b"\x1b\x60"] * 3, palette=bytes(range(12))))
    put("image", "rgba16.png", png(2, 2, 6, 16, [bytes(range(16))] * 2))
    put("image", "gray_alpha.png", png(3, 2, 4, 8, [bytes(range(6))] * 2))

    jpeg = ffmpeg_image(".jpg")
    app1 = b"Exif\0\0" + exif_block(8)
    with_exif = jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]
    put("image", "baseline.jpg", with_exif)
    put("image", "gray.jpg", ffmpeg_image(".jpg", "-pix_fmt", "gray"))

    lossy = ffmpeg_image(".webp", "-c:v", "libwebp")
    lossless = ffmpeg_image(".webp", "-c:v", "libwebp", "-lossless", "1")
    put("image", "lossy.webp", lossy)
    put("image", "lossless.webp", lossless)
    # The extended format: a VP8X header announcing EXIF, the bitstream, then the EXIF chunk.
    bitstream = lossy[12:]  # the VP8 chunk with its header
    vp8x = struct.pack("<B3x", 0x08) + (16 - 1).to_bytes(3, "little") + (12 - 1).to_bytes(3, "little")
    exif = exif_block(3)
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x + bitstream + b"EXIF" + struct.pack("<I", len(exif)) + exif
    put("image", "extended_exif.webp", b"RIFF" + struct.pack("<I", len(body)) + body)


# --- text -------------------------------------------------------------------------------------

def make_text():
    texts = {
        "plain": "a photo of a cat",
        "html": "Fish &amp; Chips &lt;3 &eacute;t&eacute; &#x2019;s &#8217;t &notit; &AMP; &EACUTE;",
        "mojibake": "cafÃ© â€œquotedâ€\x9d Ã¢â‚¬Å“double",
        "controls": "tab\there\r\nline\x85next\x1b[31mred\x1b[0m \u00ad soft",
        "wide": "ＦＵＬＬ　ｗｉｄｔｈ ﬁ ligature ½ Ⅻ",
        "unicode": "İstanbul ΣΊΣΥΦΟΣ ß 😀👍🏽 नमस्ते 東京",
        "contractions": "I'm sure they'll've DON'T <start_of_text>x<end_of_text>",
        "invalid_utf8": b"bad \xc3\x28 \xed\xa0\x80 \xf0\x9f \xff end",
    }
    for name, text in texts.items():
        put("tokenizer", name + ".txt", text if isinstance(text, bytes) else text.encode())
    put("json", "requests.jsonl", b"\n".join([
        json.dumps({"text": "a photo of a cat"}).encode(),
        json.dumps({"text": texts["html"], "id": 3}).encode(),
        json.dumps({"text": texts["unicode"]}, ensure_ascii=True).encode(),
        b'{"text": "escapes \\" \\\\ \\u00e9 \\ud83d\\ude00"}',
        b'{"text": 5}', b"[1, 2, {\"a\": null}]", b"",
    ]))
    put("json", "vocab.json", json.dumps({"t": 0, "h": 1, "th": 2, "<|endoftext|>": 3}).encode())
    merges = "#version: 0.2\n" + "".join("%s %s\n" % pair for pair in [("t", "h"), ("th", "e</w>"), ("a", "n")])
    put("vocabulary", "merges.txt", merges.encode())
    put("vocabulary", "merges.txt.gz", gzip.compress(merges.encode(), mtime=0))
    put("labels", "list_and_templates.txt", b"person, forklift,car , ,computer\n# comment\nPerson\n\0a photo of a {}.\n{} and {}")
    put("labels", "file_only.txt", b"cat\n\n  dog  \n#skip\nbird\r\n")
    png_bytes = png(2, 1, 2, 8, [bytes(6)])
    data_uri = b"data:image/png;base64," + __import__("base64").b64encode(png_bytes)
    put("server_request", "data_uri.txt", data_uri)
    put("server_request", "multipart.txt", b"multipart/form-data; boundary=XyZ\n" + b"\r\n".join([
        b"--XyZ", b'Content-Disposition: form-data; name="labels"', b"", b"cat,dog",
        b"--XyZ", b'Content-Disposition: form-data; name="image"; filename="a.png"', b"Content-Type: image/png", b"",
        png_bytes, b"--XyZ--", b""]))
    put("server_request", "quoted_boundary.txt", b'multipart/form-data; charset=utf-8; boundary="a b"\n--a b\r\n'
        b'Content-Disposition: form-data; name="x"\r\n\r\n1\r\n--a b--\r\n')


# --- hostile inputs found by review, kept as regression inputs (tests/regressions/) ----------

REGRESSIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "regressions")


def put_regression(harness, name, data):
    folder = os.path.join(REGRESSIONS, harness)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def make_regressions():
    # 20,000 top-level entries that all refer (through the memo) to one dict of 20,000 tensors:
    # checked entry by entry, choosing the state dict took 4e8 steps.
    def text(s):
        b = s.encode()
        return b"X" + struct.pack("<I", len(b)) + b

    def global_(module, name):
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    n = 20000
    tensor = (global_("torch._utils", "_rebuild_tensor_v2") + b"((" + text("storage") + global_("torch", "FloatStorage") +
              text("0") + text("cpu") + b"K\x01tQK\x00))\x89}tR")
    pickle_bytes = bytearray(b"\x80\x02}(}(" + tensor + b"r" + struct.pack("<I", 0) + b"0")
    for i in range(n):
        pickle_bytes += text("k%d" % i) + b"j" + struct.pack("<I", 0)
    pickle_bytes += b"ur" + struct.pack("<I", 1) + b"0"
    for i in range(n):
        pickle_bytes += text("r%d" % i) + b"j" + struct.pack("<I", 1)
    pickle_bytes += b"u."
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        zip_write(z, "archive/data.pkl", bytes(pickle_bytes), zipfile.ZIP_DEFLATED)
        zip_write(z, "archive/data/0", struct.pack("<f", 1.0), zipfile.ZIP_DEFLATED)
    put_regression("pytorch_checkpoint", "shared_dict_quadratic.pt", archive.getvalue())

    # A metadata value nested 100,000 levels deep: printing it back recursed once per level and
    # overflowed the stack.
    depth = 100000
    header = b'{"__metadata__": {"x": ' + b"[" * depth + b"]" * depth + b"}}"
    put_regression("safetensors", "deep_metadata.safetensors", struct.pack("<Q", len(header)) + header)

    # 17 MiB of merges from 17 KiB: a gzip bomb (the same file grown a hundredfold is as small
    # for its size, and was inflated without a bound).
    bomb = gzip.compress(b"#version: 0.2\n" + b"a b\n" * (17 << 18), compresslevel=9, mtime=0)
    put_regression("vocabulary", "gzip_bomb.txt.gz", bomb)

    # Found by scripts/fuzz.sh in CI: a number beyond double's range is nlohmann's out_of_range,
    # not its parse_error, and escaped the handlers that caught only the latter.
    put_regression("json", "number_overflow.json", b'{"text": "a photo", "n": 2e516}')

    # A complete MobileCLIP-S0 header whose name is not UTF-8: `mclip info` printing it threw
    # nlohmann's type_error.
    def u32(v):
        return 4, struct.pack("<I", v)

    def u32s(*vs):
        return 9, struct.pack("<IQ", 4, len(vs)) + struct.pack("<%dI" % len(vs), *vs)

    def floats(*vs):
        return 9, struct.pack("<IQ", 6, len(vs)) + struct.pack("<%df" % len(vs), *vs)

    def string(v):
        return 8, gguf_string(v)

    def flag(v):
        return 7, bytes([v])

    header = {
        "general.architecture": string("mobileclip"), "general.name": (8, struct.pack("<Q", 3) + b"a\xff\xfe"),
        "mclip.format_version": u32(2), "mclip.arch": string("mobileclip_s0"), "mclip.embed_dim": u32(512),
        "mclip.image.kind": string("mci"), "mclip.image.depths": u32s(2, 6, 10, 2),
        "mclip.image.widths": u32s(64, 128, 256, 512), "mclip.image.mlp_ratio": u32(3), "mclip.image.head_dim": u32(32),
        "mclip.image.mixer_kernel": u32(3), "mclip.image.ffn_kernel": u32(7), "mclip.image.downsample_kernel": u32(7),
        "mclip.image.cpe_kernel": u32(7), "mclip.image.downsample_se": (9, struct.pack("<IQ", 7, 3) + b"\x00\x01\x01"),
        "mclip.image.se_divisor": u32(4), "mclip.image.conv_exp_se_divisor": u32(16), "mclip.image.head_bias": flag(0),
        "mclip.text.kind": string("mct"), "mclip.text.layers": u32(4), "mclip.text.width": u32(512),
        "mclip.text.heads": u32(8), "mclip.text.ffn": u32(2048), "mclip.text.context_length": u32(77),
        "mclip.text.vocab_size": u32(49408), "mclip.text.causal": flag(0), "mclip.text.activation": string("gelu"),
        "mclip.text.mixer_kernel": u32(11), "mclip.preprocess.size": u32(256), "mclip.preprocess.resize_size": u32(256),
        "mclip.preprocess.resize_mode": string("shorter_side"), "mclip.preprocess.interpolation": string("bilinear"),
        "mclip.preprocess.crop": string("center"), "mclip.preprocess.mean": floats(0, 0, 0),
        "mclip.preprocess.std": floats(1, 1, 1), "mclip.logit_scale": (6, struct.pack("<f", 2.65926)),
    }
    put_regression("gguf", "metadata_not_utf8.gguf", gguf_file([(k, t, v) for k, (t, v) in header.items()], []))


if __name__ == "__main__":
    make_gguf()
    make_safetensors()
    make_npy()
    make_pytorch()
    make_images()
    make_text()
    make_regressions()
