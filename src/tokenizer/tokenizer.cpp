#include "mclip/tokenizer.h"

#include <algorithm>
#include <array>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <unordered_map>

#include "common/error.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/text_cleanup.h"
#include "tokenizer/unicode_text.h"
#include "tokenizer/vocabulary_files.h"

namespace mclip {
namespace {

constexpr std::string_view kStartToken = "<start_of_text>";
constexpr std::string_view kEndToken = "<end_of_text>";
constexpr std::string_view kWordEnd = "</w>";
// Hugging Face's vocab.json spells the special tokens differently; the ids are the same.
constexpr std::string_view kHuggingFaceStartToken = "<|startoftext|>";
constexpr std::string_view kHuggingFaceEndToken = "<|endoftext|>";
// Beyond this many distinct words the cache starts over, so memory stays bounded on endless input.
constexpr size_t kMaxCachedWords = 1 << 18;

// GPT-2's byte-to-unicode map: each byte becomes a printable character. Bytes 33-126, 161-172 and
// 174-255 stand for themselves; the other 68, in increasing order, become U+0100 + n. The byte
// symbols' ids are in the order of these characters: the self-standing bytes first.
bool stands_for_itself(int byte) { return (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || byte >= 174; }

std::array<std::string, 256> byte_symbols() {
    std::array<std::string, 256> symbols;
    char32_t next_shifted = 0x100;
    for (int byte = 0; byte < 256; ++byte) {
        clip_text::append_utf8(symbols[byte], stands_for_itself(byte) ? static_cast<char32_t>(byte) : next_shifted++);
    }
    return symbols;
}

std::array<uint8_t, 256> bytes_in_id_order() {
    std::array<uint8_t, 256> order{};
    size_t next = 0;
    for (bool itself : {true, false}) {
        for (int byte = 0; byte < 256; ++byte) {
            if (stands_for_itself(byte) == itself) order[next++] = static_cast<uint8_t>(byte);
        }
    }
    return order;
}

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

struct Merge {
    int32_t rank;
    int32_t result;  // id of the merged symbol
};

uint64_t pair_key(int32_t first, int32_t second) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(first)) << 32) | static_cast<uint32_t>(second);
}

}  // namespace

struct Tokenizer::State {
    std::vector<std::string> merges;
    std::vector<std::string> tokens;
    std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> token_ids;
    std::array<int32_t, 256> byte_ids{};           // a byte inside a word
    std::array<int32_t, 256> word_end_byte_ids{};  // the last byte of a word, with "</w>"
    std::unordered_map<uint64_t, Merge> merge_of_pair;
    int32_t start_id = 0;
    int32_t end_id = 0;

    mutable std::shared_mutex cache_mutex;
    mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache;

    int32_t id_of(std::string_view token) const { return token_ids.find(token)->second; }
    std::vector<int32_t> byte_pair_encode(std::string_view word) const;
    void append_word_ids(std::string_view word, std::vector<int32_t>& ids) const;
};

// open_clip's SimpleTokenizer.bpe on symbol ids: repeatedly take the adjacent pair of lowest
// rank and merge all its occurrences left to right, until no adjacent pair has a rank.
//
// A priority queue of (rank, position) candidates makes this O(n log n) instead of quadratic in
// the word length. The pairs a round of merges creates wait until every occurrence of that
// round's rank is merged, exactly as Python rescans only after a whole pass; candidates whose
// symbols have changed since they were queued are skipped.
std::vector<int32_t> Tokenizer::State::byte_pair_encode(std::string_view word) const {
    const size_t n = word.size();
    std::vector<int32_t> symbols(n);
    for (size_t i = 0; i + 1 < n; ++i) symbols[i] = byte_ids[static_cast<uint8_t>(word[i])];
    symbols[n - 1] = word_end_byte_ids[static_cast<uint8_t>(word.back())];
    // A doubly linked list over positions; a merged-away position gets symbol -1.
    std::vector<int32_t> next(n);
    std::vector<int32_t> previous(n);
    for (size_t i = 0; i < n; ++i) {
        next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
        previous[i] = static_cast<int32_t>(i) - 1;
    }

    struct Candidate {
        int32_t rank;
        int32_t position;  // of the left symbol
        int32_t left;
        int32_t right;
        int32_t result;
        bool operator>(const Candidate& other) const {
            return rank != other.rank ? rank > other.rank : position > other.position;
        }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
    std::vector<Candidate> created;
    auto add_candidate_at = [&](int32_t position) {
        const int32_t right = next[static_cast<size_t>(position)];
        if (right < 0) return;
        const int32_t left_symbol = symbols[static_cast<size_t>(position)];
        const int32_t right_symbol = symbols[static_cast<size_t>(right)];
        const auto it = merge_of_pair.find(pair_key(left_symbol, right_symbol));
        if (it != merge_of_pair.end()) {
            created.push_back({it->second.rank, position, left_symbol, right_symbol, it->second.result});
        }
    };
    for (size_t i = 0; i + 1 < n; ++i) add_candidate_at(static_cast<int32_t>(i));
    for (const auto& candidate : created) queue.push(candidate);

    while (!queue.empty()) {
        const int32_t rank = queue.top().rank;
        created.clear();
        while (!queue.empty() && queue.top().rank == rank) {
            const Candidate candidate = queue.top();
            queue.pop();
            const auto left = static_cast<size_t>(candidate.position);
            const int32_t right = next[left];
            if (symbols[left] != candidate.left || right < 0 || symbols[static_cast<size_t>(right)] != candidate.right) {
                continue;
            }
            symbols[left] = candidate.result;
            symbols[static_cast<size_t>(right)] = -1;
            next[left] = next[static_cast<size_t>(right)];
            if (next[left] >= 0) previous[static_cast<size_t>(next[left])] = candidate.position;
            if (previous[left] >= 0) add_candidate_at(previous[left]);
            add_candidate_at(candidate.position);
        }
        for (const auto& candidate : created) queue.push(candidate);
    }

    std::vector<int32_t> merged;
    for (int32_t position = 0; position >= 0; position = next[static_cast<size_t>(position)]) {
        merged.push_back(symbols[static_cast<size_t>(position)]);
    }
    return merged;
}

void Tokenizer::State::append_word_ids(std::string_view word, std::vector<int32_t>& ids) const {
    // The special tokens written in the text itself become the special ids (open_clip seeds its
    // cache with them); a case variant that the pattern also matched is encoded as plain text.
    if (word == kStartToken) {
        ids.push_back(start_id);
        return;
    }
    if (word == kEndToken) {
        ids.push_back(end_id);
        return;
    }
    {
        std::shared_lock lock(cache_mutex);
        const auto it = cache.find(word);
        if (it != cache.end()) {
            ids.insert(ids.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    std::vector<int32_t> word_ids = byte_pair_encode(word);
    ids.insert(ids.end(), word_ids.begin(), word_ids.end());
    std::unique_lock lock(cache_mutex);
    if (cache.size() >= kMaxCachedWords) cache.clear();
    cache.emplace(std::string(word), std::move(word_ids));
}

Tokenizer::Tokenizer(std::unique_ptr<State> state) : state_(std::move(state)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_merges(std::vector<std::string> merges) {
    auto state = std::make_unique<State>();
    const auto symbols = byte_symbols();
    const auto order = bytes_in_id_order();
    for (uint8_t byte : order) state->tokens.push_back(symbols[byte]);
    for (uint8_t byte : order) state->tokens.push_back(symbols[byte] + std::string(kWordEnd));

    // Split every line first: each merge adds the symbol it forms, and the vocabulary must be
    // complete before ids are resolved (a later duplicate of a symbol owns its id, as in
    // open_clip's dict(zip(vocab, range(len(vocab))))).
    std::vector<std::pair<std::string, std::string>> pairs;
    pairs.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
        const std::string& line = merges[rank];
        const size_t space = line.find(' ');
        if (space == 0 || space == std::string::npos || space + 1 == line.size() ||
            line.find(' ', space + 1) != std::string::npos) {
            throw Error(ErrorCode::invalid_input,
                        "merge " + std::to_string(rank) + " is not two symbols separated by a space: '" + line + "'");
        }
        pairs.emplace_back(line.substr(0, space), line.substr(space + 1));
        state->tokens.push_back(pairs.back().first + pairs.back().second);
    }
    state->tokens.emplace_back(kStartToken);
    state->tokens.emplace_back(kEndToken);
    for (size_t id = 0; id < state->tokens.size(); ++id) state->token_ids[state->tokens[id]] = static_cast<int32_t>(id);

    for (size_t rank = 0; rank < pairs.size(); ++rank) {
        const auto& [first, second] = pairs[rank];
        for (const std::string* symbol : {&first, &second}) {
            if (!state->token_ids.contains(*symbol)) {
                throw Error(ErrorCode::invalid_input, "merge " + std::to_string(rank) + " ('" + merges[rank] +
                                                          "') uses '" + *symbol + "', which is not in the vocabulary");
            }
        }
        state->merge_of_pair[pair_key(state->id_of(first), state->id_of(second))] =
            Merge{static_cast<int32_t>(rank), state->id_of(first + second)};
    }
    for (int byte = 0; byte < 256; ++byte) {
        state->byte_ids[byte] = state->id_of(symbols[byte]);
        state->word_end_byte_ids[byte] = state->id_of(symbols[byte] + std::string(kWordEnd));
    }
    state->start_id = state->id_of(kStartToken);
    state->end_id = state->id_of(kEndToken);
    state->merges = std::move(merges);
    return Tokenizer(std::move(state));
}

Tokenizer Tokenizer::from_file(const std::filesystem::path& path) {
    std::error_code error;
    const bool is_directory = std::filesystem::is_directory(path, error);
    const bool is_vocab_json = !is_directory && path.extension() == ".json";
    if (!is_directory && !is_vocab_json) return from_merges(clip_text::read_merges_file(path));

    const auto vocab_path = is_directory ? path / "vocab.json" : path;
    const auto merges_path = vocab_path.parent_path() / "merges.txt";
    Tokenizer tokenizer = from_merges(clip_text::read_merges_file(merges_path));
    const auto vocabulary = clip_text::read_vocab_json(vocab_path);
    const State& state = *tokenizer.state_;
    if (vocabulary.size() != state.tokens.size()) {
        throw Error(ErrorCode::invalid_input, vocab_path.string() + ": has " + std::to_string(vocabulary.size()) +
                                                  " tokens, but " + merges_path.string() + " makes " +
                                                  std::to_string(state.tokens.size()));
    }
    for (const auto& [token, id] : vocabulary) {
        std::string_view name = token;
        if (name == kHuggingFaceStartToken) name = kStartToken;
        if (name == kHuggingFaceEndToken) name = kEndToken;
        const auto it = state.token_ids.find(name);
        if (it == state.token_ids.end() || it->second != id) {
            throw Error(ErrorCode::invalid_input,
                        vocab_path.string() + ": token '" + token + "' has id " + std::to_string(id) + ", but " +
                            merges_path.string() + " gives it " +
                            (it == state.token_ids.end() ? std::string("no id") : "id " + std::to_string(it->second)));
        }
    }
    return tokenizer;
}

const std::vector<std::string>& Tokenizer::merges() const { return state_->merges; }
const std::vector<std::string>& Tokenizer::tokens() const { return state_->tokens; }
size_t Tokenizer::vocab_size() const { return state_->tokens.size(); }
int32_t Tokenizer::start_id() const { return state_->start_id; }
int32_t Tokenizer::end_id() const { return state_->end_id; }

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
    const std::string cleaned = clip_text::clean_text(text);
    thread_local std::vector<std::string_view> words;
    words.clear();
    clip_text::split_words(cleaned, words);
    std::vector<int32_t> ids;
    ids.reserve(words.size() * 2 + 2);
    ids.push_back(state_->start_id);
    for (std::string_view word : words) state_->append_word_ids(word, ids);
    ids.push_back(state_->end_id);
    return ids;
}

std::vector<int32_t> Tokenizer::context(std::string_view text, int length) const {
    if (length < 1) {
        throw Error(ErrorCode::invalid_argument, "context length must be at least 1, not " + std::to_string(length));
    }
    std::vector<int32_t> ids = encode(text);
    const auto size = static_cast<size_t>(length);
    if (ids.size() > size) {
        ids.resize(size);
        ids.back() = state_->end_id;
    }
    ids.resize(size, 0);
    return ids;
}

std::vector<int32_t> Tokenizer::context_batch(std::span<const std::string> texts, int length) const {
    std::vector<int32_t> batch;
    batch.reserve(texts.size() * static_cast<size_t>(std::max(length, 0)));
    for (const auto& text : texts) {
        const auto ids = context(text, length);
        batch.insert(batch.end(), ids.begin(), ids.end());
    }
    return batch;
}

void Tokenizer::clear_cache() const {
    std::unique_lock lock(state_->cache_mutex);
    state_->cache.clear();
}

}  // namespace mclip
