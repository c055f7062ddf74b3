"""finetune stage: the pipeline's sentence classification step (NSMC or any TSV) on the HF export. It is the eval
harness's nsmc/tsv task (``koroberta/eval/benchmark.py``) run with :class:`~koroberta.finetune.config.FinetuneConfig`
under the stage name "finetune", keeping the first seed's fine-tuned model in ``model/``."""
