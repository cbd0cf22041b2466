// Backend selection: the fastest available backend by default, any one by name.
#include <omp.h>

#include "common/error.h"
#include "kernels/kernels.h"

namespace mclip::kernels {

#ifdef MCLIP_HAVE_ONEDNN_BACKEND
Backend* onednn_backend();  // onednn/onednn_backend.cpp; null when this CPU lacks what it needs
#else
static Backend* onednn_backend() { return nullptr; }
#endif

Backend& default_backend() {
    if (Backend* fast = onednn_backend()) return *fast;
    return reference_backend();
}

Backend& backend_by_name(const std::string& name) {
    if (name == "reference") return reference_backend();
    if (name == "onednn") {
        if (Backend* fast = onednn_backend()) return *fast;
        throw Error(ErrorCode::unsupported, "the oneDNN backend is not available in this build or on this CPU");
    }
    if (name == "auto" || name.empty()) return default_backend();
    throw Error(ErrorCode::invalid_argument, "unknown backend '" + name + "' (expected auto, reference or onednn)");
}

void set_num_threads(int threads) { omp_set_num_threads(threads > 0 ? threads : omp_get_num_procs()); }
int num_threads() { return omp_get_max_threads(); }

}  // namespace mclip::kernels
