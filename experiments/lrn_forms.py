"""How far the paper's LRN (each tower its own maps, k 2) and Caffe's (across both towers' maps, k 1, alpha / 5)
change a trained net's predictions: the two forms of the towers that bvlc_alexnet's import relies on.

  python experiments/lrn_forms.py --checkpoint=RUN_DIR     (a two-tower run trained with the paper's LRN)
  python experiments/lrn_forms.py --quick                  (a few steps on the shipped slice: the script runs)

The weights of a trained run are evaluated twice on its evaluation split, once as trained (lrn="paper") and once
with Caffe's LRN swapped in (lrn="caffe"), and the table gives both errors, the fraction of images whose top-1
class is the same, and the mean absolute difference of the class probabilities. Random weights cannot answer
this (their maps are not those the LRN was trained on); a net trained at 227 on real photos (tiny-imagenet-10,
`python run_experiment.py --dataset=imagenet_folder --data_dir=../shared/data/tiny-imagenet-10`) is the case
bvlc_alexnet's import is about.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402
from replica import errors  # noqa: E402

from experiments import report  # noqa: E402  (defines --out_dir)

flags.DEFINE_string("checkpoint", None, "A two-tower run trained with the paper's LRN (run folder or checkpoint).")
flags.DEFINE_bool("quick", False, "Train 3 steps of 16 images on the shipped CIFAR-10 slice and compare: checks the "
                  "script.")
FLAGS = flags.FLAGS


def predictions(model, data):
    import numpy as np
    from replica.training import evaluate
    predict = evaluate.make_predict(model)
    probs, labels = [], []
    for images, y in data.eval_batches(128):
        probs.append(predict(images).numpy())
        labels.append(y.numpy())
    return np.concatenate(probs), np.concatenate(labels)


def quick_run():
    """A two-tower run of 3 steps of 16 images on the shipped slice, in a scratch folder."""
    import subprocess
    import sys
    run_dir = report.scratch_dir("lrn-forms-")
    subprocess.run([sys.executable, "run_experiment.py", f"--run_dir={run_dir}", "--max_steps=3", "--batch_size=16",
                    "--noten_crop", "--eval_limit=64"], check=True, capture_output=True)
    return run_dir


def main(argv):
    del argv
    import numpy as np
    import replica
    from replica.inputs import input_pipeline
    from replica.training import runs
    checkpoint = quick_run() if FLAGS.quick else FLAGS.checkpoint
    if not checkpoint:
        raise errors.UserError("--checkpoint=RUN_DIR (a two-tower run) or --quick")
    devices = replica.split_cpu(2)
    paper_form, saved = runs.load_trained(checkpoint, devices)
    if str(saved["towers"]) != "2" or saved["lrn"] != "paper":
        raise errors.UserError(f"{checkpoint} holds --towers={saved['towers']} --lrn={saved['lrn']}; the "
                               "comparison is of a two-tower net trained with the paper's LRN")
    caffe_form = runs.build_from_config({**saved, "lrn": "caffe"}, devices)
    replica.copy_weights(paper_form, caffe_form)
    data = input_pipeline.load_data(saved["dataset"], saved["data_dir"], input_size=saved["input_size"],
                                    train_limit=saved.get("train_limit") or None,
                                    validation_images=saved.get("validation_images", 0))
    (p_paper, labels), (p_caffe, _) = predictions(paper_form, data), predictions(caffe_form, data)
    rows = [{"LRN": name, "top-1 error": float((p.argmax(1) != labels).mean())}
            for name, p in (("paper (per tower, k 2, alpha 1e-4), as trained", p_paper),
                            ("Caffe (across the towers, k 1, alpha 2e-5), swapped in", p_caffe))]
    same = float((p_paper.argmax(1) == p_caffe.argmax(1)).mean())
    notes = [f"{checkpoint}: {saved['dataset']} at {saved['input_size']}x{saved['input_size']}, {len(labels)} "
             f"evaluation images", f"same top-1 class for {same:.1%} of the images; mean |difference| of the class "
             f"probabilities {np.abs(p_paper - p_caffe).mean():.4f}"]
    if FLAGS.quick:
        notes.insert(0, "--quick: a net trained for 3 steps; the numbers only show that the script runs")
    report.write_table("lrn_forms", "The paper's LRN against Caffe's on one trained two-tower net", rows,
                       ["LRN", "top-1 error"], notes=notes, out_dir=FLAGS.out_dir)


if __name__ == "__main__":
    errors.run_main(main)
