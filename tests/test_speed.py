"""The benchmark and the speed trials behind docs/performance.md: each runs end to end on a tiny batch and
reports what it measured, and each alternative it times computes what the replica computes."""
import json
import re

import pytest

from tests.conftest import run_script


@pytest.mark.slow
def test_benchmark_prints_and_writes_its_figures(tmp_path):
    out = tmp_path / "bench.json"
    run_script("benchmark", "--input_size=32", "--batch_size=8", "--steps=1", "--warmup=1", "--repeats=2",
               "--noinference", "--data=cifar10", "--profile_ops=5", "--matmul_size=1024", f"--json={out}")
    figures = json.loads(out.read_text())
    assert figures["matmul_gflops"] > 1 and 0 < figures["roofline_fraction"] < 2
    assert figures["train_gflop_per_image"] == pytest.approx(6 * 247.0e6 / 1e9, rel=0.01)
    assert "input_pipeline_overhead" in figures and figures["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    for device in ("CPU:0", "CPU:1"):   # each device's busy time in a profiled step, within that step
        assert 0 < figures[f"busy_seconds_{device}"] <= 1.02 * figures["profiled_step_seconds"]
        assert 0 <= figures[f"idle_fraction_{device}"] < 1
    ops = figures["op_profile_ms"]   # [ms, device, node, type], costliest first; the update is one compiled op
    assert len(ops) == 5 and ops[0][0] >= ops[-1][0] > 0 and {op[1] for op in ops} <= {"CPU:0", "CPU:1"}
    assert figures["op_type_ms"]["XlaCompiled"] > 0 and any("Conv2D" in kind for kind in figures["op_type_ms"])


def test_ratio_interval_is_a_t_interval_on_the_log_ratios():
    """--compare_layouts' summary: geometric mean and 95% interval of paired ratios (t with n - 1 degrees of
    freedom, the table's nearest lower entry beyond 10)."""
    import math
    from experiments import report
    ratios = [0.95, 1.0, 1.08]
    logs = [math.log(r) for r in ratios]
    mean = sum(logs) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in logs) / 2)
    want = [math.exp(mean + k * 4.30 * sd / math.sqrt(3)) for k in (0, -1, 1)]   # t(0.975, 2 df) = 4.30
    assert report.ratio_interval(ratios) == pytest.approx(want, rel=1e-12)
    assert report.ratio_interval([1.02] * 12) == pytest.approx([1.02] * 3)   # no spread: a point
    eleven_df = report.ratio_interval([0.97, 1.03] * 6)   # 11 df: the t of 10 df, never narrower
    assert eleven_df[2] / eleven_df[0] == pytest.approx(math.exp(2.23 * math.log(1.03 / 0.97) / 2 * math.sqrt(12 / 11)
                                                                / math.sqrt(12)), rel=1e-9)


def test_speed_trials_alternatives_compute_what_the_replica_computes():
    """Each alternative the speed trials time against the replica computes the same numbers, forward and
    backward: otherwise its timing would compare different work."""
    import numpy as np
    import tensorflow as tf
    from experiments import speed_trials
    from replica.net import speed_forms
    from replica.training.optimizer import PaperSGD
    x = tf.random.uniform([2, 6, 6, 16], seed=1) * 20.0

    def value_and_gradient(norm):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = norm(x, 5, 2.0, 1e-4, 0.75)
            loss = tf.reduce_sum(y * tf.range(16, dtype=tf.float32))
        return y.numpy(), tape.gradient(loss, x).numpy()
    want = value_and_gradient(speed_forms.cross_map_norm)
    for alternative in (speed_trials.lrn_by_band_matmuls, speed_trials.lrn_band_sum_as_convolution,
                        speed_trials.lrn_elementwise_by_xla):
        for got, expected in zip(value_and_gradient(alternative), want):
            np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-6)
    dy, w = tf.random.normal([8, 24], seed=2), tf.random.normal([40, 24], seed=3)
    for name, form in speed_trials.fc_input_gradient_forms().items():
        np.testing.assert_allclose(form(dy, w).numpy(), (dy @ tf.transpose(w)).numpy(), rtol=1e-5, atol=1e-5)

    class Var:   # PaperSGD takes Keras variables; wrap tf.Variables the same way
        def __init__(self, value, path):
            self.value, self.path, self.shape, self.dtype = value, path, value.shape, value.dtype
    weights = [tf.random.normal([5, 3], seed=4), tf.random.normal([3], seed=5)]
    grads = [tf.random.normal([5, 3], seed=6), tf.random.normal([3], seed=7)]
    results = []
    for apply in (PaperSGD.apply, speed_trials.unfused_update):
        variables = [Var(tf.Variable(w), f"w{i}") for i, w in enumerate(weights)]
        optimizer = PaperSGD(variables)
        for _ in range(3):
            apply(optimizer, grads, 0.1)
        results.append([v.value.numpy() for v in variables])
    for fused, unfused in zip(*results):
        np.testing.assert_allclose(fused, unfused, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_the_onednn_trial_times_each_kernel_set_in_processes_of_its_own(tmp_path):
    run_script("speed_trials", "--trial=onednn", "--batch_size=2", "--rounds=1", "--steps=1", "--matmul_size=1024",
               f"--out_dir={tmp_path}", timeout=400)
    report = (tmp_path / "speed_trials_towers1_onednn.md").read_text()
    for form in ("Eigen (TF_ENABLE_ONEDNN_OPTS=0)", "oneDNN (TF_ENABLE_ONEDNN_OPTS=1, the replica's)"):
        assert re.search(re.escape(form) + r" +median +[0-9.]+ images/s", report)
        assert re.search(re.escape(form) + r" +fraction of the matmul measured in its process: median [0-9.]+", report)
    from replica.net import precision
    if precision.onednn_in_use() is not None:   # each form's process ran the kernels it is named after
        assert re.search(r"Eigen \(TF_ENABLE_ONEDNN_OPTS=0\) +in force: .*oneDNN off: Eigen kernels", report)
        assert re.search(r"oneDNN \(TF_ENABLE_ONEDNN_OPTS=1, the replica's\) +in force: .*oneDNN math strict", report)


def test_result_files_name_the_processors_widest_units():
    from experiments import report
    assert report.widest_units(["sse", "avx2", "fma"]) == "AVX2"
    assert report.widest_units(["avx2", "avx512f"]) == "AVX-512"
    assert report.widest_units(["avx2", "avx512f", "avx512_bf16"]) == "AVX-512 BF16"
    assert report.widest_units(["avx512f", "avx512_bf16", "amx_tile", "amx_bf16"]) == "AMX"
    assert report.widest_units(["fp", "asimd"]) == ""
    assert re.fullmatch(r".+, \d+ cores", report.machine())


@pytest.mark.slow
def test_the_exchange_and_lrn_speed_trials_run_and_report_each_form(tmp_path):
    """The trials behind docs/performance.md's exchange and LRN figures run end to end on a tiny batch: both forms
    timed in the step and profiled for each device's waiting, the LRN against a plain pass, and the bfloat16 LRN's
    two forms alone and in the step, in the report."""
    run_script("speed_trials", "--trial=exchange_gradient", "--towers=2", "--batch_size=2", "--rounds=1",
               "--steps=1", f"--out_dir={tmp_path}", timeout=400)
    report = (tmp_path / "speed_trials_towers2_exchange_gradient.md").read_text()
    for form in ("the input gradient (earlier form)", "each tower's part of it, cut (now)"):
        assert report.count(form) == 3   # its rate, the rounds line and its idle line
    idle = [float(v) for v in re.findall(r"CPU:[01] ([0-9.]+)%", report)]
    assert len(idle) == 4 and all(0 <= v < 100 for v in idle)   # both devices of both forms, as fractions of a step
    run_script("speed_trials", "--trial=lrn_bound", "--batch_size=2", f"--out_dir={tmp_path}")
    report = (tmp_path / "speed_trials_towers1_lrn_bound.md").read_text()
    for layer in ("norm1", "norm2"):
        line = next(l for l in report.splitlines() if l.strip().startswith(layer))
        times = [float(v) for v in re.findall(r": +([0-9.]+)", line)]
        assert len(times) == 3 and all(t > 0 for t in times)   # the plain pass, without the sum, the LRN
    run_script("speed_trials", "--trial=lrn_band", "--step_precision=mixed_bfloat16", "--towers=2", "--batch_size=2",
               "--rounds=1", "--steps=1", f"--out_dir={tmp_path}", timeout=400)
    report = (tmp_path / "speed_trials_towers2_lrn_band_mixed_bfloat16.md").read_text()
    for layer in ("norm1", "norm2"):   # the bfloat16 LRN alone, by slices and by band matmuls
        line = next(l for l in report.splitlines() if l.strip().startswith(layer))
        assert len([t for t in re.findall(r": +([0-9.]+)", line) if float(t) > 0]) == 2
    for form in ("shifted slices (earlier form)", "band matmuls (now)"):
        assert re.search(re.escape(form) + r" +median +[0-9.]+ images/s", report)   # and in the step
