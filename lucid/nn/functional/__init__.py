"""lucid.nn.functional: the functional form of every layer, and the losses."""
