"""What `run_experiment.py` does with its configuration (replica.config): print the per-layer table, train and
evaluate, evaluate a finished run, or use a trained net (classify, export, evaluate imported weights).

`main(config)` is the one entry point; every problem a user can act on is a UserError (one line, exit code 2 on
the command line), raised before anything is written to a run folder.
"""
import dataclasses

from absl import logging

from replica import choices, paper
from replica.training import runs
from replica import config as config_lib
from replica.errors import UserError


def main(config):
    """Do what `config` asks; return the process's exit code."""
    config_lib.check(config)
    config = with_towers(config)
    devices = resolve_devices(config)
    from replica.net import precision
    precision.configure(config.net.precision)
    run = config.run
    if run.summary:
        return print_summary(config, devices)
    if run.classify or run.export or run.weights:
        return use_trained(config, devices)
    if run.eval_only:
        return evaluate_run(config, devices)
    return train_and_evaluate(config, devices)


def with_towers(config):
    """--towers resolved: as given, else the towers of the checkpoint's run, else the paper's two."""
    towers = config.net.towers
    if towers is None:
        towers = str(runs.find_run(config.run.checkpoint)[2]["towers"]) if config.run.checkpoint else "2"
    return dataclasses.replace(config, net=dataclasses.replace(config.net, towers=towers))


def resolve_devices(config):
    import replica
    gpus = config.run.gpus or choices.default_gpus(config.net.towers)
    # not verified here: a multi-worker run must create its strategy before TensorFlow's runtime starts
    return replica.tower_devices(choices.towers_value(config.net.towers), gpus, config.run.gpu_memory_mb,
                                 verify=False)


def model_options(config):
    n = config.net
    return dict(lrn=n.lrn, pooling=n.pooling, activation=n.activation, dropout_rate=n.dropout,
                drop_layer=runs.drop_layer_value(n.drop_layer), precision=n.precision)


def print_summary(config, devices):
    import replica
    from replica.net import precision
    towers = choices.towers_value(config.net.towers)
    model = replica.build_model(towers, num_classes=config.net.num_classes or paper.NUM_CLASSES, devices=devices,
                                input_size=config.net.input_size or paper.INPUT_SIZE, **model_options(config))
    print(f"AlexNet, --towers={config.net.towers}, input {model.geometry.input_size}x{model.geometry.input_size}x3, "
          f"devices {devices}, precision {precision.in_force(config.net.precision)}")
    print(replica.format_table(replica.layer_table(model), towers))
    return 0


def load_data(config, input_size):
    from replica.inputs import input_pipeline
    d = config.data
    return input_pipeline.load_data(d.dataset, d.data_dir, input_size=input_size, pca_colour_augment=d.pca_colour,
                                    augment=d.augment, cache_dir=d.cache_dir, cache_decoded=d.cache_decoded,
                                    train_limit=d.train_limit or None, validation_images=d.validation_images)


def run_config(config, data):
    """The run-defining settings (runs.RUN_DEFINING) as run_config.json keeps them."""
    flat = {**dataclasses.asdict(config.net), **dataclasses.asdict(config.data), **dataclasses.asdict(config.recipe),
            **dataclasses.asdict(config.run)}
    values = {name: flat[name] for name in runs.RUN_DEFINING}
    values.update(input_size=config_lib.resolved(config, "input_size"),
                  positive_bias=config_lib.resolved(config, "positive_bias"),
                  num_classes=config.net.num_classes or data.num_classes)
    if values["num_classes"] < data.num_classes:
        raise UserError(f"--num_classes={config.net.num_classes} but {data.source} has {data.num_classes} classes; "
                        f"drop the flag or raise it to {data.num_classes}")
    return values


def prepare_run_dir(run_dir, values, resume):
    """Lock the run folder, refuse one that holds another run, then (and only then) write its run_config.json."""
    runs.lock(run_dir)
    runs.check_resumable(run_dir, values, resume, defaults={k: config_lib.default_of(k) for k in values})
    runs.write_config(run_dir, values)


def join_workers(config):
    """The Workers of a multi-worker run (after the devices are configured), or None for one process."""
    import os
    run = config.run
    if run.workers <= 1:
        return None
    from replica.training import distributed
    if run.worker_hosts:
        try:
            os.environ["TF_CONFIG"] = distributed.tf_config_for(run.worker_hosts, run.task_index)
        except ValueError as e:
            raise UserError(str(e)) from None
    if distributed.cluster_size() != run.workers:
        raise UserError(f"--workers={run.workers} but TF_CONFIG names {distributed.cluster_size()} worker(s); set "
                        "TF_CONFIG or --worker_hosts with one host:port per worker")
    workers = distributed.join(run.peer_timeout)
    logging.info("worker %d of %d joined its peers", workers.index, workers.count)
    return workers


def train_and_evaluate(config, devices):
    """Train the configured net in its run folder (resuming when it holds a checkpoint), then evaluate it."""
    import tensorflow as tf
    from replica.net import memory
    from replica.training import train as train_lib
    from replica.training.step import set_determinism
    workers = join_workers(config)
    set_determinism(config.run.seed, config.run.deterministic)
    data = load_data(config, config_lib.resolved(config, "input_size"))
    values = run_config(config, data)
    run_dir = config.run.run_dir or f"runs/{config.data.dataset}-towers{config.net.towers}"
    model = runs.build_from_config(values, devices)
    memory.check_batch_fits(model, config.recipe.batch_size // (workers.count if workers else 1))
    if workers is None or workers.is_chief:
        prepare_run_dir(run_dir, values, config.run.resume)
    trainer = train_lib.Trainer(model, data, run_dir, config_lib.train_config(config), workers=workers,
                                run_info={"flags": flag_values(config), "run_config": values})
    logging.info("training --towers=%s on %s (%d train / %d eval images) in %s, devices %s", config.net.towers,
                 data.source, data.train_size(), data.eval_size(), run_dir, devices)
    try:
        results = trainer.train()
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
            tf.errors.InternalError) as e:
        if workers is None:
            raise
        raise UserError(f"worker {workers.index} lost its peers ({str(e).splitlines()[0][:160]}); restart every "
                        f"worker: they resume from the last checkpoint in {run_dir}") from None
    final = results["final"]
    print(f"run {run_dir}: {results['steps']} steps, {results['epochs_completed']} epochs; test top-1 error "
          f"{final['centre_top1_error']:.4f} (centre)" + (f", {final['ten_crop_top1_error']:.4f} (10 crops)"
                                                        if "ten_crop_top1_error" in final else "")
          + f"; top-5 {final['centre_top5_error']:.4f}; results in {run_dir}/results.json")
    return 0


def flag_values(config):
    """Every setting, as results.json records the flags of the run."""
    return {name: getattr(getattr(config, section), name) for name, section in config_lib.field_names().items()}


def evaluate_run(config, devices):
    """Top-1 / top-5 error of a run's checkpoint, centre crop and 10 crops, on the data it was trained on."""
    from replica.training import evaluate as evaluate_lib
    _, checkpoint, saved = runs.find_run(config.run.checkpoint)
    if choices.towers_value(saved["towers"]) != choices.towers_value(config.net.towers):
        raise UserError(f"the checkpoint holds --towers={saved['towers']}, not --towers={config.net.towers}")
    # the data as the run saw it: the mean image comes from the same training images
    data_config = dataclasses.replace(config.data, dataset=saved["dataset"], data_dir=saved["data_dir"],
                                      train_limit=saved.get("train_limit", 0),
                                      validation_images=saved.get("validation_images", 0))
    data = load_data(dataclasses.replace(config, data=data_config), saved["input_size"])
    model, _ = runs.load_trained(checkpoint, devices)
    for ten_crop in (False, True):
        result = evaluate_lib.evaluate(model, data, ten_crop=ten_crop, limit=config.run.eval_limit)
        print(f"{'10 crops' if ten_crop else 'centre  '}: top-1 error {result['top1_error']:.4f}  top-5 error "
              f"{result['top5_error']:.4f}  ({result['images']} images, {checkpoint})")
    return 0


def use_trained(config, devices):
    """--classify, --export, or --eval_only with --weights: a trained net used, nothing trained."""
    from replica.trained import serving
    run = config.run
    if run.weights:
        classifier = serving.from_onnx(run.weights, choices.towers_value(config.net.towers), devices)
    else:
        classifier = serving.from_run(run.checkpoint, devices)
    print(f"net: {classifier.source}")
    for path, best in serving.classify(classifier, run.classify, bool(run.ten_crop)):
        print(f"{path}:\n" + "\n".join(f"  {p:7.2%}  {name}" for name, p in best))
    if run.export:
        print(f"SavedModel written to {serving.export(classifier, run.export)}")
    if run.eval_only:
        evaluate_weights(config, classifier)
    return 0


def evaluate_weights(config, classifier):
    """Top-1 / top-5 error of imported weights on an image folder of ILSVRC classes, beside the published figures."""
    from replica.training import evaluate as evaluate_lib
    from replica.trained import pretrained, serving
    data = load_data(config, classifier.input_size)
    serving.use_mean_of(classifier, data)
    label_map = serving.ilsvrc_label_map(classifier, data)
    published = pretrained.PUBLISHED_ACCURACY
    for ten_crop in (False, True):
        result = evaluate_lib.evaluate(classifier.model, data, ten_crop=ten_crop, label_map=label_map,
                                       limit=config.run.eval_limit)
        print(f"{'10 crops' if ten_crop else 'centre  '}: top-1 error {result['top1_error']:.4f}  top-5 error "
              f"{result['top5_error']:.4f}  ({result['images']} images of {data.num_classes} classes, 1000-way)")
    print(f"published for bvlc_alexnet on ILSVRC-2012 val (centre): top-1 error {1 - published['top1']:.3f}, top-5 "
          f"{1 - published['top5']:.3f}; the paper's one net: 0.407 / 0.182 (10 crops, PAPER.md 5)")
