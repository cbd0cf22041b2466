#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "common/error.h"
#include "common/shared_library.h"

using namespace mclip;

TEST(SharedLibrary, ResolvesAFunctionOfAnOpenedLibrary) {
    const SharedLibrary libm("libm.so.6", "this test");
    double (*cosine)(double) = nullptr;
    libm.resolve(cosine, "cos");
    ASSERT_NE(cosine, nullptr);
    EXPECT_EQ(cosine(0.0), 1.0);
    EXPECT_EQ(cosine(M_PI), std::cos(M_PI));
}

TEST(SharedLibrary, AMissingLibraryIsAnErrorNamingItAndItsPurpose) {
    try {
        const SharedLibrary missing("libmclip-no-such-library.so.7", "live video");
        FAIL() << "a library that does not exist was opened";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::unsupported);
        const std::string message = e.what();
        EXPECT_NE(message.find("live video needs libmclip-no-such-library.so.7"), std::string::npos) << message;
        EXPECT_NE(message.find("cannot be opened"), std::string::npos) << message;
    }
}

TEST(SharedLibrary, AMissingFunctionIsAnErrorNamingItAndTheLibrary) {
    const SharedLibrary libm("libm.so.6", "this test");
    try {
        libm.function("mclip_no_such_function");
        FAIL() << "a function that does not exist was found";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::unsupported);
        const std::string message = e.what();
        EXPECT_NE(message.find("mclip_no_such_function from libm.so.6"), std::string::npos) << message;
    }
}
