import numpy as np

from inferarena.evaluators.fidelity import score


def test_identical_outputs_score_one():
    x = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    f = score(x, x)
    assert f.cos_min == 1.0 and f.max_abs_diff == 0.0 and f.samples == 5


def test_flipped_sample_drags_cos_min():
    x = np.random.default_rng(0).standard_normal((4, 3, 2))
    y = x.copy()
    y[2] = -y[2]
    f = score(y, x)
    assert f.cos_min == -1.0
    assert 0.4 < f.cos_mean < 0.6


def test_zero_rows():
    ref = np.array([[0.0, 0.0], [1.0, 0.0]])
    assert score(ref.copy(), ref).cos_min == 1.0
    assert score(np.array([[1.0, 0.0], [1.0, 0.0]]), ref).cos_min == 0.0
