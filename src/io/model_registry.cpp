#include "io/model_registry.h"

#include <algorithm>
#include <cctype>

namespace mclip {
namespace {

// SHA-256 values are those Hugging Face publishes for the files' Git LFS objects; a server that
// announces another one is refused. An empty value means none could be confirmed for that
// repository's copy, and the server's header decides alone.
const std::vector<RegisteredModel> kModels = {
    {"mobileclip-s0", "mobileclip_s0",
     {"apple/MobileCLIP-S0", "mobileclip_s0.pt", "809b408eff74f8058843e86a1f92967097d42ba782450e85b8f4867b7f0ca0b7"}},
    {"mobileclip-s1", "mobileclip_s1", {"apple/MobileCLIP-S1", "mobileclip_s1.pt", ""}},
    {"mobileclip-s2", "mobileclip_s2", {"apple/MobileCLIP-S2", "mobileclip_s2.pt", ""}},
    {"mobileclip-b", "mobileclip_b",
     {"apple/MobileCLIP-B", "mobileclip_b.pt", "0dd1d92c911841121a0a82af2db74941ffa78bc05d215334b95db030242ec7f9"}},
    // MobileCLIP-B trained longer (LT): the same architecture as B, other weights.
    {"mobileclip-b-lt", "mobileclip_b",
     {"apple/MobileCLIP-B-LT", "mobileclip_blt.pt", "670844f7a886dd6eff7a9285adfc53f3d3c889c03bfc8354010cb5c6bf27441a"}},
    // open_clip's layout, from the repositories open_clip's pretrained table names (hf_hub); no
    // digest of these could be confirmed (docs/download.md).
    {"mobileclip-s2-openclip", "mobileclip_s2_openclip", {"timm/MobileCLIP-S2-OpenCLIP", "open_clip_model.safetensors", ""}},
    {"mobileclip2-s0", "mobileclip2_s0", {"timm/MobileCLIP2-S0-OpenCLIP", "open_clip_model.safetensors", ""}},
    {"mobileclip2-s2", "mobileclip2_s2", {"timm/MobileCLIP2-S2-OpenCLIP", "open_clip_model.safetensors", ""}},
    {"mobileclip2-s3", "mobileclip2_s3", {"timm/MobileCLIP2-S3-OpenCLIP", "open_clip_model.safetensors", ""}},
    {"mobileclip2-s4", "mobileclip2_s4", {"timm/MobileCLIP2-S4-OpenCLIP", "open_clip_model.safetensors", ""}},
    {"mobileclip2-b", "mobileclip2_b", {"timm/MobileCLIP2-B-OpenCLIP", "open_clip_model.safetensors", ""}},
    {"mobileclip2-l-14", "mobileclip2_l_14", {"timm/MobileCLIP2-L-14-OpenCLIP", "open_clip_model.safetensors", ""}},
    {"openai-vit-b-32", "openai_vit_b_32", {"timm/vit_base_patch32_clip_224.openai", "open_clip_model.safetensors", ""}},
    {"openai-vit-b-16", "openai_vit_b_16", {"timm/vit_base_patch16_clip_224.openai", "open_clip_model.safetensors", ""}},
    {"openai-vit-l-14", "openai_vit_l_14", {"timm/vit_large_patch14_clip_224.openai", "open_clip_model.safetensors", ""}},
};

// OpenAI's CLIP vocabulary from OpenAI's own Hugging Face repository. These are plain Git files,
// for which the hub announces no SHA-256, so the pins are all that verifies them. Both files are
// the first 48,894 merges of CLIP's bpe_simple_vocab_16e6.txt.gz (the tokenizer's fixture)
// written out the way Hugging Face did, byte for byte: vocab.json 862,328 bytes, merges.txt
// 524,657 bytes (tests/download rebuilds both from that list and checks these digests).
const ClipVocabularyFiles kClipVocabulary = {
    {"openai/clip-vit-base-patch32", "vocab.json", "5047b556ce86ccaf6aa22b3ffccfc52d391ea4accdab9c2f2407da5b742d4363"},
    {"openai/clip-vit-base-patch32", "merges.txt", "f526393189112391ce6f9795d4695f704121ce452c3aad1f5335cc41337eba85"},
};

std::string name_key(std::string_view name) {
    std::string key;
    for (char c : name) {
        if (c == '-' || c == '_') continue;
        key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return key;
}

}  // namespace

const std::vector<RegisteredModel>& registered_models() { return kModels; }

const RegisteredModel* find_registered_model(std::string_view name) {
    const std::string key = name_key(name);
    const auto it = std::find_if(kModels.begin(), kModels.end(),
                                 [&](const RegisteredModel& model) { return name_key(model.name) == key; });
    return it == kModels.end() ? nullptr : &*it;
}

const ClipVocabularyFiles& clip_vocabulary_files() { return kClipVocabulary; }

}  // namespace mclip
