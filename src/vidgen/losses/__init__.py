"""Small loss classes chosen by the ``loss`` config group."""
