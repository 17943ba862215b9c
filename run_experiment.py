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
DEFINE = {str: flags.DEFINE_string, int: flags.DEFINE_integer, float: flags.DEFINE_float, bool: flags.DEFINE_bool,
          tuple: flags.DEFINE_list}


def define(name, help, enum_values=None):
    """The flag of replica/config.py's setting `name`, of its type and with its default (config is the one place
    of both); `enum_values`: the values a choice takes."""
    setting = config.setting(name)
    if enum_values is None:
        DEFINE[setting.type](name, setting.default, help)
    else:
        flags.DEFINE_enum(name, setting.default, enum_values, help)


# the net (PAPER.md 3) and its devices
define("towers", "2 (the paper's two towers), 1 (the one-GPU baseline), merged (dense single-device net) or grouped "
       "(the towers as grouped convolutions on one device).", choices.TOWERS)
define("gpus", "Device indices, one per tower (default 0,1 for two towers, 0 otherwise). With fewer GPUs than named, "
       "logical devices are carved out of one GPU or the CPU.")
define("gpu_memory_mb", "Memory of each logical device when one GPU is split in two (default: the card's memory less 1 "
       "GB or a tenth, shared evenly; 5120 when it cannot be read).")
define("summary", "Print the per-layer table of the network and exit.")
define("input_size", "227 (default for ImageNet), 224 (+3 zero pixels, PAPER.md 4), or 32 (the small-image geometry, "
       "default for CIFAR-10).")
define("num_classes", "Classes of fc8 (default: the data set's, 1000 for --summary).")
define("lrn", "LRN constants (PAPER.md 3); caffe normalises across both towers' maps, as bvlc_alexnet does.",
       choices.LRN_MODES)
define("pooling", "3/2 or 2/2 max pooling.", choices.POOLING_MODES)
define("activation", "Non-linearity after every layer but fc8.", choices.ACTIVATIONS)
define("dropout", "Dropout rate on fc6 and fc7 outputs (PAPER.md 3).")
define("drop_layer", "Build the net without this middle conv layer (paper 7; experiments/drop_layer.py).",
       ["none", *choices.DROPPABLE_LAYERS])
define("precision", "float32 (the paper; TensorFloat-32 off), tf32, mixed_bfloat16 or mixed_float16 (float16 maps with "
       "dynamic loss scaling): float32 weights, LRN, softmax and loss in every mode (replica/net/precision.py).",
       choices.PRECISIONS)
define("positive_bias", "Initial bias of conv2, conv4, conv5, fc6, fc7: the paper's 1 (default for ImageNet), Caffe's "
       "0.1 (default for CIFAR-10, where bias 1 diverges: README).")

# data (PAPER.md 3)
define("dataset", "cifar10 (canonical python batches) or imagenet_folder (train/<class>/*.JPEG and "
       "val/<class>/*.JPEG).", list(choices.DATASETS))
define("data_dir", "The data folder. cifar10: a cifar-10-batches-py folder; unset uses the shipped 2,000/500-image "
       "slice; 'download' fetches the full set through Keras.")
define("pca_colour", "PCA colour augmentation (paper 4.1).")
define("augment", "Random crops and mirrors for training (off: centre crops).")
define("cache_dir", "Where the mean image and PCA statistics of an image folder are cached (default "
       "~/.cache/alexnet-replica).")
define("cache_decoded", "Keep the decoded 256x256 training images in memory.")
define("validation_images", "CIFAR-10: hold out the last N training images as the validation split the learning-rate "
       "schedule watches, so the test batch is only reported (0: the schedule watches the test batch).")
define("train_limit", "Train on N training images only (0: all): CIFAR-10's first N, N spread evenly over an image "
       "folder's sorted files.")

# the recipe (PAPER.md 3)
define("batch_size", "Images per step.")
define("learning_rate", "Initial learning rate.")
define("momentum", "Momentum.")
define("weight_decay", "Weight decay, coupled through the momentum.")
define("decay_biases", "Apply weight decay to the biases too.")
define("epochs", "Epochs at most (default 90 for ImageNet, 10 for CIFAR-10).")
define("lr_patience", "Epochs without a lower validation error before the learning rate drops.")
define("lr_drops", "How many times the learning rate is divided before the run ends.")
define("lr_drop_factor", "What each drop divides the learning rate by.")
define("lr_drop_epochs", "A fixed schedule instead of the plateau rule: divide the learning rate by --lr_drop_factor "
       "at the end of each of these epochs (e.g. 20,30).")
define("max_steps", "Stop after this many steps in all (0: no limit).")

# the run
define("run_dir", "Run folder: checkpoints, TensorBoard logs, results.json (default runs/<dataset>-towers<towers>).")
define("resume", "Resume when the run folder has a checkpoint (--noresume refuses to touch one).")
define("seed", "Seed of the weights, the data order, the crops and the dropout masks.")
define("deterministic", "Op determinism (TensorFlow's enable_op_determinism): two runs with one seed give the same "
       "losses on the same hardware, drivers and TensorFlow, CPU or GPU; not across GPU models, CUDA/cuDNN versions or "
       "device layouts. On a GPU some ops run slower, and an op with no deterministic kernel raises an error.")
define("checkpoint_every", "Steps between checkpoints (one is also written at each epoch's end).")
define("log_every", "Steps between progress lines and TensorBoard points.")
define("eval_limit", "Evaluate on at most N images (0: all) at each epoch's end, and with --eval_only.")
define("ten_crop", "Also evaluate with the 10 crops at the end.")
define("eval_only", "Evaluate --checkpoint (or --weights) and exit.")
define("checkpoint", "With --eval_only, --classify or --export: a run folder or a checkpoint path.")

# a trained net: ImageNet-trained weights, classification, export (replica.trained.pretrained, replica.trained.serving)
define("weights", "bvlc_alexnet as an ONNX file (the model zoo's bvlcalexnet-*.onnx), for --eval_only (on ILSVRC "
       "classes), --classify or --export, in --towers=2, grouped or merged.")
define("classify", "Image files: print each one's top-5 classes (--weights or --checkpoint), the centre crop, or the "
       "10 crops with --ten_crop.")
define("export", "Write the net of --weights or --checkpoint to this folder as a SavedModel whose signature takes "
       "uint8 images of any size and returns class probabilities.")

# several machines (tf.distribute, TF_CONFIG)
define("workers", "Data-parallel workers; above 1 the cluster is read from TF_CONFIG (or from --worker_hosts and "
       "--task_index). Each worker runs the towers on its own --gpus.")
define("worker_hosts", "host:port of every worker, comma-separated (writes TF_CONFIG).")
define("task_index", "This worker's index in --worker_hosts (0 is the chief).")
define("peer_timeout", "Seconds a worker waits for its peers (start-up and each all-reduce).")


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; flags take the form --name=value")
    run = config.from_values({name: FLAGS[name].value for name in config.field_names()})
    config.check(run)   # a flag that cannot work is refused before TensorFlow loads
    from replica import experiment
    return experiment.main(run)


if __name__ == "__main__":
    run_main(main)
