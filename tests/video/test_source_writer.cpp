// Sources (files, folders, devices, errors) and the annotated-video writer.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

extern "C" {
#include <libavutil/frame.h>
}

#include "common/error.h"
#include "mclip/image.h"
#include "support/fixtures.h"
#include "video/source.h"
#include "video/writer.h"
#include "video_test_util.h"

namespace {

using mclip::testing::make_av_frame;
using mclip::testing::make_temp_dir;

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const mclip::Error& e) {
        return e.what();
    }
    return "";
}

void fill_gray(AVFrame& frame, uint8_t luma) {
    for (int p = 0; p < 3; ++p) {
        for (int y = 0; y < mclip::testing::plane_rows(frame, p); ++y) {
            std::memset(frame.data[p] + y * frame.linesize[p], p == 0 ? luma : 128, mclip::testing::plane_row_bytes(frame, p));
        }
    }
}

double mean_luma(const AVFrame& frame) {
    EXPECT_EQ(frame.format, AV_PIX_FMT_YUV420P);
    double sum = 0;
    for (int y = 0; y < frame.height; ++y) {
        for (int x = 0; x < frame.width; ++x) sum += frame.data[0][y * frame.linesize[0] + x];
    }
    return sum / (static_cast<double>(frame.width) * frame.height);
}

TEST(VideoWriter, WritesAVideoTheSourceReadsBack) {
    const auto dir = make_temp_dir("mclip-writer");
    const auto path = dir / "out.mp4";
    {
        mclip::VideoWriter writer(path, 64, 48, 25.0);
        auto frame = make_av_frame(AV_PIX_FMT_YUV420P, 64, 48);
        for (int i = 0; i < 12; ++i) {
            ASSERT_EQ(av_frame_make_writable(frame.get()), 0);
            fill_gray(*frame, static_cast<uint8_t>(40 + 15 * i));
            writer.write(*frame, i / 25.0);
        }
        writer.finish();
        EXPECT_EQ(writer.frames_written(), 12);
    }
    auto source = mclip::VideoSource::open(path.string());
    EXPECT_EQ(source->kind(), mclip::SourceKind::file);
    EXPECT_NEAR(source->frame_rate(), 25.0, 0.01);
    int count = 0;
    while (auto frame = source->read()) {
        EXPECT_EQ(frame->index, count);
        EXPECT_NEAR(frame->pts_seconds, count / 25.0, 1e-6);
        EXPECT_EQ(frame->picture->width, 64);
        EXPECT_EQ(frame->picture->height, 48);
        EXPECT_NEAR(mean_luma(*frame->picture), 40 + 15 * count, 3.0) << "frame " << count;
        ++count;
    }
    EXPECT_EQ(count, 12);
    // Only the finished file is left: the temporary file was renamed onto it.
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()), 1);
    std::filesystem::remove_all(dir);
}

TEST(VideoWriter, AnUnfinishedVideoLeavesNoFile) {
    const auto dir = make_temp_dir("mclip-writer");
    {
        mclip::VideoWriter writer(dir / "out.mp4", 32, 32, 30.0);
        auto frame = make_av_frame(AV_PIX_FMT_YUV420P, 32, 32);
        fill_gray(*frame, 100);
        writer.write(*frame, 0.0);
    }
    EXPECT_TRUE(std::filesystem::is_empty(dir));
    std::filesystem::remove_all(dir);
}

TEST(VideoWriter, RefusesAnUnknownContainer) {
    const auto dir = make_temp_dir("mclip-writer");
    const std::string message = error_of([&] { mclip::VideoWriter(dir / "out.notavideo", 32, 32, 30.0); });
    EXPECT_NE(message.find("out.notavideo"), std::string::npos) << message;
    const std::string missing_dir = error_of([&] { mclip::VideoWriter(dir / "no" / "such" / "out.mp4", 32, 32, 30.0); });
    EXPECT_NE(missing_dir.find("out.mp4"), std::string::npos) << missing_dir;
    EXPECT_TRUE(std::filesystem::is_empty(dir));
    std::filesystem::remove_all(dir);
}

TEST(VideoSource, NamesWhatIsMissingOrUnreadable) {
    const auto dir = make_temp_dir("mclip-source");
    const std::string missing = error_of([&] { mclip::VideoSource::open((dir / "nope.mp4").string()); });
    EXPECT_NE(missing.find("nope.mp4"), std::string::npos) << missing;
    EXPECT_NE(missing.find("no such file"), std::string::npos) << missing;

    const std::string device = error_of([] { mclip::VideoSource::open("/dev/video97"); });
    EXPECT_NE(device.find("/dev/video97"), std::string::npos) << device;
    EXPECT_NE(device.find("no such camera"), std::string::npos) << device;

    std::ofstream(dir / "notes.mp4") << "this is not a video, just some text\n";
    const std::string not_video = error_of([&] { mclip::VideoSource::open((dir / "notes.mp4").string()); });
    EXPECT_NE(not_video.find("notes.mp4"), std::string::npos) << not_video;

    std::filesystem::create_directory(dir / "empty");
    std::ofstream(dir / "empty" / "readme.txt") << "no images here\n";
    const std::string empty = error_of([&] { mclip::VideoSource::open((dir / "empty").string()); });
    EXPECT_NE(empty.find("no JPEG, PNG or WebP images"), std::string::npos) << empty;
    std::filesystem::remove_all(dir);
}

TEST(VideoSource, RecognizesKindsOfSource) {
    EXPECT_EQ(mclip::source_kind("rtsp://camera.local/stream"), mclip::SourceKind::stream);
    EXPECT_EQ(mclip::source_kind("http://example.com/live.ts"), mclip::SourceKind::stream);
    EXPECT_EQ(mclip::source_kind("/dev/video0"), mclip::SourceKind::device);
    EXPECT_EQ(mclip::source_kind("/tmp"), mclip::SourceKind::image_folder);
    EXPECT_EQ(mclip::source_kind("clip.mp4"), mclip::SourceKind::file);
}

// A folder plays its images in name order, decoded as `mclip classify` decodes them; files that
// fail to decode are skipped.
TEST(VideoSource, FolderOfImagesInNameOrder) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const auto dir = make_temp_dir("mclip-folder");
    std::filesystem::copy_file(fixtures / "images" / "rocket.jpg", dir / "a_rocket.jpg");
    std::filesystem::copy_file(fixtures / "images" / "truncated.jpg", dir / "b_truncated.jpg");
    std::filesystem::copy_file(fixtures / "images" / "chelsea.png", dir / "c_chelsea.png");
    std::ofstream(dir / "d_notes.txt") << "not an image\n";
    mclip::SourceOptions options;
    options.folder_fps = 4;
    auto source = mclip::VideoSource::open(dir.string(), options);
    EXPECT_EQ(source->kind(), mclip::SourceKind::image_folder);
    const std::vector<std::filesystem::path> expected = {dir / "a_rocket.jpg", dir / "c_chelsea.png"};
    for (size_t i = 0; i < expected.size(); ++i) {
        auto frame = source->read();
        ASSERT_TRUE(frame) << "frame " << i;
        EXPECT_EQ(frame->index, static_cast<int64_t>(i));
        EXPECT_DOUBLE_EQ(frame->pts_seconds, i / 4.0);
        const mclip::Image image = mclip::decode_image_file(expected[i]);
        const AVFrame& picture = *frame->picture;
        ASSERT_EQ(picture.format, AV_PIX_FMT_RGB24);
        ASSERT_EQ(picture.width, image.width);
        ASSERT_EQ(picture.height, image.height);
        for (int y = 0; y < image.height; ++y) {
            ASSERT_EQ(std::memcmp(picture.data[0] + y * picture.linesize[0], image.rgb.data() + static_cast<size_t>(y) * image.width * 3,
                                  static_cast<size_t>(image.width) * 3), 0);
        }
    }
    EXPECT_FALSE(source->read());
    std::filesystem::remove_all(dir);
}

}  // namespace
