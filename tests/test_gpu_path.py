"""The GPU-only branches, through the same functions a GPU run calls: the memory split of one card, the memory
model that refuses a batch too large for a device, and the bring-up check on this machine's devices."""
import json
import subprocess
import sys

import pytest

import replica
from replica.net import devices, memory, precision
from tests.conftest import REPO


def test_a_cards_memory_is_read_from_the_driver_and_split_with_headroom():
    assert devices.card_memory_mb(0, query=lambda i: "24576\n") == 24576
    assert devices.card_memory_mb(0, query=lambda i: (_ for _ in ()).throw(OSError("no nvidia-smi"))) is None
    assert devices.split_memory_mb(24576, 2) == (24576 - 2457) // 2       # a tenth of a large card kept back
    assert devices.split_memory_mb(8192, 2) == (8192 - 1024) // 2         # at least 1 GB kept back
    assert devices.split_memory_mb(None, 2) == devices.DEFAULT_SPLIT_GPU_MB
    assert devices.device_memory_mb("/device:CPU:0") is None
    one_card = devices.plan_devices(2, [0, 1], physical_gpus=1)   # the towers on two halves of one GPU
    assert devices.carved_memory_mb(one_card, query=lambda i: "24576") == (24576 - 2457) // 2
    assert devices.carved_memory_mb(one_card, gpu_memory_mb=4000, query=lambda i: "24576") == 4000   # the flag's
    assert devices.carved_memory_mb(devices.plan_devices(2, [0, 1], physical_gpus=0)) is None          # the CPU's


def test_the_precisions_a_machine_has_units_for():
    """The device check's choice (experiments/device_check.py): the lowest GPU's compute capability decides."""
    assert precision.modes_with_units([(8, 6)]) == ["float32", "mixed_bfloat16", "mixed_float16"]   # an A10
    assert precision.modes_with_units([(8, 0), (7, 0)]) == ["float32", "mixed_float16"]             # with a V100
    assert precision.modes_with_units([(6, 0)]) == ["float32"]                                      # a P100
    assert precision.modes_with_units([], flags=["avx2", "amx_bf16"]) == ["float32", "mixed_bfloat16"]
    assert precision.modes_with_units([], flags=["avx2", "fma"]) == ["float32"]


@pytest.fixture(scope="module")
def towers_227():
    return replica.build_model(2, num_classes=1000, input_size=227, devices=["/device:CPU:0", "/device:CPU:1"])


def test_the_memory_model_counts_weights_velocities_gradients_and_maps(towers_227):
    per_device = memory.per_device_mb(towers_227)
    fixed = sum(f for f, _ in per_device.values())
    assert fixed == pytest.approx(60_965_224 * 12 / 2 ** 20)    # weights, velocities, gradients in float32
    # tower 0 holds fc8 as well, so it needs more than tower 1; per image both keep their maps
    assert per_device["CPU:0"][0] > per_device["CPU:1"][0] and per_device["CPU:0"][1] > 1


def test_a_batch_too_large_for_a_device_is_refused_naming_the_batch_that_fits(towers_227):
    per_device = memory.per_device_mb(towers_227)
    fixed, per_image = per_device["CPU:0"]
    small_card = {f"/device:{d}": fixed + 50.5 * per_image for d in per_device}   # room for 50 images on tower 0
    with pytest.raises(memory.BatchTooLarge, match=r"batch 128 needs about .* on CPU:0, .*--batch_size=50 fits"):
        memory.check_batch_fits(towers_227, 128, memory_mb=lambda name: small_card.get(name, 1e9))
    memory.check_batch_fits(towers_227, 32, memory_mb=lambda name: small_card.get(name, 1e9))
    memory.check_batch_fits(towers_227, 10_000, memory_mb=lambda name: None)    # a CPU: nothing to check


@pytest.mark.slow
def test_the_device_check_runs_on_this_machines_devices_and_writes_its_report(tmp_path):
    result = subprocess.run([sys.executable, "experiments/device_check.py", "--quick", f"--out_dir={tmp_path}"],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(next(tmp_path.glob("device_check_*.json")).read_text())
    assert report["checks"] == {"placement": True, "equivalence": True, "loss falls": True}
    assert report["placement"]["checked"] >= 18 and not report["placement"]["misplaced"]
    assert "splitting the CPU" in report["facts"]["layout_for_gpus_0_1"]
    nets = {(r["precision"], r["net"]) for r in report["rows"]}
    assert ("float32", "towers, two devices") in nets and ("float32", "two devices / one device") in nets
    assert all(r["images/s"] > 0 for r in report["rows"])
    # bfloat16 is benchmarked only where this CPU has units for it (on an AVX2-only CPU it is emulated)
    assert ("mixed_bfloat16" in report["precisions"]) == (not precision.emulated("mixed_bfloat16"))
    assert (tmp_path / next(tmp_path.glob("device_check_*.md")).name).read_text().count("|") > 20
