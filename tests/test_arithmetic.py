"""The arithmetic behind the headline numbers, on inputs whose answers are known by hand."""
import types

import numpy as np
import pytest
import tensorflow as tf

from experiments import variants
from replica import cost_model, evaluate, kernels


def test_epochs_to_interpolates_between_the_epochs_that_straddle_the_target():
    # epoch k's error sits at x = k + 1, the curve starting from 1.0 at x = 0
    assert variants.epochs_to([0.8, 0.6, 0.2], 0.4) == pytest.approx(2.5)    # halfway from 0.6 (x=2) to 0.2 (x=3)
    assert variants.epochs_to([0.5], 0.75) == pytest.approx(0.5)             # halfway from 1.0 (x=0) to 0.5 (x=1)
    assert variants.epochs_to([0.9, 0.8], 0.25) is None
    # Fig. 1's ratio is a ratio of two such values
    assert variants.epochs_to([0.9, 0.5, 0.2], 0.25) / variants.epochs_to([0.5, 0.2], 0.25) == pytest.approx(
        (2 + (0.5 - 0.25) / 0.3) / (1 + (0.5 - 0.25) / 0.3))


def test_pair_verdict_calls_a_difference_only_beyond_twice_the_seed_sd():
    a = {"variant": "a", "err": 0.60, "err sd": 0.01}
    assert "within seed noise" in variants.pair_verdict(a, {"variant": "b", "err": 0.619, "err sd": 0.005}, "err")
    assert "larger than twice" in variants.pair_verdict(a, {"variant": "b", "err": 0.621, "err sd": 0.005}, "err")
    assert "one seed" in variants.pair_verdict({**a, "err sd": None}, {"variant": "b", "err": 0.7, "err sd": None},
                                               "err")
    assert "+0.0210" in variants.pair_verdict(a, {"variant": "b", "err": 0.621, "err sd": 0.005}, "err")


def test_colour_specificity_is_zero_for_grey_kernels_and_two_thirds_for_one_channel_kernels():
    grey = np.ones((11, 11, 3, 1))
    red = np.zeros((11, 11, 3, 1))
    red[:, :, 0] = 1.0
    opponent = np.zeros((11, 11, 3, 1))
    opponent[:, :, 0], opponent[:, :, 1] = 1.0, -1.0
    np.testing.assert_allclose(kernels.colour_specificity(np.concatenate([grey, red, opponent], -1)),
                               [0.0, 2 / 3, 1.0], atol=1e-12)


def test_batch_errors_count_top1_and_top5_misses():
    logits = tf.constant([[9, 8, 7, 6, 5, 4, 0.0],     # label 0: top-1 hit
                          [9, 8, 7, 6, 5, 4, 0.0],     # label 4: top-5 hit, top-1 miss
                          [9, 8, 7, 6, 5, 4, 0.0]])    # label 6: both miss
    top1, top5 = evaluate.batch_errors(logits, tf.constant([0, 4, 6]))
    assert float(top1) == 2 and float(top5) == 1


def test_ten_crop_prediction_averages_the_softmax_over_the_crops():
    class Linear:   # a "model" whose logits are the mean of each crop's pixels in two classes
        def __call__(self, images, training=False):
            m = tf.reduce_mean(images, axis=[1, 2, 3])
            return tf.stack([m, -m], axis=1)
    crops = tf.constant(np.arange(2 * 10, dtype=np.float32).reshape(2, 10, 1, 1, 1) / 10.0 - 0.5)
    probs = evaluate.make_predict(Linear())(crops).numpy()
    m = crops.numpy().reshape(2, 10)
    expected = np.stack([1 / (1 + np.exp(-2 * m)), 1 / (1 + np.exp(2 * m))], axis=-1).mean(axis=1)
    np.testing.assert_allclose(probs, expected, rtol=1e-6)
    assert not np.allclose(probs, tf.nn.softmax(Linear()(tf.reduce_mean(crops, 1))).numpy())   # not logits averaged


def test_step_time_per_image_is_the_busiest_device_plus_both_ways_of_the_exchanges():
    Row = types.SimpleNamespace
    rows = [Row(layer="a", device=0, macs=3e9, bytes_in=0, crosses_device=False, towers=1),
            Row(layer="b", device=1, macs=1e9, bytes_in=1e6, crosses_device=True, towers=1)]
    work = cost_model.per_device_work(rows)
    seconds, busiest, crossing = cost_model.step_time_per_image(rows, tflops=1.0, link_gbps=8.0)
    assert work == {0: 3e9, 1: 1e9} and busiest == 3e9 * 6   # forward + two backward products, 2 FLOP a MAC
    assert crossing == 2e6
    assert seconds == pytest.approx(busiest / 1e12 + 2e6 / 8e9)
