// Opening a shared library by its soname at run time, for the optional parts whose libraries
// libmclip does not link, so that loading it does not load them: FFmpeg and SDL2 (live video),
// libcurl (downloads). Linked, they and what they need (over 200 shared libraries for FFmpeg alone:
// codecs, devices, X11, audio) are loaded and relocated by every process that loads libmclip,
// about 150 ms before `mclip classify` or `import mclip` can do anything.
#pragma once

#include <string>

namespace mclip {

// Never closed: the libraries keep state that points into them for the life of the process
// (FFmpeg's log callback and the devices registered with libavformat, libcurl's global state).
class SharedLibrary {
public:
    // Error(unsupported) "<purpose> needs <soname>, which cannot be opened: <the loader's reason>".
    SharedLibrary(const std::string& soname, const std::string& purpose);
    SharedLibrary(const SharedLibrary&) = delete;
    SharedLibrary& operator=(const SharedLibrary&) = delete;

    // The address of a function, or Error(unsupported) naming the library and the function.
    void* function(const char* name) const;

    // Functions resolved into a pointer of their declared type.
    template <typename Pointer>
    void resolve(Pointer& pointer, const char* name) const {
        pointer = reinterpret_cast<Pointer>(function(name));
    }

private:
    std::string soname_;
    std::string purpose_;
    void* handle_ = nullptr;
};

}  // namespace mclip
