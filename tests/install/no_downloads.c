/* Run against a libmclip.so built with MCLIP_WITH_DOWNLOADS=OFF and an empty cache
 * (scripts/check-minimal-build.sh): a model name must fail with MCLIP_ERROR_UNSUPPORTED and a
 * message saying this build has no downloads. */
#include <mclip/mclip_c.h>

#include <stdio.h>
#include <string.h>

int main(void) {
    mclip_model* model = NULL;
    const mclip_status status = mclip_model_load("mobileclip-s0", NULL, &model);
    const char* message = mclip_last_error();
    if (status != MCLIP_ERROR_UNSUPPORTED || model != NULL || !strstr(message, "no downloads")) {
        fprintf(stderr, "no_downloads: expected an unsupported error about downloads, got %s: %s\n",
                mclip_status_string(status), message);
        return 1;
    }
    printf("no_downloads: %s\n", message);
    return 0;
}
