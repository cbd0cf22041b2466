"""mclip: MobileCLIP image and text embeddings and zero-shot classification, fast on a CPU.

    import mclip

    model = mclip.load("mobileclip-s0")          # a model file (GGUF) or a model name
    images = model.encode_image(["cat.jpg", "dog.png"])   # float32 [2, 512], unit length
    texts = model.encode_text(["a cat", "a dog"])          # float32 [2, 512], unit length
    similarity = images @ texts.T                          # cosine similarities
    model.classify("cat.jpg", ["cat", "dog", "car"])       # {"label": "cat", "confidence": ...}

Images may be PIL images, uint8 numpy arrays of shape (height, width, 3) (RGB), file paths
(str or pathlib.Path), the bytes of an encoded file (JPEG, PNG, WebP), or a list of these. The
computation runs in mclip's C++ library (libmclip.so) with the GIL released, so Python threads
calling one model overlap. Errors are mclip.Error subclasses carrying mclip's message.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import OrderedDict

import numpy as np

from . import _mclip

__version__ = _mclip.version()

__all__ = [
    "load", "Model", "LabelSet", "Error", "InvalidArgument", "InvalidInput", "FileError", "Unsupported",
    "NetworkError", "InternalError", "backends", "precision_names", "default_templates", "label_preset",
    "label_preset_names", "known_models", "default_cache_dir", "version", "__version__",
]


class Error(Exception):
    """An error reported by mclip. ``code`` names its kind, as mclip::ErrorCode does."""

    code = "error"


class InvalidArgument(Error, ValueError):
    """The caller passed something unusable: an empty list, a wrong dtype or shape, a bad option."""

    code = "invalid_argument"


class InvalidInput(Error, ValueError):
    """A file's content is wrong: a corrupt, truncated or unsupported image or model file."""

    code = "invalid_input"


class FileError(Error, OSError):
    """The operating system refused: a missing file, no permission, a full disk."""

    code = "io"


class Unsupported(Error):
    """Valid input that this build or CPU cannot handle (a precision the CPU lacks, for example)."""

    code = "unsupported"


class NetworkError(Error, ConnectionError):
    """Downloading a model by name failed."""

    code = "network"


class InternalError(Error, RuntimeError):
    """A broken invariant inside mclip: please report it."""

    code = "internal"


_mclip._set_error_classes({cls.code: cls for cls in (InvalidArgument, InvalidInput, FileError, Unsupported, NetworkError, InternalError)})

LabelSet = _mclip.LabelSet
LabelSet.__doc__ = """Class embeddings of labels (each the mean over its prompt templates), made by
Model.labels() and reused by Model.classify(). Attributes: labels, templates, embeddings
(float32 [labels, dim], unit length), from_cache, seconds, cache_entry, model_path."""
LabelSet.__repr__ = lambda self: f"<mclip.LabelSet {len(self)} labels x {len(self.templates)} templates>"

_DEFAULT_BATCH_SIZE = 32
_LABEL_SET_MEMORY = 8  # label sets classify() keeps per model for repeated calls with the same labels


def version() -> str:
    """The version of the mclip library."""
    return _mclip.version()


def backends() -> list:
    """The kernel backends of this build and what each can do on this CPU (list of dicts)."""
    return _mclip.backends()


def precision_names() -> list:
    """The compute precisions: ["f32", "bf16", "int8"]."""
    return _mclip.precision_names()


def default_templates() -> list:
    """The prompt templates used when none are given: ["a photo of a {}."]."""
    return _mclip.default_templates()


def label_preset(name: str) -> list:
    """A built-in label set by name (see label_preset_names())."""
    return _mclip.label_preset(name)


def label_preset_names() -> list:
    """The names of the built-in label sets."""
    return _mclip.label_preset_names()


def known_models() -> list:
    """The model names load() can download: ["mobileclip-s0", ...]."""
    return _mclip.known_models()


def default_cache_dir() -> str:
    """Where mclip caches downloads and text embeddings ($MCLIP_CACHE, else ~/.cache/mclip)."""
    return _mclip.default_cache_dir()


def load(path_or_name, precision: str = "auto", threads=None, backend: str = "auto") -> "Model":
    """Loads a model: a model file (GGUF, from `mclip convert`) or a model name ("mobileclip-s0",
    see known_models()), downloaded and converted into the cache the first time.

    precision: "auto" (the fastest within the accuracy bounds on this CPU: int8, bf16 or f32),
        "f32", "bf16" or "int8".
    threads: threads per call (None or 0: $OMP_NUM_THREADS when set, else one per core). Each call to the model uses this many;
        k Python threads calling at once use up to k x threads cores.
    backend: "auto", "onednn" or "reference".
    """
    return Model(path_or_name, precision=precision, threads=threads, backend=backend)


class _Progress:
    """A one-line progress report on stderr: redrawn in place on a terminal, at most every few
    seconds otherwise (logs stay short)."""

    def __init__(self, what: str, total: int, enabled: bool):
        self.what = what
        self.total = total
        self.enabled = enabled
        self.done = 0
        self.start = time.monotonic()
        self.last = 0.0
        self.terminal = enabled and sys.stderr.isatty()

    def advance(self, count: int) -> None:
        if not self.enabled:
            return
        self.done += count
        now = time.monotonic()
        if self.done < self.total and now - self.last < (0.2 if self.terminal else 5.0):
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-9)
        line = f"{self.what}: {self.done}/{self.total} ({rate:.1f}/s)"
        if self.terminal:
            sys.stderr.write("\r" + line + ("\n" if self.done >= self.total else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _is_image_array_batch(value) -> bool:
    return isinstance(value, np.ndarray) and value.ndim == 4


def _image_item(image, index: int):
    """One image as the compiled module takes it: ("path", bytes), ("bytes", bytes) or ("rgb", array)."""
    if isinstance(image, (str, os.PathLike)):
        return ("path", os.fsencode(image))
    if isinstance(image, (bytes, bytearray, memoryview)):
        return ("bytes", bytes(image))
    if isinstance(image, np.ndarray):
        return ("rgb", image)
    pil = sys.modules.get("PIL.Image")
    if pil is not None and isinstance(image, pil.Image):
        # As the reference does it (PIL's convert("RGB"): alpha dropped, palettes expanded); EXIF
        # orientation is not applied to PIL images (PIL.ImageOps.exif_transpose does that).
        return ("rgb", np.asarray(image if image.mode == "RGB" else image.convert("RGB")))
    raise InvalidArgument(
        f"image #{index}: expected a PIL image, a uint8 numpy array (height, width, 3), a file path or "
        f"encoded bytes, got {type(image).__name__}")


def _is_single_image(images) -> bool:
    if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview)):
        return True
    if isinstance(images, np.ndarray):
        return images.ndim != 4
    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(images, pil.Image)


def _image_list(images) -> list:
    """A single image or a collection of them, as a list of single images."""
    if _is_image_array_batch(images):
        if len(images) == 0:
            raise InvalidArgument("no images: the batch array is empty")
        return list(images)
    if _is_single_image(images):
        return [images]
    try:
        items = list(images)
    except TypeError:
        raise InvalidArgument(
            f"expected an image or a list of images, got {type(images).__name__}") from None
    if not items:
        raise InvalidArgument("no images: the list is empty")
    return items


def _text_list(texts) -> list:
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray)):
        raise InvalidArgument("texts must be str, not bytes (decode them first)")
    try:
        items = list(texts)
    except TypeError:
        raise InvalidArgument(f"expected a str or a list of str, got {type(texts).__name__}") from None
    if not items:
        raise InvalidArgument("no texts: the list is empty")
    for index, text in enumerate(items):
        if not isinstance(text, str):
            raise InvalidArgument(f"text #{index}: expected str, got {type(text).__name__}")
    return items


def _check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


def _label_list(labels) -> list:
    if isinstance(labels, str):
        # "person, forklift,car" as the command's --labels takes it.
        items = [label.strip() for label in labels.split(",")]
        items = [label for label in items if label]
    else:
        try:
            items = list(labels)
        except TypeError:
            raise InvalidArgument(f"labels must be a list of str or a LabelSet, got {type(labels).__name__}") from None
    if not items:
        raise InvalidArgument("no labels: the list is empty")
    for index, label in enumerate(items):
        if not isinstance(label, str):
            raise InvalidArgument(f"label #{index}: expected str, got {type(label).__name__}")
    return items


class Model:
    """A loaded model (see mclip.load). Every method may be called from several Python threads at
    once; inference releases the GIL. close() (or leaving a `with` block) frees it; calls after
    that raise mclip.InvalidArgument."""

    def __init__(self, path_or_name, precision: str = "auto", threads=None, backend: str = "auto"):
        if threads is None:
            threads = 0
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise InvalidArgument(f"threads must be None or an int >= 0, got {threads!r}")
        if not isinstance(path_or_name, (str, os.PathLike)):
            raise InvalidArgument(f"expected a model file path or a model name, got {type(path_or_name).__name__}")
        self._model = _mclip.Model(os.fspath(path_or_name), precision, threads, backend)
        self._info = self._model.info()
        self._label_sets = OrderedDict()
        self._label_sets_lock = threading.Lock()

    # -- what the model is --------------------------------------------------------------------

    @property
    def info(self) -> dict:
        """Everything known about the model: path, architecture, name, dim, image_size,
        context_length, logit_scale, precision, backend, threads, weights, has_tokenizer,
        int8_calibrated, preprocess (dict)."""
        return dict(self._info)

    @property
    def dim(self) -> int:
        """The embedding size (512 for MobileCLIP-S0)."""
        return self._info["dim"]

    @property
    def image_size(self) -> int:
        """The side of the square image the model sees (preprocess output)."""
        return self._info["image_size"]

    @property
    def context_length(self) -> int:
        """Token ids per text (77)."""
        return self._info["context_length"]

    @property
    def logit_scale(self) -> float:
        """The factor on cosine similarities before the softmax (min(exp(logit_scale), 100))."""
        return self._info["logit_scale"]

    @property
    def architecture(self) -> str:
        """The architecture, e.g. "mobileclip_s0"."""
        return self._info["architecture"]

    @property
    def name(self) -> str:
        """The model's display name, e.g. "MobileCLIP-S0"."""
        return self._info["name"]

    @property
    def path(self) -> str:
        """The model file."""
        return self._info["path"]

    @property
    def precision(self) -> str:
        """The compute precision chosen at load: "f32", "bf16" or "int8"."""
        return self._info["precision"]

    @property
    def backend(self) -> str:
        """The kernel backend: "onednn" or "reference"."""
        return self._info["backend"]

    @property
    def threads(self) -> int:
        """Threads each call computes with."""
        return self._info["threads"]

    @property
    def closed(self) -> bool:
        """True after close(): the model is freed and calls raise mclip.InvalidArgument."""
        return self._model.closed

    def close(self) -> None:
        """Frees the model (calls already running finish first). Later calls raise."""
        self._model.close()
        with self._label_sets_lock:
            self._label_sets.clear()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.precision}, {self.threads} threads"
        return f"<mclip.Model {self.name} ({self.architecture}) {self.path!r}: {state}>"

    def __reduce__(self):
        raise TypeError("an mclip.Model cannot be pickled: load it where it is used "
                        "(mclip.dask.embed_files loads one per worker)")

    # -- embeddings ---------------------------------------------------------------------------

    def encode_image(self, images, normalize: bool = True, batch_size: int = _DEFAULT_BATCH_SIZE,
                     show_progress: bool = False, exif: bool = True) -> np.ndarray:
        """Image embeddings, float32 [N, dim].

        images: a PIL image, a uint8 array (height, width, 3) (RGB) or a batch of them
            (n, height, width, 3), a file path (str or pathlib.Path), the bytes of an encoded
            JPEG/PNG/WebP file, or a list mixing these. One image gives one row.
        normalize: unit-length rows (the default: cosine similarity is then a dot product, what
            search indexes expect); False gives the model's raw output, as `mclip embed` and
            open_clip's encode_image do.
        batch_size: images decoded and encoded per call into the library; any count of images is
            fine. With the oneDNN kernels the last bits of a row can depend on its batch (relative
            differences near 1e-7 to 1e-6); batch_size >= len(images) equals `mclip embed` bit for bit.
        show_progress: report progress on stderr.
        exif: turn files and bytes upright by their EXIF orientation (as `mclip embed` does;
            False matches the reference preprocessing). PIL images and arrays are used as given.
        """
        items = _image_list(images)
        batch_size = _check_batch_size(batch_size)
        model = self._model
        rows = []
        progress = _Progress("encode_image", len(items), show_progress)
        for start in range(0, len(items), batch_size):
            chunk = [_image_item(image, start + i) for i, image in enumerate(items[start:start + batch_size])]
            rows.append(model.encode_images(chunk, bool(normalize), bool(exif)))
            progress.advance(len(chunk))
        return rows[0] if len(rows) == 1 else np.concatenate(rows)

    def encode_text(self, texts, normalize: bool = True, batch_size: int = _DEFAULT_BATCH_SIZE,
                    show_progress: bool = False) -> np.ndarray:
        """Text embeddings, float32 [N, dim]: a str gives one row, a list one row per text.
        normalize: unit-length rows (the default, see encode_image); False gives the raw output."""
        items = _text_list(texts)
        batch_size = _check_batch_size(batch_size)
        model = self._model
        rows = []
        progress = _Progress("encode_text", len(items), show_progress)
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            rows.append(model.encode_texts(chunk, bool(normalize)))
            progress.advance(len(chunk))
        return rows[0] if len(rows) == 1 else np.concatenate(rows)

    def encode_pixels(self, pixels, normalize: bool = True) -> np.ndarray:
        """Embeddings of images already preprocessed: float32 [N, 3, image_size, image_size], as
        preprocess() returns them."""
        return self._model.encode_pixels(self._array(pixels, "preprocessed images"), bool(normalize))

    def encode_tokens(self, ids, normalize: bool = True) -> np.ndarray:
        """Text embeddings of token ids: int32 or int64 [N, context_length], as tokenize() returns them."""
        return self._model.encode_tokens(self._array(ids, "token ids"), bool(normalize))

    def tokenize(self, texts) -> np.ndarray:
        """CLIP token ids, int32 [N, context_length]: start, the text's tokens, end, then zeros
        (cut to the context with the end token last, as open_clip's tokenizer does)."""
        return self._model.tokenize(_text_list(texts))

    def preprocess(self, images, exif: bool = True) -> np.ndarray:
        """Images as the model sees them, float32 [N, 3, image_size, image_size] (resize, center
        crop, scaling exactly as the reference's PIL + torchvision preprocessing)."""
        items = _image_list(images)
        return self._model.preprocess_images([_image_item(image, i) for i, image in enumerate(items)], bool(exif))

    @staticmethod
    def _array(value, what: str) -> np.ndarray:
        if not isinstance(value, np.ndarray):
            raise InvalidArgument(f"{what} must be a numpy array, got {type(value).__name__}")
        return value

    # -- zero-shot classification -------------------------------------------------------------

    def labels(self, labels, templates=None, cache_dir=None) -> LabelSet:
        """A reusable label set: the class embedding of each label, the mean over the prompt
        templates ("a photo of a {}." when none are given) of their text embeddings.

        labels: a list of str, or one str of comma-separated labels ("person, forklift, car").
        templates: prompt templates, each with "{}" for the label.
        cache_dir: a folder for the on-disk text-embedding cache, shared with the mclip command
            (keyed by model, precision, kernels and prompts); True for mclip's default
            (default_cache_dir()/text-embeddings); None (the default) for none.
        """
        label_list = _label_list(labels)
        template_list = [] if templates is None else list(templates)
        if templates is not None and not template_list:
            raise InvalidArgument("no templates: the list is empty (None uses the default)")
        if cache_dir is True:
            cache_dir = os.path.join(default_cache_dir(), "text-embeddings")
        return self._model.labels(label_list, template_list, "" if cache_dir in (None, False) else os.fspath(cache_dir))

    def classify(self, images, labels, templates=None, top_k: int = 3, threshold: float = 0.6,
                 batch_size: int = _DEFAULT_BATCH_SIZE, show_progress: bool = False, exif: bool = True,
                 cache_dir=None):
        """Zero-shot classification: a softmax over the labels of each image's similarity to them.

        images: one image (see encode_image) gives one result, a list gives a list of results.
        labels: a LabelSet from labels(), a list of str, or comma-separated labels in one str.
            Lists are turned into label sets once and remembered (the last few) for later calls.
        templates, cache_dir: as for labels() (ignored when labels is a LabelSet).
        top_k: how many labels each result lists, best first.
        threshold: below this probability the best label is reported as "unknown" (0: never).

        Each result is a dict with the fields of `mclip classify --json`: "label" (the best
        label, or "unknown"), "confidence" (its probability), "unknown" (bool) and "top_k", a
        list of {"label", "probability", "logit", "cosine"}.
        """
        label_set = labels if isinstance(labels, LabelSet) else self._remembered_labels(labels, templates, cache_dir)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise InvalidArgument(f"top_k must be an int >= 1, got {top_k!r}")
        single = _is_single_image(images)
        embeddings = self.encode_image(images if single else _image_list(images), normalize=False, batch_size=batch_size,
                                       show_progress=show_progress, exif=exif)
        results = self._model.classify(embeddings, label_set, top_k, float(threshold))
        return results[0] if single else results

    def _remembered_labels(self, labels, templates, cache_dir) -> LabelSet:
        key = (tuple(_label_list(labels)), None if templates is None else tuple(templates),
               None if cache_dir is None else str(cache_dir))
        with self._label_sets_lock:
            found = self._label_sets.get(key)
            if found is not None:
                self._label_sets.move_to_end(key)
                return found
        label_set = self.labels(list(key[0]), templates, cache_dir)
        with self._label_sets_lock:
            self._label_sets[key] = label_set
            while len(self._label_sets) > _LABEL_SET_MEMORY:
                self._label_sets.popitem(last=False)
        return label_set
