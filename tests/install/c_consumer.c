/* An application of the installed library in C (built with pkg-config): embeds each image on its
 * own and the texts as one batch with the C API, and writes float32 .npy files, byte for byte
 * what `mclip embed` writes for the same inputs.
 *
 *   c_consumer MODEL IMAGE_NPY_PREFIX TEXTS_NPY TEXTS_FILE IMAGE...
 *
 * Image i goes to IMAGE_NPY_PREFIX<i>.npy ([1, embed_dim]); TEXTS_FILE holds one text per line
 * (an empty line is an empty text), embedded into TEXTS_NPY ([texts, embed_dim]). */
#define _POSIX_C_SOURCE 200809L

#include <mclip/mclip_c.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* NumPy format 1.0: magic, header length, a Python dict padded with spaces to a multiple of 64
 * bytes, then the little-endian rows. Written beside the destination, then renamed into place. */
static int write_npy(const char* path, const float* values, int rows, int dim) {
    char header[128];
    int length = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, dim);
    while ((10 + length + 1) % 64 != 0) header[length++] = ' ';
    header[length++] = '\n';
    char partial[4096];
    snprintf(partial, sizeof partial, "%s.part", path);
    FILE* out = fopen(partial, "wb");
    if (!out) {
        perror(partial);
        return 0;
    }
    const unsigned char size[2] = {(unsigned char)(length & 0xff), (unsigned char)(length >> 8)};
    const size_t count = (size_t)rows * (size_t)dim;
    const int written = fwrite("\x93NUMPY\x01\x00", 1, 8, out) == 8 && fwrite(size, 1, 2, out) == 2 &&
                        fwrite(header, 1, (size_t)length, out) == (size_t)length &&
                        fwrite(values, sizeof(float), count, out) == count;
    if (fclose(out) != 0 || !written || rename(partial, path) != 0) {
        fprintf(stderr, "c_consumer: cannot write %s\n", path);
        return 0;
    }
    return 1;
}

/* The lines of a file, without their line ends; *count gets how many. */
static char** read_lines(const char* path, int* count) {
    FILE* in = fopen(path, "r");
    if (!in) {
        perror(path);
        return NULL;
    }
    char** lines = NULL;
    *count = 0;
    char* line = NULL;
    size_t capacity = 0;
    ssize_t length;
    while ((length = getline(&line, &capacity, in)) >= 0) {
        if (length > 0 && line[length - 1] == '\n') line[length - 1] = '\0';
        char** grown = realloc(lines, (size_t)(*count + 1) * sizeof *lines);
        if (!grown || !(grown[*count] = strdup(line))) {
            fprintf(stderr, "c_consumer: out of memory reading %s\n", path);
            exit(1);
        }
        lines = grown;
        ++*count;
    }
    free(line);
    fclose(in);
    return lines;
}

static int fail(const char* what, mclip_status status) {
    fprintf(stderr, "c_consumer: %s: %s: %s\n", what, mclip_status_string(status), mclip_last_error());
    return 1;
}

int main(int argc, char** argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s MODEL IMAGE_NPY_PREFIX TEXTS_NPY TEXTS_FILE IMAGE...\n", argv[0]);
        return 2;
    }
    mclip_model* model = NULL;
    mclip_status status = mclip_model_load(argv[1], NULL, &model);
    if (status != MCLIP_OK) return fail(argv[1], status);
    mclip_model_info info;
    status = mclip_model_get_info(model, &info);
    if (status != MCLIP_OK) return fail("mclip_model_get_info", status);

    int text_count = 0;
    char** texts = read_lines(argv[4], &text_count);
    if (!texts) return 1;
    /* One row per text, and at least one for the images. */
    float* embeddings = malloc((size_t)(text_count > 0 ? text_count : 1) * (size_t)info.embed_dim * sizeof(float));
    if (!embeddings) return fail("malloc", MCLIP_ERROR_OUT_OF_MEMORY);
    int ok = 1;
    for (int i = 5; ok && i < argc; ++i) {
        status = mclip_embed_image_file(model, argv[i], embeddings, (size_t)info.embed_dim);
        if (status != MCLIP_OK) return fail(argv[i], status);
        char path[4096];
        snprintf(path, sizeof path, "%s%d.npy", argv[2], i - 5);
        ok = write_npy(path, embeddings, 1, info.embed_dim);
    }
    if (ok) {
        status = mclip_embed_texts(model, (const char* const*)texts, text_count, embeddings,
                                   (size_t)text_count * (size_t)info.embed_dim);
        if (status != MCLIP_OK) return fail("mclip_embed_texts", status);
        ok = write_npy(argv[3], embeddings, text_count, info.embed_dim);
    }
    free(embeddings);
    for (int i = 0; i < text_count; ++i) free(texts[i]);
    free(texts);
    mclip_model_free(model);
    return ok ? 0 : 1;
}
