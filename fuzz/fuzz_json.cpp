// The JSON mclip reads besides safetensors headers (fuzz_safetensors): the request lines of
// `mclip tokenize --jsonl` (each line parsed, checked for a string "text", tokenized and the
// reply serialized, as tools/cmd_tokenize.cpp does), and Hugging Face vocab.json files.
#include "clip_vocabulary.h"
#include "tokenizer/vocabulary_files.h"

#include <nlohmann/json.hpp>

#include <string_view>

namespace {

void tokenize_request(std::string_view line) {
    nlohmann::json request;
    try {
        request = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
        return;  // the command reports it as invalid input
    }
    if (!request.is_object() || !request.contains("text") || !request["text"].is_string()) return;
    const std::string text = request["text"].get<std::string>();
    const mclip::Tokenizer& clip = mclip::fuzz::clip_tokenizer();
    nlohmann::ordered_json reply;
    reply["text"] = text;
    reply["ids"] = clip.encode(text);
    reply["context"] = clip.context(text);
    (void)reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void json(std::span<const uint8_t> bytes) {
    const std::string_view input(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    mclip::fuzz::expect_clean([&] {
        size_t start = 0;
        while (start <= input.size()) {
            size_t end = input.find('\n', start);
            if (end == std::string_view::npos) end = input.size();
            tokenize_request(input.substr(start, end - start));
            start = end + 1;
        }
    });
    static mclip::fuzz::ScratchFile scratch(".json");
    const auto& path = scratch.write(bytes);
    mclip::fuzz::expect_clean([&] { (void)mclip::clip_text::read_vocab_json(path); });
}

}  // namespace

MCLIP_FUZZ_TARGET(json)
