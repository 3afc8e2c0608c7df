"""examples/slurm on a real Slurm: a one-node cluster on localhost (munged, slurmctld and slurmd started
here from a generated slurm.conf; Debian's packages installed first when they are missing and this
runs as root). The extract array (4 tasks over 40 records, a tiny model) merges to one run byte for
byte, also when a task is cancelled mid-way and requeued; the finetune script trains through
`accelerate launch` in an allocation, and goes on from its checkpoint when submitted again.

Where Slurm cannot be installed or started the tests skip with the reason; with
RELCLI_REQUIRE_SLURM=1 (set by .ci/run) they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import RECORDS, write_jsonl
from test_extract import MANY
from typer.testing import CliRunner

from relcli.cli import app
from relcli.labels import SEMEVAL
from relcli.prompts import COMPACT, prompt_records

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "slurm"
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin"])
COMMANDS = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel", "scontrol"]
EXTRACT = ["-t", "simple", "-l", "semeval", "--dtype", "float32"]


class Unavailable(Exception):
    """Slurm cannot be installed or started here; the message says why."""


def unavailable(reason: str):
    if os.environ.get("RELCLI_REQUIRE_SLURM") == "1":
        pytest.fail(f"RELCLI_REQUIRE_SLURM=1 but {reason}")
    pytest.skip(reason)


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else f"({path.name}: none)"


def install() -> dict[str, str]:
    """Full paths of the Slurm and munge commands, installing Debian's packages when missing."""
    missing = [c for c in COMMANDS if not shutil.which(c, path=SBIN)]
    if missing:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise Unavailable(f"Slurm is not installed ({', '.join(missing)} missing) and this is not root on Debian")
        try:
            result = subprocess.run(["bash", str(EXAMPLES / "install-slurm.sh")], capture_output=True, text=True,
                                    timeout=900)
        except subprocess.TimeoutExpired:
            raise Unavailable("installing slurm-wlm and munge took over 15 minutes") from None
        missing = [c for c in COMMANDS if not shutil.which(c, path=SBIN)]
        if result.returncode or missing:
            raise Unavailable(f"could not install slurm-wlm and munge: {(result.stdout + result.stderr)[-1500:]}")
    return {c: shutil.which(c, path=SBIN) for c in COMMANDS}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SLURM_CONF = """\
ClusterName=relcli-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=900
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    """munged + slurmctld + slurmd of a one-node cluster under ``root``, private to this test run
    (its own munge socket and key, free ports, SLURM_CONF pointing at its slurm.conf)."""

    def __init__(self, root: Path, commands: dict[str, str]):
        self.root, self.cmd, self.daemons = root, commands, []
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}  # in case we run inside a job
        self.env = {**env, "SLURM_CONF": str(root / "slurm.conf"), "PATH": SBIN, "OMP_NUM_THREADS": "1",
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                    "RELCLI": f"{sys.executable} -m relcli"}

    def start(self) -> None:
        root = self.root
        for sub in ("munge", "state", "spool", "log"):
            (root / sub).mkdir()
        root.chmod(0o711)  # munged wants every directory above its socket searchable by all
        (root / "munge").chmod(0o755)
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o600)
        self.daemon("munged", "-F", f"--key-file={key}", f"--socket={root}/munge/socket",
                    f"--log-file={root}/log/munged.log", f"--pid-file={root}/munge/pid", f"--seed-file={root}/munge/seed")
        self.until(lambda: (root / "munge" / "socket").exists(), 15, "munged did not create its socket")
        host = socket.gethostname().split(".")[0]
        (root / "slurm.conf").write_text(SLURM_CONF.format(host=host, root=root, ctld_port=free_port(), d_port=free_port()))
        self.daemon("slurmctld", "-D", "-i", "-f", str(root / "slurm.conf"))
        self.daemon("slurmd", "-D", "-N", "localhost", "-f", str(root / "slurm.conf"))
        self.until(lambda: self.run("sinfo", "-h", "-o", "%T", check=False).strip() == "idle", 60,
                   "the node did not come up idle")

    def daemon(self, name: str, *args: str) -> None:
        out = open(self.root / "log" / f"{name}.out", "wb")
        self.daemons.append(subprocess.Popen([self.cmd[name], *args], stdout=out, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=self.env, cwd=self.root))
        out.close()

    def until(self, ready, seconds: float, failure: str) -> None:
        deadline = time.monotonic() + seconds
        while not ready():
            dead = [p for p in self.daemons if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name}\n{tail(p)}" for p in sorted((self.root / "log").iterdir()))
                raise Unavailable(f"{failure}{' (a daemon exited)' if dead else ''}:\n{logs}")
            time.sleep(0.2)

    def run(self, command: str, *args: str, check: bool = True, cwd: Path | None = None, env: dict | None = None) -> str:
        result = subprocess.run([self.cmd.get(command, command), *args], capture_output=True, text=True, timeout=60,
                                env={**self.env, **(env or {})}, cwd=cwd or self.root)
        if check and result.returncode:
            raise AssertionError(f"{command} {' '.join(args)}: exit {result.returncode}\n{result.stdout}{result.stderr}")
        return result.stdout

    def sbatch(self, *args: str, cwd: Path, env: dict | None = None) -> str:
        return self.run("sbatch", "--parsable", *args, cwd=cwd, env=env).strip().split(";")[0]

    def wait(self, job: str, seconds: float = 240) -> None:
        """Until nothing of ``job`` (an array's every task) is pending, running or completing."""
        deadline = time.monotonic() + seconds
        while self.run("squeue", "-h", "-j", job, "-o", "%i %T", check=False).strip():
            assert time.monotonic() < deadline, f"job {job} still queued after {seconds} s: {self.run('squeue')}"
            time.sleep(0.3)

    def tasks(self, job: str) -> dict[str, dict]:
        """Task id (or job id) -> scontrol's fields, for the finished tasks slurmctld still knows."""
        rows = {}
        for line in self.run("scontrol", "-o", "show", "job", job).splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            rows[fields.get("ArrayTaskId", fields["JobId"])] = fields
        return rows

    def stop(self) -> None:
        """Cancel whatever jobs are left, then stop the daemons this cluster started."""
        if len(self.daemons) > 1 and self.daemons[1].poll() is None:  # slurmctld is up: ask it
            with_jobs = self.run("squeue", "-h", "-o", "%A", check=False).split()
            if with_jobs:
                self.run("scancel", *sorted(set(with_jobs)), check=False)
                deadline = time.monotonic() + 20
                while self.run("squeue", "-h", check=False).strip() and time.monotonic() < deadline:
                    time.sleep(0.5)
        for process in reversed(self.daemons):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture(scope="module")
def slurm():
    try:
        commands = install()
    except Unavailable as error:
        unavailable(str(error))
    root = Path(tempfile.mkdtemp(prefix="relcli-slurm-", dir="/tmp"))  # short: the munge socket path is limited
    cluster = Cluster(root, commands)
    try:
        try:
            cluster.start()
        except Unavailable as error:
            unavailable(f"Slurm would not start: {error}")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def work(slurm, tiny_llama) -> Path:
    """A folder with in.jsonl (40 records) and single.jsonl, their labels from one plain run."""
    work = slurm.root / "work"
    work.mkdir()
    write_jsonl(work / "in.jsonl", MANY[:40])
    result = CliRunner().invoke(app, ["extract", "-m", tiny_llama, *EXTRACT, "-i", str(work / "in.jsonl"),
                                      "-o", str(work / "single.jsonl")])
    assert result.exit_code == 0, result.output
    return work


def merge(slurm, work: Path, parts: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(EXAMPLES / "merge.sh"), "in.jsonl", parts], capture_output=True, cwd=work,
                          env={**slurm.env, "PYTHON": sys.executable}, timeout=60)


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_array_parts_merge_to_one_run(slurm, work, tiny_llama):
    job = slurm.sbatch("--array=0-3", str(EXAMPLES / "extract.sbatch"), "in.jsonl", "parts/", "-m", tiny_llama,
                       *EXTRACT, cwd=work)
    slurm.wait(job)
    tasks = slurm.tasks(job)
    assert {t: f["JobState"] for t, f in tasks.items()} == dict.fromkeys("0123", "COMPLETED"), tasks
    assert [lines(work / "parts" / f"part-{t}.jsonl") for t in range(4)] == [10] * 4
    merged = merge(slurm, work, "parts/")
    assert merged.returncode == 0, merged.stderr
    assert b"40 records in 4 parts" in merged.stderr
    assert merged.stdout == (work / "single.jsonl").read_bytes()


# The tasks of the next test run this instead of `python -m relcli`: relcli itself, made to pause
# RELCLI_TEST_DELAY seconds after writing each record, so that a task can be cancelled mid-way.
SLOW_RELCLI = """\
import os, time
import relcli.streams

progress = relcli.streams.progress

def slow(items, *args, **kwargs):
    for item in progress(items, *args, **kwargs):
        yield item
        time.sleep(float(os.environ["RELCLI_TEST_DELAY"]))

relcli.streams.progress = slow
from relcli.cli import main
main()
"""


def test_a_cancelled_task_requeued_loses_and_doubles_nothing(slurm, work, tiny_llama):
    (work / "slow_relcli.py").write_text(SLOW_RELCLI)
    env = {"RELCLI": f"{sys.executable} {work / 'slow_relcli.py'}", "RELCLI_TEST_DELAY": "0.5"}
    job = slurm.sbatch("--array=0-3", str(EXAMPLES / "extract.sbatch"), "in.jsonl", "parts2/", "-m", tiny_llama,
                       *EXTRACT, cwd=work, env=env)
    part = work / "parts2" / "part-1.jsonl"
    deadline = time.monotonic() + 180
    while lines(part) < 2:
        assert time.monotonic() < deadline, f"task 1 wrote nothing in 180 s: {slurm.run('squeue')}"
        time.sleep(0.1)
    slurm.run("scancel", f"{job}_1")
    slurm.wait(f"{job}_1", 30)
    before = part.read_bytes()
    assert 2 <= before.count(b"\n") < 10, before  # cancelled mid-way
    assert slurm.tasks(f"{job}_1")["1"]["JobState"] == "CANCELLED"
    assert merge(slurm, work, "parts2/").returncode != 0  # part 1 is short: merge.sh refuses

    # Resubmit the task: requeue keeps the array's numbers (so --shard auto gives 2/4 again), and
    # StartTime=now skips the delay Slurm puts on requeued jobs.
    deadline = time.monotonic() + 30
    while (requeue := subprocess.run([slurm.cmd["scontrol"], "requeue", f"{job}_1"], capture_output=True, text=True,
                                     env=slurm.env)).returncode:
        assert time.monotonic() < deadline, requeue.stderr
        time.sleep(0.5)
    slurm.run("scontrol", "update", f"JobId={job}_1", "StartTime=now")
    slurm.wait(job)
    tasks = slurm.tasks(job)
    assert {t: f["JobState"] for t, f in tasks.items()} == dict.fromkeys("0123", "COMPLETED"), tasks
    assert tasks["1"]["Restarts"] == "1"
    complete = before[: before.rfind(b"\n") + 1]
    assert part.read_bytes().startswith(complete) and lines(part) == 10  # appended to, not redone
    log = next(work.glob(f"slurm-{job}_1.out")).read_text()
    assert "restart 0" in log and "restart 1" in log  # --open-mode=append: both runs' lines
    merged = merge(slurm, work, "parts2/")
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout == (work / "single.jsonl").read_bytes()


def test_finetune_script_trains_with_accelerate_and_resumes_when_resubmitted(slurm, tiny_llama):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None:
        pytest.skip("accelerate's launcher is not installed beside this python")
    work = slurm.root / "train"
    work.mkdir()
    write_jsonl(work / "prompts.jsonl", prompt_records(RECORDS, COMPACT, SEMEVAL, "compact", "semeval"))
    args = ["--cpus-per-task=2", str(EXAMPLES / "finetune.sbatch"), "adapter/", "-m", tiny_llama, "-i", "prompts.jsonl",
            "--max-steps", "2", "--batch-size", "4", "--lora-r", "4", "--dtype", "float32", "--save-steps", "2"]
    logs = []
    for _ in range(2):  # the second submission is what a requeued job does: it goes on from the checkpoint
        job = slurm.sbatch(*args, cwd=work, env={"ACCELERATE": accelerate, "MASTER_PORT": str(free_port())})
        slurm.wait(job)
        logs.append((work / f"slurm-{job}.out").read_text())
        assert slurm.tasks(job)[job]["JobState"] == "COMPLETED", logs[-1][-3000:]
    assert "1 node(s) x 2 process(es) (CPUs)" in logs[0] and "resuming" not in logs[0]
    assert logs[0].count("adapter written to adapter (2 steps") == 1, logs[0][-3000:]  # one writer of 2 processes
    assert "resuming" in logs[1] and logs[1].count("adapter written to") == 1, logs[1][-3000:]
    names = {p.name for p in (work / "adapter").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "relcli.json", "checkpoints"} <= names
    assert json.loads((work / "adapter" / "relcli.json").read_text())["training"]["steps"] == 2
