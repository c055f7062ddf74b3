"""Command generation for every launcher, checked against fairseq's own argument parser."""

import shlex

import pytest

from koroberta.train.command import effective_batch, fairseq_args, format_command, launch_command
from koroberta.train.config import TrainConfig
from koroberta.train.entry import distributed_args


def _opt(args, flag):
    return args[args.index(flag) + 1]


def parse_with_fairseq(args):
    from fairseq import options

    parser = options.get_training_parser()
    return options.parse_args_and_arch(parser, input_args=args)


def test_recipe_args_parse_in_fairseq():
    cfg = TrainConfig(clip_norm=1.0, sample_break_mode="complete_doc", max_update=1000, warmup_updates=100)
    a = fairseq_args(cfg, "data-bin", "ckpt", cuda=True)
    ns = parse_with_fairseq(a)
    assert (ns.task, ns.criterion, ns.arch) == ("masked_lm", "masked_lm", "roberta_base")
    assert (ns.optimizer, ns.lr_scheduler) == ("adam", "polynomial_decay")
    assert eval(ns.adam_betas) == (0.9, 0.98) and ns.adam_eps == 1e-6 and ns.weight_decay == 0.01
    assert float(ns.total_num_update) == ns.max_update == 1000 and ns.warmup_updates == 100
    assert ns.sample_break_mode == "complete_doc" and ns.clip_norm == 1.0
    assert ns.fp16 and not ns.bf16 and not ns.tpu and not ns.cpu
    assert (ns.tokens_per_sample, ns.max_positions, ns.batch_size, ns.update_freq) == (512, 512, 16, [16])
    assert ns.dropout == 0.1 and ns.attention_dropout == 0.1 and ns.mask_prob == 0.15
    assert ns.keep_interval_updates == 3 and ns.save_interval_updates == 2000 and ns.no_epoch_checkpoints
    assert ns.tensorboard_logdir == "ckpt/tensorboard" and ns.log_format == "json"


def test_precision_and_device_flags():
    assert "--amp" in fairseq_args(TrainConfig(precision="amp"), "d", "s", cuda=True)
    cpu = fairseq_args(TrainConfig(), "d", "s", cuda=False)  # auto -> fp32 on CPU
    assert "--cpu" in cpu and "--fp16" not in cpu and "--amp" not in cpu
    assert "--fp16" in fairseq_args(TrainConfig(), "d", "s", cuda=True)  # auto -> fp16 on GPU
    for p in ("auto", "fp16", "amp", "fp32"):
        assert not {"--bf16", "--tpu"} & set(fairseq_args(TrainConfig(precision=p), "d", "s", cuda=True))
    ns = parse_with_fairseq(fairseq_args(TrainConfig(encoder_layers=2, encoder_embed_dim=64,
                                                     encoder_ffn_embed_dim=128, encoder_attention_heads=2,
                                                     tokens_per_sample=128, max_positions=128), "d", "s", cuda=False))
    assert (ns.encoder_layers, ns.encoder_embed_dim, ns.encoder_ffn_embed_dim, ns.encoder_attention_heads) == \
        (2, 64, 128, 2)
    assert ns.cpu and ns.max_positions == 128


def test_effective_batch():
    b = effective_batch(TrainConfig(batch_size=16, update_freq=16, ngpus=4, nnodes=2, launcher="slurm"))
    assert (b.sequences, b.tokens) == (2048, 2048 * 512)
    assert "2,048 sequences" in b.describe() and "1,048,576 tokens" in b.describe()


def test_local_launcher_single_gpu():
    cfg = TrainConfig()
    cmd = launch_command(cfg, fairseq_args(cfg, "d", "s", cuda=True), fairseq_train="fairseq-train")
    assert cmd[0] == "fairseq-train" and "--distributed-world-size" not in cmd


def test_torchrun_launcher():
    cfg = TrainConfig(launcher="torchrun", ngpus=8, update_freq=2)
    cmd = launch_command(cfg, fairseq_args(cfg, "d", "s", cuda=True), python="python")
    assert cmd[:9] == ["python", "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                       "--nproc-per-node", "8", "-m"]
    assert cmd[9] == "koroberta.train.entry"
    assert _opt(cmd, "--distributed-world-size") == "8" and _opt(cmd, "--distributed-backend") == "nccl"
    cpu = fairseq_args(TrainConfig(launcher="torchrun", ngpus=2, device="cpu"), "d", "s", cuda=False)
    assert _opt(cpu, "--distributed-backend") == "gloo" and _opt(cpu, "--ddp-backend") == "legacy_ddp"


def test_slurm_launcher():
    cfg = TrainConfig(launcher="slurm", nnodes=4, ngpus=8, update_freq=4, master_port=29777)
    cmd = launch_command(cfg, fairseq_args(cfg, "d", "s", cuda=True), python="python")
    assert cmd[0] == "srun" and _opt(cmd, "--nodes") == "4" and _opt(cmd, "--ntasks-per-node") == "1"
    assert _opt(cmd, "--nnodes") == "4" and _opt(cmd, "--nproc-per-node") == "8"
    assert _opt(cmd, "--rdzv-endpoint") == "${MASTER_ADDR}:29777" and _opt(cmd, "--rdzv-id") == "${SLURM_JOB_ID}"
    assert _opt(cmd, "--distributed-world-size") == "32"
    text = format_command(cmd)
    assert '"${MASTER_ADDR}:29777"' in text  # stays expandable when pasted into a shell
    assert shlex.split(text) == cmd


def test_entry_adds_rank_and_device_from_torchrun_env():
    assert distributed_args({}) == []
    a = distributed_args({"RANK": "9", "WORLD_SIZE": "16", "LOCAL_RANK": "1"})
    assert _opt(a, "--distributed-rank") == "9" and _opt(a, "--device-id") == "1"
    assert _opt(a, "--distributed-init-method") == "env://" and "--distributed-no-spawn" in a
    ns = parse_with_fairseq(fairseq_args(TrainConfig(), "d", "s", cuda=True) + a)
    assert (ns.distributed_world_size, ns.distributed_rank, ns.device_id) == (16, 9, 1)


def test_extra_args_are_appended_and_parse():
    cfg = TrainConfig(extra_args=["--fp16-scale-window", "128"])
    a = fairseq_args(cfg, "d", "s", cuda=True)
    assert a[-2:] == ["--fp16-scale-window", "128"]
    assert parse_with_fairseq(a).fp16_scale_window == 128


@pytest.mark.parametrize("bad", [["--bf16"], ["--tpu"], ["--save-dir", "x"]])
def test_extra_args_cannot_override_managed_flags(bad):
    from koroberta.errors import ConfigError

    with pytest.raises(ConfigError):
        TrainConfig(extra_args=bad)
