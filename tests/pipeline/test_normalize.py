"""Silhouette normalization reproduces OpenGait's pretreatment bit for bit."""

import numpy as np

from pipeline.normalize import normalize_mask, normalize_masks


def test_pretreatment_parity_is_exact(fixture_array):
    masks = fixture_array("pretreat_raw_masks.npy")
    silhouettes, kept = normalize_masks(masks)
    assert kept.tolist() == fixture_array("pretreat_keep.npy").tolist()
    expected = fixture_array("pretreat_expected_64x64.npy")
    assert silhouettes.dtype == np.uint8 and silhouettes.shape == expected.shape
    assert np.array_equal(silhouettes, expected)


def test_small_and_empty_masks_are_dropped():
    assert normalize_mask(np.zeros((100, 50), np.uint8)) is None
    tiny = np.zeros((100, 50), np.uint8)
    tiny[10:16, 10:16] = 255  # 36 px × 255 = 9180 ≤ 10000
    assert normalize_mask(tiny) is None


def test_output_is_centred_64x64():
    mask = np.zeros((200, 300), np.uint8)
    mask[20:180, 200:240] = 255  # a tall bar far right of centre
    out = normalize_mask(mask)
    assert out is not None and out.shape == (64, 64)
    columns = np.flatnonzero(out.any(axis=0))
    assert abs((columns[0] + columns[-1]) / 2 - 32) <= 1
    assert out[0].any() and out[-1].any()  # rows cropped to the person, then height 64
