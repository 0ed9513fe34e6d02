"""The real-footage re-rendering of training silhouettes: deterministic, pipeline-shaped, and visible."""

import numpy as np

from models.data.records import SequenceRecord
from models.training.footage import CLEAN, FootageConfig, rerender
from models.training.sampling import SamplingConfig, TripletBatches
from pipeline.normalize import normalize_mask


def _walker(frames: int = 8) -> np.ndarray:
    """A person-shaped blob (head, torso, two legs that swing), normalised like pipeline output."""
    out = []
    for t in range(frames):
        mask = np.zeros((200, 120), np.uint8)
        mask[10:40, 45:75] = 255  # head
        mask[40:120, 35:85] = 255  # torso
        swing = int(20 * np.sin(t))
        mask[120:195, 40 + swing : 58 + swing] = 255
        mask[120:195, 62 - swing : 80 - swing] = 255
        out.append(normalize_mask(mask))
    return np.stack(out)


def _grey_pixels(sils: np.ndarray) -> int:
    return int(((sils > 0) & (sils < 255)).sum())


def _upper_body_area(sils: np.ndarray) -> int:
    return int((sils[:, :20] > 127).sum())


def test_off_by_default_and_deterministic_when_on() -> None:
    sils = _walker()
    assert rerender(sils, CLEAN, np.random.default_rng(0)) is sils
    config = FootageConfig(probability=1.0, perspective=1.0, occlusion=1.0)
    first = rerender(sils, config, np.random.default_rng(3))
    again = rerender(sils, config, np.random.default_rng(3))
    np.testing.assert_array_equal(first, again)
    assert first.shape == sils.shape and first.dtype == np.uint8 and not np.array_equal(first, sils)


def test_a_small_person_comes_back_coarse_and_a_keystone_widens_the_top() -> None:
    sils = _walker()
    small = rerender(sils, FootageConfig(probability=1.0, heights=(24, 24), perspective=0, jitter=0, occlusion=0),
                     np.random.default_rng(1))  # fmt: skip
    # upscaled from 24 rows: many more grey (interpolated) boundary pixels than the clean mask
    assert _grey_pixels(small) > _grey_pixels(sils)
    wide = rerender(sils, FootageConfig(probability=1.0, heights=(200, 200), perspective=1.0, jitter=0, occlusion=0),
                    np.random.default_rng(2))  # fmt: skip
    assert _upper_body_area(wide) > _upper_body_area(sils)


def test_training_batches_stay_a_function_of_seed_and_iteration() -> None:
    records = [SequenceRecord(f"{s:03d}", "nm-01", "090", _walker(20)) for s in range(4)]
    config = SamplingConfig(subjects_per_batch=2, sequences_per_subject=2, frames=8)
    footage = FootageConfig(probability=0.5)
    one, two = (TripletBatches(records, config, seed=4, footage=footage) for _ in range(2))
    np.testing.assert_array_equal(one.batch(7)[0].numpy(), two.batch(7)[0].numpy())
    plain = TripletBatches(records, config, seed=4).batch(7)[0].numpy()
    assert not np.array_equal(plain, one.batch(7)[0].numpy())
