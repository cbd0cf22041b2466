// Reads an mclip model file with @huggingface/gguf (an independent GGUF parser) and prints what
// it found as JSON: every metadata key and every tensor header. The C++ test compares this with
// what mclip wrote.
import { gguf } from "@huggingface/gguf";
import path from "node:path";

const file = path.resolve(process.argv[2]);
const { metadata, tensorInfos } = await gguf(file, { allowLocalFile: true });
const keys = {};
for (const [key, value] of Object.entries(metadata)) {
  keys[key] = Array.isArray(value) ? { length: value.length, first: value.slice(0, 3) } : (typeof value === "bigint" ? Number(value) : value);
}
const tensors = tensorInfos.map((t) => ({
  name: t.name,
  shape: t.shape.map((d) => Number(d)),
  dtype: t.dtype,
  offset: Number(t.offset),
}));
process.stdout.write(JSON.stringify({ metadata: keys, tensors }));
