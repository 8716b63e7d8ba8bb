"""Personal adapter training: prepare → finetune → evaluate → export (GGUF) → register.

Each stage is a function in its own module that reads a directory with a ``manifest.json``
and writes another one; ``assistant train`` wraps them as CLI verbs. Heavy libraries (torch,
transformers, peft) are imported inside the stages, never at import time.
"""
