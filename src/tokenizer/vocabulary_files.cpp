#include "tokenizer/vocabulary_files.h"

#include <zlib.h>

#include <array>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/mapped_file.h"
#include "tokenizer/unicode_text.h"

namespace mclip::clip_text {
namespace {

bool is_gzip(std::string_view bytes) {
    return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1F && static_cast<unsigned char>(bytes[1]) == 0x8B;
}

// Inflates every gzip member of `compressed` (a concatenation of members is one gzip file), up
// to max_bytes of output: a gzip bomb expands 1000:1, and CLIP's merges take 1.6 MB.
std::string gunzip(std::string_view compressed, const std::filesystem::path& path, size_t max_bytes) {
    auto fail = [&](const std::string& reason) {
        throw Error(ErrorCode::invalid_input, path.string() + ": not a valid gzip file (" + reason + ")");
    };
    z_stream stream{};
    if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) throw Error(ErrorCode::internal, "zlib initialization failed");
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
    stream.avail_in = static_cast<uInt>(compressed.size());
    std::string text;
    std::array<char, 1 << 16> chunk{};
    while (true) {
        stream.next_out = reinterpret_cast<Bytef*>(chunk.data());
        stream.avail_out = static_cast<uInt>(chunk.size());
        const int status = inflate(&stream, Z_NO_FLUSH);
        text.append(chunk.data(), chunk.size() - stream.avail_out);
        if (text.size() > max_bytes) {
            inflateEnd(&stream);
            fail("it expands to more than " + std::to_string(max_bytes) + " bytes");
        }
        if (status == Z_STREAM_END) {
            if (stream.avail_in == 0) break;
            inflateReset(&stream);
            continue;
        }
        if (status == Z_OK) continue;
        const std::string reason = status == Z_BUF_ERROR ? "truncated data" : (stream.msg ? stream.msg : "corrupt data");
        inflateEnd(&stream);
        fail(reason);
    }
    inflateEnd(&stream);
    return text;
}

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::vector<std::string_view> split_fields(std::string_view line) {
    std::vector<std::string_view> fields;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && is_ascii_space(line[i])) ++i;
        const size_t start = i;
        while (i < line.size() && !is_ascii_space(line[i])) ++i;
        if (i > start) fields.push_back(line.substr(start, i - start));
    }
    return fields;
}

}  // namespace

std::vector<std::string> read_merges_file(const std::filesystem::path& path) {
    std::string text = read_file(path);
    if (is_gzip(text)) text = gunzip(text, path, kMaxSmallFileBytes);
    if (!decode_utf8_strict(text)) throw Error(ErrorCode::invalid_input, path.string() + ": not UTF-8 text");

    const size_t header_end = text.find('\n');
    const std::string_view header = std::string_view(text).substr(0, header_end);
    if (header.find("#version") == std::string_view::npos) {
        throw Error(ErrorCode::invalid_input,
                    path.string() + ": not a BPE merges list (its first line should be a '#version' header)");
    }
    std::vector<std::string> merges;
    merges.reserve(kClipMergeCount);
    size_t position = header_end == std::string::npos ? text.size() : header_end + 1;
    while (position < text.size() && merges.size() < kClipMergeCount) {
        size_t line_end = text.find('\n', position);
        if (line_end == std::string::npos) line_end = text.size();
        const std::string_view line = std::string_view(text).substr(position, line_end - position);
        const auto fields = split_fields(line);
        if (fields.size() != 2) {
            throw Error(ErrorCode::invalid_input, path.string() + ": line " + std::to_string(merges.size() + 2) +
                                                      " is not a merge of two symbols: '" + std::string(line) + "'");
        }
        merges.push_back(std::string(fields[0]) + " " + std::string(fields[1]));
        position = line_end + 1;
    }
    if (merges.size() < kClipMergeCount) {
        throw Error(ErrorCode::invalid_input, path.string() + ": has " + std::to_string(merges.size()) +
                                                  " merges, but the CLIP vocabulary needs " +
                                                  std::to_string(kClipMergeCount));
    }
    return merges;
}

std::vector<std::pair<std::string, int64_t>> read_vocab_json(const std::filesystem::path& path) {
    const std::string text = read_file(path);
    nlohmann::json vocabulary;
    try {
        vocabulary = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 2e516
        throw Error(ErrorCode::invalid_input, path.string() + ": not valid JSON: " + e.what());
    }
    if (!vocabulary.is_object()) {
        throw Error(ErrorCode::invalid_input, path.string() + ": expected a JSON object mapping tokens to ids");
    }
    std::vector<std::pair<std::string, int64_t>> entries;
    entries.reserve(vocabulary.size());
    for (const auto& [token, id] : vocabulary.items()) {
        if (!id.is_number_integer()) {
            throw Error(ErrorCode::invalid_input, path.string() + ": the id of token '" + token + "' is not an integer");
        }
        entries.emplace_back(token, id.get<int64_t>());
    }
    return entries;
}

}  // namespace mclip::clip_text
