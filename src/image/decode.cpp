// Format detection by magic bytes and the common steps around the per-format decoders.
#include <cstring>
#include <string_view>

#include "common/error.h"
#include "image/decoders.h"
#include "image/exif.h"
#include "mclip/image.h"
#include "io/mapped_file.h"

namespace mclip {

namespace {

enum class Format { jpeg, png, webp, unsupported, unknown };

struct Detected {
    Format format;
    std::string_view name;  // for unsupported formats, what the content looks like
};

bool starts_with(std::span<const uint8_t> bytes, std::string_view prefix, size_t at = 0) {
    return bytes.size() >= at + prefix.size() && std::memcmp(bytes.data() + at, prefix.data(), prefix.size()) == 0;
}

Detected detect_format(std::span<const uint8_t> bytes) {
    using namespace std::string_view_literals;
    if (starts_with(bytes, "\xFF\xD8\xFF"sv)) return {Format::jpeg, "JPEG"};
    if (starts_with(bytes, "\x89PNG\r\n\x1A\n"sv)) return {Format::png, "PNG"};
    if (starts_with(bytes, "RIFF"sv) && starts_with(bytes, "WEBP"sv, 8)) return {Format::webp, "WebP"};
    // Formats PIL may open but this build does not decode: named so the message can say so.
    static constexpr struct {
        std::string_view magic;
        size_t offset;
        std::string_view name;
    } kUnsupported[] = {
        {"GIF87a"sv, 0, "GIF"},
        {"GIF89a"sv, 0, "GIF"},
        {"BM"sv, 0, "BMP"},
        {"II*\0"sv, 0, "TIFF"},
        {"MM\0*"sv, 0, "TIFF"},
        {"ftypheic"sv, 4, "HEIF"},
        {"ftypheix"sv, 4, "HEIF"},
        {"ftypmif1"sv, 4, "HEIF"},
        {"ftypavif"sv, 4, "AVIF"},
        {"\0\0\0\x0CjP  \r\n\x87\n"sv, 0, "JPEG 2000"},
        {"\xFF\x4F\xFF\x51"sv, 0, "JPEG 2000"},
        {"\xFF\x0A"sv, 0, "JPEG XL"},
        {"\0\0\0\x0CJXL \r\n\x87\n"sv, 0, "JPEG XL"},
        {"8BPS"sv, 0, "Photoshop (PSD)"},
        {"\0\0\1\0"sv, 0, "ICO"},
        {"qoif"sv, 0, "QOI"},
        {"%PDF"sv, 0, "PDF"},
    };
    for (const auto& entry : kUnsupported) {
        if (starts_with(bytes, entry.magic, entry.offset)) return {Format::unsupported, entry.name};
    }
    return {Format::unknown, {}};
}

}  // namespace

namespace image_detail {

void check_pixel_limit(uint64_t width, uint64_t height, const std::string& name, const DecodeOptions& options) {
    const uint64_t pixels = width * height;
    if (options.max_pixels != 0 && pixels > options.max_pixels) {
        throw Error(ErrorCode::invalid_input,
                    name + ": image is " + std::to_string(width) + "x" + std::to_string(height) + " = " +
                        std::to_string(pixels) + " pixels, more than the limit of " + std::to_string(options.max_pixels) +
                        " (a decompression-bomb guard; raise the pixel limit to decode it)");
    }
}

}  // namespace image_detail

Image decode_image_memory(std::span<const uint8_t> bytes, const std::string& name, const DecodeOptions& options) {
    if (bytes.empty()) throw Error(ErrorCode::invalid_input, name + ": empty file (0 bytes), not an image");
    const Detected detected = detect_format(bytes);
    image_detail::DecodedImage decoded;
    switch (detected.format) {
        case Format::jpeg: decoded = image_detail::decode_jpeg(bytes, name, options); break;
        case Format::png: decoded = image_detail::decode_png(bytes, name, options); break;
        case Format::webp: decoded = image_detail::decode_webp(bytes, name, options); break;
        case Format::unsupported:
            throw Error(ErrorCode::invalid_input, name + ": unsupported image format " + std::string(detected.name) +
                                                      " (supported: JPEG, PNG, WebP)");
        case Format::unknown:
            throw Error(ErrorCode::invalid_input,
                        name + ": not an image (the content is not JPEG, PNG or WebP)");
    }
    if (options.apply_exif_orientation && !decoded.exif.empty()) {
        image_detail::apply_orientation(decoded.image, image_detail::exif_orientation(decoded.exif));
    }
    return std::move(decoded.image);
}

Image decode_image_file(const std::filesystem::path& path, const DecodeOptions& options) {
    const auto file = MappedFile::open(path);
    return decode_image_memory({reinterpret_cast<const uint8_t*>(file->data()), file->size()}, path.string(), options);
}

}  // namespace mclip
