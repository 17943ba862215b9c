"""Experiment 10 (Fig. 3, paper 6.1): the conv1 kernels of each tower, and how colour-specific each tower is.

The paper: tower 1 ("GPU 1") learns largely colour-agnostic kernels and tower 2 colour-specific ones, in every run
(modulo a renumbering of the GPUs). We measure, per kernel, the fraction of its energy outside its mean-over-
channels component (`replica.kernels.colour_specificity`: 0 = grey, larger = colour), averaged per tower, and
test the claim over several seeds: does one tower come out clearly more colour-specific than the other?

  python experiments/conv1_kernels.py --run_dirs=runs/cifar10-full-towers2     (trained runs, instant)
  python experiments/conv1_kernels.py                                            (train 3 seeds here, ~1.5 h)
  python experiments/conv1_kernels.py --seeds=2 --epochs=2 --train_limit=20000   (a smaller run)
  python experiments/conv1_kernels.py --quick                                    (2 seeds x 4 steps, slice)

The seeds are trained by the ablations' runner (experiments/variants.py), so a finished seed in runs/variants is
reused and an interrupted one resumes.

Arithmetic for the default training mode: full CIFAR-10, 4 epochs = 200,000 images x 1.48 GFLOP (32x32 training
step) = 296 TFLOP per seed, about 30 min at ~110 images/s: 3 seeds take about 1.5 h on this machine.
"""
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from experiments import variants  # noqa: E402  (its flags: --quick, --seeds, --epochs, --train_limit, ...)

flags.DEFINE_list("run_dirs", [], "Trained two-tower run folders (run_experiment.py) to analyse instead of "
                  "training seeds.")
FLAGS = flags.FLAGS
TWO_TOWERS = {"towers": 2}
SEEDS, EPOCHS = 3, 4     # full CIFAR-10 (no --train_limit)


def trained_seed(seed, devices):
    """The two-tower net trained (or reused) by the ablations' runner with this seed."""
    import tensorflow as tf
    results = variants.run_variant(TWO_TOWERS, seed, devices, FLAGS.quick, FLAGS.epochs or EPOCHS,
                                   FLAGS.train_limit)
    model = variants.build_variant(TWO_TOWERS, devices)
    checkpoint = tf.train.latest_checkpoint(str(pathlib.Path(results["run_dir"]) / "checkpoints"))
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial()
    return model


def main(argv):
    del argv
    import numpy as np
    import replica
    from replica import kernels, runs
    from experiments import report
    devices = replica.split_cpu(2)
    models = []
    if FLAGS.run_dirs:
        models = [(d, runs.load_trained(d, devices)[0]) for d in FLAGS.run_dirs]
    else:
        seeds = 2 if FLAGS.quick else (FLAGS.seeds or SEEDS)
        models = [(f"seed {s}", trained_seed(s, devices)) for s in range(seeds)]
    rows, images, titles = [], [], []
    for name, model in models:
        k0, k1 = kernels.tower_conv1_kernels(model)
        s0, s1 = kernels.colour_specificity(k0), kernels.colour_specificity(k1)
        rows.append({"run": name, "tower 0 colour specificity": float(s0.mean()),
                     "tower 1 colour specificity": float(s1.mean()),
                     "more colour-specific tower": 0 if s0.mean() > s1.mean() else 1,
                     "difference / pooled std": float(abs(s0.mean() - s1.mean()) /
                                                      np.sqrt((s0.var() + s1.var()) / 2 + 1e-12))})
        for t, k in enumerate((k0, k1)):
            images.append(kernels.kernel_grid(k))
            titles.append(f"{name}, tower {t} (specificity {(s0, s1)[t].mean():.2f})")
    separated = sum(r["difference / pooled std"] > 1.0 for r in rows)
    verdict = (f"{separated} of {len(rows)} runs show one tower clearly more colour-specific (difference > 1 pooled "
               "std); the paper says every run does")
    report.write_table("conv1_kernels", "Fig. 3: colour specificity of each tower's conv1 kernels", rows,
                       ["run", "tower 0 colour specificity", "tower 1 colour specificity",
                        "more colour-specific tower", "difference / pooled std"],
                       notes=[verdict, "specificity: the fraction of a kernel's energy outside its grey "
                              "(mean-over-RGB) component, averaged over the tower's 48 kernels",
                              "CIFAR-10 geometry: conv1 kernels are 5x5 (the paper's are 11x11 on ImageNet)"],
                       out_dir=FLAGS.out_dir)
    report.image_figure("conv1_kernels", images, titles, "conv1 kernels per tower (Fig. 3 replica)",
                        rows=len(models), out_dir=FLAGS.out_dir)


if __name__ == "__main__":
    app.run(main)
