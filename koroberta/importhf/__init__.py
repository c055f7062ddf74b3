"""import-hf stage: a local Hugging Face RoBERTa masked LM -> fairseq checkpoint + a vocab dir (fairseq id = HF id)."""
