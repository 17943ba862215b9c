"""The arithmetic behind the headline numbers, on inputs whose answers are known by hand."""
import types

import numpy as np
import pytest
import tensorflow as tf

from experiments import variants
from replica.perf import cost_model
from replica.training import evaluate
from replica.net import kernels


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


def test_paired_interval_uses_the_seed_differences_and_welch_the_two_spreads():
    from experiments import claims
    base, var = {0: 0.30, 1: 0.32, 2: 0.34}, {0: 0.40, 1: 0.43, 2: 0.43}
    diff, half, how = claims.difference_interval(base, var)
    assert diff == pytest.approx(0.10) and how == "paired over 3 seeds"
    d = np.array([0.10, 0.11, 0.09])
    assert half == pytest.approx(4.30 * d.std(ddof=1) / np.sqrt(3))
    diff, half, how = claims.difference_interval(base, {5: 0.40, 6: 0.43, 7: 0.43})   # no shared seeds: Welch
    va, vb = np.var([0.30, 0.32, 0.34], ddof=1) / 3, np.var([0.40, 0.43, 0.43], ddof=1) / 3
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 2)
    assert how == "Welch" and half == pytest.approx(claims.t_975(df) * np.sqrt(va + vb))
    assert claims.difference_interval({0: 0.3}, {0: 0.4})[1] is None


def test_verdicts_need_the_interval_to_exclude_zero_and_say_what_would_resolve_it():
    from experiments import claims
    assert claims.verdict(0.05, 0.02, +1) == "agrees"
    assert claims.verdict(-0.05, 0.02, +1) == "disagrees"
    assert claims.verdict(0.01, 0.02, +1) == "not resolved at this budget"
    assert claims.verdict(0.01, 0.02, 0, tolerance=0.03) == "agrees"          # equivalence within the tolerance
    assert claims.verdict(0.01, 0.05, 0, tolerance=0.03) == "not resolved at this budget"
    assert claims.verdict(0.04, 0.02, 0) == "disagrees"
    entry = claims.judge({"baseline": "a", "variant": "b", "expected_sign": +1, "paper_effect": 0.014},
                         {0: 0.30, 1: 0.33, 2: 0.31}, {0: 0.31, 1: 0.32, 2: 0.33})
    assert entry["verdict"] == "not resolved at this budget"
    assert entry["seeds_to_resolve"] == int(np.ceil(3 * (entry["resolvable_difference"] / 0.014) ** 2))


def test_a_claim_is_recorded_with_its_regime_and_its_seeds_values(tmp_path, monkeypatch):
    import json
    from experiments import claims
    monkeypatch.setattr(claims, "CLAIMS_FILE", tmp_path / "claims.json")
    monkeypatch.setattr(claims, "README", tmp_path / "README.md")
    (tmp_path / "README.md").write_text(f"intro\n{claims.TABLE_START}\nold\n{claims.TABLE_END}\nafter\n")
    runs_of = {}
    for name, errors in (("base", (0.30, 0.31)), ("var", (0.40, 0.42))):
        runs_of[name] = []
        for seed, error in enumerate(errors):
            run_dir = tmp_path / f"{name}{seed}"
            run_dir.mkdir()
            epochs = [{"learning_rate": lr, "val_top1_error": error + 0.01} for lr in (0.01, 0.01, 0.001)]
            (run_dir / "history.json").write_text(json.dumps({"epochs": epochs}))
            runs_of[name].append({"run_dir": str(run_dir), "steps": 30, "config": {"batch_size": 128},
                                  "history_last_train_top1": 0.05, "final": {"centre_top1_error": error}})
    spec = {"name": "demo", "claim": {"text": "var is worse", "paper": "worse", "baseline": "base", "variant": "var",
                                      "expected_sign": +1}}
    variants.record_claim(spec, spec["claim"], runs_of, seeds=2, epochs=3, train_limit=1000)
    entry = json.loads((tmp_path / "claims.json").read_text())["demo"]
    assert entry["variant"]["per_seed"] == {"0": 0.40, "1": 0.42} and entry["n"] == 2
    assert entry["difference"] == pytest.approx(0.105) and entry["verdict"] == "agrees"
    assert entry["regime"]["var"]["images_seen"] == 30 * 128
    assert entry["regime"]["var"]["learning_rate_drops_after_epochs"] == [[2], [2]]
    assert entry["regime"]["base"]["final_validation_top1_error"] == pytest.approx(0.315)
    readme = (tmp_path / "README.md").read_text()
    assert "old" not in readme and "| var is worse | worse |" in readme and readme.endswith("after\n")


def test_a_claim_between_two_metrics_of_the_same_runs_pairs_them_per_seed(tmp_path, monkeypatch):
    """10 crops against the centre crop: one variant, two evaluations of each of its runs."""
    import json
    from experiments import claims
    monkeypatch.setattr(claims, "CLAIMS_FILE", tmp_path / "claims.json")
    monkeypatch.setattr(claims, "README", tmp_path / "README.md")
    runs = []
    for seed, (centre, ten) in enumerate(((0.40, 0.38), (0.45, 0.425), (0.50, 0.485))):
        run_dir = tmp_path / f"run{seed}"
        run_dir.mkdir()
        (run_dir / "history.json").write_text(json.dumps({"epochs": [{"learning_rate": 0.01, "val_top1_error": 0.4}]}))
        runs.append({"run_dir": str(run_dir), "steps": 10, "config": {"batch_size": 128}, "history_last_train_top1": 0.1,
                     "final": {"centre_top1_error": centre, "ten_crop_top1_error": ten}})
    claim = {"text": "10 crops beat the centre", "paper": "1.5 lower", "baseline": "towers", "variant": "towers",
             "baseline_label": "centre crop", "variant_label": "10 crops", "expected_sign": -1,
             "baseline_metric": lambda r: r["final"]["centre_top1_error"],
             "variant_metric": lambda r: r["final"]["ten_crop_top1_error"]}
    variants.record_claim({"name": "ten"}, claim, {"towers": runs}, seeds=3, epochs=1, train_limit=0)
    entry = json.loads((tmp_path / "claims.json").read_text())["ten"]
    assert entry["baseline"]["name"] == "centre crop" and entry["variant"]["per_seed"]["1"] == 0.425
    assert entry["difference"] == pytest.approx(-0.02) and entry["interval"] == "paired over 3 seeds"
    assert entry["verdict"] == "agrees"   # the gains 2, 2.5, 1.5 points: their interval excludes zero


def test_tower_split_p_value_is_small_only_when_the_towers_differ_beyond_random_splits():
    rng = np.random.default_rng(1)
    grey, colour = rng.uniform(0.0, 0.2, 48), rng.uniform(0.4, 0.7, 48)
    assert kernels.tower_split_p_value(grey, colour, permutations=2000) < 0.001   # the paper's Fig. 3
    mixed = rng.permutation(np.concatenate([grey, colour]))
    assert kernels.tower_split_p_value(mixed[:48], mixed[48:], permutations=2000) > 0.01   # kernels fell at random
    same = np.full(48, 0.3)
    assert kernels.tower_split_p_value(same, same, permutations=100) == 1.0   # no difference: every split ties


def test_a_claim_about_every_run_agrees_only_when_every_run_shows_it():
    from experiments import claims
    assert claims.judge_each_run({0: True, 1: True, 2: True})["verdict"] == "agrees"
    assert claims.judge_each_run({0: False, 1: False})["verdict"] == "disagrees"
    assert claims.judge_each_run({0: True, 1: False, 2: True})["verdict"] == "in 2 of 3 runs only"
    entry = {**claims.judge_each_run({0: True}), "claim": "towers specialise", "paper": "every run", "ours": "1 of 1",
             "command": "python x.py", "result_files": ["r.md"]}
    assert claims.row("k", entry) == "| towers specialise | every run | 1 of 1 | agrees | `python x.py` | `r.md` |"


def test_retrieval_distances_equal_the_direct_sum_of_squares_even_for_uint8_photos():
    """Fig. 4's neighbours: |a|^2 - 2ab + |b|^2 must equal sum((a - b)^2), and uint8 pixels must not wrap."""
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (7, 4, 4, 3), dtype=np.uint8), rng.integers(0, 256, (11, 4, 4, 3), dtype=np.uint8)
    direct = ((a.reshape(7, -1).astype(np.int64)[:, None] - b.reshape(11, -1).astype(np.int64)[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(evaluate.squared_distances(a, b), direct)
    features = rng.normal(size=(5, 64)).astype(np.float32)
    d = evaluate.squared_distances(features, features)
    np.testing.assert_allclose(np.diag(d), 0, atol=1e-9)
    assert (np.argsort(d, 1)[:, 0] == np.arange(5)).all()   # each row's nearest is itself
