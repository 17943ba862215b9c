"""Experiment 11 (Fig. 4, paper 6.1): the training images nearest to a test image by Euclidean distance of the
last 4096-d hidden layer (fc7 of both towers), and how often they share the test image's class.

The paper shows the neighbours by eye ("semantically similar") and remarks that they are not close in pixels. The
claim is judged as that contrast: of each test image's 5 nearest training images, the fraction of its class by fc7
distance against by raw-pixel distance, over the same queries.

In the architecture regime (experiments/regimes.py): the two-tower baseline's three trained runs (10,000 CIFAR-10
training images, 30 epochs), shared with towers_comparison.py, lrn.py and pooling.py and reused from `--runs_dir`
(trained first, ~15 min a seed in mixed bfloat16, when they are not there). Each run's 10,000 training images are
searched for the first 500 test images. Arithmetic: fc7 features cost one forward pass, 0.49 GFLOP per 32x32
image: 10,500 images = 5.2 TFLOP, under a minute a seed at ~100 GFLOP/s; the raw-pixel distances 500 x 10,000 x
3,072 multiply-adds, seconds.

  python experiments/retrieval.py                                         (the regime: 3 seeds, ~3 min if trained)
  python experiments/retrieval.py --checkpoint=runs/cifar10-full-towers2  (one run of run_experiment.py; ~2 min)
  python experiments/retrieval.py --quick                                 (shipped slice, a few steps)
"""
import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402
from replica import errors  # noqa: E402

from experiments import regimes, report, variants  # noqa: E402  (report defines --out_dir)

flags.DEFINE_string("checkpoint", None, "One trained run folder (run_experiment.py) instead of the regime's runs.")
flags.DEFINE_integer("train_images", 10000, "Training images searched.", lower_bound=1)
flags.DEFINE_integer("queries", 500, "Test images whose neighbours are scored.", lower_bound=1)
flags.DEFINE_integer("shown", 6, "Test images shown in the figure.", lower_bound=1)
flags.DEFINE_integer("neighbours", 5, "Neighbours per test image.", lower_bound=1)
FLAGS = flags.FLAGS

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TOWERS = "two towers"


def features_of(model, data, split, count, batch=250):
    """(fc7 features, labels, stored images) of the first `count` images of a split."""
    import numpy as np
    from replica.training import evaluate
    images, labels = data.splits[split]
    count = min(count, len(labels))
    feats = [evaluate.features(model, data._prepare_batch(images[i:i + batch])) for i in range(0, count, batch)]
    return np.concatenate(feats), labels[:count], images[:count]


def nearest(queries, searched, k):
    """The indices of each query's k nearest searched rows by Euclidean distance."""
    import numpy as np
    from replica.training import evaluate
    return np.argsort(evaluate.squared_distances(queries, searched), axis=1)[:, :k]


def retrieve(model, data, train_count, queries):
    """Each query's nearest training images by fc7 and by raw-pixel distance, and the fraction of them (and of the
    training images, chance) that share the query's class."""
    import numpy as np
    train_f, train_y, train_x = features_of(model, data, "train", train_count)
    test_f, test_y, test_x = features_of(model, data, "eval", queries)
    by_fc7 = nearest(test_f, train_f, FLAGS.neighbours)
    by_pixels = nearest(test_x.astype(np.float32), train_x.astype(np.float32), FLAGS.neighbours)
    return {"fc7": float((train_y[by_fc7] == test_y[:, None]).mean()),
            "pixels": float((train_y[by_pixels] == test_y[:, None]).mean()),
            "chance": float(np.mean([(train_y == y).mean() for y in test_y])),
            "nearest": by_fc7, "train": (train_x, train_y), "test": (test_x, test_y)}


@functools.lru_cache(maxsize=None)
def _regime_retrieval(run_dir):
    import replica
    from replica.inputs import input_pipeline
    variant = variants.with_spec_defaults(SPEC)[TOWERS]
    model = variants.trained_model({"run_dir": run_dir}, variant, replica.split_cpu(2))
    settings = variants.data_settings(variant, SPEC, FLAGS.quick, FLAGS.train_limit or SPEC["train_limit"])
    data = input_pipeline.load_data(**{**settings, "eval_limit": 100 if FLAGS.quick else FLAGS.queries})
    return retrieve(model, data, FLAGS.train_images, FLAGS.queries)


def retrieval_of(results):
    """`retrieve` on a regime run (run_variant's results), computed once per run."""
    return _regime_retrieval(results["run_dir"])


def figure(found, source, out_dir):
    """The first `--shown` test images and their nearest training images by fc7 distance (Fig. 4's layout)."""
    test_x, test_y = found["test"]
    train_x, train_y = found["train"]
    images, titles = [], []
    shown = min(FLAGS.shown, len(test_y))
    for q in range(shown):
        images.append(test_x[q] / 255.0)
        titles.append(f"test: {CIFAR10_CLASSES[test_y[q]]}")
        for n in found["nearest"][q]:
            images.append(train_x[n] / 255.0)
            titles.append(CIFAR10_CLASSES[train_y[n]])
    report.image_figure("retrieval", images, titles, "Fig. 4 replica: a test image (left) and its nearest "
                        f"training images by fc7 distance ({source})", rows=shown, out_dir=out_dir)


def seed_0_figure(runs_of, out_dir):
    found = retrieval_of(runs_of[TOWERS][0])
    figure(found, "seed 0", out_dir)
    return [f"the {FLAGS.neighbours} nearest of {len(found['test'][1]):,} test images among each run's "
            f"{len(found['train'][1]):,} training images; retrieval.png: seed 0's neighbours"]


SPEC = {
    "name": "retrieval", "title": "Fig. 4: the training images nearest by fc7 distance, two towers on CIFAR-10",
    **regimes.ARCHITECTURE, "curves": False,   # retrieval.png is the neighbours' figure
    "needs_weights": True,   # fc7 of the trained nets: a run's record alone will not do (variants.finished_run)
    "variants": {TOWERS: {}},
    "metrics": {"test top-1 error": lambda r: r["final"]["centre_top1_error"],
                "fc7 neighbours of the query's class": lambda r: retrieval_of(r)["fc7"],
                "raw-pixel neighbours of the query's class": lambda r: retrieval_of(r)["pixels"],
                "chance": lambda r: retrieval_of(r)["chance"]},
    "paper": {TOWERS: "semantically similar neighbours, not close in pixels (Fig. 4, by eye)"},
    "analysis": seed_0_figure,
    "claim": {"order": 11, "text": "neighbours by fc7 distance share the query's class (paper 6.1, Fig. 4)",
              "paper": "semantically similar (by eye)", "baseline": TOWERS, "variant": TOWERS,
              "baseline_label": "raw-pixel distance", "variant_label": "fc7 distance",
              "baseline_metric": lambda r: retrieval_of(r)["pixels"],
              "variant_metric": lambda r: retrieval_of(r)["fc7"], "expected_sign": +1,
              "more_files": ["experiments/results/retrieval.png"]},
}


def one_run(checkpoint):
    """--checkpoint: the neighbours of one trained run of run_experiment.py, its table and figure."""
    import replica
    from replica.inputs import input_pipeline
    from replica.training import runs
    model, config = runs.load_trained(checkpoint, replica.split_cpu(2))
    data = input_pipeline.load_data(config["dataset"], config["data_dir"], eval_limit=FLAGS.queries,
                                    train_limit=config.get("train_limit") or None,
                                    validation_images=config.get("validation_images", 0))
    found = retrieve(model, data, FLAGS.train_images, FLAGS.queries)
    rows = [{"measure": f"neighbours sharing the query's class (of {FLAGS.neighbours})", "fc7 (ours)": found["fc7"],
             "raw pixels": found["pixels"], "chance": found["chance"],
             "paper": "semantically similar (Fig. 4, by eye)"}]
    report.write_table("retrieval", "Fig. 4: nearest training images by fc7 (4096-d) distance", rows,
                       ["measure", "fc7 (ours)", "raw pixels", "chance", "paper"],
                       notes=[f"model: {checkpoint}; {len(found['train'][1])} training images searched, "
                              f"{len(found['test'][1])} test queries",
                              "the paper shows the neighbours by eye; we also count how many share the query's label"],
                       out_dir=FLAGS.out_dir)
    figure(found, checkpoint, FLAGS.out_dir)


def main(argv):
    del argv
    if FLAGS.checkpoint:
        return one_run(FLAGS.checkpoint)
    if FLAGS.scale == "full":
        return variants.run_full_scale(SPEC)
    if FLAGS.status:
        return variants.print_status(SPEC)
    variants.run_spec(SPEC)
    return 0


if __name__ == "__main__":
    errors.run_main(main)
