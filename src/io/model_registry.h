// The models `mclip download` knows: which Hugging Face repository and file hold Apple's
// checkpoint for each name, the architecture it converts as, and the CLIP vocabulary it needs.
// docs/download.md lists where each entry comes from.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "io/download.h"

namespace mclip {

struct RegisteredModel {
    std::string name;  // as typed on the command line: "mobileclip-s0"
    std::string arch;  // configuration name for conversion: "mobileclip_s0"
    HubFile checkpoint;
};

const std::vector<RegisteredModel>& registered_models();

// Finds a model by name, ignoring case and treating '-' and '_' alike ("mobileclip_s0",
// "MobileCLIP-S0"); nullptr when unknown.
const RegisteredModel* find_registered_model(std::string_view name);

// The CLIP vocabulary every MobileCLIP text encoder uses, as OpenAI's CLIP repositories on Hugging
// Face publish it: vocab.json and merges.txt. Both land in one cache folder, where the tokenizer
// reads them as a pair (Tokenizer::from_file takes vocab.json's path).
struct ClipVocabularyFiles {
    HubFile vocab_json;
    HubFile merges;
};
const ClipVocabularyFiles& clip_vocabulary_files();

}  // namespace mclip
