// The tokenizer the text harnesses run: CLIP's real vocabulary from the fixtures when they are
// present (the merges every user has), otherwise a small merge list built here, so the harness
// still reaches every code path of cleanup, pre-tokenization and byte-pair encoding.
#pragma once

#include <string>
#include <vector>

#include "fuzz_support.h"
#include "mclip/tokenizer.h"

namespace mclip::fuzz {

inline const Tokenizer& clip_tokenizer() {
    static const Tokenizer tokenizer = [] {
        const std::filesystem::path vocabulary = fixtures_dir() / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz";
        if (!fixtures_dir().empty() && std::filesystem::exists(vocabulary)) return Tokenizer::from_file(vocabulary);
        return Tokenizer::from_merges({"t h", "th e</w>", "a n", "i n", "o n</w>", "e r", "c a", "ca t</w>", "p h", "o t",
                                       "ph ot", "phot o</w>"});
    }();
    return tokenizer;
}

}  // namespace mclip::fuzz
