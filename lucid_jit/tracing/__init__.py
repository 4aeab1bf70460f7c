"""How a call becomes graphs: the tracer that `bind` talks to (`tracer.py`), lifted floats
(`floats.py`), where captured tensors come from (`sources.py`), what a trace leaves behind:
outputs, write-backs and the backward graph (`capture.py`), and flattening arguments
(`pytree.py`)."""
