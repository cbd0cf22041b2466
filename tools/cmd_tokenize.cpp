// `mclip tokenize`: the CLIP token ids of texts, from a model file's tokenizer or a vocabulary file.
//
//   mclip tokenize --vocab bpe_simple_vocab_16e6.txt.gz "a photo of a cat"
//   49406 320 1125 539 320 2368 49407
//
// With --jsonl it reads JSON Lines ({"text": ...}) on standard input and writes one object per
// line: {"text": ..., "ids": [all ids, untruncated], "context": [the 77 ids the model is fed]}.
#include <cstdio>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "command.h"
#include "mclip/error.h"
#include "mclip/tokenizer.h"

namespace {

struct TokenizeArgs {
    std::string model;
    std::string vocabulary;
    std::vector<std::string> texts;
    bool jsonl = false;
    bool context = false;
};

mclip::Tokenizer tokenizer_for(const TokenizeArgs& args) {
    if (!args.vocabulary.empty()) return mclip::Tokenizer::from_file(args.vocabulary);
    return mclip::Tokenizer::from_model_file(args.model);
}

std::string join_ids(const std::vector<int32_t>& ids) {
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) {
        if (i > 0) line.push_back(' ');
        line += std::to_string(ids[i]);
    }
    return line;
}

bool is_blank(const std::string& line) {
    return line.find_first_not_of(" \t\r\n") == std::string::npos;
}

// A request is one short text: a longer line is refused rather than buffered whole.
constexpr size_t kMaxRequestLineBytes = 1 << 20;

// The next line of `in` without its newline; false at the end of the input.
bool read_request_line(std::istream& in, std::string& line, size_t line_number) {
    line.clear();
    bool any = false;
    for (int c = in.get(); c != std::char_traits<char>::eof(); c = in.get()) {
        any = true;
        if (c == '\n') return true;
        if (line.size() == kMaxRequestLineBytes) {
            std::fflush(stdout);
            throw mclip::Error(mclip::ErrorCode::invalid_input, "standard input, line " + std::to_string(line_number) +
                                                                    ": longer than " + std::to_string(kMaxRequestLineBytes) + " bytes");
        }
        line.push_back(static_cast<char>(c));
    }
    return any;
}

void tokenize_jsonl(const mclip::Tokenizer& tokenizer) {
    std::string line;
    for (size_t line_number = 1; read_request_line(std::cin, line, line_number); ++line_number) {
        if (is_blank(line)) continue;
        const std::string where = "standard input, line " + std::to_string(line_number);
        nlohmann::json request;
        try {
            request = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 2e516
            std::fflush(stdout);
            throw mclip::Error(mclip::ErrorCode::invalid_input, where + ": not valid JSON (" + e.what() + ")");
        }
        if (!request.is_object() || !request.contains("text") || !request["text"].is_string()) {
            std::fflush(stdout);
            throw mclip::Error(mclip::ErrorCode::invalid_input, where + ": expected an object with a string \"text\"");
        }
        const std::string text = request["text"].get<std::string>();
        nlohmann::ordered_json reply;
        reply["text"] = text;
        reply["ids"] = tokenizer.encode(text);
        reply["context"] = tokenizer.context(text);
        const std::string out = reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        std::fwrite(out.data(), 1, out.size(), stdout);
    }
    if (std::cin.bad()) throw mclip::Error(mclip::ErrorCode::io, "standard input: read failed");
}

void setup(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<TokenizeArgs>();
    auto* cmd = app.add_subcommand("tokenize", "Print the CLIP token ids of texts");
    auto* model = cmd->add_option("--model", args->model, "Model file (GGUF) whose tokenizer to use")->check(CLI::ExistingFile);
    auto* vocabulary = cmd->add_option("--vocab", args->vocabulary,
                                       "Vocabulary: bpe_simple_vocab_16e6.txt.gz, or Hugging Face's vocab.json "
                                       "(beside merges.txt) or a folder holding both")
                           ->check(CLI::ExistingPath);
    model->excludes(vocabulary);
    cmd->add_flag("--jsonl", args->jsonl,
                  "Read JSON Lines with a \"text\" field on standard input; write text, ids and context per line");
    cmd->add_flag("--context", args->context, "Print the 77 ids the model is fed (cut and zero-padded) instead of all ids");
    cmd->add_option("texts", args->texts, "Texts to tokenize");
    cmd->callback([args, &exit_code] {
        if (args->model.empty() && args->vocabulary.empty()) {
            throw mclip::Error(mclip::ErrorCode::invalid_argument, "tokenize needs a tokenizer: --model or --vocab");
        }
        if (args->jsonl && !args->texts.empty()) {
            throw mclip::Error(mclip::ErrorCode::invalid_argument, "tokenize takes texts or --jsonl, not both");
        }
        if (!args->jsonl && args->texts.empty()) {
            throw mclip::Error(mclip::ErrorCode::invalid_argument, "tokenize needs texts, or --jsonl to read them from standard input");
        }
        const mclip::Tokenizer tokenizer = tokenizer_for(*args);
        if (args->jsonl) {
            tokenize_jsonl(tokenizer);
        } else {
            for (const auto& text : args->texts) {
                const auto ids = args->context ? tokenizer.context(text) : tokenizer.encode(text);
                std::printf("%s\n", join_ids(ids).c_str());
            }
        }
        exit_code = 0;
    });
}

MCLIP_REGISTER_COMMAND("tokenize", setup);

}  // namespace
