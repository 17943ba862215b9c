"""Each precision mode sets what it says (replica.net.precision), and float16 loss scaling skips an overflow step
without stopping the run or touching the weights."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import replica
from replica.inputs import input_pipeline as ip
from replica.net import precision
from replica.training import train
from replica.training.recipe import TrainConfig
from tests.conftest import REPO


@pytest.fixture
def restore_tf32():
    before = tf.config.experimental.tensor_float_32_execution_enabled()
    yield
    tf.config.experimental.enable_tensor_float_32_execution(before)


def test_float32_means_float32_and_tf32_is_asked_for(restore_tf32):
    assert "TensorFloat-32 off" in precision.configure("float32", environ={})
    assert not tf.config.experimental.tensor_float_32_execution_enabled()
    assert "TensorFloat-32 on" in precision.configure("tf32", environ={})
    assert tf.config.experimental.tensor_float_32_execution_enabled()
    precision.configure("mixed_bfloat16", environ={})
    assert not tf.config.experimental.tensor_float_32_execution_enabled()


@pytest.mark.parametrize("variable", precision.ONEDNN_FPMATH_VARIABLES)
def test_a_reduced_onednn_math_mode_is_refused_under_float32_and_reported_otherwise(restore_tf32, variable):
    environ = {variable: "BF16"}
    with pytest.raises(precision.PrecisionError, match=f"{variable}=BF16 runs float32 as bfloat16"):
        precision.configure("float32", environ=environ)
    assert f"oneDNN math {variable}=BF16" in precision.configure("mixed_bfloat16", environ=environ)
    assert "oneDNN math strict" in precision.configure("float32", environ={variable: "strict"})


def test_bfloat16_on_a_cpu_without_its_units_is_named_emulated(tmp_path):
    """A CPU with only AVX2 has no bfloat16 convolutions: the run says so wherever it names its precision."""
    x86, arm = tmp_path / "x86", tmp_path / "arm"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse avx avx2 fma\n")
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert precision.cpu_flags(str(x86))[-2:] == ["avx2", "fma"] and "bf16" in precision.cpu_flags(str(arm))
    assert precision.cpu_flags(str(tmp_path / "missing")) == []
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("on a GPU machine the GPUs compute bfloat16, whatever the CPU")
    assert precision.in_force("mixed_bfloat16", environ={}, flags=precision.cpu_flags(str(x86))).endswith(
        "oneDNN math strict, emulated on this CPU)")
    for units in (precision.cpu_flags(str(arm)), ["avx512f", "avx512_bf16"], ["amx_tile", "amx_bf16"]):
        assert "emulated" not in precision.in_force("mixed_bfloat16", environ={}, flags=units)
    assert "emulated" not in precision.in_force("float32", environ={}, flags=["avx2"])


def kernels_in_a_fresh_process(**environ):
    """(onednn_in_use(), configure('float32')'s description, stderr) of a process that imports replica first, with
    the test's environment less TF_ENABLE_ONEDNN_OPTS, plus `environ`."""
    code = ("import replica\nfrom replica.net import precision\n"
            "print(precision.onednn_in_use(), precision.configure('float32'), sep='|')")
    env = {**{k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}, **environ}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    used, described = done.stdout.strip().splitlines()[-1].split("|")
    return used, described, done.stderr


def test_the_cpu_runs_onednn_kernels_unless_told_not_to():
    """replica asks for oneDNN's kernels before TensorFlow loads (TensorFlow switches them on by itself only on CPUs
    with AVX-512 VNNI, BF16 or AMX: on an AVX2 CPU the towers' step is 1.6x slower in Eigen); TF_ENABLE_ONEDNN_OPTS=0
    is honoured, named where the precision is, and warned about."""
    used, described, _ = kernels_in_a_fresh_process()
    if used == "None":
        pytest.skip("this TensorFlow build does not say whether oneDNN is in use")
    assert used == "True" and described == "float32 (TensorFloat-32 off, oneDNN math strict)"
    used, described, stderr = kernels_in_a_fresh_process(TF_ENABLE_ONEDNN_OPTS="0")
    assert used == "False" and described == "float32 (TensorFloat-32 off, oneDNN off: Eigen kernels)"
    if not tf.config.list_physical_devices("GPU"):
        assert "oneDNN is off (TF_ENABLE_ONEDNN_OPTS=0" in stderr


def test_an_unknown_mode_is_a_one_line_error():
    with pytest.raises(precision.PrecisionError, match="--precision=float8 is not one of float32, tf32"):
        precision.configure("float8", environ={})
    with pytest.raises(ValueError):
        replica.build_model(1, num_classes=10, input_size=32, precision="float8")


@pytest.mark.parametrize("mode, dtype", [("float32", tf.float32), ("tf32", tf.float32),
                                         ("mixed_bfloat16", tf.bfloat16), ("mixed_float16", tf.float16)])
def test_each_mode_computes_in_its_dtype_and_keeps_float32_weights_and_logits(mode, dtype):
    model = replica.build_model(1, num_classes=10, input_size=32, precision=mode)
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    assert model.conv1.compute_dtype == dtype.name
    assert model(tf.zeros([2, 32, 32, 3])).dtype == tf.float32


@pytest.mark.slow
def test_float16_loss_scaling_skips_and_counts_an_overflow_step_and_trains_on(tmp_path):
    data = ip.load_data("cifar10", train_limit=12, eval_limit=4)   # float16 convolutions are slow on a CPU
    tf.keras.utils.set_random_seed(0)
    model = replica.build_model(1, num_classes=10, input_size=32, positive_bias=0.1, precision="mixed_float16")
    trainer = train.Trainer(model, data, tmp_path, TrainConfig(batch_size=4, epochs=1, max_steps=2,
                                                                      log_every=1, eval_limit=4,
                                                                      final_ten_crop=False))
    assert trainer.loss_scale is not None
    step_fn, changed, scales = trainer._train_step, [], []

    def watched(*args):
        if not changed:
            trainer.loss_scale.scale.assign(2.0 ** 40)   # float16 gradients times 2^40 overflow
        before = [v.numpy().copy() for v in model.trainable_variables]
        out = step_fn(*args)
        changed.append(any(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables)))
        scales.append(float(trainer.loss_scale.scale.numpy()))
        if len(changed) == 1:
            trainer.loss_scale.scale.assign(2.0 ** 8)
        return out
    trainer._train_step = watched
    results = trainer.train()
    assert results["steps"] == 2 and results["loss_scale_overflows"] == 1
    assert changed == [False, True]   # the overflow step left the weights as they were; the next step trained
    assert scales[0] == 2.0 ** 39           # and halved the scale
    assert all(np.isfinite(v.numpy()).all() for v in model.trainable_variables)
    assert "mixed_float16" in results["precision"]
