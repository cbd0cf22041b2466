/* classify: zero-shot labels for images through mclip's C API.
 *
 *   classify MODEL.gguf "person,forklift,car" photo.jpg [more.jpg ...]
 *
 * Prints one line per image: the file, the best label (or "unknown") and its probability, then
 * the top three with their probabilities and cosine similarities. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mclip/mclip_c.h"

enum { kMaxLabels = 256, kTop = 3 };

/* Splits a comma-separated list in place. */
static int split_labels(char* list, const char** labels) {
    int count = 0;
    for (char* item = strtok(list, ","); item && count < kMaxLabels; item = strtok(NULL, ",")) labels[count++] = item;
    return count;
}

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL LABELS IMAGE...\n", argv[0]);
        return 2;
    }
    mclip_model* model = NULL;
    if (mclip_model_load(argv[1], NULL, &model) != MCLIP_OK) {
        fprintf(stderr, "classify: %s\n", mclip_last_error());
        return 1;
    }
    mclip_model_info info;
    if (mclip_model_get_info(model, &info) != MCLIP_OK) {
        fprintf(stderr, "classify: %s\n", mclip_last_error());
        mclip_model_free(model);
        return 1;
    }

    const char* names[kMaxLabels];
    char* list = strdup(argv[2]);
    const int label_count = split_labels(list, names);
    mclip_labels* labels = NULL;
    int status = 0;
    if (mclip_labels_create(model, names, label_count, NULL, 0, NULL, &labels) != MCLIP_OK) {
        fprintf(stderr, "classify: %s\n", mclip_last_error());
        status = 1;
    }

    float* embedding = malloc((size_t)info.embed_dim * sizeof(float));
    for (int i = 3; i < argc && labels; ++i) {
        mclip_score top[kTop];
        mclip_classification result;
        if (mclip_embed_image_file(model, argv[i], embedding, (size_t)info.embed_dim) != MCLIP_OK ||
            mclip_classify(model, labels, embedding, (size_t)info.embed_dim, kTop, 0.0f, top, kTop, &result) != MCLIP_OK) {
            fprintf(stderr, "classify: %s\n", mclip_last_error());
            status = 1;
            continue;
        }
        const char* best = "unknown";
        if (result.label >= 0) mclip_labels_name(labels, result.label, &best);
        printf("%s: %s %.1f%%", argv[i], best, 100.0 * result.confidence);
        for (int k = 0; k < result.top_count; ++k) {
            const char* name = "";
            mclip_labels_name(labels, top[k].index, &name);
            printf("%s %s %.3f (cos %.3f)", k == 0 ? " |" : ",", name, top[k].probability, top[k].cosine);
        }
        printf("\n");
    }

    free(embedding);
    free(list);
    mclip_labels_free(labels);
    mclip_model_free(model);
    return status;
}
