"""What is checked and written back on every call: the call key and guards (`guards.py`), the
generated guard check (`check.py`), cache entries and their run path (`entry.py`)."""
