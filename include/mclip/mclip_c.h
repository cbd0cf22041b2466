/* mclip's C API: the engine for C, Swift, Python's ctypes and every language with a C FFI.
 *
 *   mclip_model_params params = mclip_model_default_params();
 *   params.threads = 2;
 *   mclip_model* model = NULL;
 *   if (mclip_model_load("mobileclip_s0.gguf", &params, &model) != MCLIP_OK) {
 *       fprintf(stderr, "%s\n", mclip_last_error());
 *       return 1;
 *   }
 *   mclip_model_info info;
 *   mclip_model_get_info(model, &info);
 *   float* embedding = malloc(info.embed_dim * sizeof(float));
 *   mclip_embed_image_file(model, "photo.jpg", embedding, info.embed_dim);
 *   ...
 *   free(embedding);
 *   mclip_model_free(model);
 *
 * Conventions:
 * - Every function that can fail returns an mclip_status; MCLIP_OK is 0. After a failure,
 *   mclip_last_error() gives a message for a person; it is per thread and stays valid until the
 *   thread's next mclip call.
 * - Handles (mclip_model, mclip_labels) are opaque. A null, freed or foreign handle is reported
 *   as MCLIP_ERROR_INVALID_HANDLE, never dereferenced. mclip_*_free accepts null and ignores handles
 *   it does not know.
 * - Output buffers belong to the caller, who passes their capacity in elements; a buffer too small
 *   fails with MCLIP_ERROR_BUFFER_TOO_SMALL and says the size needed. The library never returns
 *   memory the caller must free, except the handles (freed with their mclip_*_free).
 * - Strings returned by the library (in mclip_model_info, label names) live as long as the handle
 *   they came from.
 * - Threads: a model computes with the threads it was loaded with, whichever thread calls it.
 *   Calls on one model from several threads at once are safe (and run in parallel). A handle must
 *   not be freed while another thread uses it.
 * - No C++ exception ever crosses this boundary.
 */
#ifndef MCLIP_MCLIP_C_H
#define MCLIP_MCLIP_C_H

#include <stddef.h>
#include <stdint.h>

#include "mclip/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mclip_status {
    MCLIP_OK = 0,
    MCLIP_ERROR_INVALID_ARGUMENT = 1, /* an unusable argument (empty label list, bad option) */
    MCLIP_ERROR_INVALID_INPUT = 2,    /* a file's content is wrong: truncated, corrupt, not an image */
    MCLIP_ERROR_IO = 3,               /* the operating system refused: missing file, permission */
    MCLIP_ERROR_UNSUPPORTED = 4,      /* valid input this build or CPU cannot handle */
    MCLIP_ERROR_NETWORK = 5,          /* a download failed */
    MCLIP_ERROR_INTERNAL = 6,         /* a broken invariant inside mclip */
    MCLIP_ERROR_INVALID_HANDLE = 7,   /* a null, freed or unknown handle */
    MCLIP_ERROR_BUFFER_TOO_SMALL = 8, /* an output buffer's capacity is below what is needed */
    MCLIP_ERROR_OUT_OF_MEMORY = 9
} mclip_status;

/* "invalid argument", ...: a name for a status. */
MCLIP_API const char* mclip_status_string(mclip_status status);
/* The message of this thread's last failed call ("" when there was none). */
MCLIP_API const char* mclip_last_error(void);
/* The library's version: "0.1.0". */
MCLIP_API const char* mclip_version(void);

typedef enum mclip_log_level {
    MCLIP_LOG_DEBUG = 0,
    MCLIP_LOG_INFO = 1,
    MCLIP_LOG_WARNING = 2,
    MCLIP_LOG_ERROR = 3
} mclip_log_level;

/* Messages at or above `level` go to `callback` (null restores stderr); calls are serialized. */
typedef void (*mclip_log_callback)(mclip_log_level level, const char* message, void* user_data);
MCLIP_API void mclip_log_set_callback(mclip_log_callback callback, void* user_data);
MCLIP_API void mclip_log_set_level(mclip_log_level level);

typedef struct mclip_model mclip_model;
typedef struct mclip_labels mclip_labels;

typedef struct mclip_model_params {
    const char* backend;   /* "auto" (default) or a backend's name */
    int threads;           /* 0 (default): $OMP_NUM_THREADS when set, else one per core */
    const char* precision; /* "auto" (default), "f32", "bf16" or "int8" */
} mclip_model_params;

MCLIP_API mclip_model_params mclip_model_default_params(void);

/* A model file (GGUF), or a registered name ("mobileclip-s0"), downloaded the first time.
 * params may be null (the defaults). *out is set on success only. */
MCLIP_API mclip_status mclip_model_load(const char* path_or_name, const mclip_model_params* params, mclip_model** out);
MCLIP_API void mclip_model_free(mclip_model* model);

typedef struct mclip_model_info {
    const char* architecture; /* "mobileclip_s0" */
    const char* name;         /* "MobileCLIP-S0" */
    const char* precision;    /* compute precision chosen at load */
    const char* backend;
    int embed_dim;
    int image_size;           /* the image encoder's square input */
    int context_length;       /* tokens per text */
    int threads;
    float logit_scale;        /* factor on cosine similarities */
    float mean[3];            /* preprocessing: (x / 255 - mean) / std per channel */
    float std[3];
    int has_tokenizer;
} mclip_model_info;

MCLIP_API mclip_status mclip_model_get_info(const mclip_model* model, mclip_model_info* out);

/* Embeddings are not normalized (as the reference's encode_image / encode_text); capacity is the
 * number of floats `out` holds: at least embed_dim per image or text. */
MCLIP_API mclip_status mclip_embed_image_file(const mclip_model* model, const char* path, float* out, size_t capacity);
/* An encoded image (JPEG, PNG, WebP) in memory. */
MCLIP_API mclip_status mclip_embed_image_memory(const mclip_model* model, const void* bytes, size_t size, float* out,
                                                size_t capacity);
/* Interleaved 8-bit RGB pixels, rows `stride` bytes apart. */
MCLIP_API mclip_status mclip_embed_image_rgb(const mclip_model* model, const uint8_t* rgb, int width, int height, size_t stride,
                                             float* out, size_t capacity);
/* count preprocessed images, float32 [count, 3, image_size, image_size]; out gets count · embed_dim. */
MCLIP_API mclip_status mclip_embed_pixels(const mclip_model* model, const float* pixels, int count, float* out, size_t capacity);
/* count UTF-8 texts; out gets count · embed_dim floats, row after row. */
MCLIP_API mclip_status mclip_embed_texts(const mclip_model* model, const char* const* texts, int count, float* out, size_t capacity);

/* The context_length ids the text encoder is fed for `text` (cut and zero-padded). */
MCLIP_API mclip_status mclip_tokenize(const mclip_model* model, const char* text, int32_t* ids, size_t capacity);

/* A label set: each label's embedding over the templates ("{}" stands for the label; null or
 * template_count 0: "a photo of a {}."). cache_dir: a folder for the on-disk text-embedding cache,
 * or null for none. The label set holds its own copy of everything and may outlive the model. */
MCLIP_API mclip_status mclip_labels_create(const mclip_model* model, const char* const* labels, int label_count,
                                           const char* const* templates, int template_count, const char* cache_dir,
                                           mclip_labels** out);
MCLIP_API void mclip_labels_free(mclip_labels* labels);
MCLIP_API mclip_status mclip_labels_count(const mclip_labels* labels, int* count);
/* The label at `index`; the string lives as long as the label set. */
MCLIP_API mclip_status mclip_labels_name(const mclip_labels* labels, int index, const char** name);

typedef struct mclip_score {
    int index;         /* into the label set */
    float probability; /* softmax over the label set */
    float logit;       /* logit_scale · cosine */
    float cosine;
} mclip_score;

typedef struct mclip_classification {
    int label;         /* index of the best label, or -1 when unknown (below the threshold) */
    float confidence;  /* the best label's probability */
    int top_count;     /* entries written to top: min(top_k, label count) */
} mclip_classification;

/* Classifies one image embedding (embed_dim floats) against a label set made by this model: the
 * top_k best (written to `top`, capacity entries), "unknown" below threshold (0: never). */
MCLIP_API mclip_status mclip_classify(const mclip_model* model, const mclip_labels* labels, const float* image_embedding,
                                      size_t embedding_size, int top_k, float threshold, mclip_score* top, size_t capacity,
                                      mclip_classification* out);

#ifdef __cplusplus
}
#endif

#endif /* MCLIP_MCLIP_C_H */
