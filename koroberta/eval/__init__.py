"""The Korean benchmark harness -- NSMC, KLUE-NLI, KorNLI, KLUE-STS, KLUE-NER from local files -- fine-tuned once per
seed on an HF export and reported as mean ± std (``benchmark.py``). The pipeline's finetune step runs it on NSMC.
"""
