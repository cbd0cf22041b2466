"""Parity with the reference PyTorch model through Python, in float32: per-row relative error
||ours - ref|| / ||ref|| at most 1e-4 (the fixtures' README explains why not cosine alone)."""

import json
import struct

import numpy as np
import pytest

import mclip

TOLERANCE = 1e-4
DTYPES = {"F32": np.float32, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        header_size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(header_size))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])
    return tensors, header.get("__metadata__", {})


@pytest.fixture(scope="module")
def reference(fixtures_dir):
    return read_safetensors(fixtures_dir / "mobileclip_s0" / "expected.safetensors")


@pytest.fixture(scope="module")
def f32_model(model_path):
    with mclip.load(model_path, precision="f32") as m:
        yield m


def relative_errors(ours, ref):
    return np.linalg.norm(ours.astype(np.float64) - ref, axis=1) / np.linalg.norm(ref.astype(np.float64), axis=1)


def test_image_embeddings_match_the_reference(f32_model, reference, fixtures_dir):
    tensors, metadata = reference
    names = json.loads(metadata["images"])
    # The reference preprocessing is PIL's, which ignores EXIF orientation.
    ours = f32_model.encode_image([fixtures_dir / "images" / name for name in names], normalize=False, exif=False)
    errors = relative_errors(ours, tensors["image.embedding"])
    assert errors.max() <= TOLERANCE, errors


def test_preprocessing_and_encoder_match_the_reference(f32_model, reference, fixtures_dir):
    tensors, metadata = reference
    names = json.loads(metadata["images"])
    pixels = f32_model.preprocess([fixtures_dir / "images" / name for name in names], exif=False)
    np.testing.assert_allclose(pixels, tensors["image.input"], atol=1e-6)
    errors = relative_errors(f32_model.encode_pixels(np.ascontiguousarray(tensors["image.input"]), normalize=False),
                             tensors["image.embedding"])
    assert errors.max() <= TOLERANCE, errors


def test_text_embeddings_match_the_reference(f32_model, reference):
    tensors, metadata = reference
    prompts = json.loads(metadata["prompts"])
    np.testing.assert_array_equal(f32_model.tokenize(prompts), tensors["text.tokens"])
    errors = relative_errors(f32_model.encode_text(prompts, normalize=False), tensors["text.embedding"])
    assert errors.max() <= TOLERANCE, errors


def test_normalized_embeddings_are_the_reference_direction(f32_model, reference):
    tensors, metadata = reference
    prompts = json.loads(metadata["prompts"])
    ref = tensors["text.embedding"] / np.linalg.norm(tensors["text.embedding"], axis=1, keepdims=True)
    assert relative_errors(f32_model.encode_text(prompts), ref).max() <= TOLERANCE
