// MCLIP_API marks what libmclip exports. The library is built with hidden visibility, so
// everything else (the engine's internals) stays private to it.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define MCLIP_API __attribute__((visibility("default")))
#else
#define MCLIP_API
#endif
