"""corpus stage: kowiki dump, WikiExtractor output, text or HF datasets -> clean, deduplicated, kss-split,
document-preserving train/valid/test text. ``build.py`` chains the steps of ``steps.py``; ``stage.py`` is the contract.
"""
