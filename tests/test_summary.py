"""The per-layer table against the paper's figures, and the command line's --summary and its errors."""
import subprocess
import sys

import pytest

import replica
from replica import paper
from replica.net import summary
from tests.conftest import REPO


@pytest.mark.parametrize("towers", [2, 1, "merged"])
def test_totals_match_the_paper(towers):
    rows = replica.layer_table(replica.build_model(towers))
    assert sum(r.params for r in rows) == paper.PARAMS[str(towers)]
    assert round(sum(r.macs for r in rows) / 1e6, 1) == paper.FORWARD_MACS_M[str(towers)]


def test_two_tower_neurons_and_exchanged_bytes():
    rows = replica.layer_table(replica.build_model(2, devices=replica.tower_devices(2, "0,1")))
    assert summary.neurons_per_paper_layer(rows) == [290_400, *paper.FIG2_NEURONS[1:]]
    assert sum(r.bytes_in for r in rows) == paper.CROSS_TOWER_BYTES
    assert {r.name for r in rows if r.bytes_in} == {"conv3_0", "conv3_1", "fc6_0", "fc6_1", "fc7_0", "fc7_1", "fc8"}
    assert all(r.crosses_device for r in rows if r.bytes_in)
    assert {r.device for r in rows if r.tower == 1} == {"CPU:1"}


def run_cli(*args):
    return subprocess.run([sys.executable, "run_experiment.py", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_cli_summary_prints_the_table():
    result = run_cli("--towers=2", "--gpus=0,1", "--summary")
    assert result.returncode == 0, result.stderr
    assert "60,965,224 matches" in result.stdout and "fc7_1" in result.stdout and "234,496" in result.stdout
    assert "precision float32 (TensorFloat-32 off" in result.stdout


@pytest.mark.parametrize("args,message", [
    (("--towers=merged", "--gpus=0,1"), "at most 1 device"),
    (("--towers=2", "--gpus=0,7"), "cannot exist"),
    (("--towers=2", "--gpus=zero"), "not a comma-separated list"),
    (("--towers=3",), "--towers=3: value should be one of <2|1|merged|grouped>"),
])
@pytest.mark.slow
def test_cli_bad_devices_are_one_line_errors(args, message):
    result = run_cli(*args, "--summary")
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
