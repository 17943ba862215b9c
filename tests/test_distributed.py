"""Two worker processes on 127.0.0.1, each with two logical CPU devices, train as one model."""
import json
import socket
import time

import numpy as np
import pytest
import tensorflow as tf

import replica
from replica.training import distributed
from replica.inputs import input_pipeline as ip
from replica.training import train
from replica.training.recipe import TrainConfig
from replica.training.step import set_determinism
from tests.conftest import Background

pytestmark = pytest.mark.slow   # worker processes on loopback

COMMON = ["--train_limit=64", "--batch_size=16", "--eval_limit=32", "--log_every=1", "--noten_crop",
          "--deterministic", "--peer_timeout=20"]


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(run_dir, hosts, *args, only=None):
    procs = {}
    for index in range(len(hosts.split(","))):
        if only is not None and index != only:
            continue
        procs[index] = Background(["run_experiment.py", *COMMON, "--workers=2", f"--worker_hosts={hosts}",
                                   f"--task_index={index}", f"--run_dir={run_dir}", *args])
    return procs


def finish(procs, timeout=300):
    return {i: (p.communicate(timeout=timeout), p.returncode) for i, p in procs.items()}


def test_tf_config():
    config = json.loads(distributed.tf_config_for("127.0.0.1:1,127.0.0.1:2", 1))
    assert config == {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}}
    with pytest.raises(ValueError):
        distributed.tf_config_for("127.0.0.1", 0)
    with pytest.raises(ValueError):
        distributed.tf_config_for("127.0.0.1:1", 3)


@pytest.mark.parametrize("value", ["{\"cluster\": ", "[\"127.0.0.1:1\"]"])
def test_a_malformed_tf_config_is_one_line_saying_how_to_set_it(monkeypatch, value):
    monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(replica.errors.UserError, match="TF_CONFIG is not a JSON object.*--worker_hosts"):
        distributed.cluster_size()


def test_two_workers_equal_one_process_on_the_global_batch(tmp_path, op_determinism):
    hosts = ",".join(f"127.0.0.1:{p}" for p in free_ports(2))
    results = finish(start_workers(tmp_path / "workers", hosts, "--max_steps=3", "--epochs=1"))
    for index, ((out, err), code) in results.items():
        assert code == 0, (index, err[-2000:])
    # one process, the same global batch of 16 and the same seed
    set_determinism(0, False)
    model = replica.build_model(2, num_classes=10, input_size=32, devices=replica.tower_devices(2, "0,1"),
                                positive_bias=0.1)
    config = TrainConfig(batch_size=16, eval_batch_size=64, eval_limit=32, log_every=1, final_ten_crop=False,
                               epochs=1, max_steps=3)
    train.Trainer(model, ip.load_data("cifar10", train_limit=64), tmp_path / "one", config).train()
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "workers" / "checkpoints")))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 3
    compared = 0
    for attribute, layer in [(n, n) for n in ("conv1_0", "conv3_1", "fc6_0", "fc7_1")] + [("fc8", "fc8")]:
        key = f"model/{attribute}/_kernel/.ATTRIBUTES/VARIABLE_VALUE"
        if key not in reader.get_variable_to_shape_map():
            key = f"model/{attribute}/kernel/.ATTRIBUTES/VARIABLE_VALUE"
        np.testing.assert_allclose(reader.get_tensor(key), model.get_layer(layer).kernel.numpy(), rtol=1e-4,
                                   atol=1e-6)
        compared += 1
    assert compared == 5
    initial = replica.build_model(2, num_classes=10, input_size=32, positive_bias=0.1)   # training moved them
    assert not np.allclose(initial.get_layer("fc8").kernel.numpy(), model.get_layer("fc8").kernel.numpy())
    losses = [h["loss"] for h in json.loads((tmp_path / "one" / "history.json").read_text())["train"]]
    worker_losses = [h["loss"] for h in json.loads((tmp_path / "workers" / "history.json").read_text())["train"]]
    np.testing.assert_allclose(worker_losses, losses, rtol=1e-5)


def test_a_killed_worker_fails_its_peer_in_bounded_time_and_the_job_resumes(tmp_path):
    hosts = ",".join(f"127.0.0.1:{p}" for p in free_ports(2))
    run_dir = tmp_path / "job"
    procs = start_workers(run_dir, hosts, "--checkpoint_every=1", "--epochs=2")
    deadline = time.time() + 240
    while not (run_dir / "checkpoints" / "checkpoint").is_file():
        assert time.time() < deadline and procs[0].poll() is None, procs[0].output()[1][-2000:]
        time.sleep(0.2)
    time.sleep(1.0)
    procs[1].kill()
    start = time.time()
    (out, err), code = finish({0: procs[0]}, timeout=180)[0]
    assert code != 0 and time.time() - start < 120          # the survivor stops by itself, in bounded time
    assert "restart every worker" in err or "could not reach" in err, err[-2000:]
    stopped_at = int(tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run_dir / "checkpoints")))
                     .get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))
    assert 1 <= stopped_at < 8
    # resumed with a longer timeout: on a loaded machine a step can outlast 20 s and fail a healthy job
    results = finish(start_workers(run_dir, hosts, "--checkpoint_every=1", "--epochs=2", "--peer_timeout=120"))
    for index, ((out, err), code) in results.items():
        assert code == 0, (index, err[-2000:])
    assert f"at step {stopped_at}" in results[0][0][1]        # resumed, not restarted
    history = json.loads((run_dir / "history.json").read_text())["train"]
    assert [h["step"] for h in history] == list(range(1, 9))   # the step count continues, the curve joins up


def test_a_worker_without_peers_fails_with_a_clear_message(tmp_path):
    hosts = ",".join(f"127.0.0.1:{p}" for p in free_ports(2))
    start = time.time()
    (out, err), code = finish(start_workers(tmp_path, hosts, "--max_steps=1", "--peer_timeout=10", only=0),
                              timeout=120)[0]
    assert code != 0 and "could not reach its peers within 10 s" in err and time.time() - start < 90, err[-2000:]
