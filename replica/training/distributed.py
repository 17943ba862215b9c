"""Data-parallel workers, each running the two towers on its own two devices (NOTES-distributed.md, variant 2).

Each worker builds the model outside any strategy scope, under its towers' `tf.device`, so every variable stays
on its tower's device; the step runs inside `MultiWorkerMirroredStrategy.run`, and the gradients (and the loss)
are averaged across the workers by TensorFlow's collective all-reduce over gRPC. The update is the paper's rule,
applied by `optimizer.PaperSGD` on every worker with the same averaged gradients, so the workers' weights stay equal.
The cluster is described by TF_CONFIG, the standard way; `tf_config_for` writes one from a host list.
"""
import json
import os
import subprocess
import sys

import tensorflow as tf

from replica.errors import UserError


class PeerUnreachable(UserError, RuntimeError):
    """A worker could not reach its peers within the time allowed."""


def tf_config_for(worker_hosts, task_index):
    """TF_CONFIG for worker `task_index` of `worker_hosts` ("host:port,host:port"); worker 0 is the chief."""
    hosts = [h.strip() for h in worker_hosts.split(",") if h.strip()]
    if not hosts or any(":" not in h for h in hosts):
        raise ValueError(f"--worker_hosts={worker_hosts!r} is not a list of host:port")
    if not 0 <= task_index < len(hosts):
        raise ValueError(f"--task_index={task_index} is not one of 0..{len(hosts) - 1}")
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": task_index}})


def tf_config():
    """TF_CONFIG as a dict ({} when unset); one that is not a JSON object is a UserError saying how to set it."""
    text = os.environ.get("TF_CONFIG", "") or "{}"
    try:
        config = json.loads(text)
    except ValueError as e:
        config = e
    if not isinstance(config, dict):
        raise UserError(f"TF_CONFIG is not a JSON object ({str(config)[:80]}); set it as "
                        '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}} '
                        "or pass --worker_hosts and --task_index instead") from None
    return config


def cluster_size():
    """How many workers TF_CONFIG names (1 without TF_CONFIG)."""
    return len(tf_config().get("cluster", {}).get("worker", [])) or 1


def bound_cluster_start_up(timeout_seconds):
    """Configure TensorFlow's coordination service as MultiWorkerMirroredStrategy would, but with registration
    and heartbeat timeouts tied to `timeout_seconds` instead of the defaults (registration: 1 hour).

    This alone did not bound a lone worker's wait here (the chief blocks creating remote contexts, holding the
    GIL); `Watchdog` is what ends that wait. It is kept for the heartbeat, so that a dead peer is noticed.
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    spec = tf.distribute.cluster_resolver.TFConfigClusterResolver().cluster_spec()
    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
            for job in ("chief", "worker") if job in spec.jobs]
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=multi_worker_util.coordination_leader(spec),
        coordinated_jobs=jobs, cluster_register_timeout_in_ms=timeout_seconds * 1000,
        heartbeat_timeout_in_ms=max(timeout_seconds // 2, 5) * 1000)


WATCHDOG = """
import os, signal, sys, time
parent, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
time.sleep(seconds)
print("error: " + message, file=sys.stderr, flush=True)
os.kill(parent, signal.SIGKILL)
"""


class Watchdog:
    """A separate process that ends this one with a one-line error if it is still waiting after `seconds`.

    Joining a cluster blocks inside TensorFlow's runtime holding the GIL, where no Python timer, thread or signal
    handler can run; another process can.
    """

    def __init__(self, seconds, message):
        self.seconds, self.message = seconds, message

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(os.getpid()), str(self.seconds),
                                         self.message])
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def join(timeout_seconds=60):
    """Create this process's Workers and check that every peer answers, within `timeout_seconds`: past it the
    process ends with a one-line error (and a non-zero exit) instead of hanging."""
    index = tf_config().get("task", {}).get("index", 0)
    message = (f"worker {index} could not reach its peers within {timeout_seconds} s; start every worker named in "
               "TF_CONFIG (or --worker_hosts) and check their host:port addresses")
    bound_cluster_start_up(timeout_seconds)
    with Watchdog(timeout_seconds, message):
        try:
            workers = Workers(timeout_seconds)
            workers.check_peers()
        except (tf.errors.OpError, RuntimeError) as e:
            raise PeerUnreachable(f"{message} ({str(e).splitlines()[0][:200]})") from None
    return workers


class Workers:
    """This process's place among the workers, and the collective operations the training step needs."""

    def __init__(self, timeout_seconds=60):
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING,
            timeout_seconds=timeout_seconds)
        self.timeout_seconds = timeout_seconds
        self.strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        resolver = self.strategy.cluster_resolver
        self.index = resolver.task_id or 0
        self.count = self.strategy.num_replicas_in_sync
        self.is_chief = self.index == 0

    @staticmethod
    def all_reduce_mean(grads, loss):
        """The mean over the workers of every gradient and of the loss (called inside `strategy.run`)."""
        context = tf.distribute.get_replica_context()
        return context.all_reduce("mean", grads), context.all_reduce("mean", loss)

    def wrap(self, step):
        """Run `step` as this worker's replica; return its outputs as plain tensors."""
        strategy = self.strategy

        @tf.function(autograph=False)
        def distributed_step(*args):
            outputs = strategy.run(step, args=args)
            return tf.nest.map_structure(lambda o: strategy.experimental_local_results(o)[0], outputs)

        return distributed_step

    def check_peers(self):
        """One all-reduce across the workers (bound it in time with a Watchdog, as `join` does)."""
        try:
            self.wrap(lambda: self.all_reduce_mean([tf.ones([1])], tf.constant(1.0))[1])()
        except tf.errors.OpError as e:
            raise PeerUnreachable(f"worker {self.index} could not reach its {self.count - 1} peer(s) "
                                  f"({str(e).splitlines()[0]}); start every worker of TF_CONFIG and check their "
                                  "host:port addresses") from None
