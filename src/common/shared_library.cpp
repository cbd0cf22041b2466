#include "common/shared_library.h"

#include <dlfcn.h>

#include "common/error.h"

namespace mclip {

SharedLibrary::SharedLibrary(const std::string& soname, const std::string& purpose) : soname_(soname), purpose_(purpose) {
    handle_ = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle_) {
        const char* reason = dlerror();
        throw Error(ErrorCode::unsupported,
                    purpose + " needs " + soname + ", which cannot be opened: " + (reason ? reason : "no reason given"));
    }
}

void* SharedLibrary::function(const char* name) const {
    dlerror();
    void* address = dlsym(handle_, name);
    if (!address) {
        throw Error(ErrorCode::unsupported, purpose_ + " needs " + name + " from " + soname_ + ", which does not define it");
    }
    return address;
}

}  // namespace mclip
