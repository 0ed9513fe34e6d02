"""Grouping sequences into padded batches."""

import numpy as np

from models.batching import pad_batch, plan_batches


def test_every_index_once_and_budget_respected():
    lengths = [30, 300, 5, 28, 31, 120, 110, 30]
    batches = plan_batches(lengths, max_batch_frames=120, max_padding=0.25)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert len(batch) == 1 or len(batch) * longest <= 120
        assert all(lengths[i] >= 0.75 * longest for i in batch)


def test_similar_lengths_share_a_batch():
    assert plan_batches([30, 29, 30, 28], max_batch_frames=1000) == [[0, 2, 1, 3]]


def test_long_sequence_alone():
    assert plan_batches([500, 500], max_batch_frames=600) == [[0], [1]]


def test_pad_batch_zero_pads_and_reports_lengths():
    padded, lengths = pad_batch([np.ones((3, 2, 2), np.float32), np.ones((1, 2, 2), np.float32)])
    assert padded.shape == (2, 3, 2, 2) and lengths.tolist() == [3, 1]
    assert padded[1, 1:].sum() == 0 and padded[1, 0].sum() == 4


def test_pad_batch_keeps_the_dtype_and_rounds_the_length_up():
    padded, lengths = pad_batch([np.full((5, 2, 2), 255, np.uint8), np.ones((2, 2, 2), np.uint8)], frame_multiple=4)
    assert padded.dtype == np.uint8 and padded.shape == (2, 8, 2, 2)
    assert lengths.tolist() == [5, 2]
    assert (padded[0, :5] == 255).all() and not padded[0, 5:].any() and not padded[1, 2:].any()
