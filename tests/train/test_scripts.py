"""scripts/04_train.sh, pretrain_torchrun.sh and pretrain.slurm build the right launch (dry run, no GPUs)."""

import os
import subprocess
import sys
from pathlib import Path

import yaml
from train_tiny import TINY

REPO = Path(__file__).resolve().parents[2]


def _env(tmp_path, **extra):
    # KOROBERTA points the scripts at this checkout's train CLI (independent of the other stages' imports)
    wrapper = tmp_path / "koroberta"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m koroberta.train.cli \"$@\"\n")
    wrapper.chmod(0o755)
    return {**os.environ, "KOROBERTA": str(wrapper), **extra}


def _cfg(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"train": TINY}))
    return str(p)


def test_04_train_dry_run(tiny_databin, tmp_path):
    r = subprocess.run(["bash", str(REPO / "scripts/04_train.sh"), _cfg(tmp_path), str(tiny_databin),
                        str(tmp_path / "s"), "--dry-run"], env=_env(tmp_path), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "fairseq-train" in r.stdout and "effective batch: 8 sequences" in r.stdout
    usage = subprocess.run(["bash", str(REPO / "scripts/04_train.sh")], capture_output=True, text=True)
    assert usage.returncode == 2 and "CONFIG.yaml" in usage.stderr


def test_torchrun_script_defaults_to_8_and_takes_ngpu(tiny_databin, tmp_path):
    args = ["bash", str(REPO / "scripts/pretrain_torchrun.sh"), _cfg(tmp_path), str(tiny_databin),
            str(tmp_path / "s"), "--dry-run", "--device", "cpu"]
    r = subprocess.run(args, env=_env(tmp_path, NGPU="2"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "torch.distributed.run --standalone --nnodes 1 --nproc-per-node 2 -m koroberta.train.entry" in r.stdout
    assert "16 sequences x 64 tokens" in r.stdout and "--distributed-backend gloo" in r.stdout
    env = _env(tmp_path)
    env.pop("NGPU", None)
    r = subprocess.run(args, env=env, capture_output=True, text=True)
    assert "--nproc-per-node 8" in r.stdout and "64 sequences" in r.stdout


def test_slurm_script_inside_a_fake_allocation(tiny_databin, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # `show hostnames` expands the node list; `show node -o NAME` gives NodeAddr (the rendezvous address)
    (bin_dir / "scontrol").write_text(
        "#!/bin/sh\nif [ \"$2\" = node ]; then echo \"NodeName=$4 Arch=x86_64 NodeAddr=127.0.0.1 NodeHostName=$4\"; "
        "else printf 'gpu-node-07\\ngpu-node-08\\n'; fi\n")
    (bin_dir / "scontrol").chmod(0o755)
    env = _env(tmp_path, PATH=f"{bin_dir}:{os.environ['PATH']}", SLURM_JOB_ID="4242", SLURM_NNODES="2",
               SLURM_JOB_NODELIST="gpu-node-[07-08]", GPUS_PER_NODE="4", MASTER_PORT="29611")
    r = subprocess.run(["bash", str(REPO / "scripts/pretrain.slurm"), _cfg(tmp_path), str(tiny_databin),
                        str(tmp_path / "s"), "--dry-run", "--device", "cpu"], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert "srun --nodes 2 --ntasks-per-node 1" in r.stdout
    assert "--nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-id 4242 --rdzv-endpoint 127.0.0.1:29611" \
        in r.stdout
    assert "--distributed-world-size 8" in r.stdout and "64 sequences" in r.stdout
