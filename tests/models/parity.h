// Comparison helpers for parity tests against the reference fixtures.
#pragma once

#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace mclip::testing {

// ||ours − ref|| / ||ref|| for each row of two [rows, ...] tensors (the first dimension is the row).
std::vector<double> relative_error_per_row(const Tensor& ours, const Tensor& reference);
// The largest of those.
double max_relative_error(const Tensor& ours, const Tensor& reference);

// Cosine similarity of every image embedding [n, d] with every text embedding [m, d], times
// scale: [n, m] (CLIP's logits with scale = the model's logit scale).
Tensor cosine_logits(const Tensor& images, const Tensor& texts, float scale = 1.0f);

// Whether a lossy precision keeps each image's best class. Only images the reference decides
// are compared: a relative error of e in a d-dimensional embedding, not aligned with the other
// side, moves a cosine by about e/√d, so at the accuracy bound the gap between two classes moves
// by about 4·bound/√d (two embeddings, two classes); a near-tie closer than that is left out. The
// random-weight fixtures of MobileCLIP-S1, -S2, MobileCLIP2-S0 and -S3 hold only near-ties (every
// image's two best classes are 2e-4 to 4.5e-3 apart in cosine; int8's 7-bit weights on AVX2 move
// a cosine by about 1e-3), those of S0, B, ViT-B/32 and MobileCLIP2-B decided images (S0: 0.02).
// The message names every mismatch and every image left out.
struct Top1Agreement {
    int compared = 0;
    int mismatches = 0;
    std::string message;
};
Top1Agreement compare_top1(const Tensor& images, const Tensor& texts, const Tensor& reference_images,
                           const Tensor& reference_texts, double bound);

// The fixtures' int64 token ids [rows, context] as the int32 ids the text encoders take.
std::vector<int32_t> tokens_as_int32(const Tensor& tokens);

}  // namespace mclip::testing
