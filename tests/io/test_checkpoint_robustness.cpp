// Damaged checkpoints: every truncation of a real torch.save file, every single-byte change of
// it, and mutated pickles inside intact archives. The reader must throw mclip::Error or return
// the undamaged tensors; it must never crash, hang or return altered data from a corrupt record.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <random>

#include "common/error.h"
#include "io/pytorch_checkpoint.h"
#include "io/io_test_support.h"
#include "support/fixtures.h"
#include "torch_archive_builder.h"

using namespace mclip;
using namespace mclip::testing;

namespace {

bool same_tensors(const TensorMap& a, const TensorMap& b) {
    if (a.size() != b.size()) return false;
    for (const auto& [name, tensor] : a) {
        auto it = b.find(name);
        if (it == b.end() || it->second.dtype() != tensor.dtype() || it->second.shape() != tensor.shape() ||
            std::memcmp(it->second.data(), tensor.data(), tensor.bytes()) != 0) {
            return false;
        }
    }
    return true;
}

enum class Outcome { refused, intact, altered };

// Reads the file; any exception other than mclip::Error fails the test.
Outcome read_outcome(const std::filesystem::path& path, const TensorMap& original) {
    try {
        return same_tensors(read_pytorch_checkpoint(path), original) ? Outcome::intact : Outcome::altered;
    } catch (const Error&) {
        return Outcome::refused;
    } catch (const std::exception& e) {
        ADD_FAILURE() << "threw a non-mclip exception: " << e.what();
        return Outcome::refused;
    }
}

class DamagedCheckpoint : public ::testing::Test {
protected:
    void SetUp() override {
        auto found = fixtures_dir();
        if (!found) {
            if (running_under_ci()) FAIL() << "reference fixtures not found (set MCLIP_FIXTURES); required under CI";
            GTEST_SKIP() << "reference fixtures not found";
        }
        source_ = *found / "checkpoints" / "state_dict.pt";
        original_ = read_pytorch_checkpoint(source_);
        dir_ = make_temp_dir("mclip-damaged");
        started_ = std::chrono::steady_clock::now();
    }
    void TearDown() override {
        if (!dir_.empty()) std::filesystem::remove_all(dir_);
        // Thousands of reads of a 4 KiB file: each takes well under a millisecond.
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
        EXPECT_LT(seconds, 60.0);
    }
    std::filesystem::path source_;
    TensorMap original_;
    std::filesystem::path dir_;
    std::chrono::steady_clock::time_point started_;
};

}  // namespace

TEST_F(DamagedCheckpoint, EveryTruncationIsRefused) {
    const std::string bytes = read_bytes(source_);
    const auto file = dir_ / "cut.pt";
    for (size_t length = 0; length < bytes.size(); ++length) {
        write_bytes(file, std::string_view(bytes).substr(0, length));
        EXPECT_EQ(read_outcome(file, original_), Outcome::refused) << "truncated to " << length << " bytes";
    }
}

TEST_F(DamagedCheckpoint, EveryByteFlipIsRefusedOrHarmless) {
    // A change to data is caught by the zip CRCs; a change to a name or size by libzip or the
    // reader; a change to a field nobody reads (a timestamp, the version record) is harmless.
    const std::string bytes = read_bytes(source_);
    const auto file = dir_ / "flipped.pt";
    size_t refused = 0;
    for (size_t position = 0; position < bytes.size(); ++position) {
        std::string damaged = bytes;
        damaged[position] = static_cast<char>(damaged[position] ^ 0x5a);
        write_bytes(file, damaged);
        const Outcome outcome = read_outcome(file, original_);
        EXPECT_NE(outcome, Outcome::altered) << "byte " << position << " changed the tensors without an error";
        refused += outcome == Outcome::refused;
    }
    // Most of the file is CRC-protected record data and directory structure.
    EXPECT_GT(refused, bytes.size() * 3 / 4);
}

TEST_F(DamagedCheckpoint, MutatedPicklesInIntactArchivesNeverCrash) {
    // The zip layer would catch these through CRCs, so re-archive each mutated pickle properly:
    // this reaches the unpickler itself with every kind of malformed input.
    const std::vector<ArchiveRecord> records = read_zip(source_);
    ASSERT_EQ(records.front().name, "state_dict/data.pkl");
    const std::string pickle = records.front().data;
    const auto file = dir_ / "mutated.pt";
    auto try_pickle = [&](const std::string& mutated) {
        std::vector<ArchiveRecord> copy = records;
        copy.front().data = mutated;
        write_zip(file, copy);
        return read_outcome(file, original_);
    };

    for (size_t length = 0; length < pickle.size(); ++length) {
        EXPECT_EQ(try_pickle(pickle.substr(0, length)), Outcome::refused) << "pickle truncated to " << length << " bytes";
    }
    std::mt19937 random(20240611);
    size_t refused = 0, runs = 0;
    for (size_t position = 0; position < pickle.size(); ++position) {
        for (uint8_t replacement : {uint8_t{0x00}, uint8_t{0xff}, static_cast<uint8_t>(pickle[position] + 1),
                                    static_cast<uint8_t>(random() & 0xff)}) {
            std::string mutated = pickle;
            mutated[position] = static_cast<char>(replacement);
            refused += try_pickle(mutated) == Outcome::refused;
            ++runs;
        }
    }
    for (int run = 0; run < 1000; ++run, ++runs) {
        std::string mutated = pickle;
        for (int k = 1 + static_cast<int>(random() % 8); k > 0; --k) mutated[random() % mutated.size()] = static_cast<char>(random() & 0xff);
        refused += try_pickle(mutated) == Outcome::refused;
    }
    // Changes that keep a valid pickle (a different tensor name, another shape that fits its
    // storage) may read successfully with other tensors; most changes are refused.
    EXPECT_GT(refused, runs / 2);
}
