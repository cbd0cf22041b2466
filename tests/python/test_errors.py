"""Bad input becomes a Python exception of the right mclip.Error subclass with a clear message,
never a crash."""

import numpy as np
import pytest

import mclip


def test_the_exception_hierarchy():
    assert issubclass(mclip.InvalidArgument, mclip.Error) and issubclass(mclip.InvalidArgument, ValueError)
    assert issubclass(mclip.InvalidInput, mclip.Error) and issubclass(mclip.InvalidInput, ValueError)
    assert issubclass(mclip.FileError, mclip.Error) and issubclass(mclip.FileError, OSError)
    assert issubclass(mclip.NetworkError, mclip.Error) and issubclass(mclip.NetworkError, ConnectionError)
    assert issubclass(mclip.Unsupported, mclip.Error) and issubclass(mclip.InternalError, mclip.Error)
    codes = {cls.code for cls in (mclip.InvalidArgument, mclip.InvalidInput, mclip.FileError, mclip.Unsupported,
                                  mclip.NetworkError, mclip.InternalError)}
    assert codes == {"invalid_argument", "invalid_input", "io", "unsupported", "network", "internal"}


def test_a_corrupt_image(model, fixtures_dir):
    truncated = fixtures_dir / "images" / "truncated.jpg"
    with pytest.raises(mclip.InvalidInput, match="truncated.jpg"):
        model.encode_image(truncated)
    with pytest.raises(mclip.InvalidInput, match="image bytes #0"):
        model.encode_image(truncated.read_bytes())
    with pytest.raises(mclip.InvalidInput):
        model.encode_image(b"not an image at all")
    with pytest.raises(mclip.InvalidInput):
        model.classify(truncated, ["cat"])


def test_a_missing_file(model, tmp_path):
    missing = tmp_path / "no such photo.jpg"
    with pytest.raises(mclip.FileError, match="no such photo.jpg") as info:
        model.encode_image(missing)
    assert isinstance(info.value, OSError) and info.value.code == "io"
    with pytest.raises(mclip.Error):
        mclip.load(tmp_path / "missing.gguf")


def test_empty_lists(model):
    with pytest.raises(mclip.InvalidArgument, match="empty"):
        model.encode_image([])
    with pytest.raises(mclip.InvalidArgument, match="empty"):
        model.encode_text([])
    with pytest.raises(mclip.InvalidArgument, match="empty"):
        model.classify([], ["cat"])
    with pytest.raises(mclip.InvalidArgument, match="empty"):
        model.labels([])
    with pytest.raises(mclip.InvalidArgument, match="empty"):
        model.encode_image(np.zeros((0, 8, 8, 3), np.uint8))


@pytest.mark.parametrize("array, message", [
    (np.zeros((32, 32, 3), np.float32), "dtype uint8"),
    (np.zeros((32, 32, 3), np.int64), "dtype uint8"),
    (np.zeros((32, 32), np.uint8), r"shape \(height, width, 3\)"),
    (np.zeros((32, 32, 4), np.uint8), r"got \(32, 32, 4\)"),
    (np.zeros((0, 32, 3), np.uint8), "at least one pixel"),
    (np.zeros((1, 2, 3, 4, 5), np.uint8), "shape"),
])
def test_wrong_dtype_or_shape(model, array, message):
    with pytest.raises(mclip.InvalidArgument, match=message):
        model.encode_image(array)


def test_wrong_arrays_for_pixels_and_tokens(model):
    with pytest.raises(mclip.InvalidArgument, match="float32"):
        model.encode_pixels(np.zeros((1, 3, 256, 256), np.float64))
    with pytest.raises(mclip.InvalidArgument, match=r"\(n, 3, 256, 256\)"):
        model.encode_pixels(np.zeros((1, 3, 224, 224), np.float32))
    with pytest.raises(mclip.InvalidArgument, match=r"\(n, 77\)"):
        model.encode_tokens(np.zeros((1, 76), np.int32))
    with pytest.raises(mclip.InvalidArgument, match="outside the vocabulary"):
        model.encode_tokens(np.full((1, 77), 10**6, np.int32))
    with pytest.raises(mclip.InvalidArgument, match="numpy array"):
        model.encode_pixels([[0.0]])


def test_wrong_types_and_options(model, fixtures_dir):
    with pytest.raises(mclip.InvalidArgument, match="got int"):
        model.encode_image(42)
    with pytest.raises(mclip.InvalidArgument, match="image #1"):
        model.encode_image([fixtures_dir / "images" / "chelsea.png", 3.5])
    with pytest.raises(mclip.InvalidArgument, match="text #1"):
        model.encode_text(["fine", 7])
    with pytest.raises(mclip.InvalidArgument, match="bytes"):
        model.encode_text(b"bytes")
    with pytest.raises(mclip.InvalidArgument, match="batch_size"):
        model.encode_text("a", batch_size=0)
    with pytest.raises(mclip.InvalidArgument, match="top_k"):
        model.classify(fixtures_dir / "images" / "chelsea.png", ["cat"], top_k=0)
    with pytest.raises(mclip.InvalidArgument, match="threshold"):
        model.classify(fixtures_dir / "images" / "chelsea.png", ["cat"], threshold=2)
    with pytest.raises(mclip.InvalidArgument, match=r"\{\}"):
        model.labels(["cat"], templates=["no placeholder"])
    with pytest.raises(mclip.InvalidArgument, match="threads"):
        mclip.load("unused", threads=-1)


def test_bad_load_options(model_path):
    with pytest.raises(mclip.InvalidArgument):
        mclip.load(model_path, precision="f64")
    with pytest.raises(mclip.Error):
        mclip.load(model_path, backend="gpu")


def test_a_closed_model(model_path, fixtures_dir):
    model = mclip.load(model_path)
    labels = model.labels(["cat"])
    model.close()
    assert model.closed
    for call in (lambda: model.encode_image(fixtures_dir / "images" / "chelsea.png"), lambda: model.encode_text("a"),
                 lambda: model.tokenize("a"), lambda: model.labels(["cat"]), lambda: model.classify(b"", labels),
                 lambda: model.preprocess(b"")):
        with pytest.raises(mclip.InvalidArgument, match="closed"):
            call()
    model.close()  # a second close is harmless
    with mclip.load(model_path) as scoped:
        assert not scoped.closed
    assert scoped.closed


def test_a_label_set_of_another_model(model, model_path, tmp_path, fixtures_dir):
    import shutil

    copy = tmp_path / "copy.gguf"
    shutil.copyfile(model_path, copy)
    with mclip.load(copy) as other:
        labels = other.labels(["cat"])
    with pytest.raises(mclip.InvalidArgument, match="another model"):
        model.classify(fixtures_dir / "images" / "chelsea.png", labels)


def test_a_model_cannot_be_pickled(model):
    import pickle

    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(model)
