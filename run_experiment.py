"""Train, evaluate or describe the paper's networks.

  python run_experiment.py --towers=2 --gpus=0,1 --summary     # the per-layer table
  python run_experiment.py                                     # train the two towers on the shipped CIFAR-10 slice
  python run_experiment.py --towers=merged --dataset=cifar10 --data_dir=../shared/data/cifar-10-batches-py
  python run_experiment.py --eval_only --checkpoint=runs/default

Every flag defaults to the paper's constant (replica/paper.py cites PAPER.md for each).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from replica import choices, config  # noqa: E402
from replica.errors import UserError, run_main  # noqa: E402

FLAGS = flags.FLAGS
DEFAULT = {name: config.default_of(name) for name in config.field_names()}   # one place: replica/config.py
flags.DEFINE_enum("towers", DEFAULT["towers"], choices.TOWERS, "2 (the paper's two towers), 1 (the one-GPU baseline), merged (dense "
                  "single-device net) or grouped (the towers as grouped convolutions on one device).")
flags.DEFINE_string("gpus", DEFAULT["gpus"], "Device indices, one per tower (default 0,1 for two towers, 0 otherwise). "
                    "With fewer GPUs than named, logical devices are carved out of one GPU or the CPU.")
flags.DEFINE_integer("gpu_memory_mb", DEFAULT["gpu_memory_mb"], "Memory of each logical device when one GPU is split in two (default: "
                     "the card's memory less 1 GB or a tenth, shared evenly; 5120 when it cannot be read).")
flags.DEFINE_bool("summary", DEFAULT["summary"], "Print the per-layer table of the network and exit.")
flags.DEFINE_integer("input_size", DEFAULT["input_size"], "227 (default for ImageNet), 224 (+3 zero pixels, PAPER.md 4), or 32 "
                     "(the small-image geometry, default for CIFAR-10).")
flags.DEFINE_integer("num_classes", DEFAULT["num_classes"], "Classes of fc8 (default: the data set's, 1000 for --summary).")
flags.DEFINE_enum("lrn", DEFAULT["lrn"], choices.LRN_MODES, "LRN constants (PAPER.md 3); caffe "
                  "normalises across both towers' maps, as bvlc_alexnet does.")
flags.DEFINE_enum("pooling", DEFAULT["pooling"], choices.POOLING_MODES, "3/2 or 2/2 max pooling.")
flags.DEFINE_enum("activation", DEFAULT["activation"], choices.ACTIVATIONS, "Non-linearity after every layer but fc8.")
flags.DEFINE_float("dropout", DEFAULT["dropout"], "Dropout rate on fc6 and fc7 outputs (PAPER.md 3).")
flags.DEFINE_enum("drop_layer", DEFAULT["drop_layer"], ["none", *choices.DROPPABLE_LAYERS], "Build the net without this middle conv layer "
                  "(paper 7; experiments/drop_layer.py).")
flags.DEFINE_enum("precision", DEFAULT["precision"], choices.PRECISIONS,
                  "float32 (the paper; TensorFloat-32 off), tf32, mixed_bfloat16 or mixed_float16 (float16 maps with "
                  "dynamic loss scaling): float32 weights, LRN, softmax and loss in every mode (replica/net/precision.py).")
flags.DEFINE_float("positive_bias", DEFAULT["positive_bias"], "Initial bias of conv2, conv4, conv5, fc6, fc7: the paper's 1 (default "
                   "for ImageNet), Caffe's 0.1 (default for CIFAR-10, where bias 1 diverges: README).")

# data (PAPER.md 3)
flags.DEFINE_enum("dataset", DEFAULT["dataset"], list(choices.DATASETS), "cifar10 (canonical python batches) or "
                  "imagenet_folder (train/<class>/*.JPEG and val/<class>/*.JPEG).")
flags.DEFINE_string("data_dir", DEFAULT["data_dir"], "The data folder. cifar10: a cifar-10-batches-py folder; unset uses the "
                    "shipped 2,000/500-image slice; 'download' fetches the full set through Keras.")
flags.DEFINE_bool("pca_colour", DEFAULT["pca_colour"], "PCA colour augmentation (paper 4.1).")
flags.DEFINE_bool("augment", DEFAULT["augment"], "Random crops and mirrors for training (off: centre crops).")
flags.DEFINE_string("cache_dir", DEFAULT["cache_dir"], "Where the mean image and PCA statistics of an image folder are cached "
                    "(default ~/.cache/alexnet-replica).")
flags.DEFINE_bool("cache_decoded", DEFAULT["cache_decoded"], "Keep the decoded 256x256 training images in memory.")
flags.DEFINE_integer("validation_images", DEFAULT["validation_images"], "CIFAR-10: hold out the last N training images as the validation split "
                     "the learning-rate schedule watches, so the test batch is only reported (0: the schedule "
                     "watches the test batch, as before).")
flags.DEFINE_integer("train_limit", DEFAULT["train_limit"], "Train on N training images only (0: all): CIFAR-10's first N, N spread "
                     "evenly over an image folder's sorted files.")

# the recipe (PAPER.md 3)
flags.DEFINE_integer("batch_size", DEFAULT["batch_size"], "Images per step.")
flags.DEFINE_float("learning_rate", DEFAULT["learning_rate"], "Initial learning rate.")
flags.DEFINE_float("momentum", DEFAULT["momentum"], "Momentum.")
flags.DEFINE_float("weight_decay", DEFAULT["weight_decay"], "Weight decay, coupled through the momentum.")
flags.DEFINE_bool("decay_biases", DEFAULT["decay_biases"], "Apply weight decay to the biases too.")
flags.DEFINE_integer("epochs", DEFAULT["epochs"], "Epochs at most (default 90 for ImageNet, 10 for CIFAR-10).")
flags.DEFINE_integer("lr_patience", DEFAULT["lr_patience"], "Epochs without a lower validation error before the "
                     "learning rate drops.")
flags.DEFINE_integer("lr_drops", DEFAULT["lr_drops"], "How many times the learning rate is divided before the run ends.")
flags.DEFINE_float("lr_drop_factor", DEFAULT["lr_drop_factor"], "What each drop divides the learning rate by.")
flags.DEFINE_list("lr_drop_epochs", DEFAULT["lr_drop_epochs"], "A fixed schedule instead of the plateau rule: divide the learning rate by "
                  "--lr_drop_factor at the end of each of these epochs (e.g. 20,30).")
flags.DEFINE_integer("max_steps", DEFAULT["max_steps"], "Stop after this many steps in all (0: no limit).")

# the run
flags.DEFINE_string("run_dir", DEFAULT["run_dir"], "Run folder: checkpoints, TensorBoard logs, results.json "
                    "(default runs/<dataset>-towers<towers>).")
flags.DEFINE_bool("resume", DEFAULT["resume"], "Resume when the run folder has a checkpoint (--noresume refuses to touch one).")
flags.DEFINE_integer("seed", DEFAULT["seed"], "Seed of the weights, the data order, the crops and the dropout masks.")
flags.DEFINE_bool("deterministic", DEFAULT["deterministic"], "Op determinism (TensorFlow's enable_op_determinism): two runs with one "
                  "seed give the same losses on the same hardware, drivers and TensorFlow, CPU or GPU; not across GPU "
                  "models, CUDA/cuDNN versions or device layouts. On a GPU some ops run slower, and an op with no "
                  "deterministic kernel raises an error.")
flags.DEFINE_integer("checkpoint_every", DEFAULT["checkpoint_every"], "Steps between checkpoints (one is also written at "
                     "each epoch's end).")
flags.DEFINE_integer("log_every", DEFAULT["log_every"], "Steps between progress lines and TensorBoard points.")
flags.DEFINE_integer("eval_limit", DEFAULT["eval_limit"], "Evaluate on at most N images (0: all) at each epoch's end, and with --eval_only.")
flags.DEFINE_bool("ten_crop", DEFAULT["ten_crop"], "Also evaluate with the 10 crops at the end.")
flags.DEFINE_bool("eval_only", DEFAULT["eval_only"], "Evaluate --checkpoint (or --weights) and exit.")
flags.DEFINE_string("checkpoint", DEFAULT["checkpoint"], "With --eval_only, --classify or --export: a run folder or a checkpoint path.")

# a trained net: ImageNet-trained weights, classification, export (replica.trained.pretrained, replica.trained.serving)
flags.DEFINE_string("weights", DEFAULT["weights"], "bvlc_alexnet as an ONNX file (the model zoo's bvlcalexnet-*.onnx), for "
                    "--eval_only (on ILSVRC classes), --classify or --export, in --towers=2, grouped or merged.")
flags.DEFINE_list("classify", DEFAULT["classify"], "Image files: print each one's top-5 classes (--weights or --checkpoint), the "
                  "centre crop, or the 10 crops with --ten_crop.")
flags.DEFINE_string("export", DEFAULT["export"], "Write the net of --weights or --checkpoint to this folder as a SavedModel whose "
                    "signature takes uint8 images of any size and returns class probabilities.")

# several machines (tf.distribute, TF_CONFIG)
flags.DEFINE_integer("workers", DEFAULT["workers"], "Data-parallel workers; above 1 the cluster is read from TF_CONFIG (or from "
                     "--worker_hosts and --task_index). Each worker runs the towers on its own --gpus.")
flags.DEFINE_string("worker_hosts", DEFAULT["worker_hosts"], "host:port of every worker, comma-separated (writes TF_CONFIG).")
flags.DEFINE_integer("task_index", DEFAULT["task_index"], "This worker's index in --worker_hosts (0 is the chief).")
flags.DEFINE_integer("peer_timeout", DEFAULT["peer_timeout"], "Seconds a worker waits for its peers (start-up and each all-reduce).")


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; flags take the form --name=value")
    run = config.from_values({name: FLAGS[name].value for name in DEFAULT})
    config.check(run)   # a flag that cannot work is refused before TensorFlow loads
    from replica import experiment
    return experiment.main(run)


if __name__ == "__main__":
    run_main(main)
