// An application of the installed library: embeds images and texts with the public C++ API and
// writes each set as a float32 .npy file, byte for byte what `mclip embed` writes for them.
//
//   cxx_consumer MODEL IMAGES_NPY TEXTS_NPY TEXTS_FILE IMAGE...
//
// TEXTS_FILE holds one text per line (an empty line is an empty text).
#include <mclip/mclip.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

// NumPy format 1.0: magic, header length, a Python dict padded with spaces to a multiple of 64
// bytes, then the little-endian rows. Written beside the destination, then renamed into place.
void write_npy(const std::string& path, const mclip::Embeddings& embeddings) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(embeddings.rows) + ", " +
                         std::to_string(embeddings.dim) + "), }";
    header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
    header += '\n';
    const std::string partial = path + ".part";
    {
        std::ofstream out(partial, std::ios::binary);
        out.write("\x93NUMPY\x01\x00", 8);
        const char length[2] = {static_cast<char>(header.size() & 0xff), static_cast<char>(header.size() >> 8)};
        out.write(length, 2);
        out << header;
        out.write(reinterpret_cast<const char*>(embeddings.values.data()),
                  static_cast<std::streamsize>(embeddings.values.size() * sizeof(float)));
        if (!out.flush()) throw mclip::Error(mclip::ErrorCode::io, partial + ": cannot write");
    }
    std::filesystem::rename(partial, path);
}

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw mclip::Error(mclip::ErrorCode::io, path + ": cannot open");
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 6) {
        std::fprintf(stderr, "usage: %s MODEL IMAGES_NPY TEXTS_NPY TEXTS_FILE IMAGE...\n", argv[0]);
        return 2;
    }
    try {
        const mclip::Model model = mclip::Model::load(argv[1]);
        write_npy(argv[2], model.embed_image_files(std::vector<std::string>(argv + 5, argv + argc)));
        write_npy(argv[3], model.embed_texts(read_lines(argv[4])));
    } catch (const mclip::Error& error) {
        // Caught by type across the library boundary: mclip::Error's type information is exported.
        std::fprintf(stderr, "cxx_consumer: %s error: %s\n", mclip::to_string(error.code()), error.what());
        return 1;
    }
    return 0;
}
