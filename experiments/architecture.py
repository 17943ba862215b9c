"""Experiment 1 (exact, instant): parameters, neurons, multiply-adds and cross-device bytes per layer for the three
nets, against PAPER.md sections 1-2; and the per-device cost model behind the paper's timing claim (paper 3.2).

  python experiments/architecture.py [--quick]      (both modes are the same: nothing is trained)
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402
from replica import errors  # noqa: E402

from experiments import report  # noqa: E402  (defines --out_dir)

flags.DEFINE_bool("quick", False, "Same as the default: this experiment is instant.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import replica
    from replica.perf import cost_model
    from replica import paper
    from replica.net import summary
    devices = replica.split_cpu(2)
    rows = []
    tables = {}
    for towers, label in ((2, "two towers"), (1, "one-GPU net"), ("merged", "merged net")):
        model = replica.build_model(towers, devices=devices if towers == 2 else [devices[0]])
        table = replica.layer_table(model)
        tables[str(towers)] = table
        for layer in paper.LAYER_NAMES:
            sel = [r for r in table if r.layer == layer]
            rows.append({"net": label, "layer": layer, "params": sum(r.params for r in sel),
                         "neurons": sum(r.neurons for r in sel), "forward MACs": sum(r.macs for r in sel),
                         "cross-device B/img": sum(r.bytes_in for r in sel if r.crosses_device)})
        rows.append({"net": label, "layer": "total", "params": sum(r.params for r in table),
                     "paper params": paper.PARAMS[str(towers)], "neurons": sum(r.neurons for r in table),
                     "forward MACs": sum(r.macs for r in table),
                     "paper MACs (M)": paper.FORWARD_MACS_M[str(towers)],
                     "cross-device B/img": sum(r.bytes_in for r in table if r.crosses_device),
                     "paper B/img": paper.CROSS_TOWER_BYTES if towers == 2 else 0})
    fig2 = summary.neurons_per_paper_layer(tables["2"])
    notes = [f"Fig. 2 neurons, paper: {'-'.join(map(str, paper.FIG2_NEURONS))}; ours: {'-'.join(map(str, fig2))} "
             f"(the paper's first entry 253,440 = 96x55x48 is inconsistent with 55x55x96 = 290,400)",
             "every total equals PAPER.md's figure; this table is exact, not a reproduction at reduced scale"]
    report.write_table("architecture", "Architecture of the three nets, per layer, against the paper", rows,
                       ["net", "layer", "params", "paper params", "neurons", "forward MACs", "paper MACs (M)",
                        "cross-device B/img", "paper B/img"], notes=notes, out_dir=FLAGS.out_dir)
    cost_rows = []
    for name, tflops, link in cost_model.HARDWARE:
        for towers, label in (("2", "two towers, 2 devices"), ("1", "one-GPU net, 1 device")):
            seconds, flop, crossing = cost_model.step_time_per_image(tables[towers], tflops, link)
            cost_rows.append({"hardware": name, "net": label, "critical-path GFLOP/img": flop / 1e9,
                              "bytes crossing/img (fwd+bwd)": crossing, "ms/img (no overlap)": seconds * 1e3,
                              "images/s bound": 1 / seconds})
    report.write_table("cost_model", "Per-device cost of a training step: why two towers train slightly faster",
                       cost_rows, ["hardware", "net", "critical-path GFLOP/img", "bytes crossing/img (fwd+bwd)",
                                   "ms/img (no overlap)", "images/s bound"],
                       notes=["critical path: the busiest device's multiply-adds x 6 (forward + backward); "
                              "two towers: tower 0 carries fc8 as well",
                              "the paper's pair trained at about 227 images/s (PAPER.md 3), about a third of the "
                              "GTX 580 bound above: real kernels ran well below peak"], out_dir=FLAGS.out_dir)


if __name__ == "__main__":
    errors.run_main(main)
