"""Each experiment script runs end to end in its --quick mode and writes its table (and figure); bad input to one is
one line and exit code 2."""
import json
import re
import subprocess
import sys

import pytest

from replica import paper
from tests.conftest import REPO, SHARED_DATA, float32_where_bfloat16_is_emulated, run_script


@pytest.mark.slow
def test_architecture_table_is_exact_and_the_cost_model_explains_the_timing_claim(tmp_path):
    run_script("architecture", f"--out_dir={tmp_path}")
    rows = json.loads((tmp_path / "architecture.json").read_text())["rows"]
    totals = {r["net"]: r for r in rows if r["layer"] == "total"}
    assert totals["two towers"]["params"] == paper.PARAMS["2"] == totals["two towers"]["paper params"]
    assert totals["merged net"]["params"] == paper.PARAMS["merged"]
    assert totals["two towers"]["cross-device B/img"] == paper.CROSS_TOWER_BYTES
    cost = json.loads((tmp_path / "cost_model.json").read_text())["rows"]
    gtx = {r["net"]: r["ms/img (no overlap)"] for r in cost if r["hardware"].startswith("2x GTX 580")}
    assert gtx["two towers, 2 devices"] < gtx["one-GPU net, 1 device"]   # "slightly less time to train"
    assert gtx["two towers, 2 devices"] > 0.9 * gtx["one-GPU net, 1 device"]


FIGURES = ("conv1_kernels", "retrieval", "relu_vs_tanh")
IN_BFLOAT16 = ("towers_comparison", "conv1_kernels", "retrieval", "ten_crop")   # regimes.py's precision


@pytest.mark.parametrize("script,rows", [("towers_comparison", 3), ("conv1_kernels", 2), ("retrieval", 1),
                                         ("relu_vs_tanh", 2), ("drop_layer", 3), ("tiny_imagenet", 5),
                                         ("ten_crop", 1), ("lrn_forms", 2), ("input_speed", 4)])
@pytest.mark.slow
def test_quick_modes_write_their_outputs(tmp_path, script, rows):
    if script in ("tiny_imagenet", "ten_crop", "conv1_kernels", "input_speed") and not (
            SHARED_DATA / "tiny-imagenet-10").is_dir():
        pytest.skip("../shared/data/tiny-imagenet-10 is not beside the repository")
    precision = float32_where_bfloat16_is_emulated() if script in IN_BFLOAT16 else []
    run_script(script, "--quick", *precision, f"--out_dir={tmp_path}")
    table = json.loads((tmp_path / f"{script}.json").read_text())
    assert len(table["rows"]) == rows and "--quick" in table["command"]
    assert (tmp_path / f"{script}.md").is_file()
    if script in FIGURES:
        assert (tmp_path / f"{script}.png").stat().st_size > 10_000
    if script == "retrieval":   # the shares of the query's class among its neighbours, by fc7 and by pixels
        row = table["rows"][0]
        shares = [row[k] for k in ("fc7 neighbours of the query's class", "raw-pixel neighbours of the query's class")]
        assert all(0 <= v <= 1 for v in shares) and 0.05 < row["chance"] < 0.2   # 10 classes
        assert any("512 training images" in n for n in table["notes"])   # each run's own training split searched
    if script == "relu_vs_tanh":   # whole epochs were trained and a learning rate chosen for each net
        assert all(r["epochs run"] == 2 and r["learning rate (chosen)"] in (0.01, 0.05) for r in table["rows"])
    if script == "input_speed":   # each source's rate per core, each stage's, the preparation rate and size
        assert all(r["images_per_second_per_core"] > 0 and r["cores"] == 1 for r in table["rows"])
        assert {"read and parse", "+ decode", "+ the random draws (all the host does)",
                "+ finished in float on the host instead"} <= {
            part.rsplit(" ", 1)[0] for part in next(n for n in table["notes"] if "cut after each stage" in n)
            .split(": ", 1)[1].split(", ")}
        assert any("python -m replica.inputs.prepare" in n for n in table["notes"])
        assert any(n.startswith("the training step's first pass on the device") for n in table["notes"])
        assert any(n.startswith("prepared size") for n in table["notes"])
    if script == "ten_crop":   # the paired gain of each run, top-1 and top-5, from both evaluations of it
        row = table["rows"][0]
        gains = [n for n in table["notes"] if "10 crops gain" in n]
        assert len(gains) == 2 and row["10-crop top-1 error"] is not None
        top1 = 100 * (row["centre top-1 error"] - row["10-crop top-1 error"])
        assert f"gain {top1:.2f} (one seed)" in gains[0]


def test_every_command_line_ends_bad_input_in_one_line():
    """Every command (run_experiment.py, experiments/, replica/) that takes flags or arguments runs its main through
    replica.errors.exits_2_on_user_error (run_main, variants.main_for): a UserError is one line and exit code 2
    there, not a traceback, and so is a flag that absl cannot parse (run_main). A script with variants' flags
    and a main of its own acts on --status (it would otherwise train)."""
    commands = [p for p in [REPO / "run_experiment.py", *(REPO / "experiments").glob("*.py"),
                            *(REPO / "replica").rglob("*.py")]
                if 'if __name__ == "__main__":' in p.read_text()
                and any(word in p.read_text() for word in ("flags.DEFINE", "sys.argv", "UserError"))]
    assert len(commands) >= 12
    for path in commands:
        end = path.read_text().split('if __name__ == "__main__":')[1]
        assert any(way in end for way in ("run_main(main)", "variants.main_for(SPEC)", "exits_2_on_user_error(main)")), path
        assert "app.run(" not in path.read_text(), path   # absl's own end: a bad flag in two lines, exit code 1
        if re.search(r"^from experiments import .*\bvariants\b", path.read_text(), re.M) and "main_for" not in end:
            assert "FLAGS.status" in path.read_text(), path   # variants' flags, its own main: --status is honoured


@pytest.mark.parametrize("arguments,message", [
    ("relu_vs_tanh.py --status", "--status: this script chooses its runs as it goes"),
    ("drop_layer.py --status --quick", "--status reads the runs in --runs_dir"),
    ("retrieval.py --status --runs_dir=", "--status reads the runs in --runs_dir"),   # its own main
    ("conv1_kernels.py --status --runs_dir=", "--status reads the runs in --runs_dir"),
    ("dropout.py --seeds=1,x", "flag --seeds=1,x: invalid literal"),   # absl's parsing, not a main's
    ("dropout.py --status --train_limit=-5", "flag --train_limit=-5: -5 is not a positive integer"),
    ("lrn.py --status --precision=bfloat16", "flag --precision=bfloat16: value should be one of"),
    ("benchmark.py --no_such_flag", "Unknown command line flag 'no_such_flag'"),
    ("towers_comparison.py --out_dir=/proc/no-folder-here",
     "flag --out_dir=/proc/no-folder-here: not a folder this process can write to"),
    ("benchmark.py --towers=5", "flag --towers=5: value should be one of <2|1|merged|grouped>"),
    ("benchmark.py --input_size=100", "flags input_size=100, data=synthetic: --input_size does not fit --data: "
                                      "32 or 24 for cifar10; 227 or 224 for imagenet_folder"),
    ("benchmark.py --data=cifar10 --input_size=227", "flags input_size=227, data=cifar10: --input_size does not fit"),
    ("benchmark.py --json=/proc/no-folder-here/row.json",
     "flag --json=/proc/no-folder-here/row.json: not a file this process can write"),
    ("benchmark.py --cores_per_device=-1", "flag --cores_per_device=-1: -1 is not a non-negative integer"),
    ("lrn.py --scale=full --imagenet_dir=/nonexistent", "--imagenet_dir=/nonexistent is not a folder"),
    ("device_check.py --gpus=0,1 --steps=3", "--gpus, --steps: the check chooses its own devices"),
    ("input_speed.py --prepared_dir=/nonexistent", "--prepared_dir=/nonexistent is not a folder: prepare one"),
    ("speed_trials.py --intra_op_threads=-1", "flag --intra_op_threads=-1: -1 is not a non-negative integer"),
    pytest.param("conv1_kernels.py --run_dirs=/nonexistent", "/nonexistent does not exist: pass a run folder",
                 marks=pytest.mark.slow),
    pytest.param("input_speed.py --quick --data_dir=/nonexistent", "/nonexistent has no train/ folder",
                 marks=pytest.mark.slow),
    pytest.param("benchmark.py --gpus=0,7", "--gpus=0,7 cannot exist", marks=pytest.mark.slow),
])
def test_bad_input_to_an_experiment_is_one_line_and_exit_code_2(arguments, message):
    script, *flags = arguments.split()
    result = subprocess.run([sys.executable, f"experiments/{script}", *flags], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {message}")
