"""One module per chapter, each registering its exercises with
:func:`nnbook.exercises.register` (imported lazily by ``nnbook.exercises``)."""
