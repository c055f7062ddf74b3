"""spm stage: a SentencePiece vocabulary whose ids line up with fairseq's dict and the HF tokenizer (the layout:
:mod:`koroberta.layout`). ``train.py`` trains it, ``legacy.py`` imports an existing spm model + dict.
"""
