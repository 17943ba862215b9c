"""How fast the training input pipeline runs alone, per core: the raw image folder against the prepared shards.

  python experiments/input_speed.py [--data_dir=FOLDER] [--prepared_dir=SHARDS] [--quick]

Each figure is one training epoch's stream as the trainer reads it (replica.inputs.photos: decode, for the raw
folder the resize to 256 and centre crop, then the draws of the random 227 window, its mirror and the PCA colour
shift; cutting the window, mirroring it and the float pass, minus the mean window plus the shift, are the training
step's first pass, on the device, timed on its own), drained without a network, on tf.data's thread pool limited
to 1, 2, ... cores (`private_threadpool_size`). The source defaults to tiny-imagenet-10 (64x64 photos: their
decoding flatters the raw path, as real ILSVRC photos average about 400x350), prepared into a scratch folder by
replica.inputs.prepare unless --prepared_dir names one.
Written to experiments/results/input_speed.{md,json}: images/s and images/s per core beside the core count, and
the host cores that feed a given GPU rate (tf_cnn_benchmarks measured 2,987 images/s for AlexNet on one P100;
current GPUs train it at 10,000 and more).
"""
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402
from replica import errors, paper  # noqa: E402

from experiments import report  # noqa: E402  (defines --out_dir)

flags.DEFINE_string("data_dir", "../shared/data/tiny-imagenet-10", "A raw image folder (train/ and val/).")
flags.DEFINE_string("prepared_dir", None, "Its prepared shards (default: prepared now into a scratch folder).")
flags.DEFINE_string("photos_dir", "../shared/data/imagenet-sample-10-fullsize", "Full-size photos in class folders "
                    "(one folder level), timed as a raw folder of them repeated (skipped when missing).")
flags.DEFINE_integer("images", 4000, "Images per timed pass (the epoch repeated as needed).", lower_bound=1)
flags.DEFINE_bool("quick", False, "A few hundred images on 1 core: checks the script end to end.")
FLAGS = flags.FLAGS
GPU_RATES = {"one P100 (tf_cnn_benchmarks, AlexNet)": 2987, "a current GPU": 10000}


def images_per_second(data, cores, images, batch_size=paper.BATCH_SIZE):
    """Drain `images` training images from `data` on `cores` threads; images/s of the timed part."""
    import tensorflow as tf
    options = tf.data.Options()
    options.threading.private_threadpool_size = cores
    options.threading.max_intra_op_parallelism = 1
    epochs = -(-images // (data.steps_per_epoch(batch_size) * batch_size)) + 1

    def stream():
        for epoch in range(epochs):
            yield from data.train_batches(batch_size, seed=0, epoch=epoch).with_options(options)
    batches = stream()
    next(batches)   # the first batch: threads, caches, the shuffle buffer
    count, start = 0, time.perf_counter()
    for _, labels in batches:
        count += int(labels.shape[0])
        if count >= images:
            break
    return count / (time.perf_counter() - start)


def stage_rates(data, images=2560):
    """On one core, images/s of the prepared shards' training stream cut after each of its stages: reading and
    parsing, decoding, and all the host does (drawing the window, the mirror and the colour shift); beside it,
    the same stream finishing each image on the host (the window, its mirror, in float minus the mean window plus
    the shift), the work the training step does instead on the device."""
    import numpy as np
    import tensorflow as tf
    from replica.inputs import records, transforms
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    stream = tf.data.Dataset.zip((data.train_order(0, 0).repeat().take(images), tf.data.Dataset.from_tensor_slices(
        transforms.example_seeds(0, 0, np.arange(images)))))
    mean_image = tf.constant(data.stats.mean_image)

    def host_finished(drawn):
        """One image finished on the host: the window, its mirror and the float pass `network_input` makes on the
        device."""
        size, top, left = data.crop_size, drawn["top"], drawn["left"]
        window = tf.cast(drawn["pixels"][top:top + size, left:left + size], tf.float32) - \
            mean_image[top:top + size, left:left + size]
        return tf.cond(drawn["mirrored"], lambda: tf.reverse(window, [1]), lambda: window) + drawn["colour"]
    stages = {
        "read and parse": lambda e, s: e[1],
        "+ decode": lambda e, s: records.decode_jpeg_at_256(e[0]),
        "+ the random draws (all the host does)": lambda e, s: data._train_transform(
            records.decode_jpeg_at_256(e[0]), s),
        "+ finished in float on the host instead": lambda e, s: host_finished(data._train_transform(
            records.decode_jpeg_at_256(e[0]), s))}
    rates = {}
    for name, stage in stages.items():
        ds = stream.map(stage, num_parallel_calls=tf.data.AUTOTUNE).batch(128).prefetch(2).with_options(options)
        batches = iter(ds)
        next(batches)   # the first batch: threads and the shuffle buffer, outside the timing
        count, start = 0, time.perf_counter()
        for batch in batches:
            count += int(tf.nest.flatten(batch)[0].shape[0])
        rates[name] = count / (time.perf_counter() - start)
    return rates


def finishing_rate(data, batch_size=paper.BATCH_SIZE, calls=10):
    """Images/s of `network_input` (the step's first pass: the uint8 photos' windows, mirrored, to float, minus
    the mean windows, plus the colour shifts) on batches of `batch_size`, on this machine's CPU as a device."""
    import tensorflow as tf
    batch, _ = next(iter(data.train_batches(batch_size, seed=0, epoch=0)))
    finish = tf.function(data.network_input)
    finish(batch)
    start = time.perf_counter()
    for _ in range(calls):
        finish(batch).numpy()
    return calls * batch_size / (time.perf_counter() - start)


def decode_rates(photos_dir, calls=300):
    """Images/s of one decode op at a time (each runs on one thread): a 256x256 JPEG decoded whole and a 227
    window cut from it, against only the window decoded (tf.image.decode_and_crop_jpeg); and the fraction of the
    window's values the two give differently."""
    import numpy as np
    import tensorflow as tf
    photo = sorted(pathlib.Path(photos_dir).glob("*/*"))[0]
    image = tf.image.resize(tf.io.decode_jpeg(tf.io.read_file(str(photo)), channels=3), [256, 256])
    encoded = tf.io.encode_jpeg(tf.cast(tf.round(image), tf.uint8), quality=90)
    forms = {"decode whole, then crop": tf.function(lambda: tf.io.decode_jpeg(encoded, channels=3)[13:240, 17:244]),
             "decode_and_crop_jpeg": tf.function(lambda: tf.image.decode_and_crop_jpeg(encoded, [13, 17, 227, 227],
                                                                                       channels=3))}
    rates = {name: [] for name in forms}
    for _ in range(3):   # alternating rounds: the machine's drift falls on both alike
        for name, form in forms.items():
            form()
            start = time.perf_counter()
            for _ in range(calls):
                form()
            rates[name].append(calls / (time.perf_counter() - start))
    differ = float(np.mean(forms["decode whole, then crop"]().numpy() != forms["decode_and_crop_jpeg"]().numpy()))
    return {name: max(r) for name, r in rates.items()}, differ


ILSVRC_2012_IMAGES = 1_281_167 + 50_000   # training and validation images


def prepared_kilobytes(prepared_dir, images):
    """KB per image of a folder of prepared shards (the shards only, not the statistics and the manifest)."""
    import re
    shards = [f for f in pathlib.Path(prepared_dir).iterdir() if re.search(r"-\d{5}-of-\d{5}$", f.name)]
    return sum(f.stat().st_size for f in shards) / images / 1024


def photo_kilobytes(photos_dir):
    """KB per image of full-size photos prepared as replica.inputs.prepare does (256x256, JPEG quality 90)."""
    import tensorflow as tf
    from replica.inputs import photos, prepare, transforms
    sizes = [len(tf.io.encode_jpeg(transforms.resize_and_centre_crop(photos.read_image(str(f)), 256),
                                   quality=prepare.QUALITY).numpy())
             for f in sorted(pathlib.Path(photos_dir).glob("*/*"))]
    return sum(sizes) / len(sizes) / 1024


def prepare_rate(tree):
    """(images/s, the prepared folder) of replica.inputs.prepare on every core over an image folder (decode,
    resize to 256, centre crop, re-encode, statistics, the check of every shard)."""
    from replica.inputs import prepare
    images = sum(1 for _ in tree.rglob("*.*"))
    out = report.scratch_dir("prepared-photos-")
    start = time.perf_counter()
    prepare.prepare(str(tree), out)
    return images / (time.perf_counter() - start), out


def repeated_photo_folder(photos_dir, copies):
    """A train/ and val/ tree of `copies` links to each photo of photos_dir/<class>/ in train/ and one in val/:
    full-size photos through the raw folder's pipeline and through preparation. An epoch as long as a timed pass,
    so that the per-epoch start of the stream does not count as if ILSVRC-2012's epochs were that short."""
    tree = pathlib.Path(report.scratch_dir("photos-"))
    for photo in sorted(pathlib.Path(photos_dir).glob("*/*")):
        for split in ("train", "val"):
            folder = tree / split / photo.parent.name
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(copies if split == "train" else 1):
                (folder / f"{k}_{photo.name}").symlink_to(photo.resolve())
    return tree


def main(argv):
    del argv
    if FLAGS.prepared_dir and not os.path.isdir(FLAGS.prepared_dir):
        raise errors.UserError(f"--prepared_dir={FLAGS.prepared_dir} is not a folder: prepare one with python -m "
                               "replica.inputs.prepare, or leave the flag out to prepare --data_dir into a scratch "
                               "folder")
    from replica.inputs import input_pipeline, prepare
    data_dir = str(report.quick_image_folder(FLAGS.data_dir)) if FLAGS.quick else FLAGS.data_dir
    prepared = FLAGS.prepared_dir
    if not prepared:
        prepared = report.scratch_dir("prepared-")
        prepare.prepare(data_dir, prepared)
    sources = {"raw folder": input_pipeline.load_data("imagenet_folder", data_dir, pca_colour_augment=True,
                                                      cache_dir=report.scratch_dir("cache-")),
               "prepared shards": input_pipeline.load_data("imagenet_folder", prepared, pca_colour_augment=True)}
    images = 300 if FLAGS.quick else FLAGS.images
    if os.path.isdir(FLAGS.photos_dir):
        photos = sorted(pathlib.Path(FLAGS.photos_dir).glob("*/*"))
        copies = -(-(images + 256) // len(photos))   # one epoch covers a timed pass
        tree = repeated_photo_folder(FLAGS.photos_dir, copies)
        sources[f"raw full-size photos ({FLAGS.photos_dir}, repeated)"] = input_pipeline.load_data(
            "imagenet_folder", str(tree), pca_colour_augment=True, cache_dir=report.scratch_dir("cache-"))
        prepare_speed, prepared_photos = prepare_rate(tree)
        sources["prepared shards of the full-size photos"] = input_pipeline.load_data(
            "imagenet_folder", prepared_photos, pca_colour_augment=True)
    all_cores = os.cpu_count()
    core_counts = [1] if FLAGS.quick else sorted({1, 2, all_cores})
    rows = []
    for name, data in sources.items():
        for cores in core_counts:
            rate = images_per_second(data, cores, images, batch_size=8 if FLAGS.quick else 128)
            rows.append({"source": name, "cores": cores, "images/s": rate, "images_per_second_per_core": rate / cores,
                         **{f"cores for {gpu}": rate_gpu / (rate / cores) for gpu, rate_gpu in GPU_RATES.items()}})
            print(rows[-1], flush=True)
    notes = [f"source: {FLAGS.data_dir} ({sources['raw folder'].train_size():,} training images, 64x64 photos: their "
             f"decoding flatters the raw path) and its prepared shards; crops, mirrors, mean subtraction and PCA "
             f"colour noise on, the host's share of them (decoding, drawing the window, the mirror and the colour "
             f"shift: replica.inputs.photos.Photos) timed here and the device's float pass in the "
             f"training step timed below; {images:,} images per figure",
             f"full-size photos: {FLAGS.photos_dir}, photos of 256 pixels on their shorter side (real ILSVRC-2012 "
             "photos average about 400x350, so a raw folder of them is slower still), each repeated to fill an epoch, "
             "and their prepared shards (JPEGs of real photos, which decode slower than tiny-imagenet-10's smooth "
             "ones, as ILSVRC-2012's shards would)",
             "target for the prepared shards: 1,500 images/s per core (the figure per core at 1 core is the one "
             "that scales with the host's cores)"]
    stages = stage_rates(sources["prepared shards"], 512 if FLAGS.quick else 2560)
    notes.append("the prepared shards' stream on one core, cut after each stage (images/s): " + ", ".join(
        f"{name} {rate:,.0f}" for name, rate in stages.items()))
    print(notes[-1], flush=True)
    notes.append(f"the training step's first pass on the device, finishing the uint8 photos (network_input), on "
                 f"this CPU: {finishing_rate(sources['prepared shards'], 8 if FLAGS.quick else 128):,.0f} images/s")
    print(notes[-1], flush=True)
    if os.path.isdir(FLAGS.photos_dir):
        rates, differ = decode_rates(FLAGS.photos_dir, 30 if FLAGS.quick else 300)
        notes.append("decoding alone, one op at a time, a 256x256 JPEG of quality 90: " + ", ".join(
            f"{name} {rate:,.0f} images/s" for name, rate in rates.items()) + f"; the two differ in {differ:.2%} of "
            "the window's values (chroma upsampling at its edges)")
        print(notes[-1], flush=True)
        notes.append(f"python -m replica.inputs.prepare on the full-size photos, {all_cores} cores: "
                     f"{prepare_speed:,.0f} images/s; ILSVRC-2012's {ILSVRC_2012_IMAGES:,} images (larger photos: a "
                     f"lower bound) in about {ILSVRC_2012_IMAGES / prepare_speed / 3600:.1f} h here")
        print(notes[-1], flush=True)
        per_photo = photo_kilobytes(FLAGS.photos_dir)
        raw = sources["raw folder"]
        per_tiny = prepared_kilobytes(prepared, raw.train_size() + raw.eval_size())
        prepared_gb = ILSVRC_2012_IMAGES * per_photo * 1024 / 1e9
        notes.append(f"prepared size: {per_tiny:.1f} KB an image for tiny-imagenet-10's (smooth, scaled-up) photos, "
                     f"{per_photo:.1f} KB for the full-size photos at 256x256 and JPEG quality {prepare.QUALITY}: "
                     f"ILSVRC-2012's {ILSVRC_2012_IMAGES:,} images would take about {prepared_gb:.0f} GB prepared")
        print(notes[-1], flush=True)
    columns = ["source", "cores", "images/s", "images_per_second_per_core"] + [f"cores for {g}" for g in GPU_RATES]
    report.write_table("input_speed", "Input pipeline alone: images/s per core", rows, columns, notes=notes,
                       out_dir=FLAGS.out_dir)


if __name__ == "__main__":
    errors.run_main(main)
