#!/usr/bin/env bash
# mclip against ONNX Runtime, side by side in one run: every encoder that has a peer in
# ../shared/peers (see its README) and a model file here, same threads, batch 1, medians.
#
#   bench/compare_ort.sh [THREADS] [PRECISIONS]     (default 2, "f32")
#
# Needs: build/tools/mclip and build/tests/models/make_fixture_models (the models are converted
# from the fixtures on first use into build/test-models), onnxruntime-node in $ORT_DIR (default
# /tmp/ort; the peers README says how to install it). Prints one table row per encoder, with the
# CPU; the figures belong to this machine at this moment (check `uptime`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
threads="${1:-2}"
precisions="${2:-f32}"
peers="${MCLIP_PEERS:-$root/../shared/peers}"
models="${MCLIP_TEST_MODELS:-$root/build/test-models}"
export ORT_DIR="${ORT_DIR:-/tmp/ort}"
mclip="$root/build/tools/mclip"

# encoder name, peer file, model, mclip --encoder
pairs=(
  "S0 image|mobileclip_s0_image.onnx|mobileclip_s0|image"
  "S0 text|mobileclip_s0_text.onnx|mobileclip_s0|text"
  "S2 image|mobileclip_s2_image.onnx|mobileclip_s2|image"
  "S2 text|mobileclip_s2_text.onnx|mobileclip_s2|text"
  "B image|mobileclip_b_image.onnx|mobileclip_b|image"
  "B text|mobileclip_b_text.onnx|mobileclip_b|text"
  "ViT-B/32 image|openai_vit_b_32_image.onnx|openai_vit_b_32|image"
  "ViT-B/32 text|openai_vit_b_32_text.onnx|openai_vit_b_32|text"
  "MobileCLIP2-S0 image|mobileclip2_s0_image.onnx|mobileclip2_s0|image"
)

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(grep -o -w 'avx512f\|avx512_bf16\|avx512_vnni\|amx_tile\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); threads $threads; batch 1; medians"
printf '| encoder | ONNX Runtime f32 |'
for p in $precisions; do printf ' mclip %s |' "$p"; done
printf '\n| --- | --- |'
for p in $precisions; do printf ' --- |'; done
printf '\n'
for pair in "${pairs[@]}"; do
  IFS='|' read -r name peer model encoder <<<"$pair"
  if [ ! -f "$models/$model.gguf" ]; then
    "$root/build/tests/models/make_fixture_models" "$model" >/dev/null
  fi
  ort=$(node "$peers/bench_ort.mjs" "$threads" "$peers/$peer" | sed -n 's/.*"median_ms": *\([0-9.]*\).*/\1/p' | head -1)
  printf '| %s | %.1f ms |' "$name" "$ort"
  for p in $precisions; do
    ms=$("$mclip" bench --model "$models/$model.gguf" --encoder "$encoder" --threads "$threads" --precision "$p" \
           --iterations 30 --json 2>/dev/null | sed -n 's/.*"median_ms": *\([0-9.]*\).*/\1/p' | head -1)
    if [ -z "$ms" ]; then
      printf ' – |'
    else
      printf ' %.1f ms (%s×) |' "$ms" "$(awk -v a="$ort" -v b="$ms" 'BEGIN { printf "%.2f", a / b }')"
    fi
  done
  printf '\n'
done
