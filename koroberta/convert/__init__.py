"""convert stage: fairseq checkpoint -> HF ``RobertaForMaskedLM`` + fast tokenizer, parity-checked
(``export.py`` chains ``checkpoint.py``, ``weights.py``, ``vocab.py``, ``parity.py``, ``card.py``).
"""
