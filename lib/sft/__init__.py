"""Supervised fine-tuning (Part 3): chat format, the SFT loss, instruction data, packing.

Modules: ``lib.sft.chat`` (seed-13), ``lib.sft.loss`` (seed-14), ``lib.sft.data`` (seed-15),
``lib.sft.packing`` (seed-16); ``lib.sft.finetune_task`` is the fine-tuning task of the PEFT
sections (seed-9 ... seed-12). Import the sub-modules directly.
"""
