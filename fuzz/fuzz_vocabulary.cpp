// Vocabulary files as `mclip convert --vocab` and `tokenize --vocab` read them: CLIP's merges
// list, gzip-compressed (a gzip bomb must be refused) or plain.
#include "fuzz_support.h"
#include "tokenizer/vocabulary_files.h"

namespace {

void vocabulary(std::span<const uint8_t> bytes) {
    static mclip::fuzz::ScratchFile scratch(".txt.gz");
    const auto& path = scratch.write(bytes);
    mclip::fuzz::expect_clean([&] { (void)mclip::clip_text::read_merges_file(path); });
}

}  // namespace

MCLIP_FUZZ_TARGET(vocabulary)
