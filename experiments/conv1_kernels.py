"""Experiment 10 (Fig. 3, paper 6.1): the conv1 kernels of each tower, and how colour-specific each tower is.

The paper: tower 1 ("GPU 1") learns largely colour-agnostic kernels and tower 2 colour-specific ones, in every run
(modulo a renumbering of the GPUs). We measure, per kernel, the fraction of its energy outside its mean-over-
channels component (`replica.net.kernels.colour_specificity`: 0 = grey, larger = colour), averaged per tower, and
test the claim over several seeds: does one tower come out clearly more colour-specific than the other?

  python experiments/conv1_kernels.py --run_dirs=runs/cifar10-full-towers2     (trained runs, instant)
  python experiments/conv1_kernels.py                                            (5 seeds, ~25 min; see below)
  python experiments/conv1_kernels.py --quick                                    (2 seeds x 4 steps, slice)
  python experiments/conv1_kernels.py --weights=bvlcalexnet-8.onnx               (ImageNet-trained kernels)

With --weights, the kernels are bvlc_alexnet's, trained on ILSVRC-2012 by Caffe (replica.trained.pretrained): the paper's
11x11 kernels on real photos, in the two towers (its first 48 kernels are tower 0's), written to
conv1_kernels_bvlc_alexnet.{md,json,png} beside the CIFAR-10 result.

The seeds are trained by the ablations' runner (experiments/variants.py) at the ablations' budget, so seeds 0 and
1 are the two-tower baseline runs of experiments 3-9 when those have run (reused from runs/variants), and an
interrupted seed resumes. Arithmetic: 10,000 images x 3 epochs x 1.48 GFLOP (32x32 training step) = 44 TFLOP per
seed, about 5 min at ~120 images/s with its evaluations: 5 seeds about 25 min, 15 min when seeds 0-1 are reused.
After 30,000 images the kernels have left their initialisation (the --quick table, 4 steps from it, reads about
0.67; results/conv1_kernels.md has the trained values); `--epochs` and `--train_limit` train longer.
"""
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from experiments import variants  # noqa: E402  (its flags: --quick, --seeds, --epochs, --train_limit, ...)

flags.DEFINE_list("run_dirs", [], "Trained two-tower run folders (run_experiment.py) to analyse instead of "
                  "training seeds.")
flags.DEFINE_string("weights", None, "bvlc_alexnet's ONNX file: analyse its ImageNet-trained kernels instead.")
FLAGS = flags.FLAGS
TWO_TOWERS = {"towers": 2}
SEEDS, EPOCHS, TRAIN_LIMIT = 5, 3, 10000     # the ablations' budget (experiments/variants.py)


def trained_seed(seed, devices):
    """The two-tower net trained (or reused) by the ablations' runner with this seed."""
    import tensorflow as tf
    results = variants.run_variant(TWO_TOWERS, seed, devices, FLAGS.quick, FLAGS.epochs or EPOCHS,
                                   FLAGS.train_limit or TRAIN_LIMIT)
    model = variants.build_variant(TWO_TOWERS, devices)
    checkpoint = tf.train.latest_checkpoint(str(pathlib.Path(results["run_dir"]) / "checkpoints"))
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial()
    return model


def main(argv):
    del argv
    import numpy as np
    import replica
    from replica.net import kernels
    from replica.training import runs
    from experiments import report
    devices = replica.split_cpu(2)
    models, name, geometry = [], "conv1_kernels", "CIFAR-10 geometry: conv1 kernels are 5x5 (the paper's are 11x11 on ImageNet)"
    if FLAGS.weights:
        from replica.trained import pretrained
        models = [("bvlc_alexnet", pretrained.build_model(pretrained.read(FLAGS.weights), 2, devices=devices))]
        name = "conv1_kernels_bvlc_alexnet"
        geometry = ("bvlc_alexnet's 11x11 kernels, trained by Caffe on ILSVRC-2012; the CIFAR-10 runs are in "
                    "conv1_kernels.md")
    elif FLAGS.run_dirs:
        models = [(d, runs.load_trained(d, devices)[0]) for d in FLAGS.run_dirs]
    else:
        seeds = 2 if FLAGS.quick else (FLAGS.seeds or SEEDS)
        models = [(f"seed {s}", trained_seed(s, devices)) for s in range(seeds)]
    rows, images, titles = [], [], []
    for run, model in models:
        k0, k1 = kernels.tower_conv1_kernels(model)
        s0, s1 = kernels.colour_specificity(k0), kernels.colour_specificity(k1)
        rows.append({"run": run, "tower 0 colour specificity": float(s0.mean()),
                     "tower 1 colour specificity": float(s1.mean()),
                     "more colour-specific tower": 0 if s0.mean() > s1.mean() else 1,
                     "difference / pooled std": float(abs(s0.mean() - s1.mean()) /
                                                      np.sqrt((s0.var() + s1.var()) / 2 + 1e-12))})
        for t, k in enumerate((k0, k1)):
            images.append(kernels.kernel_grid(k))
            titles.append(f"{run}, tower {t} (specificity {(s0, s1)[t].mean():.2f})")
    separated = sum(r["difference / pooled std"] > 1.0 for r in rows)
    tower0 = sum(r["more colour-specific tower"] == 0 for r in rows)
    verdict = (f"{separated} of {len(rows)} runs show one tower clearly more colour-specific (difference > 1 pooled "
               f"std); the paper says every run does. Tower 0 is the more colour-specific in {tower0} of "
               f"{len(rows)} runs")
    report.write_table(name, "Fig. 3: colour specificity of each tower's conv1 kernels", rows,
                       ["run", "tower 0 colour specificity", "tower 1 colour specificity",
                        "more colour-specific tower", "difference / pooled std"],
                       notes=[verdict, "specificity: the fraction of a kernel's energy outside its grey "
                              "(mean-over-RGB) component, averaged over the tower's 48 kernels",
                              geometry],
                       out_dir=FLAGS.out_dir)
    report.image_figure(name, images, titles, "conv1 kernels per tower (Fig. 3 replica)",
                        rows=len(models), out_dir=FLAGS.out_dir)


if __name__ == "__main__":
    app.run(main)
