"""koroberta: pretrain a Korean RoBERTa with fairseq and hand it to Hugging Face.

Stages (each a subpackage and a ``koroberta <stage>`` subcommand): corpus -> spm -> preprocess -> train -> convert ->
finetune. ``koroberta run CONFIG.yaml`` chains them and skips stages whose outputs are complete for the same config
and inputs.
"""

__version__ = "0.1.0"
