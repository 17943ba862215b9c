"""Experiment 10 (Fig. 3, paper 6.1): the conv1 kernels of each tower, and whether the towers specialise.

The paper: tower 1 ("GPU 1") learns largely colour-agnostic kernels and tower 2 colour-specific ones, in every run
(modulo a renumbering of the GPUs). We measure, per kernel, the fraction of its energy outside its mean-over-
channels component (`replica.net.kernels.colour_specificity`: 0 = grey, larger = colour), average it per tower,
and test each run: do the towers differ more than random splits of the same 96 kernels into two groups of 48
(`kernels.tower_split_p_value`, 10,000 splits)? A run shows the claim when p < 0.01; the claim is "every run".

  python experiments/conv1_kernels.py                      (the photos regime: 3 seeds, ~1 h 50 min; see below)
  python experiments/conv1_kernels.py --quick              (2 steps on 16 photos: the script runs, no result)
  python experiments/conv1_kernels.py --run_dirs=DIR,...   (trained two-tower runs of run_experiment.py, instant)
  python experiments/conv1_kernels.py --weights=bvlcalexnet-8.onnx   (ImageNet-trained kernels)
  python experiments/conv1_kernels.py --scale=full         (the paper-sized runs on ILSVRC-2012 and their cost)

The default trains (or reuses) the two towers in the photos regime (experiments/regimes.py: 11x11 kernels at 227
on tiny-imagenet-10's photos, 20 epochs, 3 seeds), the same runs experiments/ten_crop.py evaluates, and writes
the claim's verdict into results/claims.json. With --weights, the kernels are bvlc_alexnet's, trained on
ILSVRC-2012 by Caffe (replica.trained.pretrained), written to conv1_kernels_bvlc_alexnet.{md,json,png}.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402
from replica import errors  # noqa: E402

from experiments import regimes, variants  # noqa: E402  (its flags: --quick, --seeds, --epochs, --runs_dir, ...)

flags.DEFINE_list("run_dirs", [], "Trained two-tower run folders (run_experiment.py) to analyse instead of "
                  "training seeds.")
flags.DEFINE_string("weights", None, "bvlc_alexnet's ONNX file: analyse its ImageNet-trained kernels instead.")
FLAGS = flags.FLAGS

SPEC = {"name": "conv1_kernels", "title": "Fig. 3: the two towers' conv1 kernels", **regimes.PHOTOS,
        "needs_weights": True}   # the trained kernels: a run's record alone will not do (variants.finished_run)
SEPARATED = 0.01   # a run's towers differ when random splits of its kernels separate as much less often than this


def trained_seeds():
    """The two towers of the photos regime, one per seed, trained or reused by the variants runner."""
    variant = variants.with_spec_defaults(SPEC)["two towers"]
    import replica
    devices = replica.split_cpu(2)
    seeds = 2 if FLAGS.quick else (FLAGS.seeds or SPEC["seeds"])
    models = []
    for seed in range(seeds):
        results = variants.run_variant(variant, seed, devices, FLAGS.quick, FLAGS.epochs or SPEC["epochs"],
                                       FLAGS.train_limit or SPEC["train_limit"], SPEC)
        models.append((f"seed {seed}", variants.trained_model(results, variant, devices)))
    return models


def tower_row(run, model):
    """A run's row: each tower's mean colour specificity, the more colour-specific tower, and the split p-value."""
    from replica.net import kernels
    k0, k1 = kernels.tower_conv1_kernels(model)
    s0, s1 = kernels.colour_specificity(k0), kernels.colour_specificity(k1)
    p = kernels.tower_split_p_value(s0, s1)
    return {"run": run, "tower 0 colour specificity": float(s0.mean()), "tower 1 colour specificity": float(s1.mean()),
            "more colour-specific tower": 0 if s0.mean() > s1.mean() else 1,
            "p (random splits of the kernels)": p, "towers differ": p < SEPARATED}, (k0, k1), (s0, s1)


def record_claim(rows):
    """Fig. 3's verdict in claims.json: the runs that show the towers specialising, of all runs."""
    from experiments import claims, report
    entry = claims.judge_each_run({k: r["towers differ"] for k, r in enumerate(rows)})
    entry.update({
        "order": 10, "claim": "one tower's conv1 kernels colour-agnostic, the other's colour-specific (Fig. 3)",
        "paper": "in every run", "command": report.command_line(), "machine": report.machine(),
        "ours": f"towers differ (p < {SEPARATED} against random splits) in {sum(r['towers differ'] for r in rows)} "
                f"of {len(rows)} runs; specificity " + ", ".join(
                    f"{r['tower 0 colour specificity']:.2f} / {r['tower 1 colour specificity']:.2f}" for r in rows),
        "result_files": ["experiments/results/conv1_kernels.md", "experiments/results/conv1_kernels.json",
                         "experiments/results/conv1_kernels.png"],
        "regime": variants.scale_note(SPEC, len(rows), FLAGS.epochs or SPEC["epochs"], SPEC["train_limit"]),
        "seeds": list(range(len(rows)))})
    claims.record("conv1_kernels", entry)
    claims.write_readme_table()


def main(argv):
    del argv
    if FLAGS.status:   # the photos regime's runs (shared with ten_crop.py)
        return variants.print_status(SPEC)
    if FLAGS.scale == "full":   # the photos regime's runs on ILSVRC-2012, then this script on their folders
        variants.run_full_scale(SPEC)
        folders = ",".join(c[-1].split("=", 1)[1] for c in variants.full_scale_commands(SPEC, FLAGS.imagenet_dir or ""))
        print(f"then: python experiments/conv1_kernels.py --run_dirs={folders}")
        return
    import replica
    from replica.net import kernels
    from replica.training import runs
    from experiments import report
    name = "conv1_kernels"
    geometry = "the paper's 11x11 conv1 kernels at stride 4, trained on tiny-imagenet-10's photos at 227x227"
    if FLAGS.weights:
        from replica.trained import pretrained
        devices = replica.split_cpu(2)
        models = [("bvlc_alexnet", pretrained.build_model(pretrained.read(FLAGS.weights), 2, devices=devices))]
        name = "conv1_kernels_bvlc_alexnet"
        geometry = ("bvlc_alexnet's 11x11 kernels, trained by Caffe on ILSVRC-2012; the runs trained here are in "
                    "conv1_kernels.md")
    elif FLAGS.run_dirs:
        models = [(d, runs.load_trained(d, replica.split_cpu(2))[0]) for d in FLAGS.run_dirs]
        geometry = "the kernels of the run folders named"
    else:
        models = trained_seeds()
    rows, images, titles = [], [], []
    for run, model in models:
        row, tower_kernels, specificity = tower_row(run, model)
        rows.append(row)
        for t, k in enumerate(tower_kernels):
            images.append(kernels.kernel_grid(k))
            titles.append(f"{run}, tower {t} (specificity {specificity[t].mean():.2f})")
    separated = sum(r["towers differ"] for r in rows)
    tower0 = sum(r["more colour-specific tower"] == 0 for r in rows)
    notes = [f"the towers differ (p < {SEPARATED}) in {separated} of {len(rows)} runs; the paper says every run does. "
             f"Tower 0 is the more colour-specific in {tower0} of {len(rows)} runs",
             "specificity: the fraction of a kernel's energy outside its grey (mean-over-RGB) component, averaged "
             "over the tower's 48 kernels; p: the fraction of 10,000 random splits of the 96 kernels into two groups "
             "of 48 whose means differ at least as much as the towers'",
             geometry]
    if not (FLAGS.weights or FLAGS.run_dirs):
        notes.insert(0, variants.scale_note(SPEC, len(rows), FLAGS.epochs or SPEC["epochs"],
                                            FLAGS.train_limit or SPEC["train_limit"]))
    report.write_table(name, "Fig. 3: colour specificity of each tower's conv1 kernels", rows,
                       ["run", "tower 0 colour specificity", "tower 1 colour specificity",
                        "more colour-specific tower", "p (random splits of the kernels)", "towers differ"],
                       notes=notes, out_dir=FLAGS.out_dir)
    report.image_figure(name, images, titles, "conv1 kernels per tower (Fig. 3 replica)",
                        rows=len(models), out_dir=FLAGS.out_dir)
    if variants.runs_the_committed_regime() and not (FLAGS.weights or FLAGS.run_dirs):
        record_claim(rows)


if __name__ == "__main__":
    errors.run_main(main)
