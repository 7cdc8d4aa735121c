"""The book's tiny language model and everything around it.

Modules: ``lib.llm.tokenizer`` (byte-level BPE trained from scratch, chat template, export to
Hugging Face ``tokenizers``), the decoder model, training loop and generation (see the other
modules of this package), and ``lib.llm.vlm`` (a tiny vision-language model).
Import the modules you need, e.g. ``from lib.llm.tokenizer import load_tokenizer``.
"""
