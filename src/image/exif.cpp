#include "image/exif.h"

#include <cstring>
#include <utility>

namespace mclip::image_detail {

namespace {

constexpr uint16_t kOrientationTag = 0x0112;
constexpr uint16_t kTypeShort = 3;
constexpr uint16_t kTypeLong = 4;

// Bounds-checked reads of a TIFF structure in either byte order.
class TiffReader {
public:
    TiffReader(std::span<const uint8_t> bytes, bool big_endian) : bytes_(bytes), big_endian_(big_endian) {}

    bool u16(size_t offset, uint16_t& value) const {
        if (offset > bytes_.size() || bytes_.size() - offset < 2) return false;
        const uint8_t* p = bytes_.data() + offset;
        value = big_endian_ ? static_cast<uint16_t>(p[0] << 8 | p[1]) : static_cast<uint16_t>(p[1] << 8 | p[0]);
        return true;
    }

    bool u32(size_t offset, uint32_t& value) const {
        uint16_t first = 0, second = 0;
        if (!u16(offset, first) || !u16(offset + 2, second)) return false;
        value = big_endian_ ? (uint32_t{first} << 16 | second) : (uint32_t{second} << 16 | first);
        return true;
    }

private:
    std::span<const uint8_t> bytes_;
    bool big_endian_;
};

}  // namespace

int exif_orientation(std::span<const uint8_t> exif) {
    static constexpr uint8_t kExifPrefix[6] = {'E', 'x', 'i', 'f', 0, 0};
    if (exif.size() >= 6 && std::memcmp(exif.data(), kExifPrefix, 6) == 0) exif = exif.subspan(6);
    if (exif.size() < 8) return 1;
    bool big_endian;
    if (exif[0] == 'I' && exif[1] == 'I') big_endian = false;
    else if (exif[0] == 'M' && exif[1] == 'M') big_endian = true;
    else return 1;
    const TiffReader tiff(exif, big_endian);
    uint16_t magic = 0, entries = 0;
    uint32_t ifd0 = 0;
    if (!tiff.u16(2, magic) || magic != 42 || !tiff.u32(4, ifd0) || !tiff.u16(ifd0, entries)) return 1;
    // Each IFD entry is 12 bytes: tag, type, count, then the value itself when it fits in 4 bytes.
    for (uint32_t i = 0; i < entries; ++i) {
        const size_t entry = size_t{ifd0} + 2 + size_t{i} * 12;
        uint16_t tag = 0, type = 0;
        uint32_t count = 0;
        if (!tiff.u16(entry, tag) || !tiff.u16(entry + 2, type) || !tiff.u32(entry + 4, count)) return 1;
        if (tag != kOrientationTag) continue;
        uint32_t value = 0;
        if (count < 1) return 1;
        if (type == kTypeShort) {
            uint16_t short_value = 0;
            if (!tiff.u16(entry + 8, short_value)) return 1;
            value = short_value;
        } else if (type == kTypeLong) {
            if (!tiff.u32(entry + 8, value)) return 1;
        } else {
            return 1;
        }
        return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
    }
    return 1;
}

void apply_orientation(Image& image, int orientation) {
    if (orientation < 2 || orientation > 8) return;
    const int w = image.width, h = image.height;
    const bool swaps_axes = orientation >= 5;
    const int out_w = swaps_axes ? h : w;
    const int out_h = swaps_axes ? w : h;
    std::vector<uint8_t> out(image.rgb.size());
    // For output pixel (x, y), the source pixel (sx, sy) of the input.
    auto source = [&](int x, int y) -> std::pair<int, int> {
        switch (orientation) {
            case 2: return {w - 1 - x, y};
            case 3: return {w - 1 - x, h - 1 - y};
            case 4: return {x, h - 1 - y};
            case 5: return {y, x};
            case 6: return {y, h - 1 - x};
            case 7: return {w - 1 - y, h - 1 - x};
            default: return {w - 1 - y, x};  // 8
        }
    };
    for (int y = 0; y < out_h; ++y) {
        uint8_t* dst = out.data() + static_cast<size_t>(y) * out_w * 3;
        for (int x = 0; x < out_w; ++x) {
            const auto [sx, sy] = source(x, y);
            const uint8_t* src = image.rgb.data() + (static_cast<size_t>(sy) * w + sx) * 3;
            dst[x * 3 + 0] = src[0];
            dst[x * 3 + 1] = src[1];
            dst[x * 3 + 2] = src[2];
        }
    }
    image.rgb = std::move(out);
    image.width = out_w;
    image.height = out_h;
}

}  // namespace mclip::image_detail
