"""The tiny CPU training config the train-stage tests share (imported by conftest and test modules)."""

# 2 layers x dim 64 (the lead's TINY_ARCH) on 64-token blocks; sample_break_mode none because the fixture text has
# one paragraph per line (85% of its tokens are in lines > 63 tokens, which `complete` would drop). cpu_threads=1:
# on the shared 2-core box 30 updates took 1.7 s with 1 OMP thread vs 15.7 s with 2 (oversubscription).
TINY = dict(encoder_layers=2, encoder_embed_dim=64, encoder_ffn_embed_dim=128, encoder_attention_heads=2,
            tokens_per_sample=64, max_positions=64, sample_break_mode="none", batch_size=8, update_freq=1,
            lr=1e-3, warmup_updates=5, max_update=30, log_interval=5, save_interval_updates=10,
            validate_interval_updates=10, keep_interval_updates=2, num_workers=0, device="cpu", min_free_disk_gb=0.0,
            cpu_threads=1)
